//! Throttling of failed logins, shared through MongoDB, that slows an attacker without locking
//! the owner out.
//!
//! A failure counts for [`WINDOW`] against the account as tried by this client (its device
//! cookie for the account, else its address) and against the client's address. A stranger is
//! refused (429) after `LOGIN_MAX_FAILURES` from its address on the account, four times as many on
//! the account from everywhere, or on its address over all accounts; a known device of the account
//! (`auth::device`) only after that many of its own. Why: website/README.md.

use std::net::IpAddr;
use std::time::Duration;

use super::device::{DeviceCookies, KnownDevice};
use crate::db::Db;
use crate::error::AppError;
use crate::metrics::{Login, Metrics};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How much more room the whole account, and one address over all accounts, get than one client
/// on one account.
const WIDE_FACTOR: u32 = 4;

pub struct LoginThrottle {
    db: Db,
    devices: DeviceCookies,
    metrics: Metrics,
    client_limit: u64,
    wide_limit: u64,
}

/// Who is trying: the client's address and, if it has logged in to the account before, its device.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: Option<IpAddr>,
    pub device: Option<KnownDevice>,
}

fn account_prefix(account: &str) -> String {
    format!("account:{account} ")
}

fn client_key(account: &str, client: &Client) -> String {
    match (&client.device, client.addr) {
        (Some(device), _) => format!("{}device:{}", account_prefix(account), device.id),
        (None, Some(addr)) => format!("{}address:{addr}", account_prefix(account)),
        (None, None) => format!("{}address:unknown", account_prefix(account)),
    }
}

fn address_key(addr: IpAddr) -> String {
    format!("address:{addr}")
}

impl LoginThrottle {
    pub fn new(db: Db, max_failures: u32, devices: DeviceCookies, metrics: Metrics) -> Self {
        let max_failures = max_failures.max(1);
        Self {
            db,
            devices,
            metrics,
            client_limit: max_failures.into(),
            wide_limit: max_failures.saturating_mul(WIDE_FACTOR).into(),
        }
    }

    pub fn devices(&self) -> &DeviceCookies {
        &self.devices
    }

    pub fn count(&self, result: Login) {
        self.metrics.login(result);
    }

    /// Refuses the attempt while this client has too many recent failures on the account, or, for
    /// a client the account does not know, while the account or the address has.
    pub async fn check(&self, account: &str, client: &Client) -> Result<(), AppError> {
        let own_key = client_key(account, client);
        let own = self.db.count_login_failures(&own_key, self.client_limit);
        if client.device.is_some() {
            return if own.await? >= self.client_limit {
                Err(AppError::TooManyAttempts)
            } else {
                Ok(())
            };
        }
        let prefix = account_prefix(account);
        let account_wide = self
            .db
            .count_login_failures_starting_with(&prefix, self.wide_limit);
        let by_address = async {
            match client.addr {
                Some(addr) => {
                    self.db
                        .count_login_failures(&address_key(addr), self.wide_limit)
                        .await
                }
                None => Ok(0),
            }
        };
        let (own, account_wide, by_address) = tokio::try_join!(own, account_wide, by_address)?;
        if own >= self.client_limit
            || account_wide >= self.wide_limit
            || by_address >= self.wide_limit
        {
            return Err(AppError::TooManyAttempts);
        }
        Ok(())
    }

    pub async fn record_failure(&self, account: &str, client: &Client) -> Result<(), AppError> {
        let keys: Vec<String> = std::iter::once(client_key(account, client))
            .chain(client.addr.map(address_key))
            .collect();
        self.db.insert_login_failures(&keys, WINDOW).await?;
        Ok(())
    }

    /// A successful login forgives this client's failures on the account (not the address's).
    pub async fn record_success(&self, account: &str, client: &Client) -> Result<(), AppError> {
        self.db
            .delete_login_failures(&client_key(account, client))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn keys_name_what_a_failure_counts_against() {
        let from = |addr| Client { addr, device: None };
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(
            client_key("a@x.io", &from(Some(ip))),
            "account:a@x.io address:203.0.113.7"
        );
        assert_eq!(
            client_key("a@x.io", &from(None)),
            "account:a@x.io address:unknown"
        );
        let device = Client {
            addr: Some(ip),
            device: Some(KnownDevice { id: "ab12".into() }),
        };
        assert_eq!(client_key("a@x.io", &device), "account:a@x.io device:ab12");
        assert!(client_key("a@x.io", &device).starts_with(&account_prefix("a@x.io")));
        assert!(!client_key("a@x.io.evil", &device).starts_with(&account_prefix("a@x.io")));
        assert_eq!(address_key(ip), "address:203.0.113.7");
        assert_eq!(address_key(IpAddr::V6(Ipv6Addr::LOCALHOST)), "address:::1");
    }
}
