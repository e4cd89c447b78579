//! A password as typed at registration: long enough, not absurdly long, and not one that
//! guessing tools try first.

use zxcvbn::matching::patterns::{DictionaryPattern, MatchPattern};
use zxcvbn::{Score, zxcvbn};

use super::{ValidationError, char_count};

pub const MIN_CHARS: usize = 8;
/// Long passphrases are welcome; the cap only keeps request bodies and hashing inputs bounded.
pub const MAX_CHARS: usize = 1024;
/// Only this much of a password is weighed for guessability: the estimate's cost grows with the
/// square of the length, and no common password is anywhere near this long.
const WEIGHED_CHARS: usize = 64;

/// Deliberately no `Debug`/`Display`: a password cannot end up in a log line by accident.
pub struct Password(String);

impl Password {
    pub fn parse(input: String) -> Result<Self, ValidationError> {
        let chars = char_count(&input);
        if chars < MIN_CHARS {
            Err(ValidationError::PasswordTooShort)
        } else if chars > MAX_CHARS {
            Err(ValidationError::PasswordTooLong)
        } else if is_common(&input) {
            Err(ValidationError::PasswordTooCommon)
        } else {
            Ok(Self(input))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether `password` is, as a whole, one of the 30 000 most used passwords (zxcvbn's list from
/// the xato dump, also reversed or in l33t spelling), or guessable in under a thousand tries
/// (`11111111`, `12345678`, `qwertyuiop`...). ASVS 5 (6.2.4) asks for at least the top 3000.
fn is_common(password: &str) -> bool {
    if char_count(password) > WEIGHED_CHARS {
        return false;
    }
    // The crate does not export its dictionary names; the default one is its password list.
    let passwords_list = DictionaryPattern::default().dictionary_name;
    let estimate = zxcvbn(password, &[]);
    let whole_password_is_a_listed_one = match estimate.sequence() {
        [only] => matches!(
            &only.pattern,
            MatchPattern::Dictionary(word) if word.dictionary_name == passwords_list
        ),
        _ => false,
    };
    whole_password_is_a_listed_one || estimate.score() == Score::Zero
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
        assert!(Password::parse("пароль12 в ночи".into()).is_ok());
        assert!(Password::parse("correct horse battery staple ".repeat(30)).is_ok());
        assert!(matches!(
            Password::parse("x".repeat(MAX_CHARS + 1)),
            Err(ValidationError::PasswordTooLong)
        ));
    }

    #[test]
    fn the_most_common_passwords_are_refused() {
        for common in [
            "12345678",
            "password",
            "password1",
            "Password1",
            "qwertyuiop",
            "11111111",
            "iloveyou",
            "sunshine",
            "football",
            "p4ssw0rd",
            "drowssap",
            "1q2w3e4r",
            "123456789",
        ] {
            assert!(
                matches!(
                    Password::parse(common.into()),
                    Err(ValidationError::PasswordTooCommon)
                ),
                "{common} was accepted"
            );
        }
    }

    #[test]
    fn ordinary_passwords_pass() {
        for fine in [
            "correct horse battery",
            "long enough password 42",
            "Tr0ub4dor&3x",
            "мой тайный пароль",
            "vT7#kq2!Lm",
        ] {
            assert!(Password::parse(fine.into()).is_ok(), "{fine} was refused");
        }
    }
}
