//! A room's title: 1 to 100 characters after trimming, no control characters.

use super::{ValidationError, char_count, has_control_chars};

pub const MAX_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTitle(String);

impl RoomTitle {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let title = input.trim();
        if title.is_empty() || char_count(title) > MAX_CHARS {
            Err(ValidationError::InvalidRoomTitle)
        } else if has_control_chars(title) {
            // A title is one line of text: a NUL or a newline only breaks the lists it is shown in.
            Err(ValidationError::RoomTitleInvalidCharacters)
        } else {
            Ok(Self(title.to_owned()))
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
    fn titles_keep_between_1_and_100_characters_after_trimming() {
        assert!(RoomTitle::parse("").is_err(), "empty");
        assert!(RoomTitle::parse("   ").is_err(), "blank");
        assert_eq!(RoomTitle::parse("  Я  ").unwrap().as_str(), "Я");
        assert!(
            RoomTitle::parse(&"ж".repeat(100)).is_ok(),
            "100 Cyrillic chars"
        );
        assert!(RoomTitle::parse(&"ж".repeat(101)).is_err(), "101 chars");
        assert!(RoomTitle::parse(&format!("  {}  ", "a".repeat(100))).is_ok());
    }

    #[test]
    fn control_characters_inside_a_title_are_refused() {
        for title in [
            "first\nsecond",
            "nul\0byte",
            "tab\there",
            "bell\u{7}",
            "del\u{7f}",
        ] {
            assert!(
                matches!(
                    RoomTitle::parse(title),
                    Err(ValidationError::RoomTitleInvalidCharacters)
                ),
                "{title:?} was accepted"
            );
        }
        assert_eq!(
            RoomTitle::parse("\n  trailing newline\r\n")
                .unwrap()
                .as_str(),
            "trailing newline",
            "surrounding line breaks are trimmed like spaces"
        );
    }
}
