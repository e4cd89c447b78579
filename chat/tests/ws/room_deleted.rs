//! A room its owner deletes: the website's notice closes everyone in it with `room_deleted` and
//! 4004, a ticket still out for it opens no room, and a notice that is not the website's changes
//! nothing.

use std::time::Duration;

use contract::{NoticeIssuer, Secret};
use serde_json::json;

use crate::helpers::{OTHER_ROOM_ID, ROOM_ID, SECRET, TestServer, jwt_by_hand, ticket};

/// The contract: members learn of a deletion within this.
const TOLD_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test]
async fn everyone_in_a_deleted_room_is_told_and_closed_with_4004() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@x.org", ROOM_ID).await;
    let (mut eve, _) = server.join("eve@x.org", OTHER_ROOM_ID).await;

    assert_eq!(server.notify_deleted(ROOM_ID, None).await, 202);

    for member in [&mut ann, &mut bob] {
        let event = tokio::time::timeout(TOLD_WITHIN, member.next_of_type("room_deleted"))
            .await
            .expect("told within 2 s");
        assert_eq!(event["room_id"], ROOM_ID);
        assert!(event["at"].is_string());
        assert_eq!(member.closed_with().await, 4004);
    }
    // Another room goes on as before.
    eve.say("still here").await;
    assert_eq!(eve.next_of_type("message").await["text"], "still here");
    assert_eq!(server.registry.room_count(), 1);
}

#[tokio::test]
async fn nothing_said_after_the_deletion_reaches_anyone() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@x.org", ROOM_ID).await;
    ann.next_of_type("joined").await; // bob's

    assert_eq!(server.notify_deleted(ROOM_ID, None).await, 202);
    // Bob types before his page has read the notice.
    bob.say("anyone?").await;

    let mut seen_by_ann = Vec::new();
    while let Some(event) = tokio::time::timeout(TOLD_WITHIN, ann.ws_next_event())
        .await
        .unwrap()
    {
        seen_by_ann.push(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen_by_ann.last().map(String::as_str), Some("room_deleted"));
    assert!(
        !seen_by_ann.iter().any(|t| t == "message" || t == "left"),
        "{seen_by_ann:?}"
    );
}

#[tokio::test]
async fn a_ticket_still_valid_for_a_deleted_room_opens_no_room() {
    let server = TestServer::spawn().await;
    assert_eq!(server.notify_deleted(ROOM_ID, None).await, 202);

    let mut late = server.connect("late@x.org", ROOM_ID).await;

    assert_eq!(late.next_event().await["type"], "room_deleted");
    assert_eq!(late.closed_with().await, 4004);
    assert_eq!(server.registry.room_count(), 0);
}

#[tokio::test]
async fn a_notice_that_is_not_the_websites_changes_nothing() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |room: &str, aud: &str, iat: u64| {
        json!({
            "room_id": room, "iat": iat, "exp": iat + 60, "iss": "website", "aud": aud
        })
    };
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let refused = [
        (
            "forged (another secret)",
            jwt_by_hand(
                &header,
                &claims(ROOM_ID, "chat.room_deleted", now),
                b"not the secret, but 32 bytes long",
            ),
        ),
        (
            "expired",
            jwt_by_hand(
                &header,
                &claims(ROOM_ID, "chat.room_deleted", now - 600),
                SECRET.as_bytes(),
            ),
        ),
        (
            "for another room",
            NoticeIssuer::new(&Secret::new(SECRET).unwrap())
                .issue(OTHER_ROOM_ID)
                .unwrap(),
        ),
        (
            "wrong audience",
            jwt_by_hand(&header, &claims(ROOM_ID, "chat", now), SECRET.as_bytes()),
        ),
        ("a chat ticket", ticket("ann@x.org", ROOM_ID)),
    ];
    for (case, token) in refused {
        assert_eq!(
            server.notify_deleted(ROOM_ID, Some(&token)).await,
            401,
            "{case}"
        );
    }
    let path = contract::notice::notice_path(ROOM_ID);
    assert_eq!(
        server
            .http(&format!("GET {path} HTTP/1.1\r\nHost: chat\r\n\r\n"))
            .await,
        405
    );
    assert_eq!(
        server
            .http("POST /internal/anything HTTP/1.1\r\nHost: chat\r\nContent-Length: 0\r\n\r\n")
            .await,
        404
    );
    let no_notice = format!("POST {path} HTTP/1.1\r\nHost: chat\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(server.http(&no_notice).await, 401);

    // Ann was never told anything, and her room still works.
    ann.say("hello").await;
    assert_eq!(ann.next_of_type("message").await["text"], "hello");
}
