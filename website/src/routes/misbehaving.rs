//! Routes that fail on purpose, for the tests that pin which layer answers a panic or a timeout
//! (feature `test-support`: never in the binary).

use std::time::Duration;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/misbehaving/panic", get(panic))
        .route("/api/misbehaving/panic", get(panic))
        .route("/misbehaving/sleep", get(sleep))
        .route("/api/misbehaving/sleep", get(sleep))
}

async fn panic() -> &'static str {
    panic!("a handler that panics on purpose")
}

async fn sleep() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "awake"
}
