//! What the website counts, and `/metrics` on a listener of its own (`WEBSITE_METRICS_ADDR`).
//! Every metric is listed with its meaning in docs/monitoring.md.
//!
//! Each application has a recorder of its own rather than the process-wide one, so tests run many
//! side by side. Labels take values from fixed lists or the route table only: never a person, an
//! email, a room, an address or a raw path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use exporter::Exporter;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, NoopRecorder, Recorder};
use metrics_exporter_prometheus::{BuildError, Matcher};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;

use crate::db::DbError;
use crate::error::AppError;

pub const PATH: &str = "/metrics";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How often histograms' recent samples are folded in when nobody scrapes, so they never grow.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Bucket bounds, in seconds: a page in milliseconds, argon2id in tens of milliseconds (more when
/// logins queue for a slot), a MongoDB query in a millisecond or a few.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const HASH_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const SLOT_WAIT_BUCKETS: &[f64] = &[
    0.000_1, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const MONGODB_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

const REQUESTS: &str = "webchat_website_requests_total";
const REQUEST_DURATION: &str = "webchat_website_request_duration_seconds";
const MONGODB_DURATION: &str = "webchat_website_mongodb_operation_duration_seconds";

/// The MongoDB commands the website sends; any other is counted as `other`.
const MONGODB_OPERATIONS: &[&str] = &[
    "find",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "aggregate",
    "count",
    "createIndexes",
    "listIndexes",
    "ping",
    "getMore",
    "killCursors",
];

/// How a login ended (`webchat_website_logins_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    InvalidCredentials,
    Throttled,
    Invalid,
    Error,
}

impl Login {
    pub fn of<T>(outcome: &Result<T, AppError>) -> Self {
        match outcome {
            Ok(_) => Self::Ok,
            Err(AppError::InvalidCredentials) => Self::InvalidCredentials,
            Err(AppError::TooManyAttempts) => Self::Throttled,
            Err(AppError::Invalid(_)) => Self::Invalid,
            Err(_) => Self::Error,
        }
    }

    const ALL: [Self; 5] = [
        Self::Ok,
        Self::InvalidCredentials,
        Self::Throttled,
        Self::Invalid,
        Self::Error,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled => "throttled",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

/// How a registration ended (`webchat_website_registrations_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Ok,
    EmailTaken,
    Invalid,
    Error,
}

impl Registration {
    pub fn of<T>(outcome: &Result<T, AppError>) -> Self {
        match outcome {
            Ok(_) => Self::Ok,
            Err(AppError::Database(DbError::EmailTaken)) => Self::EmailTaken,
            Err(AppError::Invalid(_)) => Self::Invalid,
            Err(_) => Self::Error,
        }
    }

