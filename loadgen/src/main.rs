//! `chat-loadgen`: opens many WebSocket clients against a running chat server, has some of them
//! talk at a fixed rate, and reports deliveries per second, loss and end-to-end latency.
//!
//! Latency is measured from the moment a message was *scheduled* to be sent (the schedule is
//! written into the message text), not from when it was actually sent: a sender that falls behind
//! then shows up as latency instead of hiding it. Run `chat-loadgen --help` for the options and
//! chat/README.md for the scenarios.

mod histogram;
mod proc_stat;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use contract::{Claims, Secret};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::histogram::Histogram;
use crate::proc_stat::{cpu_percent, sample};

/// Load generator for the chat service. The tickets are signed with `JWT_SECRET`, which must be
/// the server's (32 bytes or more).
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-loadgen", version)]
struct Options {
    /// Server socket.
    #[arg(long, default_value = "ws://127.0.0.1:9000/ws")]
    url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Rooms the clients are spread over, round robin.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    rooms: usize,
    /// How many of the clients talk (0 = an idle run).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0, conflicts_with = "per_sender_rate")]
    rate: f64,
    /// Messages per second per sender (instead of --rate).
    #[arg(long, value_name = "RATE")]
    per_sender_rate: Option<f64>,
    /// Measured sending time, in seconds.
    #[arg(long, value_name = "SECS", default_value = "20", value_parser = seconds)]
    duration: Duration,
    /// Sending time before measuring starts, in seconds.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = seconds)]
    warmup: Duration,
    /// Length of each message text, in bytes.
    #[arg(long, default_value_t = 64)]
    text_bytes: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    connect_parallel: usize,
    /// New connections per second. Every join is announced to the room, so it sets how hard the
    /// clients' arrival hits the server.
    #[arg(long, default_value_t = 500.0, value_parser = positive_rate)]
    connect_rate: f64,
    /// Report the server's RSS and CPU from /proc/PID.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Runtime worker threads (default: one per core).
    #[arg(long, value_parser = at_least_one)]
    threads: Option<usize>,
}

fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

fn positive_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        Ok(_) => Err("must be a positive number".into()),
        Err(error) => Err(error.to_string()),
    }
}

