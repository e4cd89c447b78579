//! Throttling of failed logins, per account and per client address.
//!
//! A sliding window: each key keeps the times of its recent failures (at most `limit` of them);
//! when `limit` failures fall within `WINDOW`, further attempts are refused with 429 until the
//! oldest one ages out. There is no permanent lockout, and the map is bounded: when it is full,
//! expired keys are purged and, if that is not enough, the least recently failed keys go.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AppError;

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Many people can share one address (NAT, offices), so an address gets more room than an account.
const ADDRESS_FACTOR: u32 = 4;
const MAX_KEYS: usize = 100_000;

pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
    account_limit: usize,
    address_limit: usize,
    window: Duration,
    max_keys: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

impl LoginThrottle {
    pub fn new(max_failures_per_account: u32) -> Self {
        Self::with_limits(max_failures_per_account, WINDOW, MAX_KEYS)
    }

    fn with_limits(per_account: u32, window: Duration, max_keys: usize) -> Self {
        let per_account = per_account.max(1);
        Self {
            failures: Mutex::new(HashMap::new()),
            account_limit: per_account as usize,
            address_limit: per_account.saturating_mul(ADDRESS_FACTOR) as usize,
            window,
            max_keys,
        }
    }

    fn keys(account: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Account(account.to_owned())).chain(addr.map(Key::Address))
    }

    fn limit(&self, key: &Key) -> usize {
        match key {
            Key::Account(_) => self.account_limit,
            Key::Address(_) => self.address_limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        // A panic while holding this lock cannot leave the map inconsistent (each update is
        // a single push or remove), so a poisoned lock is still usable.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses the attempt while the account or the address has too many recent failures.
    pub fn check(&self, account: &str, addr: Option<IpAddr>) -> Result<(), AppError> {
        self.check_at(account, addr, Instant::now())
    }

    fn check_at(&self, account: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), AppError> {
        let map = self.lock();
        for key in Self::keys(account, addr) {
            let recent = map.get(&key).map_or(0, |times| {
                times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .count()
            });
            if recent >= self.limit(&key) {
                return Err(AppError::TooManyAttempts);
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, account: &str, addr: Option<IpAddr>) {
        self.record_failure_at(account, addr, Instant::now());
    }

    fn record_failure_at(&self, account: &str, addr: Option<IpAddr>, now: Instant) {
        let mut map = self.lock();
        if map.len() + 2 > self.max_keys {
            self.make_room(&mut map, now);
        }
        for key in Self::keys(account, addr) {
            let limit = self.limit(&key);
            let times = map.entry(key).or_default();
            times.push_back(now);
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// A successful login forgives the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        self.lock().remove(&Key::Account(account.to_owned()));
    }

    fn make_room(&self, map: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
        map.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < self.window)
        });
        let excess = (map.len() + 2).saturating_sub(self.max_keys);
        if excess > 0 {
            let mut by_age: Vec<(Instant, Key)> = map
                .iter()
                .filter_map(|(k, times)| times.back().map(|t| (*t, k.clone())))
                .collect();
            by_age.sort_by_key(|(t, _)| *t);
            for (_, key) in by_age.into_iter().take(excess) {
                map.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ADDR: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn an_account_is_throttled_after_the_limit_and_released_as_failures_age() {
        let throttle = LoginThrottle::with_limits(3, 15 * MIN, 100);
        let start = Instant::now();
        for i in 0..3 {
            assert!(
                throttle.check_at("a@x.io", ADDR, start).is_ok(),
                "attempt {i}"
            );
            throttle.record_failure_at("a@x.io", ADDR, start + i * MIN);
        }
        assert!(throttle.check_at("a@x.io", None, start + 3 * MIN).is_err());
        assert!(
            throttle.check_at("b@x.io", None, start + 3 * MIN).is_ok(),
            "other accounts unaffected"
        );
        // The first failure leaves the window after 15 minutes: one more attempt is allowed.
        assert!(throttle.check_at("a@x.io", None, start + 15 * MIN).is_ok());
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let throttle = LoginThrottle::with_limits(2, 15 * MIN, 100);
        let now = Instant::now();
        for i in 0..8 {
            throttle.record_failure_at(&format!("user{i}@x.io"), ADDR, now);
        }
        assert!(matches!(
            throttle.check_at("new@x.io", ADDR, now),
            Err(AppError::TooManyAttempts)
        ));
        assert!(throttle.check_at("new@x.io", None, now).is_ok());
    }

    #[test]
    fn success_forgives_the_account() {
        let throttle = LoginThrottle::with_limits(1, 15 * MIN, 100);
        let now = Instant::now();
        throttle.record_failure_at("a@x.io", None, now);
        assert!(throttle.check_at("a@x.io", None, now).is_err());
        throttle.record_success("a@x.io");
        assert!(throttle.check_at("a@x.io", None, now).is_ok());
    }

    #[test]
    fn the_map_stays_bounded() {
        let throttle = LoginThrottle::with_limits(5, 15 * MIN, 10);
        let now = Instant::now();
        for i in 0..100 {
            throttle.record_failure_at(
                &format!("user{i}@x.io"),
                None,
                now + Duration::from_millis(i),
            );
        }
        assert!(throttle.len() <= 10, "{} keys", throttle.len());
    }
}
