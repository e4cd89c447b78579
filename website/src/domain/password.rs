//! A password as typed at registration: long enough, not absurdly long.

use super::{ValidationError, char_count};

pub const MIN_CHARS: usize = 8;
/// Long passphrases are welcome; the cap only keeps request bodies and hashing inputs bounded.
pub const MAX_CHARS: usize = 1024;

/// Deliberately no `Debug`/`Display`: a password cannot end up in a log line by accident.
pub struct Password(String);

impl Password {
    pub fn parse(input: String) -> Result<Self, ValidationError> {
        let chars = char_count(&input);
        if chars < MIN_CHARS {
            Err(ValidationError::PasswordTooShort)
        } else if chars > MAX_CHARS {
            Err(ValidationError::PasswordTooLong)
        } else {
            Ok(Self(input))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        assert!(matches!(
            Password::parse("пароль1".into()),
            Err(ValidationError::PasswordTooShort)
        ));
        assert!(Password::parse("пароль12".into()).is_ok());
        assert!(Password::parse("correct horse battery staple ".repeat(30)).is_ok());
        assert!(matches!(
            Password::parse("x".repeat(MAX_CHARS + 1)),
            Err(ValidationError::PasswordTooLong)
        ));
    }
}
