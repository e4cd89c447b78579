//! Settings read once from the environment; a bad value stops the start-up with an error that
//! names the variable. Tests build [`Config`] directly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use contract::Env;
pub use contract::{ConfigError, Secret};

pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9000);

/// A newcomer is queued its `welcome` and its own `joined` before its writer sends anything, and
/// others joining at the same moment add to that: a smaller queue drops healthy clients with 4008.
pub const MIN_SEND_QUEUE: usize = 8;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub jwt_secret: Secret,
    /// `ALLOWED_ORIGINS`: in addition to the site itself, which is always allowed.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// `REDIS_URL`; `None`: one process, no Redis.
    pub redis_url: Option<RedisUrls>,
    /// `CHAT_METRICS_ADDR`; `None` (set to nothing): no metrics.
    pub metrics_addr: Option<SocketAddr>,
}

/// Every interface, so that Prometheus reaches it inside Compose's network (nginx never forwards
/// to it).
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9101);

/// The `CHAT_*` variables, named after the fields; chat/README.md says what each bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// In Unicode characters, not bytes.
    pub max_text_chars: usize,
    pub max_frame_bytes: usize,
    pub messages_per_second: u32,
    pub messages_burst: u32,
    pub send_queue: usize,
    pub handshake_timeout: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_sockets_per_person: usize,
    pub max_strikes: u32,
    pub presence_window: Duration,
    pub presence_burst: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_chars: 2000,
            max_frame_bytes: 16 * 1024,
            messages_per_second: 5,
            messages_burst: 10,
            send_queue: 256,
            handshake_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_sockets_per_person: 20,
            max_strikes: 10,
            presence_window: Duration::from_millis(200),
            presence_burst: 8,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Through `var`, so the parsing can be tested without touching the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(var);
        let jwt_secret = env.jwt_secret()?;
        let defaults = Limits::default();
        let limits = Limits {
            max_text_chars: env.positive("CHAT_MAX_TEXT_CHARS", defaults.max_text_chars)?,
            max_frame_bytes: env.positive("CHAT_MAX_FRAME_BYTES", defaults.max_frame_bytes)?,
            messages_per_second: env
                .positive("CHAT_MESSAGES_PER_SECOND", defaults.messages_per_second)?,
            messages_burst: env.positive("CHAT_MESSAGES_BURST", defaults.messages_burst)?,
            send_queue: env.parse_or("CHAT_SEND_QUEUE", defaults.send_queue)?,
            handshake_timeout: env
                .seconds("CHAT_HANDSHAKE_TIMEOUT_SECS", defaults.handshake_timeout)?,
            ping_interval: env.seconds("CHAT_PING_INTERVAL_SECS", defaults.ping_interval)?,
            idle_timeout: env.seconds("CHAT_IDLE_TIMEOUT_SECS", defaults.idle_timeout)?,
            max_connections: env.positive("CHAT_MAX_CONNECTIONS", defaults.max_connections)?,
            max_sockets_per_person: env.positive(
                "CHAT_MAX_SOCKETS_PER_PERSON",
                defaults.max_sockets_per_person,
            )?,
            max_strikes: env.positive("CHAT_MAX_STRIKES", defaults.max_strikes)?,
            presence_window: Duration::from_millis(
                env.positive("CHAT_PRESENCE_WINDOW_MS", millis(defaults.presence_window))?,
            ),
            presence_burst: env.positive("CHAT_PRESENCE_BURST", defaults.presence_burst)?,
        };
        if limits.send_queue < MIN_SEND_QUEUE {
            return Err(ConfigError::invalid(
                "CHAT_SEND_QUEUE",
                limits.send_queue.to_string(),
                format!(
                    "must be at least {MIN_SEND_QUEUE}: a client is queued its welcome and joined \
                     events on arrival, and a smaller queue drops it with 4008 at once"
                ),
            ));
        }
        if limits.presence_burst + 2 > limits.send_queue {
            return Err(ConfigError::invalid(
                "CHAT_PRESENCE_BURST",
                limits.presence_burst.to_string(),
                format!(
                    "must be at most CHAT_SEND_QUEUE - 2 = {}: a member may be queued that many \
                     presence events, a welcome and a summary at once, and presence alone must \
                     never drop a client with 4008",
                    limits.send_queue - 2
                ),
            ));
        }
        if limits.idle_timeout <= limits.ping_interval {
            return Err(ConfigError::invalid(
                "CHAT_IDLE_TIMEOUT_SECS",
                limits.idle_timeout.as_secs().to_string(),
                "must be longer than CHAT_PING_INTERVAL_SECS, or healthy clients time out",
            ));
        }
        let redis_url = env
            .get("REDIS_URL")
            .map(|urls| urls.parse::<RedisUrls>())
            .transpose()?;
        Ok(Self {
            addr: env.parse_or("CHAT_ADDR", DEFAULT_ADDR)?,
            jwt_secret,
            allowed_origins: env
                .get("ALLOWED_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|origin| !origin.is_empty())
                .collect(),
            limits,
            redis_url,
            metrics_addr: env.addr_or_off("CHAT_METRICS_ADDR", DEFAULT_METRICS_ADDR)?,
        })
    }
}

