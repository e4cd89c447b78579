//! A room's title: 1 to 100 characters after trimming, at least one of them visible, no control
//! or text-direction characters.

use super::{ValidationError, char_count, has_control_chars, is_bidi_control, is_invisible};

pub const MAX_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTitle(String);

impl RoomTitle {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let title = input.trim();
        if title.is_empty() {
            Err(ValidationError::RoomTitleBlank)
        } else if char_count(title) > MAX_CHARS {
            Err(ValidationError::InvalidRoomTitle)
        } else if has_control_chars(title) || title.chars().any(is_bidi_control) {
            // A title is one line of text: a NUL or a newline only breaks the lists it is shown
            // in, and a direction override turns the rest of the line around.
            Err(ValidationError::RoomTitleInvalidCharacters)
        } else if title.chars().all(is_invisible) {
            Err(ValidationError::RoomTitleInvisible)
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
        for (blank, why) in [("", "empty"), ("   ", "spaces"), ("\t \n", "white space")] {
            assert_eq!(
                RoomTitle::parse(blank),
                Err(ValidationError::RoomTitleBlank),
                "{why}: its own message, not the length one"
            );
        }
        assert_eq!(RoomTitle::parse("  Я  ").unwrap().as_str(), "Я");
        assert!(
            RoomTitle::parse(&"ж".repeat(100)).is_ok(),
            "100 Cyrillic chars"
        );
        assert_eq!(
            RoomTitle::parse(&"ж".repeat(101)),
            Err(ValidationError::InvalidRoomTitle),
            "101 chars"
        );
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
            "evil\u{202E}gnp.exe",
            "left\u{202A}to right",
            "isolated\u{2066}text\u{2069}",
            "first strong\u{2068}",
            "marked\u{200E}left to right",
            "marked\u{200F}right to left",
            "arabic letter\u{061C}mark",
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

    #[test]
    fn a_title_of_invisible_characters_only_is_refused() {
        for title in [
            "\u{200B}",
            "\u{200B}\u{200D}\u{FEFF}",
            "\u{3164}\u{3164}",
            "\u{00A0}\u{2800}",
            "\u{2060}",
        ] {
            assert!(
                matches!(
                    RoomTitle::parse(title),
                    Err(ValidationError::RoomTitleInvisible)
                ),
                "{title:?} was accepted"
            );
        }
        // One visible character is enough, and joiners inside words are fine.
        assert!(RoomTitle::parse("\u{200B}a").is_ok());
        assert!(RoomTitle::parse("👩\u{200D}💻 devs").is_ok());
    }
}
