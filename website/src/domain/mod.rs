//! Values that can only hold valid data: each `parse()` is the one place its rule lives.

mod email;
mod password;
mod return_path;
mod room_title;
mod search_query;

pub use email::Email;
pub use password::Password;
pub use return_path::ReturnPath;
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
    #[error("password among the most common ones")]
    PasswordTooCommon,
    #[error("blank room title")]
    RoomTitleBlank,
    /// Longer than a title may be (100 characters after trimming).
    #[error("invalid room title")]
    InvalidRoomTitle,
    #[error("control characters in a room title")]
    RoomTitleInvalidCharacters,
    #[error("a room title without a visible character")]
    RoomTitleInvisible,
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

/// Whether `c` is one of Unicode's `Bidi_Control` characters: the marks (U+061C, U+200E,
/// U+200F), embeddings and overrides (U+202A–U+202E) and isolates (U+2066–U+2069). In a title
/// they make the rest of a line read backwards, or one room's title look like another's.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` shows nothing by itself: white space, and the format and filler characters that
/// render as nothing (zero-width spaces and joiners, the byte order mark, soft hyphen, Hangul
/// fillers, the blank Braille pattern...).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}
