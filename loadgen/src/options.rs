//! The command line: what to run against which server, with the scenarios' defaults.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

pub use crate::ranges::{DelayRange, SourceAddrs};

/// Load generator for the chat service. The tickets are signed with `JWT_SECRET`, which must be
/// the server's (32 bytes or more).
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-loadgen", version)]
pub struct Options {
    /// Server socket: a plain `ws://` URL.
    #[arg(long, default_value = "ws://127.0.0.1:9000/ws", value_parser = plain_websocket)]
    pub url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Rooms the clients are spread over, round robin.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub rooms: usize,
    /// How many of the clients talk (0 = an idle run).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0, conflicts_with = "per_sender_rate")]
    pub rate: f64,
    /// Messages per second per sender (instead of --rate).
    #[arg(long, value_name = "RATE")]
    pub per_sender_rate: Option<f64>,
    /// Measured sending time, in seconds.
    #[arg(long, value_name = "SECS", default_value = "20", value_parser = seconds)]
    pub duration: Duration,
    /// Sending time before measuring starts, in seconds.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = seconds)]
    pub warmup: Duration,
    /// Length of each message text, in bytes.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    pub connect_parallel: usize,
    /// New connections per second. Every join is announced to the room, so it sets how hard the
    /// clients' arrival hits the server.
    #[arg(long, default_value_t = 500.0, value_parser = positive_rate)]
    pub connect_rate: f64,
    /// Report the server's RSS and CPU from /proc/PID.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Runtime worker threads (default: one per core).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Reconnect after a connection ends or an attempt fails, after a random delay in this range
    /// of milliseconds (e.g. 500-1000, as the chat page does after a restart).
    #[arg(long, value_name = "MIN-MAX")]
    pub reconnect_delay_ms: Option<DelayRange>,
    /// Local addresses to connect from, spread over the clients round robin: `FIRST-LAST` (an IPv4
    /// range, e.g. 127.0.0.2-127.0.0.9) or a comma-separated list. One source address reaches one
    /// server address about 28 000 times at most (the kernel's ephemeral ports).
    #[arg(long, value_name = "ADDRS")]
    pub source_addrs: Option<SourceAddrs>,
    /// Handshakes shaped like Chromium's from the chat page: the ticket as a subprotocol, an
    /// `Origin`, the session cookie, a browser's `User-Agent` and the like (about 1.2 KB of
    /// headers instead of 0.4). What a proxy keeps per socket depends on it.
    #[arg(long)]
    pub as_browser: bool,
}

fn plain_websocket(value: &str) -> Result<String, String> {
    if value.starts_with("ws://") {
        Ok(value.to_owned())
    } else {
        Err("must start with ws://: the load clients speak plain WebSocket, without TLS".into())
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
    pub fn senders(&self) -> usize {
        self.senders.min(self.clients)
    }

    /// Messages per second of one sender: `--per-sender-rate`, or `--rate` shared by all.
    pub fn rate_per_sender(&self) -> f64 {
        match self.per_sender_rate {
            Some(rate) => rate,
            None if self.senders() > 0 => self.rate / self.senders() as f64,
            None => 0.0,
        }
    }

    pub fn room_of(&self, client: usize) -> usize {
        client % self.rooms
    }

    /// The local address `client` connects from, if `--source-addrs` names any.
    pub fn source_of(&self, client: usize) -> Option<IpAddr> {
        let addrs = &self.source_addrs.as_ref()?.0;
        Some(addrs[client % addrs.len()])
    }
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
            &["--url", "wss://chat.example.org/ws"],
            &["--url", "http://127.0.0.1:9000/ws"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn source_addresses_are_a_range_or_a_list_spread_round_robin() {
        let options = parse(&["--clients", "4", "--source-addrs", "127.0.0.2-127.0.0.4"]).unwrap();
        let sources: Vec<_> = (0..4)
            .map(|c| options.source_of(c).unwrap().to_string())
            .collect();
        assert_eq!(
            sources,
            ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"]
        );
        let list = parse(&["--source-addrs", "127.0.0.2,::1"]).unwrap();
        assert_eq!(list.source_of(1).unwrap().to_string(), "::1");
        assert_eq!(parse(&[]).unwrap().source_of(0), None);
        for bad in [
            "127.0.0.9-127.0.0.2",
            "10.0.0.0-10.2.0.0",
            "nowhere",
            "::1-::2",
        ] {
            assert!(parse(&["--source-addrs", bad]).is_err(), "{bad}");
        }
    }
}