    const ALL: [Self; 4] = [Self::Ok, Self::EmailTaken, Self::Invalid, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::EmailTaken => "email_taken",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordJob {
    Hash,
    Verify,
}

/// The website's metric handles. Cheap to clone; all clones count into the same figures.
#[derive(Clone)]
pub struct Metrics(Arc<Handles>);

struct Handles {
    /// `None` with the listener off: every handle below is then a no-op.
    exporter: Option<Exporter>,
    logins: Vec<Counter>,
    registrations: Vec<Counter>,
    hash_seconds: [Histogram; 2],
    slot_wait: Histogram,
    hashes_in_flight: Gauge,
    hashes_waiting: Gauge,
    tickets_issued: Counter,
    tickets_refused: Counter,
    session_cache_hits: Counter,
    session_cache_misses: Counter,
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

impl Metrics {
    /// Handles registered with a recorder of their own (`enabled`), or no-ops. Must be called
    /// within a Tokio runtime: the runtime's figures are read from it.
    pub fn new(enabled: bool) -> Result<Self, BuildError> {
        if !enabled {
            return Ok(Self(Arc::new(Handles::register(&NoopRecorder))));
        }
        let mut builder = exporter::builder();
        for (name, buckets) in [
            (REQUEST_DURATION, REQUEST_BUCKETS),
            (
                "webchat_website_password_hash_duration_seconds",
                HASH_BUCKETS,
            ),
            (
                "webchat_website_password_slot_wait_seconds",
                SLOT_WAIT_BUCKETS,
            ),
            (MONGODB_DURATION, MONGODB_BUCKETS),
        ] {
            builder = builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets)?;
        }
        let exporter = Exporter::new(builder);
        let handles = Handles::register(exporter.recorder());
        Ok(Self(Arc::new(Handles {
            exporter: Some(exporter),
            ..handles
        })))
    }

    pub fn enabled(&self) -> bool {
        self.0.exporter.is_some()
    }

    pub fn login(&self, result: Login) {
        self.0.logins[result as usize].increment(1);
    }

    pub fn registration(&self, result: Registration) {
        self.0.registrations[result as usize].increment(1);
    }

    /// A password job is waiting for a hashing slot; the guard says when it got one.
    pub fn password_job_queued(&self) -> SlotWait<'_> {
        self.0.hashes_waiting.increment(1);
        SlotWait {
            metrics: self,
            since: Instant::now(),
            waiting: true,
        }
    }

    fn password_job_done(&self, job: PasswordJob, took: Duration) {
        self.0.hashes_in_flight.decrement(1);
        self.0.hash_seconds[job as usize].record(took.as_secs_f64());
    }

    pub fn ticket_issued(&self) {
        self.0.tickets_issued.increment(1);
    }

    pub fn ticket_refused(&self) {
        self.0.tickets_refused.increment(1);
    }

    pub fn session_cache_lookup(&self, hit: bool) {
        if hit {
            self.0.session_cache_hits.increment(1);
        } else {
            self.0.session_cache_misses.increment(1);
        }
    }

    fn request(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let Some(exporter) = &self.0.exporter else {
            return;
        };
        let labels = [
            Label::from_static_parts("method", method_label(method)),
            Label::new("route", route.to_owned()),
            Label::new("status", status.to_string()),
        ];
        exporter
            .recorder()
            .register_counter(&Key::from_parts(REQUESTS, labels.to_vec()), &METADATA)
            .increment(1);
        exporter
            .recorder()
            .register_histogram(
                &Key::from_parts(REQUEST_DURATION, labels[..2].to_vec()),
                &METADATA,
            )
            .record(took.as_secs_f64());
    }

    /// Command durations by name and outcome; `None` with the listener off, so that the driver
    /// builds no events at all.
    pub fn mongodb_commands(&self) -> Option<EventHandler<CommandEvent>> {
        self.0.exporter.as_ref()?;
        let metrics = self.clone();
        Some(EventHandler::callback(move |event: CommandEvent| {
            let (name, took, outcome) = match &event {
                CommandEvent::Succeeded(e) => (e.command_name.as_str(), e.duration, "ok"),
                CommandEvent::Failed(e) => (e.command_name.as_str(), e.duration, "error"),
                _ => return,
            };
            metrics.mongodb_command(name, outcome, took);
        }))
    }

    fn mongodb_command(&self, name: &str, outcome: &'static str, took: Duration) {
        let Some(exporter) = &self.0.exporter else {
            return;
        };
        let operation = MONGODB_OPERATIONS
            .iter()
            .find(|known| **known == name)
            .copied()
            .unwrap_or("other");
        let labels = vec![
            Label::from_static_parts("operation", operation),
            Label::from_static_parts("outcome", outcome),
        ];
        exporter
            .recorder()
            .register_histogram(&Key::from_parts(MONGODB_DURATION, labels), &METADATA)
            .record(took.as_secs_f64());
    }

    pub fn render(&self) -> Option<String> {
        self.0.exporter.as_ref().map(Exporter::render)
    }

    fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                if let Some(exporter) = &metrics.0.exporter {
                    exporter.run_upkeep();
                }
            }
        })
    }
}

/// A password job between asking for a hashing slot and getting one.
pub struct SlotWait<'a> {
    metrics: &'a Metrics,
    since: Instant,
    waiting: bool,
}

