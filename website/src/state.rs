//! The state every handler can extract a piece of (`State<Db>`, `State<Pages>`, ...).

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::password::Passwords;
use crate::auth::throttle::LoginThrottle;
use crate::auth::ticket::TicketDesk;
use crate::chat_notice::ChatNotice;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::settings::RequestSettings;
use crate::templates::Pages;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub pages: Pages,
    pub passwords: Passwords,
    pub tickets: TicketDesk,
    pub chat_notice: ChatNotice,
    pub throttle: Arc<LoginThrottle>,
    pub settings: RequestSettings,
    pub metrics: Metrics,
}
