//! What the chat counts, and `/metrics` on a listener of its own (`CHAT_METRICS_ADDR`); every
//! metric is listed in docs/monitoring.md.
//!
//! Handles are registered once, so the hot path (one fan-out to a thousand members) never looks a
//! metric up by name. Each server has a recorder of its own, so tests run many servers side by
//! side. Labels take values from fixed lists only: never a person, a room or an address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use exporter::Exporter;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics::{Counter, Gauge, Histogram, Recorder, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::close_reason::CloseReason;

pub const PATH: &str = "/metrics";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How often histograms' recent samples are folded in when nobody scrapes, so they never grow.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A fan-out to a big room takes a fraction of a millisecond; a message crosses Redis between
/// replicas in a millisecond or a few.
const FANOUT_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];
const BROKER_LAG_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How a handshake ended (`webchat_chat_handshakes_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Ok,
    /// 401 without any ticket (the health probe sends these).
    NoTicket,
    BadTicket,
    Origin,
    /// 400 or 404: a `bearer.` subprotocol without `chat.v1`, or an upgrade to another path.
    BadRequest,
    OverLimit,
    Full,
    Timeout,
}

impl Handshake {
    const ALL: [Self; 8] = [
        Self::Ok,
        Self::NoTicket,
        Self::BadTicket,
        Self::Origin,
        Self::BadRequest,
        Self::OverLimit,
        Self::Full,
        Self::Timeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NoTicket => "no_ticket",
            Self::BadTicket => "bad_ticket",
            Self::Origin => "origin",
            Self::BadRequest => "bad_request",
            Self::OverLimit => "over_limit",
            Self::Full => "full",
            Self::Timeout => "timeout",
        }
    }
}

/// Why an event did not reach a member (`webchat_chat_events_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The member's send queue was full: the event is lost and the member is closed with 4008.
    SlowConsumer,
    /// The member is already being closed as too slow: later events are not queued.
    Closing,
    Gone,
}

impl Dropped {
    /// Every reason, in declaration order (counters are indexed by it).
    pub const ALL: [Self; 3] = [Self::SlowConsumer, Self::Closing, Self::Gone];

    fn label(self) -> &'static str {
        match self {
            Self::SlowConsumer => "slow_consumer",
            Self::Closing => "closing",
            Self::Gone => "gone",
        }
    }
}

#[derive(Clone)]
pub struct Metrics(Arc<Handles>);

impl Default for Metrics {
    fn default() -> Self {
        Self::off()
    }
}

struct Handles {
    /// `None` with the listener off: every handle below is then a no-op.
    exporter: Option<Exporter>,
    connections: Gauge,
    handshakes: Vec<Counter>,
    disconnects: Vec<Counter>,
    messages_received: Counter,
    deliveries: Counter,
    delivered_bytes: Counter,
    fanouts: Histogram,
    dropped: Vec<Counter>,
    rooms: Gauge,
    broker: Broker,
}

/// The Redis side (only moves with `REDIS_URL`).
pub struct Broker {
    pub published: Counter,
    pub received: Counter,
    pub lag: Histogram,
    pub errors: Counter,
    pub reconnects: Counter,
    pub replicas_alive: Gauge,
    up: Gauge,
}

