//! A room's title: 1 to 100 characters after trimming.

use crate::error::AppError;

use super::char_count;

pub const MAX_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTitle(String);

impl RoomTitle {
    pub fn parse(input: &str) -> Result<Self, AppError> {
        let title = input.trim();
        if title.is_empty() || char_count(title) > MAX_CHARS {
            Err(AppError::InvalidRoomTitle)
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
}