fn seconds(value: &str) -> Result<Duration, String> {
    let seconds = value.parse::<f64>().map_err(|e| e.to_string())?;
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

impl Options {
    /// Senders never outnumber the clients.
    fn senders(&self) -> usize {
        self.senders.min(self.clients)
    }

    /// Messages per second of one sender: `--per-sender-rate`, or `--rate` shared by all.
    fn rate_per_sender(&self) -> f64 {
        match self.per_sender_rate {
            Some(rate) => rate,
            None if self.senders() > 0 => self.rate / self.senders() as f64,
            None => 0.0,
        }
    }

    fn room_of(&self, client: usize) -> usize {
        client % self.rooms
    }
}

/// Counters shared by every client task.
struct Stats {
    ready: AtomicUsize,
    failed: AtomicUsize,
    settled: Notify,
    /// Measured messages sent, and the deliveries they should cause (one per room member).
    sent: AtomicU64,
    expected: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    latency: Histogram,
    closes: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn count_close(&self, what: String) {
        if let Ok(mut closes) = self.closes.lock() {
            *closes.entry(what).or_default() += 1;
        }
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    let secret = match std::env::var("JWT_SECRET").map(Secret::new) {
        Ok(Ok(secret)) => secret,
        _ => {
            eprintln!("chat-loadgen: set JWT_SECRET to the server's secret (32 bytes or more)");
            return ExitCode::FAILURE;
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chat-loadgen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(run(options, secret));
    let _ = std::io::stdout().lock().write_all(report.as_bytes());
    ExitCode::SUCCESS
}

async fn run(options: Options, secret: Secret) -> String {
    let mut report = String::new();
    let server_pid = options.server_pid.map(|p| p.to_string());
    let server_at = |label: &str, report: &mut String| {
        let sample = server_pid.as_deref().and_then(sample);
        if let Some(s) = sample {
            let _ = writeln!(report, "server RSS {label}: {} KiB", s.rss_kib);
        }
        sample
    };
    let server_idle = server_at("before connecting", &mut report);

    let stats = Arc::new(Stats {
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        settled: Notify::new(),
        sent: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latency: Histogram::new(),
        closes: Mutex::new(BTreeMap::new()),
    });
    let mut room_sizes = vec![0u64; options.rooms];
    for client in 0..options.clients {
        room_sizes[options.room_of(client)] += 1;
    }
    let room_sizes = Arc::new(room_sizes);

    // Phase 1: connect everyone and wait for every welcome.
    let connecting = Instant::now();
    let handshakes = Arc::new(Semaphore::new(options.connect_parallel));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(options.clients);
    for client in 0..options.clients {
        let room = options.room_of(client);
        let ticket = Claims::new(
            &format!("user{client}@load.test"),
            &format!("load room {room}"),
            &format!("{room:024x}"),
        )
        .sign(&secret);
        let Ok(ticket) = ticket else {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let sender = (client < options.senders()).then_some(client);
        let connect_at = connecting + Duration::from_secs_f64(client as f64 / options.connect_rate);
        tasks.push(tokio::spawn(client_task(
            options.clone(),
            connect_at,
            ticket,
            sender,
            room_sizes[room],
            stats.clone(),
            handshakes.clone(),
            start_rx.clone(),
        )));
    }
    loop {
        let settled = stats.settled.notified();
        let done = stats.ready.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed);
        if done >= options.clients {
            break;
        }
        if tokio::time::timeout(Duration::from_secs(120), settled)
            .await
            .is_err()
        {
            let _ = writeln!(report, "gave up waiting for handshakes");
            break;
        }
    }
    let ready = stats.ready.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "connected {ready} of {} clients in {:.1} s ({} failed), {} rooms",
        options.clients,
        connecting.elapsed().as_secs_f64(),
        stats.failed.load(Ordering::Relaxed),
        options.rooms
    );
    // Let the joined events of the last joiners settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_connected = server_at("with everyone connected", &mut report);
    if let (Some(before), Some(after)) = (server_idle, server_connected)
        && ready > 0
    {
        let per = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / ready as f64;
        let _ = writeln!(report, "server RSS per connection: {per:.1} KiB");
    }

    // Phase 2: warm up, then measure for `duration`.
    let start = Instant::now();
    let _ = start_tx.send(Some(start));
    tokio::time::sleep(options.warmup).await;
    let measure_from = Instant::now();
    let server_before = server_pid.as_deref().and_then(sample);
    let loadgen_before = sample("self");
    tokio::time::sleep(options.duration).await;
    let measured = measure_from.elapsed();
    let server_after = server_pid.as_deref().and_then(sample);
    let loadgen_after = sample("self");

    // Phase 3: let messages in flight arrive (senders stop on their own schedule).
    let draining = Instant::now();
    while draining.elapsed() < Duration::from_secs(5)
        && stats.delivered.load(Ordering::Relaxed) < stats.expected.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_end = server_at("at the end", &mut report);
    // Aborted rather than told to stop: a shared stop signal polled by every reader on every
    // frame would put a contended lock on the hot path being measured.
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }

    let sent = stats.sent.load(Ordering::Relaxed);
    let expected = stats.expected.load(Ordering::Relaxed);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let seconds = measured.as_secs_f64();
    let _ = writeln!(
        report,
        "senders {} at {:.2} msg/s each; measured {:.1} s",
        options.senders(),
        options.rate_per_sender(),
        seconds
    );
    let _ = writeln!(
        report,
        "messages sent {sent} ({:.0}/s); deliveries offered {expected} ({:.0}/s), delivered {delivered} ({:.0}/s), lost {} ({:.3} %)",
        sent as f64 / seconds,
        expected as f64 / seconds,
        delivered as f64 / seconds,
        expected.saturating_sub(delivered),
        if expected > 0 {
            100.0 * expected.saturating_sub(delivered) as f64 / expected as f64
        } else {
            0.0
        }
    );
    let ms = |micros: u64| micros as f64 / 1000.0;
    let _ = writeln!(
        report,
        "latency from schedule: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ms(stats.latency.percentile(0.50)),
        ms(stats.latency.percentile(0.99)),
        ms(stats.latency.percentile(0.999)),
        ms(stats.latency.max()),
    );
    let _ = writeln!(
        report,
        "error events received: {}",
        stats.errors.load(Ordering::Relaxed)
    );
    if let Ok(closes) = stats.closes.lock()
        && !closes.is_empty()
    {
        let _ = writeln!(report, "connections ended during the run: {closes:?}");
    }
    if let (Some(before), Some(after)) = (loadgen_before, loadgen_after) {
        let _ = writeln!(
            report,
            "loadgen CPU while measuring: {:.0} % of one core",
            cpu_percent(before, after, measured)
        );
    }
    if let (Some(before), Some(after)) = (server_before, server_after) {
        let _ = writeln!(
            report,
            "server CPU while measuring: {:.0} % of one core",
            cpu_percent(before, after, measured)
        );
    }
    if let (Some(idle), Some(end)) = (server_idle, server_end) {
        let _ = writeln!(
            report,
            "server RSS grew {} KiB over the run",
            end.rss_kib.saturating_sub(idle.rss_kib)
        );
    }
    report
}

#[allow(clippy::too_many_arguments)]
async fn client_task(
    options: Options,
    connect_at: Instant,
    ticket: String,
    sender: Option<usize>,
    room_size: u64,
    stats: Arc<Stats>,
    handshakes: Arc<Semaphore>,
    start: tokio::sync::watch::Receiver<Option<Instant>>,
) {
    let settle = |counter: &AtomicUsize| {
        counter.fetch_add(1, Ordering::Relaxed);
        stats.settled.notify_one();
    };
    let Ok(mut request) = options.url.as_str().into_client_request() else {
        settle(&stats.failed);
        return;
    };
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {ticket}")) else {
        settle(&stats.failed);
        return;
    };
    request.headers_mut().insert("authorization", bearer);
    // Small buffers: thousands of these share the machine with the server.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    tokio::time::sleep_until(connect_at).await;
    let connected = {
        let _permit = handshakes.acquire().await;
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await
    };
    let Ok((socket, _)) = connected else {
        settle(&stats.failed);
        return;
    };
    let (mut sink, mut stream) = socket.split();

    let reading = async {
        let mut welcomed = false;
        let mut run_start = None;
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    if !welcomed {
                        welcomed = true;
                        settle(&stats.ready);
                    }
                    // Read the shared start once it is set, not on every frame.
                    if run_start.is_none() {
                        run_start = *start.borrow();
                    }
                    on_event(&text, &stats, run_start);
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(0, |f| u16::from(f.code));
                    stats.count_close(format!("close {code}"));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    stats.count_close(format!("error: {error}"));
                    return;
                }
                None => {
                    stats.count_close("eof".into());
                    return;
                }
            }
        }
    };

    let mut start_signal = start.clone();
    let sending = async {
        let Some(sender) = sender else {
            return std::future::pending::<()>().await;
        };
        let rate = options.rate_per_sender();
        if rate <= 0.0 || start_signal.wait_for(Option::is_some).await.is_err() {
            return std::future::pending().await;
        }
        let Some(run_start) = *start_signal.borrow() else {
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / rate);
        // Spreads the senders' first messages over one interval, so they do not all fire at once.
        let offset = interval.mul_f64(sender as f64 / options.senders().max(1) as f64);
        let end = options.warmup + options.duration;
        let padding = "x".repeat(options.text_bytes.saturating_sub(40));
        for seq in 0u64.. {
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
            // "lg:<due in µs since start>:<measured>:<padding>": the receiver needs nothing else.
            let text = format!(
                r#"{{"type":"message","text":"lg:{}:{}:{padding}"}}"#,
                due.as_micros(),
                u8::from(measured)
            );
            if sink
                .send(Message::Text(Utf8Bytes::from(text)))
                .await
                .is_err()
            {
                break;
            }
        }
        std::future::pending().await
    };

    tokio::select! {
        () = reading => {}
        () = sending => {}
    }
}

