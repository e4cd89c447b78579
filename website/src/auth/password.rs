//! argon2id password hashing, off the async runtime and with bounded concurrency.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of CPU. Running it in `spawn_blocking` keeps
//! the async workers free, and the semaphore (one permit per CPU) means a burst of logins queues
//! up instead of starving every other page of CPU and memory.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::AppError;
use crate::metrics::{Metrics, PasswordJob};

/// OWASP's recommended argon2id settings: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    metrics: Metrics,
    /// Verified against when the email is unknown, so that answer takes as long as a wrong
    /// password and the timing does not tell which emails are registered.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("the OWASP parameters are within argon2's limits");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash is unreadable: {e}"))?;
    // The parameters come from the PHC string, so hashes made with older settings still verify.
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("verifying a password: {e}")),
    }
}

impl Passwords {
    pub async fn new(metrics: Metrics) -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let dummy_hash = tokio::task::spawn_blocking(|| hash_blocking("not a real password"))
            .await
            .context("hashing the dummy password")??;
        Ok(Self {
            permits: Arc::new(Semaphore::new(cpus)),
            metrics,
            dummy_hash: dummy_hash.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        kind: PasswordJob,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let waiting = self.metrics.password_job_queued();
        let _permit = self
            .permits
            .acquire()
            .await
            .context("the password semaphore is never closed")?;
        let _running = waiting.started(kind);
        let result = tokio::task::spawn_blocking(job)
            .await
            .context("password hashing task panicked")??;
        Ok(result)
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        let password = password.expose().to_owned();
        self.run(PasswordJob::Hash, move || hash_blocking(&password))
            .await
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown email) it does the same
    /// work against the dummy hash and answers `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, AppError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(PasswordJob::Verify, move || {
                verify_blocking(&password, &phc)
            })
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::new(Metrics::new(false).unwrap()).await.unwrap();
        let hash = passwords
            .hash(&Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horsE".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(Metrics::new(false).unwrap()).await.unwrap();
        assert!(
            !passwords
                .verify("not a real password".into(), None)
                .await
                .unwrap()
        );
    }
}
