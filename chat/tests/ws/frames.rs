//! The frames on the wire: the answers to a client's pings and close, and events of any length.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::helpers::{Client, EVENT_TIMEOUT, ROOM_ID, TestServer, test_config, test_limits};

#[tokio::test]
async fn a_clients_ping_is_answered_with_a_pong_of_its_payload() {
    let server = TestServer::spawn().await;
    let (mut ann, _welcome) = server.join("ann@x.org", ROOM_ID).await;

    ann.ws
        .send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();

    let pong = first(&mut ann, |message| match message {
        Message::Pong(payload) => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(&pong[..], b"are you there");
}

#[tokio::test]
async fn pings_faster_than_the_answers_get_the_latest_payload_last() {
    let server = TestServer::spawn().await;
    let (mut ann, _welcome) = server.join("ann@x.org", ROOM_ID).await;

    for payload in ["1", "2", "3"] {
        ann.ws
            .send(Message::Ping(Bytes::from_static(payload.as_bytes())))
            .await
            .unwrap();
    }
    ann.say("after the pings").await;

    // Everything the pings drew comes before the message said after them.
    let mut pongs = Vec::new();
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            match ann.ws.next().await.unwrap().unwrap() {
                Message::Pong(payload) => pongs.push(payload),
                Message::Text(text) if text.as_str().contains("after the pings") => break,
                _ => {}
            }
        }
    })
    .await
    .expect("the message in time");
    assert!((1..=3).contains(&pongs.len()), "{pongs:?}");
    assert_eq!(&pongs.last().unwrap()[..], b"3");
}

#[tokio::test]
async fn a_clients_close_is_echoed_with_its_code_and_reason() {
    let server = TestServer::spawn().await;
    let (mut ann, _welcome) = server.join("ann@x.org", ROOM_ID).await;

    ann.ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();

    let echo = first(&mut ann, |message| match message {
        Message::Close(frame) => Some(frame),
        _ => None,
    })
    .await
    .expect("the answer carries a code");
    assert_eq!(u16::from(echo.code), 1000);
    assert_eq!(echo.reason.as_str(), "bye");
}

#[tokio::test]
async fn a_message_longer_than_64_kib_arrives_whole() {
    let mut limits = test_limits();
    limits.max_text_chars = 40_000;
    limits.max_frame_bytes = 256 * 1024;
    let server = TestServer::spawn_with(test_config(limits)).await;
    let (mut ann, _welcome) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _welcome) = server.join("bob@x.org", ROOM_ID).await;
    let text = "é".repeat(40_000); // 80 000 bytes: the head's 64-bit length

    ann.say(&text).await;

    let event = bob.next_of_type("message").await;
    assert_eq!(event["text"].as_str(), Some(text.as_str()));
}

/// The first frame `pick` takes, skipping the others.
async fn first<T>(client: &mut Client, mut pick: impl FnMut(Message) -> Option<T>) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            if let Some(picked) = pick(client.ws.next().await.unwrap().unwrap()) {
                return picked;
            }
        }
    })
    .await
    .expect("the frame in time")
}
