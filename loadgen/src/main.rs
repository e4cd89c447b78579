//! `chat-loadgen`: opens many WebSocket clients against a running chat server, has some of them
//! talk at a fixed rate, and reports deliveries per second, loss and end-to-end latency.
//!
//! Latency is measured from the moment a message was *scheduled* to be sent (the schedule is
//! written into the message text), not from when it was actually sent: a sender that falls behind
//! then shows up as latency instead of hiding it. Run `chat-loadgen --help` for the options and
//! chat/README.md for the scenarios.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::Claims;
use contract::Secret;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const USAGE: &str = "\
chat-loadgen: load generator for the chat service

usage: JWT_SECRET=... chat-loadgen [options]

  --url URL              server socket (default ws://127.0.0.1:9000/ws)
  --clients N            connections to open (default 100)
  --rooms R              rooms they are spread over, round robin (default 1)
  --senders S            how many of the clients talk (default 10; 0 = idle run)
  --rate M               messages per second, all senders together (default 100)
  --per-sender-rate M    messages per second per sender (instead of --rate)
  --duration SECS        measured sending time (default 20)
  --warmup SECS          sending time before measuring starts (default 2)
  --text-bytes B         length of each message text (default 64)
  --connect-parallel P   handshakes in flight at once (default 200)
  --connect-rate C       new connections per second (default 500): every join is announced to
                         the whole room, so joining N clients at once costs N*N/2 events
  --server-pid PID       report the server's RSS and CPU from /proc/PID
  --threads T            runtime worker threads (default: one per core)
";

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we target).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone)]
struct Options {
    url: String,
    clients: usize,
    rooms: usize,
    senders: usize,
    rate_per_sender: f64,
    duration: Duration,
    warmup: Duration,
    text_bytes: usize,
    connect_parallel: usize,
    connect_rate: f64,
    server_pid: Option<u32>,
    threads: Option<usize>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            url: "ws://127.0.0.1:9000/ws".into(),
            clients: 100,
            rooms: 1,
            senders: 10,
            rate_per_sender: 0.0,
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(2),
            text_bytes: 64,
            connect_parallel: 200,
            connect_rate: 500.0,
            server_pid: None,
            threads: None,
        };
        let mut total_rate: Option<f64> = Some(100.0);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
            let count = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
            match flag.as_str() {
                "--url" => options.url = value,
                "--clients" => options.clients = count(&value)?,
                "--rooms" => options.rooms = count(&value)?.max(1),
                "--senders" => options.senders = count(&value)?,
                "--rate" => total_rate = Some(number(&value)?),
                "--per-sender-rate" => {
                    total_rate = None;
                    options.rate_per_sender = number(&value)?;
                }
                "--duration" => options.duration = Duration::from_secs_f64(number(&value)?),
                "--warmup" => options.warmup = Duration::from_secs_f64(number(&value)?),
                "--text-bytes" => options.text_bytes = count(&value)?,
                "--connect-parallel" => options.connect_parallel = count(&value)?.max(1),
                "--connect-rate" => options.connect_rate = number(&value)?.max(1.0),
                "--threads" => options.threads = Some(count(&value)?.max(1)),
                "--server-pid" => {
                    options.server_pid =
                        Some(value.parse().map_err(|e| format!("{flag} {value}: {e}"))?);
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        options.senders = options.senders.min(options.clients);
        if let Some(total) = total_rate
            && options.senders > 0
        {
            options.rate_per_sender = total / options.senders as f64;
        }
        Ok(options)
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

/// A log-linear latency histogram in microseconds: 128 buckets per power of two (under 1 %
/// error), lock-free so every reader task records into the same one.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..(64 * SUB_BUCKETS)).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(micros: u64) -> usize {
        if micros < SUB_BUCKETS {
            return micros as usize;
        }
        let exponent = 63 - u64::from(micros.leading_zeros());
        let shift = exponent - u64::from(SUB_BUCKET_BITS);
        let sub = (micros >> shift) - SUB_BUCKETS;
        ((shift + 1) * SUB_BUCKETS + sub) as usize
    }

    /// The lowest value that falls in bucket `index`.
    fn value_at(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let shift = index / SUB_BUCKETS - 1;
        (SUB_BUCKETS + index % SUB_BUCKETS) << shift
    }

    fn record(&self, micros: u64) {
        if let Some(bucket) = self.buckets.get(Self::index(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    fn percentile(&self, fraction: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let wanted = ((total as f64) * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Self::value_at(index);
            }
        }
        self.max.load(Ordering::Relaxed)
    }
}

/// One process's CPU time and resident memory, from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_ticks: u64,
    rss_kib: u64,
}

fn sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_kib,
    })
}

fn cpu_percent(before: ProcSample, after: ProcSample, elapsed: Duration) -> f64 {
    let seconds = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SECOND;
    100.0 * seconds / elapsed.as_secs_f64()
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("chat-loadgen: {error}\n");
            }
            eprint!("{USAGE}");
            return if error.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    let secret = match std::env::var("JWT_SECRET").map(Secret::new) {
        Ok(Ok(secret)) => secret,
        _ => {
            eprintln!("chat-loadgen: set JWT_SECRET to the server's secret (32 bytes or more)");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
        let sender = (client < options.senders).then_some(client);
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
        options.senders, options.rate_per_sender, seconds
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
        ms(stats.latency.max.load(Ordering::Relaxed)),
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
        if options.rate_per_sender <= 0.0 || start_signal.wait_for(Option::is_some).await.is_err() {
            return std::future::pending().await;
        }
        let Some(run_start) = *start_signal.borrow() else {
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / options.rate_per_sender);
        // Spreads the senders' first messages over one interval, so they do not all fire at once.
        let offset = interval.mul_f64(sender as f64 / options.senders.max(1) as f64);
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

    #[test]
    fn histogram_buckets_are_within_one_percent() {
        for value in [
            0, 1, 127, 128, 129, 1000, 4321, 65_432, 1_234_567, 98_765_432,
        ] {
            let low = Histogram::value_at(Histogram::index(value));
            assert!(low <= value, "{value} -> {low}");
            assert!(
                (value - low) as f64 <= value as f64 / 100.0,
                "{value} -> {low}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let histogram = Histogram::new();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        assert!((495..=500).contains(&histogram.percentile(0.5)));
        assert!((980..=990).contains(&histogram.percentile(0.99)));
        assert_eq!(histogram.max.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn a_total_rate_is_shared_between_the_senders() {
        let args = ["--clients", "50", "--senders", "10", "--rate", "100"];
        let options = Options::parse(args.iter().map(|s| (*s).to_owned())).unwrap();
        assert!((options.rate_per_sender - 10.0).abs() < f64::EPSILON);
    }
}
