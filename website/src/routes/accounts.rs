//! Registration, login and logout.

#[expect(
    clippy::disallowed_types,
    reason = "no session yet: login and register rely on the Origin check"
)]
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use crate::auth::client_addr::ClientAddr;
use crate::auth::csrf::CsrfForm;
use crate::auth::password::Passwords;
use crate::auth::session::{self, CurrentUser};
use crate::auth::throttle::LoginThrottle;
use crate::db::{Db, UserDoc};
use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::templates::View;

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The form again, with the error message and the email as typed.
fn form_with_error(
    view: &View,
    template: &str,
    error: &AppError,
    email: &str,
) -> Result<Response, AppError> {
    let html = view.render(
        None,
        template,
        context! { error => view.text(&error.message_key()), email },
    )?;
    Ok((error.status(), html).into_response())
}

fn is_user_error(error: &AppError) -> bool {
    error.status().is_client_error()
}

pub async fn register_form(view: View, user: Option<CurrentUser>) -> Result<Response, AppError> {
    if user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(view
        .render(None, "register.html", context! {})?
        .into_response())
}

#[expect(
    clippy::disallowed_types,
    reason = "no session yet: registering relies on the Origin check"
)]
pub async fn register(
    view: View,
    session: Session,
    State(db): State<Db>,
    State(passwords): State<Passwords>,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let created: Result<UserDoc, AppError> = async {
        let email = Email::parse(&form.email)?;
        let password = Password::parse(form.password)?;
        let hash = passwords.hash(&password).await?;
        Ok(db.insert_user(&email, hash).await?)
    }
    .await;
    match created {
        Ok(user) => {
            tracing::debug!(email = %user.email, "registered");
            session::sign_in(&session, user.id, &user.email()).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(error) if is_user_error(&error) => {
            form_with_error(&view, "register.html", &error, &form.email)
        }
        Err(error) => Err(error),
    }
}

pub async fn login_form(view: View, user: Option<CurrentUser>) -> Result<Response, AppError> {
    if user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(view
        .render(None, "login.html", context! {})?
        .into_response())
}

#[expect(
    clippy::disallowed_types,
    reason = "no session yet: logging in relies on the Origin check"
)]
pub async fn login(
    view: View,
    session: Session,
    client: ClientAddr,
    State(db): State<Db>,
    State(passwords): State<Passwords>,
    State(throttle): State<std::sync::Arc<LoginThrottle>>,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let authenticated: Result<UserDoc, AppError> = async {
        let email = Email::parse(&form.email)?;
        throttle.check(email.as_str(), client.0)?;
        let user = db.find_user_by_email(&email).await?;
        // Unknown email and wrong password take the same time and give the same answer.
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = passwords.verify(form.password, stored_hash).await?;
        match user {
            Some(user) if matches => {
                throttle.record_success(email.as_str());
                Ok(user)
            }
            _ => {
                throttle.record_failure(email.as_str(), client.0);
                Err(AppError::InvalidCredentials)
            }
        }
    }
    .await;
    match authenticated {
        Ok(user) => {
            tracing::debug!(email = %user.email, "logged in");
            session::sign_in(&session, user.id, &user.email()).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(error) if is_user_error(&error) => {
            if matches!(error, AppError::TooManyAttempts) {
                tracing::warn!(client = ?client.0, "login throttled");
            }
            form_with_error(&view, "login.html", &error, &form.email)
        }
        Err(error) => Err(error),
    }
}

/// Signs the user out; an anonymous visitor has nothing to end and goes home all the same.
pub async fn logout(
    session: Session,
    signed_in: Option<CsrfForm<()>>,
) -> Result<Response, AppError> {
    if signed_in.is_some() {
        session::sign_out(&session).await?;
    }
    Ok(Redirect::to("/").into_response())
}
