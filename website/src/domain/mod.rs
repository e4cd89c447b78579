//! Values that can only hold valid data: each `parse()` is the one place its rule lives.

mod email;
mod password;
mod room_title;
mod search_query;

pub use email::Email;
pub use password::Password;
pub use room_title::RoomTitle;
pub use search_query::SearchQuery;

/// Why an input was refused: each variant names the rule it broke. The web layer's `AppError`
/// decides what the visitor sees (status and message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("invalid email")]
    InvalidEmail,
    #[error("password too short")]
    PasswordTooShort,
    #[error("password too long")]
    PasswordTooLong,
    #[error("invalid room title")]
    InvalidRoomTitle,
    #[error("control characters in a room title")]
    RoomTitleInvalidCharacters,
    #[error("search query too short")]
    QueryTooShort,
    #[error("search query too long")]
    QueryTooLong,
    #[error("control characters in a search query")]
    QueryInvalidCharacters,
}

/// Counts Unicode scalar values, the "characters" of every length rule here.
fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Whether `s` holds a control character (NUL, newline, tab, DEL...): titles and searches are
/// one line of visible text, and MongoDB refuses a `$regex` with an embedded NUL.
fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
