//! Settings from the environment, read the same way by both services. A variable set to nothing
//! (or only whitespace) counts as unset: Compose files and shells pass `NAME=` for "no value". The
//! one exception is [`Env::addr_or_off`], where an empty value turns a listener off.

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::secret::{MIN_SECRET_BYTES, Secret};

/// Why a setting was refused. Each message names the variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "JWT_SECRET is not set: it is required (at least {MIN_SECRET_BYTES} bytes, the same value \
         for the website and the chat service)"
    )]
    MissingSecret,
    #[error("JWT_SECRET is too short: {0} bytes, at least {MIN_SECRET_BYTES} are required")]
    ShortSecret(usize),
    #[error("{name} has an invalid value {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    pub fn invalid(name: &'static str, value: impl Into<String>, reason: impl Display) -> Self {
        Self::Invalid {
            name,
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// A source of settings: the process environment, or any lookup a test supplies.
pub struct Env<L> {
    lookup: L,
}

impl<L: Fn(&str) -> Option<String>> Env<L> {
    pub fn new(lookup: L) -> Self {
        Self { lookup }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|e| ConfigError::invalid(name, value, e)),
        }
    }

    /// An optional listen address: `default` when unset, `None` (off) when set to nothing. The
    /// metrics listeners are on by default and turned off by an empty value.
    pub fn addr_or_off(
        &self,
        name: &'static str,
        default: SocketAddr,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        match (self.lookup)(name) {
            None => Ok(Some(default)),
            Some(value) if value.trim().is_empty() => Ok(None),
            Some(value) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| ConfigError::invalid(name, value, e)),
        }
    }

    /// Like [`Env::parse_or`], and the value may not be zero.
    pub fn positive<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + Default + PartialEq + Display,
        T::Err: Display,
    {
        let value = self.parse_or(name, default)?;
        if value == T::default() {
            return Err(ConfigError::invalid(
                name,
                value.to_string(),
                "must be at least 1",
            ));
        }
        Ok(value)
    }

    pub fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.positive(name, default.as_secs())
            .map(Duration::from_secs)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case).
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::invalid(name, value, "expected true or false")),
        }
    }

    pub fn jwt_secret(&self) -> Result<Secret, ConfigError> {
        let value = self.get("JWT_SECRET").ok_or(ConfigError::MissingSecret)?;
        Secret::new(value).map_err(|too_short| ConfigError::ShortSecret(too_short.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |name| vars.get(name).cloned())
    }

    #[test]
    fn an_optional_address_is_the_default_when_unset_off_when_empty() {
        let default = SocketAddr::from(([0, 0, 0, 0], 9100));
        let read = |pairs: &[(&str, &str)]| env(pairs).addr_or_off("METRICS_ADDR", default);
        assert_eq!(read(&[]).unwrap(), Some(default));
        assert_eq!(read(&[("METRICS_ADDR", "")]).unwrap(), None);
        assert_eq!(read(&[("METRICS_ADDR", "  ")]).unwrap(), None);
        assert_eq!(
            read(&[("METRICS_ADDR", "127.0.0.1:9200")]).unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9200)))
        );
        let err = read(&[("METRICS_ADDR", "nowhere")]).unwrap_err();
        assert!(err.to_string().contains("METRICS_ADDR"), "{err}");
    }

    #[test]
    fn unset_and_blank_variables_give_the_default() {
        for vars in [&[][..], &[("N", "")][..], &[("N", "  ")][..]] {
            assert_eq!(env(vars).parse_or("N", 7_u32), Ok(7));
            assert_eq!(env(vars).flag("N", true), Ok(true));
        }
    }

    #[test]
    fn values_are_trimmed_before_parsing() {
        assert_eq!(env(&[("N", " 42 ")]).parse_or("N", 7_u32), Ok(42));
        assert_eq!(
            env(&[("T", " 90\n")]).seconds("T", Duration::from_secs(5)),
            Ok(Duration::from_secs(90))
        );
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        for (value, expected) in [("TRUE", true), ("yes", true), ("1", true), ("off", false)] {
            assert_eq!(env(&[("F", value)]).flag("F", !expected), Ok(expected));
        }
    }

    #[test]
    fn every_refusal_names_its_variable_and_value() {
        let cases = [
            (
                "a number that is not",
                env(&[("N", "lots")]).parse_or("N", 1_u32),
            ),
            (
                "zero where at least 1 is needed",
                env(&[("N", "0")]).positive("N", 1_u32),
            ),
            (
                "zero seconds",
                env(&[("N", "0")])
                    .seconds("N", Duration::from_secs(1))
                    .map(|d| d.as_secs() as u32),
            ),
            (
                "a flag that is neither",
                env(&[("N", "maybe")]).flag("N", false).map(u32::from),
            ),
        ];
        for (what, result) in cases {
            let err = result.expect_err(what);
            assert!(
                matches!(&err, ConfigError::Invalid { name: "N", .. }),
                "{what}: {err:?}"
            );
            assert!(
                err.to_string().starts_with("N has an invalid value"),
                "{what}: {err}"
            );
        }
    }

    #[test]
    fn the_jwt_secret_is_required_and_at_least_32_bytes() {
        assert_eq!(env(&[]).jwt_secret(), Err(ConfigError::MissingSecret));
        assert_eq!(
            env(&[("JWT_SECRET", " ")]).jwt_secret(),
            Err(ConfigError::MissingSecret)
        );
        assert_eq!(
            env(&[("JWT_SECRET", "short")]).jwt_secret(),
            Err(ConfigError::ShortSecret(5))
        );
        assert!(env(&[("JWT_SECRET", &"s".repeat(32))]).jwt_secret().is_ok());
        assert!(
            ConfigError::MissingSecret
                .to_string()
                .contains("JWT_SECRET"),
            "the message names the variable"
        );
    }
}
