//! One load client: connects (again, with `--reconnect-delay-ms`), counts what it receives and,
//! as a sender, talks on a fixed schedule.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use contract::TicketIssuer;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::events::{Event, LoadText};
use crate::histogram::micros;
use crate::options::Options;
use crate::socket::{self, HandshakeError, Incoming, Reader, Writer};
use crate::stats::Stats;

/// What every client task shares.
pub struct Fleet {
    pub options: Options,
    pub tickets: TicketIssuer,
    pub stats: Arc<Stats>,
    /// Limits the handshakes in flight (`--connect-parallel`).
    pub handshakes: Semaphore,
    /// Set when the senders start (after everyone connected).
    pub start: watch::Receiver<Option<Instant>>,
    /// Clients per room, for the deliveries each message should cause.
    pub room_sizes: Vec<u64>,
}

impl Fleet {
    pub fn new(
        options: Options,
        secret: &contract::Secret,
        start: watch::Receiver<Option<Instant>>,
    ) -> Self {
        let mut room_sizes = vec![0u64; options.rooms];
        for client in 0..options.clients {
            room_sizes[options.room_of(client)] += 1;
        }
        Self {
            handshakes: Semaphore::new(options.connect_parallel),
            tickets: TicketIssuer::new(secret),
            stats: Arc::new(Stats::new(options.clients)),
            start,
            room_sizes,
            options,
        }
    }
}

/// How one connection ended.
enum Ended {
    /// The handshake failed: nothing was open.
    NotOpened,
    /// An open connection closed or failed.
    Closed,
}

/// Runs client number `client` from `connect_at` until it is aborted (or, without reconnecting,
/// until its connection ends).
pub async fn run(fleet: Arc<Fleet>, client: usize, connect_at: Instant) {
    tokio::time::sleep_until(connect_at).await;
    let mut ever_open = false;
    let mut attempted = false;
    loop {
        let ended = connect_once(&fleet, client, &mut ever_open).await;
        if matches!(ended, Ended::NotOpened) && !attempted {
            fleet.stats.settle(&fleet.stats.failed);
        }
        attempted = true;
        let Some(delay) = fleet.options.reconnect_delay_ms else {
            return;
        };
        tokio::time::sleep(delay.pick()).await;
    }
}

