//! Logging in: from a typed email and password to a known user, or a refusal.

use crate::db::{Db, UserDoc};
use crate::domain::Email;
use crate::error::AppError;
use crate::metrics::Login;

use super::password::Passwords;
use super::throttle::{Client, LoginThrottle};

/// The account behind `email` when `password` is its password, unless the client is throttled.
/// An unknown email and a wrong password take the same time and give the same answer,
/// [`AppError::InvalidCredentials`]. Every attempt is counted by its result.
pub async fn authenticate(
    db: &Db,
    passwords: &Passwords,
    throttle: &LoginThrottle,
    client: &Client,
    email: &str,
    password: String,
) -> Result<UserDoc, AppError> {
    let outcome = attempt(db, passwords, throttle, client, email, password).await;
    throttle.count(Login::of(&outcome));
    outcome
}

async fn attempt(
    db: &Db,
    passwords: &Passwords,
    throttle: &LoginThrottle,
    client: &Client,
    email: &str,
    password: String,
) -> Result<UserDoc, AppError> {
    let email = Email::parse(email)?;
    match throttle.check(email.as_str(), client).await {
        Err(AppError::TooManyAttempts) => {
            let known = client.device.is_some();
            tracing::warn!(client = ?client.addr, known, "login throttled");
            return Err(AppError::TooManyAttempts);
        }
        checked => checked?,
    }
    let user = db.find_user_by_email(&email).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = passwords.verify(password, stored_hash).await?;
    match user {
        Some(user) if matches => {
            throttle.record_success(email.as_str(), client).await?;
            tracing::debug!(email = %user.email, "logged in");
            Ok(user)
        }
        _ => {
            // Recorded before answering: when MongoDB cannot record it, the answer is 503.
            throttle.record_failure(email.as_str(), client).await?;
            Err(AppError::InvalidCredentials)
        }
    }
}
