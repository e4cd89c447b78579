//! The ranges both load generators take on their command line: delays (`MIN-MAX` milliseconds)
//! and source addresses (`FIRST-LAST` or a list). chat-loadgen declares this module; ticket-storm
//! includes the same file.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A range of delays to pick from at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl DelayRange {
    pub fn pick(self) -> Duration {
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

/// `--source-addrs`: at least one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddrs(pub Vec<IpAddr>);

impl std::str::FromStr for SourceAddrs {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let ip = |v: &str| {
            v.trim()
                .parse::<IpAddr>()
                .map_err(|e| format!("{v:?}: {e}"))
        };
        let addrs = match value.split_once('-') {
            Some((first, last)) => {
                let (IpAddr::V4(first), IpAddr::V4(last)) = (ip(first)?, ip(last)?) else {
                    return Err("a range is of IPv4 addresses; list IPv6 ones with commas".into());
                };
                let (first, last) = (u32::from(first), u32::from(last));
                if first > last || last - first >= 65_536 {
                    return Err(format!(
                        "{value:?} is not a range of at most 65 536 addresses"
                    ));
                }
                (first..=last)
                    .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
                    .collect()
            }
            None => value.split(',').map(ip).collect::<Result<Vec<_>, _>>()?,
        };
        if addrs.is_empty() {
            return Err("no address".into());
        }
        Ok(Self(addrs))
    }
}
