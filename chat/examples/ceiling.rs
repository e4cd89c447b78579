//! The benchmarks' ceiling: the least a WebSocket broadcast server can do, to measure the chat
//! against in the same run (chat/bench/compare.sh).
//!
//! Accept, take the room from the ticket's payload (not verified), answer one text frame so the
//! load generator counts the client as open, then forward every text frame to everyone in the
//! room through one list of senders per room. No limits, no presence, no queue bound, no pings:
//! nothing a real server owes its clients. Same buffer sizes as the chat (a 4 KiB read buffer).
//!
//!   cargo build --release -p chat --example ceiling
//!   CEILING_ADDR=127.0.0.1:9300 target/release/examples/ceiling

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Room = Vec<(u64, mpsc::UnboundedSender<Utf8Bytes>)>;
type Rooms = Arc<Mutex<HashMap<String, Room>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("CEILING_ADDR").unwrap_or_else(|_| "127.0.0.1:9300".into());
    let listener = TcpListener::bind(&addr).await?;
    let rooms: Rooms = Arc::default();
    let mut next_id = 0_u64;
    loop {
        let (tcp, _) = listener.accept().await?;
        next_id += 1;
        tokio::spawn(serve(tcp, next_id, rooms.clone()));
    }
}

/// The `room_id` claim of a JWT's payload, read without checking anything.
fn room_of(request: &Request) -> Option<String> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let payload = header.strip_prefix("Bearer ")?.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    claims["room_id"].as_str().map(str::to_owned)
}

async fn serve(tcp: TcpStream, id: u64, rooms: Rooms) {
    let _ = tcp.set_nodelay(true);
    let mut room = None;
    // tungstenite's callback type returns its error response by value.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        room = room_of(request);
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let Ok(socket) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await
    else {
        return;
    };
    let room = room.unwrap_or_default();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let _ = tx.send(Utf8Bytes::from_static(r#"{"type":"welcome"}"#));
    lock(&rooms).entry(room.clone()).or_default().push((id, tx));
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(frame) = message
            && let Some(members) = lock(&rooms).get(&room)
        {
            for (_, member) in members {
                let _ = member.send(frame.clone());
            }
        }
    }
    let mut rooms = lock(&rooms);
    if let Some(members) = rooms.get_mut(&room) {
        members.retain(|(member, _)| *member != id);
        if members.is_empty() {
            rooms.remove(&room);
        }
    }
    writer.abort();
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
