//! `chat-loadgen`: opens many WebSocket clients against a running chat server, has some of them
//! talk at a fixed rate, and reports deliveries per second, loss and end-to-end latency; also the
//! presence events each client received, and — with `--reconnect-delay-ms` — how long clients
//! took to come back after their connections ended (a restart of the server).
//!
//! Latency is measured from the moment a message was *scheduled* to be sent (the schedule is
//! written into the message text), not from when it was actually sent: a sender that falls behind
//! then shows up as latency instead of hiding it. Run `chat-loadgen --help` for the options and
//! chat/README.md for the scenarios.

mod client;
mod histogram;
mod proc_stat;
mod stats;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use contract::{Secret, TicketIssuer};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::Fleet;
use crate::proc_stat::{cpu_percent, sample};
use crate::stats::{Stats, spread};

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
    /// Reconnect after a connection ends or an attempt fails, after a random delay in this range
    /// of milliseconds (e.g. 500-1000, as the chat page does after a restart).
    #[arg(long, value_name = "MIN-MAX")]
    reconnect_delay_ms: Option<DelayRange>,
}

/// A range of delays to pick from at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DelayRange {
    min_ms: u64,
    max_ms: u64,
}

impl DelayRange {
    fn pick(self) -> Duration {
        Duration::from_millis(rand::random_range(self.min_ms..=self.max_ms))
    }
}

impl std::str::FromStr for DelayRange {
    type Err = String;

    /// `MIN-MAX` or a single number of milliseconds.
    fn from_str(value: &str) -> Result<Self, String> {
        let (min, max) = value.split_once('-').unwrap_or((value, value));
        let ms = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
        let (min_ms, max_ms) = (ms(min)?, ms(max)?);
        if min_ms > max_ms {
            return Err(format!("{min_ms} is more than {max_ms}"));
        }
        Ok(Self { min_ms, max_ms })
    }
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

    let stats = Arc::new(Stats::new(options.clients));
    let mut room_sizes = vec![0u64; options.rooms];
    for client in 0..options.clients {
        room_sizes[options.room_of(client)] += 1;
    }
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let fleet = Arc::new(Fleet {
        handshakes: Semaphore::new(options.connect_parallel),
        options: options.clone(),
        tickets: TicketIssuer::new(&secret),
        stats: stats.clone(),
        start: start_rx,
        room_sizes,
    });

    // Phase 1: connect everyone and wait for every welcome.
    let connecting = Instant::now();
    let tasks: Vec<_> = (0..options.clients)
        .map(|client| {
            let connect_at =
                connecting + Duration::from_secs_f64(client as f64 / options.connect_rate);
            tokio::spawn(client::run(fleet.clone(), client, connect_at))
        })
        .collect();
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
    let connect_time = connecting.elapsed().as_secs_f64();
    let _ = writeln!(
        report,
        "connected {ready} of {} clients in {connect_time:.2} s ({:.0} joins/s; {} failed), {} rooms",
        options.clients,
        ready as f64 / connect_time,
        stats.failed.load(Ordering::Relaxed),
        options.rooms
    );
    // Let the presence events of the last joiners (and any summary) settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let presence_connecting = stats.presence_counts();
    let _ = writeln!(
        report,
        "presence events per client while connecting: {} ({})",
        spread(presence_connecting.clone()),
        presence_by_type(&stats)
    );
    let server_connected = server_at("with everyone connected", &mut report);
    if let (Some(before), Some(after)) = (server_idle, server_connected)
        && ready > 0
    {
        let per = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / ready as f64;
        let _ = writeln!(report, "server RSS per connection: {per:.1} KiB");
    }

