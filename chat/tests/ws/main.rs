//! Integration tests of the chat service: the real server on 127.0.0.1:0, real WebSocket clients.

// A failed unwrap in a test or its helpers is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod frames;
mod handshake;
mod helpers;
mod limits;
mod metrics;
mod plain_http;
mod presence;
mod redis;
mod replicas;
mod room_deleted;
mod rooms;
mod shards;
mod shutdown;
