//! Registration, login and logout.

use std::sync::Arc;

#[expect(
    clippy::disallowed_types,
    reason = "no session yet: login and register rely on the Origin check"
)]
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;
use tower_sessions::Session;
use tower_sessions::cookie::Cookie;

use crate::auth::csrf::CsrfForm;
use crate::auth::device::LoginClient;
use crate::auth::login;
use crate::auth::password::Passwords;
use crate::auth::session::{self, CurrentUser};
use crate::auth::throttle::{Client, LoginThrottle};
use crate::db::{Db, UserDoc};
use crate::domain::{Email, Password, ReturnPath};
use crate::error::AppError;
use crate::metrics::{Metrics, Registration};
use crate::templates::{View, percent_encode};

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Where to go once signed in (see [`ReturnPath`]); carried by the form's hidden field.
    next: Option<String>,
}

/// `?next=/path` on the login and register pages.
#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// The login page that comes back to `next` afterwards: what a visitor without a session is sent
/// to from a page that needs one.
pub fn login_url(next: &ReturnPath) -> String {
    if next.is_home() {
        "/login".to_owned()
    } else {
        format!("/login?next={}", percent_encode(next.as_str()))
    }
}

/// What the login and register forms show of `next`: the hidden field's value, and the query
/// that the link to the other form carries on.
fn next_context(next: &ReturnPath) -> Value {
    if next.is_home() {
        return context! { next => (), next_query => "" };
    }
    // Percent-encoded here: nothing left to escape.
    let query = Value::from_safe_string(format!("?next={}", percent_encode(next.as_str())));
    context! { next => next.as_str(), next_query => query }
}

/// Starts the session of the user that registered or logged in and goes to `next` (home unless
/// they came from a page that needed a session). A refusal the visitor can fix shows the form
/// again, with its message, the email as typed and `next` kept.
async fn signed_in_or_form_again(
    view: &View,
    session: &Session,
    template: &str,
    email: &str,
    next: &ReturnPath,
    outcome: Result<UserDoc, AppError>,
) -> Result<Response, AppError> {
    match outcome {
        Ok(user) => {
            session::sign_in(session, user.id, &user.email()).await?;
            Ok(Redirect::to(next.as_str()).into_response())
        }
        Err(error) if error.status().is_client_error() => {
            let message = view.text(&error.message_key());
            let page = context! { error => message, email, ..next_context(next) };
            let html = view.render(None, template, page)?;
            Ok(error.respond_with(html))
        }
        Err(error) => Err(error),
    }
}

fn form_or_next(
    view: &View,
    user: Option<CurrentUser>,
    template: &str,
    next: Option<&str>,
) -> Result<Response, AppError> {
    let next = ReturnPath::or_home(next);
    if user.is_some() {
        return Ok(Redirect::to(next.as_str()).into_response());
    }
    Ok(view
        .render(None, template, next_context(&next))?
        .into_response())
}

pub async fn register_form(
    view: View,
    user: Option<CurrentUser>,
    Query(query): Query<Next>,
) -> Result<Response, AppError> {
    form_or_next(&view, user, "register.html", query.next.as_deref())
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
    State(metrics): State<Metrics>,
    State(throttle): State<Arc<LoginThrottle>>,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let next = ReturnPath::or_home(form.next.as_deref());
    let created = async {
        let email = Email::parse(&form.email)?;
        let password = Password::parse(form.password)?;
        let hash = passwords.hash(&password).await?;
        let user = db.insert_user(&email, hash).await?;
        tracing::debug!(email = %user.email, "registered");
        Ok(user)
    }
    .await;
    metrics.registration(Registration::of(&created));
    let device_cookie = created
        .as_ref()
        .ok()
        .map(|user| throttle.devices().cookie(&user.email, None));
    let answer = signed_in_or_form_again(
        &view,
        &session,
        "register.html",
        &form.email,
        &next,
        created,
    )
    .await?;
    Ok(with_device_cookie(answer, device_cookie))
}

pub async fn login_form(
    view: View,
    user: Option<CurrentUser>,
    Query(query): Query<Next>,
) -> Result<Response, AppError> {
    form_or_next(&view, user, "login.html", query.next.as_deref())
}

#[expect(
    clippy::disallowed_types,
    reason = "no session yet: logging in relies on the Origin check"
)]
pub async fn login(
    view: View,
    session: Session,
    client: LoginClient,
    State(db): State<Db>,
    State(passwords): State<Passwords>,
    State(throttle): State<Arc<LoginThrottle>>,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let Credentials {
        email,
        password,
        next,
    } = form;
    let next = ReturnPath::or_home(next.as_deref());
    let device = Email::parse(&email)
        .ok()
        .and_then(|typed| throttle.devices().known(&client.headers, typed.as_str()));
    let client = Client {
        addr: client.addr,
        device,
    };
    let user = login::authenticate(&db, &passwords, &throttle, &client, &email, password).await;
    let device_cookie = user.as_ref().ok().map(|user| {
        throttle
            .devices()
            .cookie(&user.email, client.device.as_ref())
    });
    let answer =
        signed_in_or_form_again(&view, &session, "login.html", &email, &next, user).await?;
    Ok(with_device_cookie(answer, device_cookie))
}

/// `answer` with the cookie that makes this browser a known device of the account it signed in to
/// (`auth::device`), if it did.
fn with_device_cookie(mut answer: Response, cookie: Option<Cookie<'static>>) -> Response {
    if let Some(cookie) = cookie
        && answer.status().is_redirection()
        && let Ok(value) = HeaderValue::from_str(&cookie.to_string())
    {
        answer.headers_mut().append(SET_COOKIE, value);
    }
    answer
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
