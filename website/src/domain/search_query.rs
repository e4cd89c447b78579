//! A room search: at least 6 characters, never longer than a title can be, no control characters.

use super::{ValidationError, char_count, has_control_chars, room_title};

pub const MIN_CHARS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Counts Unicode characters, so "Привет" (12 bytes) is exactly 6. Surrounding whitespace is
    /// not part of the query. Text longer than any title cannot match, so it is refused
    /// before it reaches the database. So is a control character: no title holds one, and MongoDB
    /// refuses a `$regex` with an embedded NUL.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let query = input.trim();
        let chars = char_count(query);
        if chars < MIN_CHARS {
            Err(ValidationError::QueryTooShort)
        } else if chars > room_title::MAX_CHARS {
            Err(ValidationError::QueryTooLong)
        } else if has_control_chars(query) {
            Err(ValidationError::QueryInvalidCharacters)
        } else {
            Ok(Self(query.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_unicode_characters_is_the_minimum() {
        assert!(matches!(
            SearchQuery::parse("Приве"),
            Err(ValidationError::QueryTooShort)
        ));
        assert_eq!(SearchQuery::parse(" Привет ").unwrap().as_str(), "Привет");
        assert!(
            SearchQuery::parse(".*+?()").is_ok(),
            "punctuation counts too"
        );
        assert!(
            SearchQuery::parse("     a     ").is_err(),
            "padding does not count"
        );
    }

    #[test]
    fn queries_longer_than_a_title_are_refused() {
        assert!(SearchQuery::parse(&"a".repeat(100)).is_ok());
        assert!(matches!(
            SearchQuery::parse(&"a".repeat(101)),
            Err(ValidationError::QueryTooLong)
        ));
    }

    #[test]
    fn control_characters_are_refused() {
        for query in ["abcdef\0", "abc\0def", "two\nlines", "tab\tbetween"] {
            assert!(
                matches!(
                    SearchQuery::parse(query),
                    Err(ValidationError::QueryInvalidCharacters)
                ),
                "{query:?} was accepted"
            );
        }
    }
}
