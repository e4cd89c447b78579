//! Rooms: who hears what, in which order, and presence across tabs.

use serde_json::Value;

use crate::helpers::{OTHER_ROOM_ID, ROOM_ID, TestServer};

fn is_rfc3339_utc(at: &Value) -> bool {
    at.as_str()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|t| t.offset().is_utc())
}

#[tokio::test]
async fn three_people_see_welcome_joined_messages_and_left_in_order() {
    let server = TestServer::spawn().await;

    let (mut ann, welcome) = server.join("ann@x.org", ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["ann@x.org"]));
    assert!(welcome["limits"]["max_text_chars"].is_u64());
    let joined = ann.next_event().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["user"], "ann@x.org");
    assert_eq!(joined["online"], 1);
    assert!(is_rfc3339_utc(&joined["at"]), "{joined}");

    let (mut bob, welcome) = server.join("bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    let (mut cid, _) = server.join("cid@x.org", ROOM_ID).await;

    // Everyone hears each join after their own, the newcomer included.
    for (client, joins) in [
        (&mut ann, vec!["bob@x.org", "cid@x.org"]),
        (&mut bob, vec!["bob@x.org", "cid@x.org"]),
        (&mut cid, vec!["cid@x.org"]),
    ] {
        for user in joins {
            let event = client.next_event().await;
            assert_eq!(
                (event["type"].as_str(), event["user"].as_str()),
                (Some("joined"), Some(user))
            );
        }
    }

    ann.say("one").await;
    bob.say("two").await;
    ann.say("three").await;
    // The server accepts bob's message in whichever order the sockets are read; what matters is
    // that all three receivers see the same order, and each sender's own order is kept.
    let mut orders = Vec::new();
    for client in [&mut ann, &mut bob, &mut cid] {
        let mut order = Vec::new();
        for _ in 0..3 {
            let event = client.next_event().await;
            assert_eq!(event["type"], "message", "{event}");
            assert!(is_rfc3339_utc(&event["at"]), "{event}");
            order.push(format!(
                "{}:{}",
                event["user"].as_str().unwrap(),
                event["text"].as_str().unwrap()
            ));
        }
        orders.push(order);
    }
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[1], orders[2]);
    let ann_only: Vec<_> = orders[0].iter().filter(|m| m.starts_with("ann")).collect();
    assert_eq!(ann_only, ["ann@x.org:one", "ann@x.org:three"]);

    cid.leave().await;
    for client in [&mut ann, &mut bob] {
        let left = client.next_event().await;
        assert_eq!(left["type"], "left");
        assert_eq!(left["user"], "cid@x.org");
        assert_eq!(left["online"], 2);
        assert_eq!(left["last"], true);
        assert!(is_rfc3339_utc(&left["at"]), "{left}");
    }
}

#[tokio::test]
async fn a_sender_receives_its_own_message_with_the_text_unchanged() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;

    ann.say("<b>\"hi\" ünïcødé</b>").await;

    let message = ann.next_of_type("message").await;
    assert_eq!(message["user"], "ann@x.org");
    assert_eq!(message["text"], "<b>\"hi\" ünïcødé</b>");
}

#[tokio::test]
async fn presence_counts_a_person_once_across_tabs() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    ann.next_of_type("joined").await;

    let (_bob_tab1, _) = server.join("bob@x.org", ROOM_ID).await;
    let first = ann.next_of_type("joined").await;
    assert_eq!(
        (first["first"].as_bool(), first["online"].as_u64()),
        (Some(true), Some(2))
    );

    let (bob_tab2, welcome) = server.join("bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    let second = ann.next_of_type("joined").await;
    assert_eq!(second["user"], "bob@x.org");
    assert_eq!(
        (second["first"].as_bool(), second["online"].as_u64()),
        (Some(false), Some(2))
    );

    bob_tab2.leave().await;
    let left = ann.next_of_type("left").await;
    assert_eq!(
        (left["last"].as_bool(), left["online"].as_u64()),
        (Some(false), Some(2))
    );

    drop(_bob_tab1);
    let left = ann.next_of_type("left").await;
    assert_eq!(
        (left["last"].as_bool(), left["online"].as_u64()),
        (Some(true), Some(1))
    );
}

#[tokio::test]
async fn rooms_do_not_hear_each_other() {
    let server = TestServer::spawn().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut eve, _) = server.join("eve@x.org", OTHER_ROOM_ID).await;
    ann.next_of_type("joined").await;
    eve.next_of_type("joined").await;

    ann.say("for room one").await;
    eve.say("for room two").await;

    assert_eq!(ann.next_event().await["text"], "for room one");
    assert_eq!(eve.next_event().await["text"], "for room two");
    // Had anything crossed over it would be queued before this second message.
    ann.say("again").await;
    assert_eq!(ann.next_event().await["text"], "again");
}

#[tokio::test]
async fn a_room_disappears_when_its_last_member_leaves() {
    let server = TestServer::spawn().await;
    let (ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@x.org", ROOM_ID).await;
    let (eve, _) = server.join("eve@x.org", OTHER_ROOM_ID).await;
    assert_eq!(server.registry.room_count(), 2);

    ann.leave().await;
    bob.next_of_type("left").await;
    assert_eq!(server.registry.room_count(), 2);

    // `leave` returns once the server answered the close, and it leaves the room before that.
    bob.leave().await;
    assert_eq!(server.registry.room_count(), 1);
    eve.leave().await;
    assert_eq!(server.registry.room_count(), 0);

    let (_newcomer, welcome) = server.join("dan@x.org", ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["dan@x.org"]));
}
