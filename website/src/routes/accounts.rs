//! Registration, login and logout.

use std::sync::Arc;

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
use crate::auth::login;
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

/// Starts the session of the user that registered or logged in and goes home. A refusal the
/// visitor can fix shows the form again, with its message and the email as typed.
async fn signed_in_or_form_again(
    view: &View,
    session: &Session,
    template: &str,
    email: &str,
    outcome: Result<UserDoc, AppError>,
) -> Result<Response, AppError> {
    match outcome {
        Ok(user) => {
            session::sign_in(session, user.id, &user.email()).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(error) if error.status().is_client_error() => {
            let message = view.text(&error.message_key());
            let html = view.render(None, template, context! { error => message, email })?;
            Ok(error.respond_with(html))
        }
        Err(error) => Err(error),
    }
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
    let created = async {
        let email = Email::parse(&form.email)?;
        let password = Password::parse(form.password)?;
        let hash = passwords.hash(&password).await?;
        let user = db.insert_user(&email, hash).await?;
        tracing::debug!(email = %user.email, "registered");
        Ok(user)
    }
    .await;
    signed_in_or_form_again(&view, &session, "register.html", &form.email, created).await
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
    State(throttle): State<Arc<LoginThrottle>>,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let Credentials { email, password } = form;
    let user = login::authenticate(&db, &passwords, &throttle, client, &email, password).await;
    signed_in_or_form_again(&view, &session, "login.html", &email, user).await
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
