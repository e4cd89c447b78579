//! Limits and misbehaving clients: error events, close codes, slow and idle clients.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::helpers::{Client, ROOM_ID, TestServer, test_config, test_limits, ticket};

async fn error_code_for(client: &mut Client, frame: Message) -> String {
    client.ws.send(frame).await.unwrap();
    let event = client.next_of_type("error").await;
    assert!(event["message"].is_string(), "{event}");
    event["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refused_frames_get_an_error_event_and_the_connection_stays() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let too_long = "x".repeat(51);
    let cases = [
        ("not json at all", Message::text("hello"), "invalid_json"),
        ("a JSON array", Message::text("[1]"), "invalid_json"),
        (
            "an unknown type",
            Message::text(r#"{"type":"shout","text":"hi"}"#),
            "unknown_type",
        ),
        ("no type", Message::text(r#"{"text":"hi"}"#), "unknown_type"),
        (
            "a message without text",
            Message::text(r#"{"type":"message"}"#),
            "invalid_event",
        ),
        (
            "an empty text",
            Message::text(r#"{"type":"message","text":"   "}"#),
            "empty_text",
        ),
        (
            "a text over the limit",
            Message::text(format!(r#"{{"type":"message","text":"{too_long}"}}"#)),
            "text_too_long",
        ),
        (
            "a binary frame",
            Message::binary(vec![1, 2, 3]),
            "binary_not_supported",
        ),
    ];
    for (what, frame, expected) in cases {
        assert_eq!(
            error_code_for(&mut ann, frame).await,
            expected,
            "for {what}"
        );
        // Still connected and allowed to talk (which also resets the strike count).
        ann.say("still here").await;
        assert_eq!(
            ann.next_of_type("message").await["text"],
            "still here",
            "after {what}"
        );
    }
}

#[tokio::test]
async fn a_text_of_exactly_the_limit_passes() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let longest = "é".repeat(50); // characters, not bytes

    ann.say(&longest).await;

    assert_eq!(ann.next_of_type("message").await["text"], longest.as_str());
}

#[tokio::test]
async fn a_sender_over_its_rate_gets_rate_limited_errors() {
    let mut limits = test_limits();
    limits.messages_per_second = 1;
    limits.messages_burst = 3;
    let server = TestServer::spawn_with(test_config(limits)).await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    ann.next_of_type("joined").await;

    for i in 0..5 {
        ann.say(&format!("burst {i}")).await;
    }

    let mut kinds = Vec::new();
    for _ in 0..5 {
        let event = ann.next_event().await;
        kinds.push(match event["type"].as_str() {
            Some("error") => event["code"].as_str().unwrap().to_owned(),
            other => other.unwrap().to_owned(),
        });
    }
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "message",
            "rate_limited",
            "rate_limited"
        ]
    );
}

#[tokio::test]
async fn a_client_that_keeps_abusing_is_closed_with_1008() {
    let server = TestServer::spawn().await; // max_strikes = 5
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;

    for _ in 0..5 {
        ann.send_text("garbage").await;
    }

    let mut errors = 0;
    let code = loop {
        match ann.ws.next().await.unwrap().unwrap() {
            Message::Text(text) if text.as_str().contains(r#""type":"error""#) => errors += 1,
            Message::Close(frame) => break u16::from(frame.unwrap().code),
            _ => {}
        }
    };
    assert_eq!((errors, code), (5, 1008));
}

#[tokio::test]
async fn an_oversized_frame_is_closed_with_1009_and_others_are_unaffected() {
    let server = TestServer::spawn().await; // max_frame_bytes = 1024
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@x.org", ROOM_ID).await;

    let huge = format!(r#"{{"type":"message","text":"{}"}}"#, "x".repeat(4000));
    ann.send_text(&huge).await;

    assert_eq!(ann.closed_with().await, 1009);
    assert_eq!(bob.next_of_type("left").await["user"], "ann@x.org");
    bob.say("fine").await;
    assert_eq!(bob.next_of_type("message").await["text"], "fine");
}

#[tokio::test]
async fn a_text_frame_of_invalid_utf8_is_closed_with_1007() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;

    let invalid = Frame::message(vec![0xff, 0xfe, 0x41], OpCode::Data(Data::Text), true);
    ann.ws.send(Message::Frame(invalid)).await.unwrap();

    assert_eq!(ann.closed_with().await, 1007);
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let mut limits = test_limits();
    limits.ping_interval = Duration::from_millis(400);
    limits.idle_timeout = Duration::from_millis(1500);
    let server = TestServer::spawn_with(test_config(limits)).await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@x.org", ROOM_ID).await;

    // Ann stops reading, so her client never answers the pings. Bob keeps reading (and so keeps
    // answering pings) until Ann is gone.
    let left = bob.next_of_type("left").await;

    assert_eq!(left["user"], "ann@x.org");
    assert_eq!(ann.closed_with().await, 4000);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_room_keeps_flowing() {
    let mut limits = test_limits();
    limits.max_text_chars = 4000;
    limits.max_frame_bytes = 16 * 1024;
    limits.send_queue = 8;
    let server = TestServer::spawn_with(test_config(limits)).await;

    // A client with a tiny receive window that never reads a byte.
    let _stuck = connect_with_tiny_window(&server, "stuck@x.org").await;

    let (mut observer, _) = server.join("watcher@x.org", ROOM_ID).await;
    let (mut talker, _) = server.join("talker@x.org", ROOM_ID).await;
    let watching = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let event = observer.next_event().await;
            match event["type"].as_str() {
                Some("message") => seen.push(event["text"].as_str().unwrap()[..6].to_owned()),
                Some("left") => {
                    assert_eq!(event["user"], "stuck@x.org");
                    return seen;
                }
                _ => {}
            }
        }
    });

    // Talk in big messages, each answered by its own echo, until the stuck client is dropped.
    let padding = "p".repeat(3900);
    let mut sent = Vec::new();
    let dropped = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..100_000 {
            let tag = format!("{i:06}");
            talker.say(&format!("{tag}{padding}")).await;
            sent.push(tag);
            loop {
                let event = talker.next_event().await;
                match event["type"].as_str() {
                    Some("message") => break,
                    Some("left") => return,
                    _ => {}
                }
            }
        }
    })
    .await;
    assert!(dropped.is_ok(), "the stuck client was never dropped");

    // The watcher received every message, in order, up to the drop.
    let seen = watching.await.unwrap();
    assert!(!seen.is_empty());
    assert_eq!(seen[..], sent[..seen.len()]);
    // The talker is still served (its last echo may come after the `left`).
    talker.say("after").await;
    while talker.next_of_type("message").await["text"] != "after" {}
}

#[tokio::test]
async fn a_client_that_reads_late_gets_every_message_in_order_once_it_reads() {
    // More than the server's socket can hold however far the kernel grows its send buffer, so
    // the connection's writer finds the socket full, waits for room and carries on where it
    // stopped; a queue long enough that the client is not dropped meanwhile.
    const TEXT: usize = 15_000;
    let most_buffered = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|sizes| sizes.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    let count = (most_buffered + most_buffered / 4) / TEXT + 1;
    let mut limits = test_limits();
    limits.max_text_chars = TEXT;
    limits.max_frame_bytes = 64 * 1024;
    limits.send_queue = count + 16;
    let server = TestServer::spawn_with(test_config(limits)).await;

    let mut late = connect_with_tiny_window(&server, "late@x.org").await;
    late.next_of_type("welcome").await;

    let (mut talker, _) = server.join("talker@x.org", ROOM_ID).await;
    let padding = "p".repeat(TEXT - 6);
    let tags: Vec<String> = (0..count).map(|i| format!("{i:06}")).collect();
    for tag in &tags {
        talker.say(&format!("{tag}{padding}")).await;
        talker.next_of_type("message").await;
    }

    let mut seen = Vec::new();
    while seen.len() < tags.len() {
        let message = late.next_of_type("message").await;
        seen.push(message["text"].as_str().unwrap()[..6].to_owned());
    }
    assert_eq!(seen, tags);
}

#[tokio::test]
async fn one_person_holds_at_most_the_socket_cap_and_gets_429_beyond_it() {
    let server = TestServer::spawn().await;
    let cap = test_limits().max_sockets_per_person;
    let mut tabs = Vec::new();
    for _ in 0..cap {
        tabs.push(server.join("ann@example.org", ROOM_ID).await.0);
    }

    let refused = server
        .open(server.request_with_ticket(&ticket("ann@example.org", ROOM_ID)))
        .await;
    let other = server
        .open(server.request_with_ticket(&ticket("bob@example.org", ROOM_ID)))
        .await;

    assert_eq!(refused.err(), Some(429));
    assert!(other.is_ok(), "another person is not affected");
    // A closed tab gives its place back.
    let mut closed = tabs.pop().unwrap();
    closed.ws.close(None).await.unwrap();
    drop(closed);
    let mut reopened = None;
    for _ in 0..250 {
        let attempt = server
            .open(server.request_with_ticket(&ticket("ann@example.org", ROOM_ID)))
            .await;
        if attempt.is_ok() {
            reopened = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reopened.is_some(),
        "the place of a closed tab is given back"
    );
}

/// A client in the room whose socket has a 4 KiB receive window: what it does not read soon fills
/// the server's side of the connection.
async fn connect_with_tiny_window(server: &TestServer, email: &str) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let request = server.request_with_ticket(&ticket(email, ROOM_ID));
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    Client { ws }
}