/// One connection from handshake to its end.
async fn connect_once(fleet: &Fleet, client: usize, ever_open: &mut bool) -> Ended {
    let stats = &fleet.stats;
    let Some(request) = request(fleet, client) else {
        return Ended::NotOpened;
    };
    let connected = {
        let _permit = fleet.handshakes.acquire().await;
        let attempt = Instant::now();
        let connected = open_socket(fleet, client, request).await;
        if let Err(refusal) = &connected {
            stats.count_refusal(refusal.to_string(), attempt.elapsed());
        }
        connected
    };
    let Ok((mut reader, writer)) = connected else {
        return Ended::NotOpened;
    };
    // Both halves of the select below write: the sender its messages, the reader its pongs.
    let writer = Mutex::new(writer);

    let mut welcomed = false;
    let reading = async {
        let mut run_start = None;
        loop {
            match reader.next().await {
                Ok(Some(Incoming::Text(text))) => {
                    if !welcomed {
                        welcomed = true;
                        stats.open.fetch_add(1, Ordering::Relaxed);
                        if *ever_open {
                            stats.reconnected.fetch_add(1, Ordering::Relaxed);
                        } else {
                            *ever_open = true;
                            stats.settle(&stats.ready);
                        }
                    }
                    // Read the shared start once it is set, not on every frame.
                    if run_start.is_none() {
                        run_start = *fleet.start.borrow();
                    }
                    on_event(text, stats, client, run_start);
                }
                Ok(Some(Incoming::Ping(payload))) => {
                    // Waits while a message of this client's is being written; the server reads
                    // it whatever it is writing, so that write ends. A pong that cannot be
                    // written shows as the read that fails next.
                    let _ = writer.lock().await.pong(payload).await;
                }
                Ok(Some(Incoming::Close(code))) => {
                    stats.count_close(format!("close {}", code.unwrap_or(0)));
                    return;
                }
                Ok(Some(Incoming::Other)) => {}
                Err(error) => {
                    stats.count_close(format!("error: {error}"));
                    return;
                }
                Ok(None) => {
                    stats.count_close("eof".into());
                    return;
                }
            }
        }
    };
    let sending = async {
        match sender_of(fleet, client) {
            Some(sender) => send_on_schedule(fleet, sender, client, &writer).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = reading => {}
        () = sending => {}
    }
    if welcomed {
        stats.open.fetch_sub(1, Ordering::Relaxed);
    }
    Ended::Closed
}

/// Why a handshake did not open a socket, as the report counts it: `http 503`, `connect`, ...
#[derive(Debug)]
pub struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<HandshakeError> for Refusal {
    fn from(error: HandshakeError) -> Self {
        Self(match error {
            HandshakeError::Status(status) => format!("http {status}"),
            HandshakeError::Io(kind) => format!("io {kind:?}"),
            HandshakeError::Protocol(what) => format!("handshake {what}"),
        })
    }
}

impl From<std::io::Error> for Refusal {
    fn from(error: std::io::Error) -> Self {
        Self(format!("connect {:?}", error.kind()))
    }
}

/// A WebSocket to the server, from `client`'s source address (`--source-addrs`) when given.
async fn open_socket(
    fleet: &Fleet,
    client: usize,
    request: Request,
) -> Result<(Reader, Writer), Refusal> {
    let no_address = || Refusal("no server address".into());
    let host = request
        .uri()
        .host()
        .ok_or_else(no_address)?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = request.uri().port_u16().unwrap_or(80);
    let source = fleet.options.source_of(client);
    let servers = tokio::net::lookup_host((host, port))
        .await?
        .filter(|server| source.is_none_or(|source| server.is_ipv4() == source.is_ipv4()));
    // Each address in turn, as a browser tries them: `localhost` may name ::1 first.
    let mut failure = no_address();
    let mut connected = None;
    for server in servers {
        match connect_from(source, server).await {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(error) => failure = error.into(),
        }
    }
    let stream = connected.ok_or(failure)?;
    stream.set_nodelay(true)?;
    Ok(socket::handshake(stream, request).await?)
}

/// A TCP connection to `server`, from `source` when given.
async fn connect_from(source: Option<IpAddr>, server: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(server).await;
    };
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(server).await
}

/// Headers Chromium 120 sends with the chat page's WebSocket, besides the ticket and `Origin`.
const BROWSER_HEADERS: [(&str, &str); 6] = [
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/120.0.0.0 Safari/537.36",
    ),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"),
    ("cache-control", "no-cache"),
    ("pragma", "no-cache"),
    (
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits",
    ),
];

/// A handshake request for `client`, with a fresh ticket in `Authorization`, or shaped like a
/// browser's (`--as-browser`).
fn request(fleet: &Fleet, client: usize) -> Option<Request> {
    let room = fleet.options.room_of(client);
    let ticket = fleet
        .tickets
        .issue(
            &format!("user{client}@load.test"),
            &format!("load room {room}"),
            &format!("{room:024x}"),
        )
        .ok()?;
    let mut request = fleet.options.url.as_str().into_client_request().ok()?;
    if fleet.options.as_browser {
        let origin = format!("http://{}", request.uri().authority()?);
        let headers = request.headers_mut();
        let protocols = format!("chat.v1, bearer.{ticket}");
        // The website's session cookie: its name and a 43-character id (tower-sessions).
        let cookie = format!("id={client:043}; lang=ru");
        for (name, value) in [
            ("origin", origin),
            ("sec-websocket-protocol", protocols),
            ("cookie", cookie),
        ] {
            headers.insert(name, HeaderValue::from_str(&value).ok()?);
        }
        for (name, value) in BROWSER_HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
    } else {
        let bearer = HeaderValue::from_str(&format!("Bearer {ticket}")).ok()?;
        request.headers_mut().insert("authorization", bearer);
    }
    Some(request)
}

/// The client's place among the senders, if it is one.
fn sender_of(fleet: &Fleet, client: usize) -> Option<usize> {
    let options = &fleet.options;
    (client < options.senders() && options.rate_per_sender() > 0.0).then_some(client)
}

/// A sender's place within tokio's timer tick: a sleep ends on the first whole millisecond of the
/// runtime's clock after its deadline, so a message goes out up to 1 ms after it is due. Were
/// every sender's schedule on the same fraction of a millisecond, as whole-millisecond offsets
/// put them, that delay would be one draw per run, as the run started, and move each run's
/// latencies together by up to 1 ms; spread evenly over the tick (a golden-ratio sequence), it
/// averages out the same in every run.
fn timer_phase(sender: usize) -> Duration {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    Duration::from_millis(1).mul_f64((sender as f64 * GOLDEN).fract())
}