impl Metrics {
    /// Must be called within a Tokio runtime: the runtime's figures are read from it.
    pub fn new(enabled: bool) -> Result<Self, BuildError> {
        if !enabled {
            return Ok(Self::off());
        }
        let mut builder = exporter::builder();
        for (name, buckets) in [
            ("webchat_chat_fanout_duration_seconds", FANOUT_BUCKETS),
            ("webchat_chat_broker_lag_seconds", BROKER_LAG_BUCKETS),
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

    /// Handles that count nothing (the listener is off, or a test does not look).
    pub fn off() -> Self {
        Self(Arc::new(Handles::register(&metrics::NoopRecorder)))
    }

    pub fn enabled(&self) -> bool {
        self.0.exporter.is_some()
    }

    pub fn handshake(&self, result: Handshake) {
        self.0.handshakes[result as usize].increment(1);
    }

    pub fn connection_opened(&self) {
        self.0.connections.increment(1);
    }

    pub fn connection_closed(&self, reason: CloseReason) {
        self.0.connections.decrement(1);
        self.0.disconnects[reason as usize].increment(1);
    }

    pub fn message_received(&self) {
        self.0.messages_received.increment(1);
    }

    /// One event fanned out: `receivers` members were queued `bytes` each, in `took`.
    pub fn fanned_out(&self, receivers: usize, bytes: usize, took: Duration) {
        let receivers = receivers as u64;
        self.0.deliveries.increment(receivers);
        self.0
            .delivered_bytes
            .increment(receivers.saturating_mul(bytes as u64));
        self.0.fanouts.record(took.as_secs_f64());
    }

    pub fn dropped(&self, reason: Dropped, events: u64) {
        self.0.dropped[reason as usize].increment(events);
    }

    pub fn broker(&self) -> &Broker {
        &self.0.broker
    }

    pub fn observe_registry(&self, rooms: usize, redis_up: Option<bool>) {
        self.0.rooms.set(rooms as f64);
        if let Some(up) = redis_up {
            self.0.broker.up.set(if up { 1.0 } else { 0.0 });
        }
    }

    /// `None` with the listener off.
    pub fn render(&self) -> Option<String> {
        self.0.exporter.as_ref().map(Exporter::render)
    }

    fn upkeep(&self) {
        if let Some(exporter) = &self.0.exporter {
            exporter.run_upkeep();
        }
    }
}

impl Handles {
    fn register(recorder: &dyn Recorder) -> Self {
        metrics::with_local_recorder(recorder, || {
            describe();
            metrics::gauge!(
                "webchat_build_info",
                "service" => "chat",
                "version" => env!("CARGO_PKG_VERSION"),
                "commit" => option_env!("WEBCHAT_COMMIT").unwrap_or("unknown"),
            )
            .set(1.0);
            Self {
                exporter: None,
                connections: metrics::gauge!("webchat_chat_connections"),
                handshakes: Handshake::ALL
                    .iter()
                    .map(|r| {
                        metrics::counter!("webchat_chat_handshakes_total", "result" => r.label())
                    })
                    .collect(),
                disconnects: CloseReason::ALL
                    .iter()
                    .map(|r| {
                        metrics::counter!("webchat_chat_disconnects_total", "reason" => r.label())
                    })
                    .collect(),
                messages_received: metrics::counter!("webchat_chat_messages_received_total"),
                deliveries: metrics::counter!("webchat_chat_deliveries_total"),
                delivered_bytes: metrics::counter!("webchat_chat_delivered_bytes_total"),
                fanouts: metrics::histogram!("webchat_chat_fanout_duration_seconds"),
                dropped: Dropped::ALL
                    .iter()
                    .map(|r| {
                        metrics::counter!(
                            "webchat_chat_events_dropped_total",
                            "reason" => r.label()
                        )
                    })
                    .collect(),
                rooms: metrics::gauge!("webchat_chat_rooms"),
                broker: Broker {
                    published: metrics::counter!("webchat_chat_broker_published_total"),
                    received: metrics::counter!("webchat_chat_broker_received_total"),
                    lag: metrics::histogram!("webchat_chat_broker_lag_seconds"),
                    errors: metrics::counter!("webchat_chat_broker_errors_total"),
                    reconnects: metrics::counter!("webchat_chat_broker_reconnects_total"),
                    replicas_alive: metrics::gauge!("webchat_chat_broker_replicas_alive"),
                    up: metrics::gauge!("webchat_chat_broker_up"),
                },
            }
        })
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "webchat_build_info",
        "Always 1; the labels say which build runs."
    );
    describe_gauge!(
        "webchat_chat_connections",
        "Open WebSocket connections (admitted, not yet closed)."
    );
    describe_counter!(
        "webchat_chat_handshakes_total",
        "WebSocket handshakes to /ws by result."
    );
    describe_counter!(
        "webchat_chat_disconnects_total",
        "Closed connections by reason (the close code sent, or the client's close)."
    );
    describe_counter!(
        "webchat_chat_messages_received_total",
        "Chat messages accepted from clients."
    );
    describe_counter!(
        "webchat_chat_deliveries_total",
        "Events queued to members (one per member per event)."
    );
    describe_counter!(
        "webchat_chat_delivered_bytes_total",
        Unit::Bytes,
        "Bytes of the events queued to members."
    );
    describe_histogram!(
        "webchat_chat_fanout_duration_seconds",
        Unit::Seconds,
        "Time to queue one event to every local member of its room."
    );
    describe_counter!(
        "webchat_chat_events_dropped_total",
        "Events that did not reach a member, by reason."
    );
    describe_gauge!("webchat_chat_rooms", "Open rooms on this process.");
    describe_counter!(
        "webchat_chat_broker_published_total",
        "Messages published to Redis room channels."
    );
    describe_counter!(
        "webchat_chat_broker_received_total",
        "Messages received from Redis room channels."
    );
    describe_histogram!(
        "webchat_chat_broker_lag_seconds",
        Unit::Seconds,
        "From a replica's publish to this replica's receipt."
    );
    describe_counter!(
        "webchat_chat_broker_errors_total",
        "Errors on the connection to Redis."
    );
    describe_counter!(
        "webchat_chat_broker_reconnects_total",
        "Reconnections to Redis."
    );
    describe_gauge!(
        "webchat_chat_broker_replicas_alive",
        "Chat replicas alive in Redis at the last heartbeat, this one included."
    );
    describe_gauge!(
        "webchat_chat_broker_up",
        "1 while rooms are shared through Redis, 0 while this replica runs without it."
    );
}

/// A std socket made non-blocking, so it can be bound before the server runs and its error
/// reported at start-up.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// `observe` runs before each rendering, to set the gauges read off the room registry.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    observe: impl Fn(&Metrics) + Send + Sync + 'static,
    stopping: CancellationToken,
) {
    let observe = Arc::new(observe);
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    loop {
        let stream = tokio::select! {
            () = stopping.cancelled() => return,
            _ = upkeep.tick() => {
                metrics.upkeep();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (metrics, observe) = (metrics.clone(), observe.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (metrics, observe) = (metrics.clone(), observe.clone());
            async move { Ok::<_, Infallible>(answer(&request, &metrics, &*observe)) }
        });
        tokio::spawn(async move {
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics listener: connection failed");
            }
        });
    }
}

fn answer<B>(
    request: &Request<B>,
    metrics: &Metrics,
    observe: &(dyn Fn(&Metrics) + Send + Sync),
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, PATH) => {
            observe(metrics);
            let text = metrics.render().unwrap_or_default();
            (StatusCode::OK, CONTENT_TYPE, text)
        }
        (_, PATH) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("not found: metrics are at {PATH}\n"),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_show_up_under_their_names_and_labels_only_from_fixed_lists() {
        let metrics = Metrics::new(true).unwrap();
        metrics.handshake(Handshake::Ok);
        metrics.handshake(Handshake::BadTicket);
        metrics.connection_opened();
        metrics.connection_closed(CloseReason::TooSlow);
        metrics.fanned_out(1000, 60, Duration::from_micros(300));
        metrics.dropped(Dropped::SlowConsumer, 1);
        metrics.observe_registry(3, Some(true));

        let text = metrics.render().unwrap();

        for line in [
            "webchat_chat_handshakes_total{result=\"ok\"} 1",
            "webchat_chat_handshakes_total{result=\"bad_ticket\"} 1",
            "webchat_chat_handshakes_total{result=\"timeout\"} 0",
            "webchat_chat_connections 0",
            "webchat_chat_disconnects_total{reason=\"slow_consumer\"} 1",
            "webchat_chat_deliveries_total 1000",
            "webchat_chat_delivered_bytes_total 60000",
            "webchat_chat_fanout_duration_seconds_bucket{le=\"0.0005\"} 1",
            "webchat_chat_fanout_duration_seconds_count 1",
            "webchat_chat_events_dropped_total{reason=\"slow_consumer\"} 1",
            "webchat_chat_rooms 3",
            "webchat_chat_broker_up 1",
            "webchat_runtime_workers ",
            "webchat_process_resident_memory_bytes ",
            "webchat_process_open_fds ",
            "webchat_process_cpu_seconds_total ",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert!(text.contains("webchat_build_info{service=\"chat\",version=\""));
    }

    #[tokio::test]
    async fn with_the_listener_off_nothing_is_kept() {
        let metrics = Metrics::new(false).unwrap();
        metrics.fanned_out(10, 10, Duration::from_micros(1));
        assert!(!metrics.enabled());
        assert_eq!(metrics.render(), None);
    }

    #[test]
    fn every_close_reason_has_its_own_label_in_order() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
        for (i, result) in Handshake::ALL.iter().enumerate() {
            assert_eq!(*result as usize, i, "{result:?}");
        }
        for (i, reason) in Dropped::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
    }
}
