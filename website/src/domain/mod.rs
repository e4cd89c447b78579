//! Values that can only hold valid data: each `parse()` is the one place its rule lives.

mod email;
mod password;
mod room_title;
mod search_query;

pub use email::Email;
pub use password::Password;
pub use room_title::RoomTitle;
pub use search_query::SearchQuery;

/// Counts Unicode scalar values, the "characters" of every length rule here.
fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Whether `s` holds a control character (NUL, newline, tab, DEL...): titles and searches are
/// one line of visible text, and MongoDB refuses a `$regex` with an embedded NUL.
fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
