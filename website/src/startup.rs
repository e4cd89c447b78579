//! Building the application (database, state, router, listener) apart from running it, so tests
//! run exactly what the binary runs, on port 0 with their own database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::device::DeviceCookies;
use crate::auth::password::Passwords;
use crate::auth::session;
use crate::auth::throttle::LoginThrottle;
use crate::auth::ticket::{TicketDesk, TicketRate};
use crate::chat_notice::ChatNotice;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::{self, Metrics};
use crate::routes;
use crate::settings::RequestSettings;
use crate::state::AppState;
use crate::templates::Pages;

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "session";
/// The session cookie's name with `COOKIE_SECURE=true`. Browsers accept a `__Host-` cookie only
/// when it is `Secure`, has `Path=/` and no `Domain`, so neither plain HTTP nor a sibling
/// subdomain can set or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-session";

pub fn session_cookie_name(cookie_secure: bool) -> &'static str {
    if cookie_secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: Db,
    metrics_listener: Option<TcpListener>,
    metrics: Metrics,
}

impl Application {
    /// Connects to MongoDB (waiting for it a bounded time), ensures the indexes and binds
    /// `config.addr`, and `config.metrics_addr` when metrics are on.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new(config.metrics_addr.is_some())
            .context("setting up the metrics recorder")?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on WEBSITE_METRICS_ADDR {addr} (empty turns metrics off)")
            })?),
            None => None,
        };
        let db = Db::connect(&config, &metrics).await?;
        db.ensure_indexes().await?;
        let pages = Pages::load().context("loading templates and catalogues")?;
        let state = AppState {
            db: db.clone(),
            pages,
            passwords: Passwords::new(metrics.clone()).await?,
            tickets: TicketDesk::new(
                &config.jwt_secret,
                db.clone(),
                TicketRate::default(),
                metrics.clone(),
            ),
            chat_notice: ChatNotice::new(
                &config.jwt_secret,
                config.chat_notice_urls.clone(),
                config.chat_notice_timeout,
            ),
            throttle: Arc::new(LoginThrottle::new(
                db.clone(),
                config.login_max_failures,
                DeviceCookies::new(&config.jwt_secret, config.cookie_secure),
                metrics.clone(),
            )),
            settings: RequestSettings {
                trust_proxy_headers: config.trust_proxy_headers,
                session_max_age: config.session_max_age,
                cookie_secure: config.cookie_secure,
            },
            metrics: metrics.clone(),
        };
        let idle = time::Duration::try_from(config.session_idle)
            .context("SESSION_IDLE_MINUTES is out of range")?;
        let sessions = SessionManagerLayer::new(session::store(&db, metrics.clone()))
            .with_name(session_cookie_name(config.cookie_secure))
            .with_path("/")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(config.cookie_secure)
            .with_expiry(Expiry::OnInactivity(idle));
        // Outside every layer of the route table: each request is counted with the status it
        // finally got, and timed from first to last.
        let router = routes::router(state, sessions, config.request_timeout).layer(
            axum::middleware::from_fn_with_state(metrics.clone(), metrics::track_requests),
        );
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on WEBSITE_ADDR {}", config.addr))?;
        Ok(Self {
            listener,
            router,
            db,
            metrics_listener,
            metrics,
        })
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish; `/metrics` is
    /// served meanwhile on its own listener.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let _metrics_server = self.metrics_listener.map(|listener| {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics at {}", metrics::PATH);
            metrics::serve(listener, self.metrics)
        });
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        tracing::info!("website stopped");
        Ok(())
    }
}
