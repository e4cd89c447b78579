//! Throttling of failed logins, per account and per client address, shared through MongoDB.
//!
//! A sliding window: every failed login is recorded against the account and against the client
//! address (`db::login_failures`) and counts for [`WINDOW`]. While an account has
//! `LOGIN_MAX_FAILURES` failures that still count, or an address four times as many, further
//! attempts are refused with 429 until the oldest of them ages out; there is no permanent lockout.
//! Every replica reads and writes the same records, so the budget is per account and address
//! across all of them and survives a restart; the TTL index removes failures that no longer count.

use std::net::IpAddr;
use std::time::Duration;

use crate::db::Db;
use crate::error::AppError;
use crate::metrics::{Login, Metrics};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Many people can share one address (NAT, offices), so an address gets more room than an account.
const ADDRESS_FACTOR: u32 = 4;

pub struct LoginThrottle {
    db: Db,
    /// Where logins are counted by result.
    metrics: Metrics,
    account_limit: u64,
    address_limit: u64,
}

/// What a failure counts against, as `login_failures.key` holds it.
fn account_key(account: &str) -> String {
    format!("account:{account}")
}

fn address_key(addr: IpAddr) -> String {
    format!("address:{addr}")
}

impl LoginThrottle {
    pub fn new(db: Db, max_failures_per_account: u32, metrics: Metrics) -> Self {
        let per_account = max_failures_per_account.max(1);
        Self {
            db,
            metrics,
            account_limit: per_account.into(),
            address_limit: per_account.saturating_mul(ADDRESS_FACTOR).into(),
        }
    }

    /// Counts a login by its result (`webchat_website_logins_total`).
    pub fn count(&self, result: Login) {
        self.metrics.login(result);
    }

    /// Refuses the attempt while the account or the address has too many recent failures.
    pub async fn check(&self, account: &str, addr: Option<IpAddr>) -> Result<(), AppError> {
        let account = account_key(account);
        let by_account = self.db.count_login_failures(&account, self.account_limit);
        let by_address = async {
            match addr {
                Some(addr) => {
                    self.db
                        .count_login_failures(&address_key(addr), self.address_limit)
                        .await
                }
                None => Ok(0),
            }
        };
        let (by_account, by_address) = tokio::try_join!(by_account, by_address)?;
        if by_account >= self.account_limit || by_address >= self.address_limit {
            return Err(AppError::TooManyAttempts);
        }
        Ok(())
    }

    /// Counts a failure against the account and the address.
    pub async fn record_failure(
        &self,
        account: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), AppError> {
        let keys: Vec<String> = std::iter::once(account_key(account))
            .chain(addr.map(address_key))
            .collect();
        self.db.insert_login_failures(&keys, WINDOW).await?;
        Ok(())
    }

    /// A successful login forgives the account's failures (not the address's).
    pub async fn record_success(&self, account: &str) -> Result<(), AppError> {
        self.db.delete_login_failures(&account_key(account)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn keys_name_what_a_failure_counts_against() {
        assert_eq!(account_key("a@x.io"), "account:a@x.io");
        assert_eq!(
            address_key(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
            "address:203.0.113.7"
        );
        assert_eq!(address_key(IpAddr::V6(Ipv6Addr::LOCALHOST)), "address:::1");
    }
}
