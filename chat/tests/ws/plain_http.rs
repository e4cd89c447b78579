//! Requests that are not WebSocket upgrades to `/ws` still get an HTTP answer, and leave the
//! server serving. A raw TCP client writes the request and reads the answer to the server's close.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{EVENT_TIMEOUT, ROOM_ID, TestServer, test_config, test_limits};

/// What the server sent back to `request`, whole: status line, headers, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// The value of header `name` (lower-case), if sent.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

async fn send(server: &TestServer, request: &[u8]) -> Answer {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(EVENT_TIMEOUT, tcp.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .expect("the answer arrives without a reset");
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete HTTP answer: {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn a_plain_get_of_ws_is_told_to_upgrade_to_websocket() {
    let server = TestServer::spawn().await;

    let answer = send(&server, b"GET /ws HTTP/1.1\r\nHost: chat\r\n\r\n").await;

    assert_eq!(answer.status, 426, "{}", answer.head);
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    assert_eq!(answer.header("connection"), Some("Upgrade, close"));
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
    assert!(answer.body.contains("WebSocket only"), "{}", answer.body);
    assert_eq!(
        answer.header("content-length"),
        Some(answer.body.len().to_string().as_str())
    );
}

#[tokio::test]
async fn an_http_1_0_get_of_ws_is_told_to_upgrade() {
    let server = TestServer::spawn().await;

    let answer = send(&server, b"GET /ws HTTP/1.0\r\n\r\n").await;

    assert_eq!(answer.status, 426);
}

#[tokio::test]
async fn any_other_path_is_not_found_with_or_without_upgrade_headers() {
    let server = TestServer::spawn().await;

    let plain = send(&server, b"GET /other HTTP/1.1\r\nHost: chat\r\n\r\n").await;
    let half_upgrade = send(
        &server,
        b"GET /other HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    let root = send(&server, b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n").await;

    assert_eq!(plain.status, 404);
    assert_eq!(half_upgrade.status, 404);
    assert_eq!(root.status, 404);
    assert!(plain.body.contains("/ws"), "{}", plain.body);
}

#[tokio::test]
async fn a_post_to_ws_is_a_method_not_allowed_even_with_a_body() {
    let server = TestServer::spawn().await;

    let answer = send(
        &server,
        b"POST /ws HTTP/1.1\r\nHost: chat\r\nContent-Length: 11\r\n\r\nhello=world",
    )
    .await;

    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("GET"));
}

#[tokio::test]
async fn a_head_request_gets_the_status_without_a_body() {
    let server = TestServer::spawn().await;

    let answer = send(&server, b"HEAD /ws HTTP/1.1\r\nHost: chat\r\n\r\n").await;

    assert_eq!(answer.status, 405);
    assert_eq!(answer.body, "");
}

#[tokio::test]
async fn an_upgrade_without_a_key_or_with_another_version_is_answered() {
    let server = TestServer::spawn().await;
    let upgrade = "GET /ws HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n";

    let no_key = send(
        &server,
        format!("{upgrade}Sec-WebSocket-Version: 13\r\n\r\n").as_bytes(),
    )
    .await;
    let old_version = send(
        &server,
        format!(
            "{upgrade}Sec-WebSocket-Version: 8\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;

    assert_eq!(no_key.status, 400);
    assert_eq!(old_version.status, 426);
    assert_eq!(old_version.header("sec-websocket-version"), Some("13"));
}

#[tokio::test]
async fn what_is_not_http_gets_400_and_an_oversized_head_431() {
    let server = TestServer::spawn().await;

    let garbage = send(&server, b"\x16\x03\x01 hello there\r\n\r\n").await;
    let mut huge = b"GET /ws HTTP/1.1\r\nHost: chat\r\nX-Filler: ".to_vec();
    huge.resize(huge.len() + 20 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let oversized = send(&server, &huge).await;

    assert_eq!(garbage.status, 400);
    assert_eq!(oversized.status, 431);
}

#[tokio::test]
async fn a_frame_sent_before_the_101_answer_is_refused_with_400() {
    let server = TestServer::spawn().await;

    let answer = send(
        &server,
        b"GET /ws HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x00",
    )
    .await;

    assert_eq!(answer.status, 400);
}

#[tokio::test]
async fn answered_requests_free_their_slot_and_websocket_clients_are_still_served() {
    let mut limits = test_limits();
    // One slot: any answered request that kept it would leave the last join waiting forever.
    limits.max_connections = 1;
    limits.handshake_timeout = Duration::from_secs(30);
    let server = TestServer::spawn_with(test_config(limits)).await;

    for request in [
        &b"GET /ws HTTP/1.1\r\nHost: chat\r\n\r\n"[..],
        b"GET /other HTTP/1.1\r\nHost: chat\r\n\r\n",
        b"POST /ws HTTP/1.1\r\nHost: chat\r\nContent-Length: 2\r\n\r\nhi",
        b"not http\r\n\r\n",
    ] {
        send(&server, request).await;
    }
    let (_ann, welcome) =
        tokio::time::timeout(EVENT_TIMEOUT, server.join("ann@example.org", ROOM_ID))
            .await
            .expect("the slot was released");

    assert_eq!(welcome["type"], "welcome");
}
