//! The website's integration tests: the real application over real HTTP, each test with its own
//! MongoDB database on `MONGODB_URI` (scripts/test starts a server and sets it).

// The whole binary is test code: helpers outside #[test] fns may unwrap like the tests do.
#![allow(clippy::unwrap_used)]

mod accounts;
mod after_login;
mod binary;
mod error_stack;
mod helpers;
mod mongo_proxy;
mod outage;
mod pages;
mod rooms;
mod schema;
mod search;
mod session_outage;
mod sessions;
mod shared_sessions;
mod stuck_database;
mod ticket;
