//! A running test server and WebSocket clients with helpers named after what a user does.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use chat::rooms::RoomRegistry;
use chat::{Config, Limits};
use contract::Claims;
use contract::Secret;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "integration-secret-0123456789-abcdefghij";
pub const ROOM_ID: &str = "65f1c0ffee0123456789abcd";
pub const OTHER_ROOM_ID: &str = "65f1c0ffee0123456789ffff";
/// How long any single expected event may take before the test fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits small enough to reach in a test, and generous where a test does not probe them.
pub fn test_limits() -> Limits {
    Limits {
        max_text_chars: 50,
        max_frame_bytes: 1024,
        messages_per_second: 1000,
        messages_burst: 1000,
        send_queue: 16,
        handshake_timeout: Duration::from_secs(2),
        ping_interval: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        max_connections: 100,
        max_sockets_per_person: 5,
        max_strikes: 5,
        presence_window: Duration::from_millis(200),
        presence_burst: 8,
    }
}

pub fn test_config(limits: Limits) -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        jwt_secret: Secret::new(SECRET).expect("the test secret is long enough"),
        allowed_origins: Vec::new(),
        limits,
        redis_url: None,
        metrics_addr: None,
    }
}

/// The real server, running on a free port until stopped or dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub registry: RoomRegistry,
    /// Where `/metrics` answers, when the config asked for it.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_config(test_limits())).await
    }

    pub async fn spawn_with(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = chat::Server::new(listener, config).unwrap();
        let addr = server.local_addr().unwrap();
        let registry = server.registry();
        let metrics_addr = server.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            registry,
            metrics_addr,
            stop: Some(stop),
            task,
        }
    }

    /// A server running elsewhere (the real binary, in another process): only its address is
    /// used; its `registry` is a stand-in.
    pub fn at(addr: SocketAddr) -> Self {
        Self {
            addr,
            registry: RoomRegistry::new(&test_limits()),
            metrics_addr: None,
            stop: None,
            task: tokio::spawn(async {}),
        }
    }

    /// Asks the server to shut down and waits until it has.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let deadline = chat::SHUTDOWN_DEADLINE + Duration::from_secs(2);
        tokio::time::timeout(deadline, &mut self.task)
            .await
            .expect("the server stops within its shutdown deadline")
            .unwrap();
    }

    /// Sends the website's room-deleted notice for `room_id` (signed with the shared secret,
    /// or with `token` when given) and returns the HTTP status the chat answers.
    pub async fn notify_deleted(&self, room_id: &str, token: Option<&str>) -> u16 {
        let token = token.map_or_else(
            || {
                contract::NoticeIssuer::new(&Secret::new(SECRET).unwrap())
                    .issue(room_id)
                    .unwrap()
            },
            str::to_owned,
        );
        let path = contract::notice::notice_path(room_id);
        self.http(&format!(
            "POST {path} HTTP/1.1\r\nHost: chat\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 0\r\n\r\n"
        ))
        .await
    }

    /// Sends one raw HTTP request and returns the status of the answer.
    pub async fn http(&self, request: &str) -> u16 {
        let raw = self.http_answer(request).await;
        raw.split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {raw:?}"))
    }

    /// Sends one raw HTTP request and returns the whole answer.
    pub async fn http_answer(&self, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(EVENT_TIMEOUT, tcp.read_to_end(&mut raw))
            .await
            .expect("the server answers and closes")
            .unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// A handshake request for `/ws` with no ticket yet.
    pub fn request(&self) -> Request {
        self.url("/ws").into_client_request().unwrap()
    }

    /// A request carrying `ticket` in `Authorization: Bearer`.
    pub fn request_with_ticket(&self, ticket: &str) -> Request {
        let mut request = self.request();
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {ticket}")).unwrap(),
        );
        request
    }

    /// A valid ticketed request that a browser on `origin` would send.
    pub fn request_from_origin(&self, origin: &str) -> Request {
        let mut request = self.request_with_ticket(&ticket("ann@example.org", ROOM_ID));
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
        request
    }

    /// Opens a socket as `email` in room `room_id`, reads its `welcome` and returns it.
    pub async fn join(&self, email: &str, room_id: &str) -> (Client, Value) {
        let mut client = self.connect(email, room_id).await;
        let welcome = client.next_event().await;
        assert_eq!(welcome["type"], "welcome", "first event: {welcome}");
        (client, welcome)
    }

    /// Opens a socket as `email` in room `room_id`; reads nothing.
    pub async fn connect(&self, email: &str, room_id: &str) -> Client {
        let request = self.request_with_ticket(&ticket(email, room_id));
        self.open(request)
            .await
            .unwrap_or_else(|status| panic!("handshake refused with {status}"))
            .0
    }

    /// Opens a socket as `email` in the test room; reads nothing. Owns its arguments, so many
    /// can be started at once.
    pub async fn connect_as(&self, email: String) -> Client {
        self.connect(&email, ROOM_ID).await
    }

    /// Performs a handshake; the HTTP status of the refusal when it is refused.
    pub async fn open(&self, request: Request) -> Result<(Client, Response), u16> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await {
            Ok((ws, response)) => Ok((Client { ws }, response)),
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("handshake failed without an HTTP answer: {other}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A valid ticket signed with the test secret.
pub fn ticket(email: &str, room_id: &str) -> String {
    let claims = serde_json::to_value(Claims::new(email, "Rust", room_id)).unwrap();
    jwt_by_hand(
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
        SECRET.as_bytes(),
    )
}

/// The claims of a valid ticket as JSON, for tests that break one of them.
pub fn claims_json(email: &str) -> Value {
    serde_json::to_value(Claims::new(email, "Rust", ROOM_ID)).unwrap()
}

/// A JWT built by hand — base64url + HMAC-SHA256 from the `hmac`/`sha2` crates, not
/// `jsonwebtoken` — with any header, so tests can also forge other algorithms.
pub fn jwt_by_hand(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// A connected WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// The next event (JSON), skipping pings; fails the test on a timeout or a close.
    pub async fn next_event(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// The next event (JSON), skipping pings, however long it takes (the caller bounds it);
    /// `None` once the connection ends.
    pub async fn ws_next_event(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            }
        }
    }

    /// The next event of type `kind`, skipping others.
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["type"] == kind {
                return event;
            }
        }
    }

    /// Reads until the server's close frame and returns its code; events before it are skipped.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            match self.next_message().await {
                Message::Close(Some(frame)) => return u16::from(frame.code),
                Message::Close(None) => panic!("closed without a code"),
                _ => continue,
            }
        }
    }

    async fn next_message(&mut self) -> Message {
        tokio::time::timeout(EVENT_TIMEOUT, self.ws.next())
            .await
            .expect("no frame from the server in time")
            .expect("the connection ended without a close frame")
            .expect("the connection failed")
    }

    /// Sends a chat message.
    pub async fn say(&mut self, text: &str) {
        let frame = serde_json::json!({"type": "message", "text": text}).to_string();
        self.send_text(&frame).await;
    }

    pub async fn send_text(&mut self, frame: &str) {
        self.ws.send(Message::text(frame)).await.unwrap();
    }

    /// Closes the socket politely and waits for the server's answer to the close.
    pub async fn leave(mut self) {
        self.ws.close(None).await.unwrap();
        tokio::time::timeout(EVENT_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await
        .expect("the server answers a close in time");
    }
}
