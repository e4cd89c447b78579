//! Probes: `/healthz` (the process answers) and `/readyz` (and MongoDB does too).

use axum::extract::State;
use axum::http::StatusCode;

use crate::db::Db;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(db): State<Db>) -> (StatusCode, &'static str) {
    match db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: MongoDB does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "MongoDB unavailable")
        }
    }
}
