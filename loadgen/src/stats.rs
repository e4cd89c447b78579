//! What the client tasks count, shared by all of them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::histogram::Histogram;

/// Counters shared by every client task.
pub struct Stats {
    /// Clients that got their first `welcome`, and clients whose first attempt failed.
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    /// Raised each time `ready` or `failed` grows.
    pub settled: Notify,
    /// Connections open right now (welcomed and not ended).
    pub open: AtomicUsize,
    /// Connections opened again after one ended (`--reconnect-delay-ms`).
    pub reconnected: AtomicU64,
    /// Measured messages sent, and the deliveries they should cause (one per room member).
    pub sent: AtomicU64,
    pub expected: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    /// From each message's scheduled time: what a client waits, the sender's timer included.
    pub latency: Histogram,
    /// From when its sender wrote it: the server's share, without the sender's timer (tokio's
    /// 1 ms tick makes a message up to 1 ms late, the same for any server).
    pub latency_from_send: Histogram,
    /// Presence events (`joined`, `left`, `presence`) each client received.
    pub presence_per_client: Vec<AtomicU32>,
    /// Presence events received by everyone, by type.
    pub joined: AtomicU64,
    pub left: AtomicU64,
    pub summaries: AtomicU64,
    closes: Mutex<BTreeMap<String, u64>>,
    /// Handshakes that opened nothing, by why (`http 503`, ...), and how long each took to fail.
    refusals: Mutex<BTreeMap<String, u64>>,
    pub refusal_time: Histogram,
}

impl Stats {
    pub fn new(clients: usize) -> Self {
        Self {
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            settled: Notify::new(),
            open: AtomicUsize::new(0),
            reconnected: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Histogram::new(),
            latency_from_send: Histogram::new(),
            presence_per_client: (0..clients).map(|_| AtomicU32::new(0)).collect(),
            joined: AtomicU64::new(0),
            left: AtomicU64::new(0),
            summaries: AtomicU64::new(0),
            closes: Mutex::new(BTreeMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
            refusal_time: Histogram::new(),
        }
    }

    /// Adds one to `counter` (`ready` or `failed`) and wakes whoever waits for handshakes.
    pub fn settle(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.settled.notify_one();
    }

    /// Counts one ended connection by how it ended (`close 4008`, `eof`, ...).
    pub fn count_close(&self, what: String) {
        if let Ok(mut closes) = self.closes.lock() {
            *closes.entry(what).or_default() += 1;
        }
    }

    /// Counts one handshake that opened nothing, by why, and the time it took to fail.
    pub fn count_refusal(&self, why: String, took: std::time::Duration) {
        if let Ok(mut refusals) = self.refusals.lock() {
            *refusals.entry(why).or_default() += 1;
        }
        self.refusal_time.record_duration(took);
    }

    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn closes(&self) -> BTreeMap<String, u64> {
        self.closes.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many connections were closed with `code`.
    pub fn closed_with(&self, code: u16) -> u64 {
        self.closes()
            .get(&format!("close {code}"))
            .copied()
            .unwrap_or(0)
    }

    /// Each client's presence events so far.
    pub fn presence_counts(&self) -> Vec<u32> {
        self.presence_per_client
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// "min 9, median 9, p99 10, max 12" of per-client counts.
pub fn spread(mut counts: Vec<u32>) -> String {
    if counts.is_empty() {
        return "no clients".into();
    }
    counts.sort_unstable();
    let at = |fraction: f64| counts[((counts.len() - 1) as f64 * fraction).round() as usize];
    format!(
        "min {}, median {}, p99 {}, max {}",
        at(0.0),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_of_counts_reads_from_the_sorted_values() {
        let counts = (1..=100).rev().collect();
        assert_eq!(spread(counts), "min 1, median 51, p99 99, max 100");
        assert_eq!(spread(vec![7]), "min 7, median 7, p99 7, max 7");
    }
}
