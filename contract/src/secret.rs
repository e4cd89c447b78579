//! Values that must never reach a log, and the one rule for the shared HS256 key.

use std::fmt;

/// Shortest `JWT_SECRET` accepted: an HS256 key shorter than the hash output (32 bytes) is weak.
pub const MIN_SECRET_BYTES: usize = 32;

/// `JWT_SECRET` values published in this repository: Compose's fallback (docker-compose.yml)
/// and the example in `.env.example`. Anyone can sign tickets with them.
pub const PUBLIC_EXAMPLE_SECRETS: &[&str] = &[
    "local-only-jwt-secret-set-your-own-in-dot-env",
    "change-me-to-at-least-32-random-bytes-0123456789",
];

/// A value kept out of logs: `Debug` prints `[redacted]`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The HS256 key both services hold. It can only be made long enough.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Redacted);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret is too short: {0} bytes, at least {MIN_SECRET_BYTES} are required")]
pub struct SecretTooShort(pub usize);

impl Secret {
    pub fn new(value: impl Into<String>) -> Result<Self, SecretTooShort> {
        let value = value.into();
        if value.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(value.len()));
        }
        Ok(Self(Redacted::new(value)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }

    pub fn is_public_example(&self) -> bool {
        PUBLIC_EXAMPLE_SECRETS.contains(&self.0.expose())
    }

    /// Logs a loud warning when the secret is a public example: both services call it at start.
    pub fn warn_if_public_example(&self) {
        if self.is_public_example() {
            tracing::warn!(
                "JWT_SECRET is the example value published in this repository: anyone can sign \
                 chat tickets with it. Set your own in .env (e.g. `openssl rand -hex 32`) before \
                 anyone else can reach the site"
            );
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        assert_eq!(Secret::new("x".repeat(31)), Err(SecretTooShort(31)));
        assert!(Secret::new("x".repeat(32)).is_ok());
    }

    #[test]
    fn the_length_rule_counts_bytes_not_characters() {
        // 16 two-byte letters are 32 bytes: long enough as a key.
        assert!(Secret::new("ж".repeat(16)).is_ok());
    }

    #[test]
    fn the_repositorys_published_secrets_are_known_as_public() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
        let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
        let published: Vec<&str> = compose
            .lines()
            .filter_map(|line| line.split_once("${JWT_SECRET:-"))
            .map(|(_, rest)| rest.trim_end().trim_end_matches('}'))
            .chain(
                example
                    .lines()
                    .filter_map(|l| l.strip_prefix("JWT_SECRET=")),
            )
            .collect();
        assert!(published.len() >= 2, "{published:?}");
        for value in published {
            assert!(Secret::new(value).unwrap().is_public_example(), "{value}");
        }
        assert!(!Secret::new("x".repeat(40)).unwrap().is_public_example());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("a very secret value of enough length").unwrap();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(
            format!("{:?}", Redacted::new("mongodb://u:p@h")),
            "[redacted]"
        );
    }
}
