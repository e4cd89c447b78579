//! Integration tests of the chat service: the real server on 127.0.0.1:0, real WebSocket clients.

mod handshake;
mod helpers;
mod limits;
mod rooms;
mod shutdown;
