//! The state every handler can extract a piece of (`State<Db>`, `State<Pages>`, ...).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::auth::password::Passwords;
use crate::auth::throttle::LoginThrottle;
use crate::auth::ticket::TicketIssuer;
use crate::db::Db;
use crate::templates::Pages;

/// The few settings handlers and extractors consult per request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub trust_proxy_headers: bool,
    pub session_max_age: Duration,
    pub cookie_secure: bool,
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub pages: Pages,
    pub passwords: Passwords,
    pub tickets: TicketIssuer,
    pub throttle: Arc<LoginThrottle>,
    pub settings: Settings,
}
