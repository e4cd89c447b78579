//! Settings read once from the environment into a typed [`Config`](crate::config::Config).
//!
//! Every variable has a documented default except `JWT_SECRET`, which is required; errors name the
//! variable so a failed start says exactly what to fix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use contract::Env;
pub use contract::{ConfigError, Redacted, Secret};

pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8000);

/// Everything the website needs to run; tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// `MONGODB_URI`: may carry credentials, hence a secret.
    pub mongodb_uri: Redacted,
    pub mongodb_db: String,
    pub jwt_secret: Secret,
    pub cookie_secure: bool,
    pub session_idle: Duration,
    /// `SESSION_MAX_HOURS`: a session older than this is refused however active it is.
    pub session_max_age: Duration,
    /// `TRUST_PROXY_HEADERS`: take the client address from `X-Real-IP` (set by nginx).
    pub trust_proxy_headers: bool,
    pub login_max_failures: u32,
    /// `MONGODB_TIMEOUT_SECS`: connecting, and each session and login-throttle query.
    pub mongodb_timeout: Duration,
    /// `REQUEST_TIMEOUT_SECS`: the whole request, its body and session included; then 503.
    pub request_timeout: Duration,
    /// `CHAT_NOTICE_URL`: the chat's base URLs for the room-deleted notice, tried in order.
    pub chat_notice_urls: Vec<String>,
    /// `CHAT_NOTICE_TIMEOUT_MS`: the longest a deletion waits for the chat to take its notice.
    pub chat_notice_timeout: Duration,
    /// How long startup keeps trying to reach MongoDB before giving up (not an env setting).
    pub mongodb_startup_wait: Duration,
    pub metrics_addr: Option<SocketAddr>,
}