/// Sends this sender's messages due from now on, each at its scheduled time; then waits forever.
/// Messages that fell due while the client was disconnected are not sent (nor expected).
async fn send_on_schedule(fleet: &Fleet, sender: usize, client: usize, writer: &Mutex<Writer>) {
    let options = &fleet.options;
    let stats = &fleet.stats;
    let mut start = fleet.start.clone();
    let Ok(run_start) = start.wait_for(Option::is_some).await.map(|s| *s) else {
        return std::future::pending().await;
    };
    let Some(run_start) = run_start else {
        return std::future::pending().await;
    };
    let room_size = fleet.room_sizes[options.room_of(client)];
    let interval = Duration::from_secs_f64(1.0 / options.rate_per_sender());
    // Spreads the senders' first messages over one interval, so they do not all fire at once.
    let offset =
        interval.mul_f64(sender as f64 / options.senders().max(1) as f64) + timer_phase(sender);
    let end = options.warmup + options.duration;
    // What precedes the padding takes about 49 bytes: the JSON around the text and
    // `lg:<due>:<measured>:<sent>:`.
    let padding = "x".repeat(options.text_bytes.saturating_sub(49));
    let since_start = Instant::now().saturating_duration_since(run_start + offset);
    let first = (since_start.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
    for seq in first.. {
        let due = offset + interval.mul_f64(seq as f64);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(run_start + due).await;
        let measured = due >= options.warmup;
        if measured {
            stats.sent.fetch_add(1, Ordering::Relaxed);
            stats.expected.fetch_add(room_size, Ordering::Relaxed);
        }
        // The receiver needs nothing but the text to measure the latency.
        let load = LoadText {
            due_micros: micros(due),
            measured,
            sent_micros: micros(Instant::now().saturating_duration_since(run_start)),
        };
        let text = serde_json::json!({ "type": "message", "text": load.format(&padding) });
        if writer.lock().await.text(text.to_string()).await.is_err() {
            break;
        }
    }
    std::future::pending().await
}

/// Counts one server event; for a measured load message, records its latency from schedule and
/// from its sending.
fn on_event(frame: &str, stats: &Stats, client: usize, start: Option<Instant>) {
    let presence = match Event::parse(frame) {
        Some(Event::Message { text }) => {
            let (Some(start), Some(load)) = (start, LoadText::parse(&text)) else {
                return;
            };
            if load.measured {
                let now = Instant::now();
                let since =
                    |micros| now.saturating_duration_since(start + Duration::from_micros(micros));
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                stats.latency.record_duration(since(load.due_micros));
                stats
                    .latency_from_send
                    .record_duration(since(load.sent_micros));
            }
            return;
        }
        Some(Event::Joined) => &stats.joined,
        Some(Event::Left) => &stats.left,
        Some(Event::Presence) => &stats.summaries,
        Some(Event::Error) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Some(Event::Other) | None => return,
    };
    presence.fetch_add(1, Ordering::Relaxed);
    if let Some(count) = stats.presence_per_client.get(client) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_events_are_counted_per_client_and_by_type() {
        let stats = Stats::new(2);
        for frame in [
            r#"{"type":"welcome","room":"r","room_id":"x","you":"a","members":[]}"#,
            r#"{"type":"joined","user":"a","online":1,"at":"2026-03-01T12:00:00Z","first":true}"#,
            concat!(
                r#"{"type":"presence","joined":["b"],"joined_count":9,"left":[],"left_count":0,"#,
                r#""online":10,"at":"2026-03-01T12:00:00Z"}"#,
            ),
            r#"{"type":"left","user":"b","online":9,"at":"2026-03-01T12:00:00Z","last":true}"#,
            r#"{"type":"message","user":"a","text":"hello","at":"2026-03-01T12:00:00Z"}"#,
        ] {
            on_event(frame, &stats, 1, None);
        }
        assert_eq!(stats.presence_counts(), [0, 3]);
        let by_type =
            [&stats.joined, &stats.left, &stats.summaries].map(|c| c.load(Ordering::Relaxed));
        assert_eq!(by_type, [1, 1, 1]);
    }
}
