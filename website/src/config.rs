//! Settings read once from the environment into a typed [`Config`].
//!
//! Every variable has a documented default except `JWT_SECRET`, which is required; errors name the
//! variable so a failed start says exactly what to fix.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The shortest `JWT_SECRET` accepted: HS256 keys shorter than the hash output are weak.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A value that must never reach logs: `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the website needs to run; tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// `WEBSITE_ADDR`: where the HTTP server listens.
    pub addr: SocketAddr,
    /// `MONGODB_URI`: may carry credentials, hence a secret.
    pub mongodb_uri: Secret,
    /// `MONGODB_DB`: the database holding `users` and `rooms`.
    pub mongodb_db: String,
    /// `JWT_SECRET`: the HS256 key shared with the chat service.
    pub jwt_secret: Secret,
    /// `COOKIE_SECURE`: send the session cookie over HTTPS only.
    pub cookie_secure: bool,
    /// `SESSION_IDLE_MINUTES`: a session unused this long is gone.
    pub session_idle: Duration,
    /// `SESSION_MAX_HOURS`: a session older than this is refused however active it is.
    pub session_max_age: Duration,
    /// `TRUST_PROXY_HEADERS`: take the client address from `X-Real-IP` (set by nginx).
    pub trust_proxy_headers: bool,
    /// `LOGIN_MAX_FAILURES`: failed logins per account in the throttle window.
    pub login_max_failures: u32,
    /// `MONGODB_TIMEOUT_SECS`: server selection and connect timeout.
    pub mongodb_timeout: Duration,
    /// How long startup keeps trying to reach MongoDB before giving up (not an env setting).
    pub mongodb_startup_wait: Duration,
}

/// Why the configuration was refused; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "JWT_SECRET is not set: it is required (at least {MIN_JWT_SECRET_BYTES} bytes, shared with the chat service)"
    )]
    MissingJwtSecret,
    #[error("JWT_SECRET is too short: {0} bytes, at least {MIN_JWT_SECRET_BYTES} are required")]
    ShortJwtSecret(usize),
    #[error("{name} has an invalid value {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    ///
    /// A variable set to nothing (or only whitespace) counts as unset: compose files and shells
    /// often pass `NAME=` for "no value", which should mean the default, not an empty address.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let jwt_secret = match lookup("JWT_SECRET") {
            None => return Err(ConfigError::MissingJwtSecret),
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError::ShortJwtSecret(s.len()));
            }
            Some(s) => Secret::new(s),
        };
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Ok(Self {
            addr: parse(&lookup, "WEBSITE_ADDR", "0.0.0.0:8000")?,
            mongodb_uri: Secret::new(
                lookup("MONGODB_URI").unwrap_or_else(|| "mongodb://localhost:27017".into()),
            ),
            mongodb_db: lookup("MONGODB_DB").unwrap_or_else(|| "webchat".into()),
            jwt_secret,
            cookie_secure: parse_bool(&lookup, "COOKIE_SECURE", false)?,
            session_idle: minutes(positive(&lookup, "SESSION_IDLE_MINUTES", 60)?),
            session_max_age: minutes(positive(&lookup, "SESSION_MAX_HOURS", 12)? * 60),
            trust_proxy_headers: parse_bool(&lookup, "TRUST_PROXY_HEADERS", false)?,
            login_max_failures: u32::try_from(positive(&lookup, "LOGIN_MAX_FAILURES", 5)?)
                .map_err(|e| invalid("LOGIN_MAX_FAILURES", "", e))?,
            mongodb_timeout: Duration::from_secs(positive(&lookup, "MONGODB_TIMEOUT_SECS", 3)?),
            mongodb_startup_wait: Duration::from_secs(30),
        })
    }
}

fn invalid(name: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn parse<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let value = lookup(name).unwrap_or_else(|| default.to_owned());
    value.trim().parse().map_err(|e| invalid(name, &value, e))
}

fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    let value: u64 = parse(lookup, name, &default.to_string())?;
    if value == 0 {
        return Err(invalid(name, "0", "must be at least 1"));
    }
    Ok(value)
}

fn parse_bool(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(invalid(name, &v, "expected true or false")),
        },
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
            Err(ConfigError::MissingJwtSecret)
        ));
    }

    #[test]
    fn a_missing_or_short_secret_is_refused() {
        assert!(matches!(
            config_from(&[]),
            Err(ConfigError::MissingJwtSecret)
        ));
        assert!(matches!(
            config_from(&[("JWT_SECRET", "short")]),
            Err(ConfigError::ShortJwtSecret(5))
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
    fn secrets_are_redacted_in_debug_output() {
        let config = config_from(&[("JWT_SECRET", SECRET)]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains(SECRET));
        assert!(printed.contains("[redacted]"));
    }
}
