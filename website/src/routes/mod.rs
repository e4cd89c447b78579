//! The route table and the layers every response passes through.

mod accounts;
mod api;
mod assets;
mod chat_page;
mod error_pages;
mod health;
mod home;
mod lang;
#[cfg(feature = "test-support")]
mod misbehaving;
mod rooms;
mod search;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use mongodb::bson::oid::ObjectId;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::{SessionManagerLayer, SessionStore};
use tracing::Level;

use crate::auth::{csrf, session_store};
use crate::error::AppError;
use crate::state::AppState;
use crate::telemetry;

/// `default-src 'self'` plus explicit rules for scripts, styles, frames and forms.
/// `connect-src 'self'` covers same-origin `ws:`/`wss:` in current browsers (CSP Level 3).
const CSP: &str = concat!(
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; ",
    "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; ",
    "form-action 'self'",
);

/// The route table with its layers, innermost first: CSRF, the error pages inside the session
/// (with the signed-in header), the session and the note of its failed queries, then the error
/// pages outside it with the time limit (`request_timeout`, 503 `timeout` after it), the security
/// headers and the request's span.
pub fn router<Store: SessionStore + Clone>(
    state: AppState,
    sessions: SessionManagerLayer<Store>,
    request_timeout: Duration,
) -> Router {
    let routes = route_table().layer(from_fn_with_state(
        state.settings.clone(),
        csrf::require_same_origin,
    ));
    let routes = error_pages::inside_session(routes, &state)
        .layer(sessions)
        .layer(from_fn(session_store::noting_failures));
    error_pages::outside_session(routes, &state, request_timeout)
        .layer(security_header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        // Dynamic answers may hold a user's data: never stored by browsers or proxies. Static
        // files set their own caching first, and `if_not_present` keeps it.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                // One line per request at info: status and latency, inside the route's span.
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

fn route_table() -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(home::home))
        .route(
            "/register",
            get(accounts::register_form).post(accounts::register),
        )
        .route("/login", get(accounts::login_form).post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route("/rooms", post(rooms::create_room))
        .route("/rooms/{room_id}", get(chat_page::chat_page))
        .route("/rooms/{room_id}/delete", post(rooms::delete_room))
        .route("/search", get(search::search_rooms))
        .route("/api/rooms/{room_id}/ticket", post(api::issue_ticket))
        .route("/lang/{code}", get(lang::switch_language))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{file}", get(assets::serve_static))
        .route("/favicon.ico", get(assets::favicon))
        .fallback(error_pages::page_not_found);
    #[cfg(feature = "test-support")]
    let routes = routes.merge(misbehaving::routes());
    routes
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// A room id from the URL; anything that is not an ObjectId names no room.
fn parse_room_id(raw: &str) -> Result<ObjectId, AppError> {
    raw.parse().map_err(|_| AppError::RoomNotFound)
}

#[derive(Debug, serde::Serialize)]
struct RoomView {
    id: String,
    title: String,
    owner_email: String,
}

impl From<crate::db::RoomDoc> for RoomView {
    fn from(room: crate::db::RoomDoc) -> Self {
        Self {
            id: room.id.to_hex(),
            title: room.title,
            owner_email: room.owner_email,
        }
    }
}