impl<'a> SlotWait<'a> {
    pub fn started(mut self, job: PasswordJob) -> Running<'a> {
        let handles = &self.metrics.0;
        self.waiting = false;
        handles.hashes_waiting.decrement(1);
        handles.slot_wait.record(self.since.elapsed().as_secs_f64());
        handles.hashes_in_flight.increment(1);
        Running {
            metrics: self.metrics,
            job,
            since: Instant::now(),
        }
    }
}

impl Drop for SlotWait<'_> {
    /// Given up while waiting (the request ended first): no longer waiting.
    fn drop(&mut self) {
        if self.waiting {
            self.metrics.0.hashes_waiting.decrement(1);
        }
    }
}

pub struct Running<'a> {
    metrics: &'a Metrics,
    job: PasswordJob,
    since: Instant,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.metrics
            .password_job_done(self.job, self.since.elapsed());
    }
}

impl Handles {
    fn register(recorder: &dyn Recorder) -> Self {
        metrics::with_local_recorder(recorder, || {
            describe();
            metrics::gauge!(
                "webchat_build_info",
                "service" => "website",
                "version" => env!("CARGO_PKG_VERSION"),
                "commit" => option_env!("WEBCHAT_COMMIT").unwrap_or("unknown"),
            )
            .set(1.0);
            let hash = "webchat_website_password_hash_duration_seconds";
            let logins = "webchat_website_logins_total";
            let registrations = "webchat_website_registrations_total";
            let tickets = "webchat_website_tickets_total";
            let session_cache = "webchat_website_session_cache_lookups_total";
            Self {
                exporter: None,
                logins: Login::ALL
                    .iter()
                    .map(|r| metrics::counter!(logins, "result" => r.label()))
                    .collect(),
                registrations: Registration::ALL
                    .iter()
                    .map(|r| metrics::counter!(registrations, "result" => r.label()))
                    .collect(),
                hash_seconds: [
                    metrics::histogram!(hash, "operation" => "hash"),
                    metrics::histogram!(hash, "operation" => "verify"),
                ],
                slot_wait: metrics::histogram!("webchat_website_password_slot_wait_seconds"),
                hashes_in_flight: metrics::gauge!("webchat_website_password_jobs_running"),
                hashes_waiting: metrics::gauge!("webchat_website_password_jobs_waiting"),
                tickets_issued: metrics::counter!(tickets, "result" => "issued"),
                tickets_refused: metrics::counter!(tickets, "result" => "rate_limited"),
                session_cache_hits: metrics::counter!(session_cache, "result" => "hit"),
                session_cache_misses: metrics::counter!(session_cache, "result" => "miss"),
            }
        })
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "webchat_build_info",
        "Always 1; the labels say which build runs."
    );
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, matched route and status."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer a request, by method and matched route."
    );
    describe_counter!("webchat_website_logins_total", "Logins by result.");
    describe_counter!(
        "webchat_website_registrations_total",
        "Registrations by result."
    );
    describe_histogram!(
        "webchat_website_password_hash_duration_seconds",
        Unit::Seconds,
        "argon2id time per password job (hash: registration, verify: login)."
    );
    describe_histogram!(
        "webchat_website_password_slot_wait_seconds",
        Unit::Seconds,
        "Time a password job waited for a hashing slot (one per CPU)."
    );
    describe_gauge!(
        "webchat_website_password_jobs_running",
        "Password jobs on a hashing slot now."
    );
    describe_gauge!(
        "webchat_website_password_jobs_waiting",
        "Password jobs waiting for a hashing slot now."
    );
    describe_counter!(
        "webchat_website_tickets_total",
        "Chat tickets issued, and refused for asking too often."
    );
    describe_counter!(
        "webchat_website_session_cache_lookups_total",
        "Sessions looked up in the replica's cache: found (hit) or read from MongoDB (miss)."
    );
    describe_histogram!(
        MONGODB_DURATION,
        Unit::Seconds,
        "MongoDB command round trips, by command and outcome."
    );
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts the request by method, matched route and status. A path no route matches counts as
/// `unmatched`, so a scan of random paths adds one series, not one per path.
pub async fn track_requests(
    State(metrics): State<Metrics>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.request(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A running metrics listener; it stops when dropped.
pub struct MetricsServer {
    server: tokio::task::JoinHandle<()>,
    upkeep: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.abort();
        self.upkeep.abort();
    }
}

pub fn serve(listener: tokio::net::TcpListener, metrics: Metrics) -> MetricsServer {
    let upkeep = metrics.spawn_upkeep();
    let router = Router::new().route(PATH, get(scrape)).with_state(metrics);
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    MetricsServer { server, upkeep }
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    let body = metrics.render().unwrap_or_default();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fixed_series_show_up_at_zero_and_counts_under_their_labels() {
        let metrics = Metrics::new(true).unwrap();
        metrics.login(Login::Ok);
        metrics.registration(Registration::EmailTaken);
        metrics.ticket_issued();
        metrics.session_cache_lookup(false);
        metrics.request(
            &Method::GET,
            "/rooms/{room_id}",
            200,
            Duration::from_millis(3),
        );
        metrics.request(
            &Method::from_bytes(b"BREW").unwrap(),
            "unmatched",
            404,
            Duration::ZERO,
        );
        metrics.mongodb_command("find", "ok", Duration::from_millis(2));
        metrics.mongodb_command("$secret$", "error", Duration::from_millis(2));
        {
            let waiting = metrics.password_job_queued();
            let _running = waiting.started(PasswordJob::Verify);
        }

        let text = metrics.render().unwrap();

        for line in [
            r#"webchat_website_logins_total{result="ok"} 1"#,
            r#"webchat_website_logins_total{result="throttled"} 0"#,
            r#"webchat_website_registrations_total{result="email_taken"} 1"#,
            r#"webchat_website_tickets_total{result="issued"} 1"#,
            r#"webchat_website_session_cache_lookups_total{result="miss"} 1"#,
            concat!(
                "webchat_website_requests_total",
                r#"{method="GET",route="/rooms/{room_id}",status="200"} 1"#,
            ),
            r#"webchat_website_requests_total{method="other",route="unmatched",status="404"} 1"#,
            concat!(
                "webchat_website_request_duration_seconds_bucket",
                r#"{method="GET",route="/rooms/{room_id}",le="0.005"} 1"#,
            ),
            concat!(
                "webchat_website_mongodb_operation_duration_seconds_count",
                r#"{operation="find",outcome="ok"} 1"#,
            ),
            concat!(
                "webchat_website_mongodb_operation_duration_seconds_count",
                r#"{operation="other",outcome="error"} 1"#,
            ),
            r#"webchat_website_password_hash_duration_seconds_count{operation="verify"} 1"#,
            "webchat_website_password_slot_wait_seconds_count 1",
            "webchat_website_password_jobs_running 0",
            "webchat_website_password_jobs_waiting 0",
            "webchat_process_resident_memory_bytes ",
            "webchat_runtime_alive_tasks ",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert!(text.contains(r#"webchat_build_info{service="website",version=""#));
    }

    #[tokio::test]
    async fn with_the_listener_off_nothing_is_kept() {
        let metrics = Metrics::new(false).unwrap();
        metrics.request(&Method::GET, "/", 200, Duration::ZERO);
        assert!(!metrics.enabled());
        assert!(metrics.mongodb_commands().is_none());
        assert_eq!(metrics.render(), None);
    }

    #[test]
    fn labels_are_indexed_in_declaration_order() {
        for (i, result) in Login::ALL.iter().enumerate() {
            assert_eq!(*result as usize, i);
        }
        for (i, result) in Registration::ALL.iter().enumerate() {
            assert_eq!(*result as usize, i);
        }
        assert_eq!(PasswordJob::Hash as usize, 0);
        assert_eq!(PasswordJob::Verify as usize, 1);
    }
}
