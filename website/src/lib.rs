//! The Webchat website: accounts, rooms, search and chat tickets.

/// Login, sessions, CSRF, throttling and chat tickets.
pub mod auth;
/// Telling the chat service that a room was deleted.
pub mod chat_notice;
/// Settings from the environment.
pub mod config;
/// MongoDB access: typed documents and named queries.
pub mod db;
/// Validated values: email, password, room title, search query.
pub mod domain;
/// The error type and its mapping to responses.
pub mod error;
/// The `website healthcheck` probe.
pub mod healthcheck;
/// Languages and message catalogues.
pub mod i18n;
/// What the website counts, and `/metrics` on a listener of its own.
pub mod metrics;
/// The HTTP handlers and the route table.
pub mod routes;
/// The settings handlers and extractors read per request.
pub mod settings;
/// Building and running the server.
pub mod startup;
/// Shared handler state.
pub mod state;
/// Logging setup.
pub mod telemetry;
/// Templates, static assets and page rendering.
pub mod templates;
