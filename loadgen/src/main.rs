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
mod events;
mod histogram;
mod options;
mod proc_stat;
mod ranges;
mod socket;
mod stats;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use contract::Secret;
use tokio::time::Instant;

use crate::client::Fleet;
use crate::options::Options;
use crate::proc_stat::{ProcSample, cpu_percent, sample};
use crate::stats::{Stats, spread};

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
    runtime.block_on(run(options, secret));
    ExitCode::SUCCESS
}

async fn run(options: Options, secret: Secret) {
    let mut report = Report;
    let server = Server(options.server_pid.map(|pid| pid.to_string()));
    let server_idle = server.rss(&mut report, "before connecting");
    let (start, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let fleet = Arc::new(Fleet::new(options, &secret, start_rx));

    let mut connected = connect_everyone(&fleet, &mut report).await;
    let server_connected = server.rss(&mut report, "with everyone connected");
    if let (Some(before), Some(after)) = (server_idle, server_connected)
        && connected.ready > 0
    {
        let per = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / connected.ready as f64;
        report.line(format_args!("server RSS per connection: {per:.1} KiB"));
    }
    let measured = measure(&fleet, &server, &start, connected.ready).await;
    drain(&fleet.stats).await;
    let server_end = server.rss(&mut report, "at the end");
    let still_open = fleet.stats.open.load(Ordering::Relaxed);
    stop(std::mem::take(&mut connected.tasks)).await;

    write_results(&mut report, &fleet, &connected, &measured, still_open);
    if let (Some(idle), Some(end)) = (server_idle, server_end) {
        report.line(format_args!(
            "server RSS grew {} KiB over the run",
            end.rss_kib.saturating_sub(idle.rss_kib)
        ));
    }
}

/// The report, printed one line at a time as each phase gets there (a script running several
/// load generators waits for their `connected` lines).
struct Report;

impl Report {
    fn line(&mut self, line: impl std::fmt::Display) {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// The server process watched through /proc (`--server-pid`), if any.
struct Server(Option<String>);

impl Server {
    fn sample(&self) -> Option<ProcSample> {
        self.0.as_deref().and_then(sample)
    }

    /// Samples the server and reports its RSS at `label`.
    fn rss(&self, report: &mut Report, label: &str) -> Option<ProcSample> {
        let sample = self.sample();
        if let Some(s) = sample {
            report.line(format_args!("server RSS {label}: {} KiB", s.rss_kib));
        }
        sample
    }
}

/// What connecting left: the client tasks, how many got their welcome, the presence events each
/// had received by then.
struct Connected {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ready: usize,
    presence: Vec<u32>,
}

/// Phase 1: connects every client at `--connect-rate` and waits for every welcome.
async fn connect_everyone(fleet: &Arc<Fleet>, report: &mut Report) -> Connected {
    let options = &fleet.options;
    let stats = &fleet.stats;
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
            report.line("gave up waiting for handshakes");
            break;
        }
    }
    let ready = stats.ready.load(Ordering::Relaxed);
    let connect_time = connecting.elapsed().as_secs_f64();
    let refusals = stats.refusals();
    if !refusals.is_empty() {
        report.line(format_args!(
            "handshakes that opened nothing: {refusals:?}; time to fail: p50 {:.2} ms, p99 {:.2} \
             ms, max {:.2} ms",
            ms(stats.refusal_time.percentile(0.5)),
            ms(stats.refusal_time.percentile(0.99)),
            ms(stats.refusal_time.max())
        ));
    }
    report.line(format_args!(
        "connected {ready} of {} clients in {connect_time:.2} s ({:.0} joins/s; {} failed), \
         {} rooms",
        options.clients,
        ready as f64 / connect_time,
        stats.failed.load(Ordering::Relaxed),
        options.rooms
    ));
    // Let the presence events of the last joiners (and any summary) settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let presence = stats.presence_counts();
    report.line(format_args!(
        "presence events per client while connecting: {} ({})",
        spread(presence.clone()),
        presence_by_type(stats)
    ));
    Connected {
        tasks,
        ready,
        presence,
    }
}

/// What the measured time showed besides the shared counters.
struct Measured {
    duration: Duration,
    open: OpenWatch,
    server: (Option<ProcSample>, Option<ProcSample>),
    loadgen: (Option<ProcSample>, Option<ProcSample>),
}

/// Phase 2: starts the senders, warms up, then measures for `--duration`, watching how many
/// connections are open.
async fn measure(
    fleet: &Fleet,
    server: &Server,
    start: &tokio::sync::watch::Sender<Option<Instant>>,
    ready: usize,
) -> Measured {
    let _ = start.send(Some(Instant::now()));
    tokio::time::sleep(fleet.options.warmup).await;
    let measure_from = Instant::now();
    let server_before = server.sample();
    let loadgen_before = sample("self");
    let mut open = OpenWatch::new(ready);
    while measure_from.elapsed() < fleet.options.duration {
        tokio::time::sleep(Duration::from_millis(10)).await;
        open.observe(fleet.stats.open.load(Ordering::Relaxed), Instant::now());
    }
    Measured {
        duration: measure_from.elapsed(),
        open,
        server: (server_before, server.sample()),
        loadgen: (loadgen_before, sample("self")),
    }
}

/// Phase 3: lets messages in flight arrive (senders stop on their own schedule), for at most 5 s.
async fn drain(stats: &Stats) {
    let draining = Instant::now();
    while draining.elapsed() < Duration::from_secs(5)
        && stats.delivered.load(Ordering::Relaxed) < stats.expected.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends every client. Aborted rather than told to stop: a shared stop signal polled by every
/// reader on every frame would put a contended lock on the hot path being measured.
async fn stop(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Phase 4: what was sent, delivered and lost, the latency, how connections fared, the CPU.
fn write_results(
    report: &mut Report,
    fleet: &Fleet,
    connected: &Connected,
    measured: &Measured,
    still_open: usize,
) {
    let (options, stats) = (&fleet.options, &fleet.stats);
    let sent = stats.sent.load(Ordering::Relaxed);
    let expected = stats.expected.load(Ordering::Relaxed);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let seconds = measured.duration.as_secs_f64();
    report.line(format_args!(
        "senders {} at {:.2} msg/s each; measured {:.1} s",
        options.senders(),
        options.rate_per_sender(),
        seconds
    ));
    let lost = expected.saturating_sub(delivered);
    let lost_percent = if expected > 0 {
        100.0 * lost as f64 / expected as f64
    } else {
        0.0
    };
    report.line(format_args!(
        "messages sent {sent} ({:.0}/s); deliveries offered {expected} ({:.0}/s), \
         delivered {delivered} ({:.0}/s), lost {lost} ({lost_percent:.3} %)",
        sent as f64 / seconds,
        expected as f64 / seconds,
        delivered as f64 / seconds,
    ));
    for (from, latency) in [
        ("schedule", &stats.latency),
        ("send", &stats.latency_from_send),
    ] {
        report.line(format_args!(
            "latency from {from}: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(latency.percentile(0.50)),
            ms(latency.percentile(0.99)),
            ms(latency.percentile(0.999)),
            ms(latency.max()),
        ));
    }
    report.line(format_args!(
        "error events received: {}",
        stats.errors.load(Ordering::Relaxed)
    ));
    let closes = stats.closes();
    if !closes.is_empty() {
        report.line(format_args!("connections ended during the run: {closes:?}"));
    }
    report.line(format_args!(
        "still connected at the end: {still_open} of {}; closed with 4008 (too slow): {}",
        connected.ready,
        stats.closed_with(4008)
    ));
    if let Some(line) = measured
        .open
        .describe(stats.reconnected.load(Ordering::Relaxed))
    {
        report.line(line);
    }
    let presence_run: Vec<u32> = stats
        .presence_counts()
        .iter()
        .zip(&connected.presence)
        .map(|(end, connected)| end.saturating_sub(*connected))
        .collect();
    report.line(format_args!(
        "presence events per client after connecting: {}",
        spread(presence_run)
    ));
    for (whose, (before, after)) in [("loadgen", measured.loadgen), ("server", measured.server)] {
        if let (Some(before), Some(after)) = (before, after) {
            let [all, user, system] = cpu_percent(before, after, measured.duration);
            report.line(format_args!(
                "{whose} CPU while measuring: {all:.0} % of one core \
                 (user {user:.1} %, system {system:.1} %)"
            ));
        }
    }
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

/// Microseconds as milliseconds, for the report.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "connections open: 0 at the lowest; all 10 back 1.25 s after the first drop; \
             10 reconnections"
        );
    }
}