    // Phase 2: warm up, then measure for `duration`, watching how many connections are open.
    let start = Instant::now();
    let _ = start_tx.send(Some(start));
    tokio::time::sleep(options.warmup).await;
    let measure_from = Instant::now();
    let server_before = server_pid.as_deref().and_then(sample);
    let loadgen_before = sample("self");
    let mut open = OpenWatch::new(ready);
    while measure_from.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_millis(10)).await;
        open.observe(stats.open.load(Ordering::Relaxed), Instant::now());
    }
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
    let still_open = stats.open.load(Ordering::Relaxed);
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
    let closes = stats.closes();
    if !closes.is_empty() {
        let _ = writeln!(report, "connections ended during the run: {closes:?}");
    }
    let _ = writeln!(
        report,
        "still connected at the end: {still_open} of {ready}; closed with 4008 (too slow): {}",
        stats.closed_with(4008)
    );
    if let Some(line) = open.describe(stats.reconnected.load(Ordering::Relaxed)) {
        let _ = writeln!(report, "{line}");
    }
    let presence_run: Vec<u32> = stats
        .presence_counts()
        .iter()
        .zip(&presence_connecting)
        .map(|(end, connected)| end.saturating_sub(*connected))
        .collect();
    let _ = writeln!(
        report,
        "presence events per client after connecting: {}",
        spread(presence_run)
    );
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

/// "joined 8000, left 0, presence 1000 in all".
fn presence_by_type(stats: &Stats) -> String {
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    format!(
        "joined {}, left {}, presence {} in all",
        load(&stats.joined),
        load(&stats.left),
        load(&stats.summaries)
    )
}

/// How many connections were open over the measured time: when the first one dropped, how low
/// the count went, and when all of them were back.
struct OpenWatch {
    expected: usize,
    first_drop: Option<Instant>,
    lowest: usize,
    all_back: Option<Instant>,
}

impl OpenWatch {
    fn new(expected: usize) -> Self {
        Self {
            expected,
            first_drop: None,
            lowest: expected,
            all_back: None,
        }
    }

    fn observe(&mut self, open: usize, now: Instant) {
        self.lowest = self.lowest.min(open);
        if open < self.expected {
            self.first_drop.get_or_insert(now);
            self.all_back = None;
        } else if self.first_drop.is_some() && self.all_back.is_none() {
            self.all_back = Some(now);
        }
    }

    /// A line for the report, when any connection dropped.
    fn describe(&self, reconnected: u64) -> Option<String> {
        let dropped = self.first_drop?;
        let back = match self.all_back {
            Some(back) => format!(
                "all {} back {:.2} s after the first drop",
                self.expected,
                back.duration_since(dropped).as_secs_f64()
            ),
            None => format!("not all {} back by the end", self.expected),
        };
        Some(format!(
            "connections open: {} at the lowest; {back}; {reconnected} reconnections",
            self.lowest
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("chat-loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn the_open_watch_sees_a_drop_and_the_return() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut watch = OpenWatch::new(10);
        watch.observe(10, at(0));
        assert_eq!(watch.describe(0), None);
        watch.observe(4, at(100));
        watch.observe(0, at(200));
        watch.observe(9, at(900));
        assert_eq!(
            watch.describe(3).unwrap(),
            "connections open: 0 at the lowest; not all 10 back by the end; 3 reconnections"
        );
        watch.observe(10, at(1350));
        assert_eq!(
            watch.describe(10).unwrap(),
            "connections open: 0 at the lowest; all 10 back 1.25 s after the first drop; 10 reconnections"
        );
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
        assert_eq!(options.reconnect_delay_ms, None);
        let restart = parse(&["--reconnect-delay-ms", "500-1000"]).unwrap();
        let range = restart.reconnect_delay_ms.unwrap();
        assert_eq!((range.min_ms, range.max_ms), (500, 1000));
        for _ in 0..100 {
            let delay = range.pick();
            assert!((500..=1000).contains(&delay.as_millis()), "{delay:?}");
        }
        for bad in [
            &["--rooms", "0"][..],
            &["--connect-rate", "0"],
            &["--duration", "-1"],
            &["--rate", "5", "--per-sender-rate", "1"],
            &["--frobnicate", "1"],
            &["--reconnect-delay-ms", "1000-500"],
            &["--reconnect-delay-ms", "soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