/// Counts one server event; for a measured load message, records its latency from schedule.
fn on_event(text: &str, stats: &Stats, start: Option<Instant>) {
    if !text.starts_with(r#"{"type":"message""#) {
        if text.starts_with(r#"{"type":"error""#) {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    let Some(start) = start else { return };
    let Some((_, tail)) = text.split_once(r#""text":"lg:"#) else {
        return;
    };
    let mut parts = tail.splitn(3, ':');
    let (Some(due), Some("1")) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(due) = due.parse::<u64>() else { return };
    let scheduled = start + Duration::from_micros(due);
    let latency = Instant::now().saturating_duration_since(scheduled);
    stats.delivered.fetch_add(1, Ordering::Relaxed);
    stats
        .latency
        .record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("chat-loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn a_total_rate_is_shared_between_the_senders() {
        let options = parse(&["--clients", "50", "--senders", "10", "--rate", "100"]).unwrap();
        assert!((options.rate_per_sender() - 10.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_per_sender_rate_is_taken_as_it_is_and_senders_never_outnumber_clients() {
        let options = parse(&[
            "--clients",
            "5",
            "--senders",
            "10",
            "--per-sender-rate",
            "2",
        ])
        .unwrap();
        assert_eq!(options.senders(), 5);
        assert!((options.rate_per_sender() - 2.0).abs() < f64::EPSILON);
    }

    #[test]
    fn bench_scenarios_parse_and_bad_values_are_refused() {
        let idle = [
            "--url",
            "ws://127.0.0.1:9100/ws",
            "--duration",
            "25",
            "--server-pid",
            "42",
            "--clients",
            "5000",
            "--rooms",
            "1000",
            "--senders",
            "0",
            "--warmup",
            "0",
            "--connect-rate",
            "1000",
            "--threads",
            "1",
        ];
        let options = parse(&idle).unwrap();
        assert_eq!(options.duration, Duration::from_secs(25));
        assert_eq!((options.server_pid, options.threads), (Some(42), Some(1)));
        assert!(options.rate_per_sender().abs() < f64::EPSILON);
        for bad in [
            &["--rooms", "0"][..],
            &["--connect-rate", "0"],
            &["--duration", "-1"],
            &["--rate", "5", "--per-sender-rate", "1"],
            &["--frobnicate", "1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