/// `WEBSITE_METRICS_ADDR` when unset: every interface, so that Prometheus reaches it inside
/// Compose's network (which nginx never forwards to it). Set it to nothing to turn metrics off.
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9100);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let mongodb_timeout = env.seconds("MONGODB_TIMEOUT_SECS", Duration::from_secs(3))?;
        let request_timeout = env.seconds("REQUEST_TIMEOUT_SECS", Duration::from_secs(8))?;
        if request_timeout <= mongodb_timeout {
            return Err(ConfigError::invalid(
                "REQUEST_TIMEOUT_SECS",
                request_timeout.as_secs().to_string(),
                format!(
                    "must be longer than MONGODB_TIMEOUT_SECS ({}), or a request that waits for an \
                     unreachable MongoDB ends as a timeout instead of saying the database is \
                     unavailable",
                    mongodb_timeout.as_secs()
                ),
            ));
        }
        Ok(Self {
            addr: env.parse_or("WEBSITE_ADDR", DEFAULT_ADDR)?,
            mongodb_uri: Redacted::new(
                env.get("MONGODB_URI")
                    .unwrap_or_else(|| "mongodb://localhost:27017".into()),
            ),
            mongodb_db: env.get("MONGODB_DB").unwrap_or_else(|| "webchat".into()),
            jwt_secret: env.jwt_secret()?,
            cookie_secure: env.flag("COOKIE_SECURE", false)?,
            session_idle: minutes(env.positive("SESSION_IDLE_MINUTES", 60)?),
            session_max_age: minutes(env.positive("SESSION_MAX_HOURS", 12_u64)? * 60),
            trust_proxy_headers: env.flag("TRUST_PROXY_HEADERS", false)?,
            login_max_failures: env.positive("LOGIN_MAX_FAILURES", 5)?,
            mongodb_timeout,
            request_timeout,
            chat_notice_urls: env
                .get("CHAT_NOTICE_URL")
                .unwrap_or_else(|| "http://127.0.0.1:9000".into())
                .split(',')
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty())
                .collect(),
            chat_notice_timeout: Duration::from_millis(
                env.positive("CHAT_NOTICE_TIMEOUT_MS", 1000_u64)?,
            ),
            mongodb_startup_wait: Duration::from_secs(30),
            metrics_addr: env.addr_or_off("WEBSITE_METRICS_ADDR", DEFAULT_METRICS_ADDR)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_apply_when_only_the_secret_is_set() {
        let config = config_from(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(config.addr.to_string(), "0.0.0.0:8000");
        assert_eq!(config.mongodb_uri.expose(), "mongodb://localhost:27017");
        assert_eq!(config.mongodb_db, "webchat");
        assert!(!config.cookie_secure);
        assert!(!config.trust_proxy_headers);
        assert_eq!(config.session_idle, Duration::from_secs(3600));
        assert_eq!(config.session_max_age, Duration::from_secs(12 * 3600));
        assert_eq!(config.login_max_failures, 5);
        assert_eq!(config.mongodb_timeout, Duration::from_secs(3));
        assert_eq!(config.request_timeout, Duration::from_secs(8));
        assert_eq!(config.chat_notice_urls, ["http://127.0.0.1:9000"]);
        assert_eq!(config.chat_notice_timeout, Duration::from_secs(1));
        assert_eq!(config.metrics_addr, Some(DEFAULT_METRICS_ADDR));
        assert_eq!(DEFAULT_METRICS_ADDR.to_string(), "0.0.0.0:9100");
    }

    #[test]
    fn metrics_are_off_when_their_address_is_set_to_nothing() {
        let config = config_from(&[("JWT_SECRET", SECRET), ("WEBSITE_METRICS_ADDR", "")]).unwrap();
        assert_eq!(config.metrics_addr, None);
        let config = config_from(&[
            ("JWT_SECRET", SECRET),
            ("WEBSITE_METRICS_ADDR", "127.0.0.1:9300"),
        ])
        .unwrap();
        assert_eq!(config.metrics_addr.map(|a| a.port()), Some(9300));
        let err =
            config_from(&[("JWT_SECRET", SECRET), ("WEBSITE_METRICS_ADDR", "x")]).unwrap_err();
        assert!(err.to_string().contains("WEBSITE_METRICS_ADDR"), "{err}");
    }

    #[test]
    fn the_chat_notice_goes_to_every_listed_replica_in_order() {
        let config = config_from(&[
            ("JWT_SECRET", SECRET),
            (
                "CHAT_NOTICE_URL",
                "http://chat-1:9000, http://chat-2:9000/,",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.chat_notice_urls,
            ["http://chat-1:9000", "http://chat-2:9000/"]
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let names = [
            "WEBSITE_ADDR",
            "MONGODB_URI",
            "MONGODB_DB",
            "COOKIE_SECURE",
            "SESSION_IDLE_MINUTES",
            "SESSION_MAX_HOURS",
            "TRUST_PROXY_HEADERS",
            "LOGIN_MAX_FAILURES",
            "MONGODB_TIMEOUT_SECS",
            "REQUEST_TIMEOUT_SECS",
            "CHAT_NOTICE_URL",
            "CHAT_NOTICE_TIMEOUT_MS",
        ];
        let mut vars = vec![("JWT_SECRET", SECRET)];
        vars.extend(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, ["", "  "][i % 2])),
        );

        let config = config_from(&vars).unwrap();

        let defaults = config_from(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
        assert_eq!(config.mongodb_uri.expose(), "mongodb://localhost:27017");
        assert!(matches!(
            config_from(&[("JWT_SECRET", "")]),
            Err(ConfigError::MissingSecret)
        ));
    }

    #[test]
    fn a_missing_or_short_secret_is_refused() {
        assert!(matches!(config_from(&[]), Err(ConfigError::MissingSecret)));
        assert!(matches!(
            config_from(&[("JWT_SECRET", "short")]),
            Err(ConfigError::ShortSecret(5))
        ));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let err = config_from(&[("JWT_SECRET", SECRET), ("COOKIE_SECURE", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("COOKIE_SECURE"), "{err}");
        let err =
            config_from(&[("JWT_SECRET", SECRET), ("SESSION_IDLE_MINUTES", "0")]).unwrap_err();
        assert!(err.to_string().contains("SESSION_IDLE_MINUTES"), "{err}");
    }

    #[test]
    fn the_request_deadline_must_be_longer_than_the_mongodb_timeout() {
        for (request, mongodb, accepted) in [
            ("8", "3", true),
            ("4", "3", true),
            ("3", "3", false),
            ("2", "3", false),
            ("5", "", true),
            ("3", "", false),
        ] {
            let result = config_from(&[
                ("JWT_SECRET", SECRET),
                ("REQUEST_TIMEOUT_SECS", request),
                ("MONGODB_TIMEOUT_SECS", mongodb),
            ]);

            let what = format!("REQUEST_TIMEOUT_SECS={request} MONGODB_TIMEOUT_SECS={mongodb:?}");
            match result {
                Ok(config) => {
                    assert!(accepted, "{what} was accepted");
                    assert!(config.request_timeout > config.mongodb_timeout, "{what}");
                }
                Err(error) => {
                    assert!(!accepted, "{what} was refused: {error}");
                    let message = error.to_string();
                    assert!(
                        message.contains("REQUEST_TIMEOUT_SECS")
                            && message.contains("longer than MONGODB_TIMEOUT_SECS"),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = config_from(&[("JWT_SECRET", SECRET)]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains(SECRET));
        assert!(printed.contains("[redacted]"));
    }
}