/// `REDIS_URL`: the Redis of each shard, in the order given. A room's shard is chosen by a hash
/// of its id, so every replica must be given the same list in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrls(Vec<String>);

impl RedisUrls {
    pub fn urls(&self) -> &[String] {
        &self.0
    }
}

impl std::str::FromStr for RedisUrls {
    type Err = ConfigError;

    /// A URL may hold a password, so errors name the entry by its place, never by its text.
    fn from_str(value: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("REDIS_URL", "(not shown)", reason);
        let mut urls = Vec::new();
        let mut servers = Vec::new();
        for (place, url) in value.split(',').map(str::trim).enumerate() {
            let entry = place + 1;
            if url.is_empty() {
                return Err(invalid(format!(
                    "entry {entry} is empty (separate the Redis URLs with single commas)"
                )));
            }
            let config = fred::types::config::Config::from_url(url).map_err(|error| {
                invalid(format!(
                    "entry {entry} is not a Redis URL (redis://host:port): {error}"
                ))
            })?;
            let server: Vec<String> = config
                .server
                .hosts()
                .iter()
                .map(ToString::to_string)
                .collect();
            if let Some(earlier) = servers.iter().position(|known| *known == server) {
                return Err(invalid(format!(
                    "entries {} and {entry} name the same Redis: each shard needs its own",
                    earlier + 1
                )));
            }
            servers.push(server);
            urls.push(url.to_owned());
        }
        Ok(Self(urls))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_secret_is_set() {
        let config = load(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(config.addr.to_string(), "0.0.0.0:9000");
        assert!(config.allowed_origins.is_empty());
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.redis_url, None);
        assert_eq!(config.metrics_addr, Some(DEFAULT_METRICS_ADDR));
        assert_eq!(DEFAULT_METRICS_ADDR.to_string(), "0.0.0.0:9101");
    }

    #[test]
    fn metrics_are_off_when_their_address_is_set_to_nothing() {
        let config = load(&[("JWT_SECRET", SECRET), ("CHAT_METRICS_ADDR", "")]).unwrap();
        assert_eq!(config.metrics_addr, None);
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("CHAT_METRICS_ADDR", "127.0.0.1:9301"),
        ])
        .unwrap();
        assert_eq!(config.metrics_addr.map(|a| a.port()), Some(9301));
        let err = load(&[("JWT_SECRET", SECRET), ("CHAT_METRICS_ADDR", "9301")]).unwrap_err();
        assert!(err.to_string().contains("CHAT_METRICS_ADDR"), "{err}");
    }

    #[test]
    fn redis_is_used_only_when_redis_url_names_one() {
        let config = load(&[("JWT_SECRET", SECRET), ("REDIS_URL", "")]).unwrap();
        assert_eq!(config.redis_url, None);
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("REDIS_URL", "redis://127.0.0.1:6380"),
        ])
        .unwrap();
        assert_eq!(config.redis_url.unwrap().urls(), ["redis://127.0.0.1:6380"]);
        let err = load(&[("JWT_SECRET", SECRET), ("REDIS_URL", "not a url")]).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn several_redis_urls_are_read_in_their_order() {
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("REDIS_URL", " redis://b:6379 , redis://a:6379"),
        ])
        .unwrap();
        assert_eq!(
            config.redis_url.unwrap().urls(),
            ["redis://b:6379", "redis://a:6379"]
        );
    }

    #[test]
    fn a_bad_redis_list_is_refused_without_showing_its_urls() {
        let cases = [
            ("redis://:hunter2@a:6379,", "entry 2 is empty"),
            (
                "redis://:hunter2@a:6379,,redis://b:6379",
                "entry 2 is empty",
            ),
            (
                "redis://:hunter2@a:6379,nowhere",
                "entry 2 is not a Redis URL",
            ),
            (
                "redis://:hunter2@a:6379,redis://b:6379,redis://a:6379/1",
                "entries 1 and 3 name the same Redis",
            ),
        ];
        for (value, reason) in cases {
            let err = load(&[("JWT_SECRET", SECRET), ("REDIS_URL", value)]).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("REDIS_URL"), "{value}: {message}");
            assert!(message.contains(reason), "{value}: {message}");
            assert!(!message.contains("hunter2"), "{value}: {message}");
        }
    }

    #[test]
    fn a_missing_or_short_secret_is_refused() {
        assert_eq!(load(&[]).unwrap_err(), ConfigError::MissingSecret);
        assert_eq!(
            load(&[("JWT_SECRET", "short")]).unwrap_err(),
            ConfigError::ShortSecret(5)
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let config = load(&[("JWT_SECRET", SECRET)]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn limits_and_origins_are_read_from_their_variables() {
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("CHAT_ADDR", "127.0.0.1:9100"),
            (
                "ALLOWED_ORIGINS",
                "http://localhost:8080/, https://Chat.Example.org",
            ),
            ("CHAT_MAX_TEXT_CHARS", "100"),
            ("CHAT_MESSAGES_PER_SECOND", "50"),
            ("CHAT_IDLE_TIMEOUT_SECS", "90"),
        ])
        .unwrap();
        assert_eq!(config.addr.port(), 9100);
        assert_eq!(
            config.allowed_origins,
            ["http://localhost:8080", "https://chat.example.org"]
        );
        assert_eq!(config.limits.max_text_chars, 100);
        assert_eq!(config.limits.messages_per_second, 50);
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_send_queue_too_small_for_a_newcomer_is_refused() {
        for value in ["0", "1", "7"] {
            let err = load(&[("JWT_SECRET", SECRET), ("CHAT_SEND_QUEUE", value)]).unwrap_err();
            assert!(
                matches!(
                    &err,
                    ConfigError::Invalid {
                        name: "CHAT_SEND_QUEUE",
                        ..
                    }
                ),
                "CHAT_SEND_QUEUE={value}: {err:?}"
            );
            assert!(err.to_string().contains("at least 8"), "{err}");
        }
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("CHAT_SEND_QUEUE", "8"),
            ("CHAT_PRESENCE_BURST", "6"),
        ])
        .unwrap();
        assert_eq!(config.limits.send_queue, MIN_SEND_QUEUE);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("CHAT_SEND_QUEUE", "lots"),
            ("CHAT_SEND_QUEUE", "0"),
            ("CHAT_ADDR", "nowhere"),
            ("CHAT_PING_INTERVAL_SECS", "0"),
            ("CHAT_IDLE_TIMEOUT_SECS", "5"),
            ("CHAT_PRESENCE_WINDOW_MS", "0"),
            ("CHAT_PRESENCE_WINDOW_MS", "soon"),
            ("CHAT_PRESENCE_BURST", "0"),
        ];
        for (name, value) in cases {
            let err = load(&[("JWT_SECRET", SECRET), (name, value)]).unwrap_err();
            assert!(
                err.to_string().contains(name),
                "{name}={value} gave an error that does not name it: {err}"
            );
        }
    }

    #[test]
    fn presence_settings_are_read_in_milliseconds_and_people() {
        let config = load(&[
            ("JWT_SECRET", SECRET),
            ("CHAT_PRESENCE_WINDOW_MS", "250"),
            ("CHAT_PRESENCE_BURST", "3"),
        ])
        .unwrap();
        assert_eq!(config.limits.presence_window, Duration::from_millis(250));
        assert_eq!(config.limits.presence_burst, 3);
    }

    #[test]
    fn a_presence_burst_that_could_fill_a_send_queue_is_refused() {
        let err = load(&[
            ("JWT_SECRET", SECRET),
            ("CHAT_SEND_QUEUE", "16"),
            ("CHAT_PRESENCE_BURST", "15"),
        ])
        .unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::Invalid {
                    name: "CHAT_PRESENCE_BURST",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("CHAT_SEND_QUEUE - 2 = 14"),
            "{err}"
        );
        // The default burst needs a queue of 10; the README's minimum of 8 takes a burst of 6.
        assert!(load(&[("JWT_SECRET", SECRET), ("CHAT_SEND_QUEUE", "8")]).is_err());
    }
}
