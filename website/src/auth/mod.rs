//! Who is asking, and may they: logging in, passwords, sessions, CSRF, login throttling and chat
//! tickets.

pub mod client_addr;
pub mod csrf;
pub mod device;
pub mod login;
pub mod password;
pub mod session;
pub mod session_store;
pub mod throttle;
pub mod ticket;
