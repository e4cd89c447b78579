//! Presence in a crowd: bursts of joins and leaves are summarized, and joins racing a room's
//! last leave never land in a removed room.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{Client, ROOM_ID, TestServer, test_config, test_limits};

/// Presence changes announced one by one per window in these tests.
const BURST: usize = 4;

/// A server whose rooms announce at most `BURST` presence changes per window one by one. The
/// window is long, so a crowd that connects at once lands in one window even on a slow machine.
async fn bursty_server() -> TestServer {
    TestServer::spawn_with(test_config(chat::Limits {
        presence_window: Duration::from_secs(2),
        presence_burst: BURST,
        ..test_limits()
    }))
    .await
}

async fn crowd(server: &TestServer, size: usize) -> Vec<Client> {
    let joining = (0..size).map(|i| server.connect_as(format!("p{i:02}@x.org")));
    join_all(joining).await
}

/// Reads `client`'s presence events until they account for `joins` people joining; returns them.
async fn presence_until_joined(client: &mut Client, joins: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut counted = 0;
    while counted < joins {
        let event = client.next_event().await;
        counted += match event["type"].as_str() {
            Some("joined") if event["first"] == true => 1,
            Some("presence") => event["joined_count"].as_u64().unwrap(),
            Some("welcome" | "joined") => 0,
            _ => panic!("unexpected event during the burst: {event}"),
        };
        if event["type"] != "welcome" {
            events.push(event);
        }
    }
    events
}

#[tokio::test]
async fn fifty_joins_at_once_cost_each_member_a_bounded_number_of_events() {
    let server = bursty_server().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    ann.next_of_type("joined").await;

    let mut newcomers = crowd(&server, 50).await;

    let events = presence_until_joined(&mut ann, 50).await;
    // BURST announced one by one, then one summary per window (the crowd fits in one or two).
    assert!(
        events.len() <= BURST + 2,
        "{} events: {events:?}",
        events.len()
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "presence", "{summary}");
    assert_eq!(summary["online"], 51);
    assert!(summary["joined"].as_array().unwrap().len() <= chat::protocol::SUMMARY_NAMES);
    assert_eq!(summary["left_count"], 0);

    // Every newcomer is still connected (none was dropped as too slow) and heard about the
    // crowd in a bounded number of events too.
    ann.say("all here").await;
    for newcomer in &mut newcomers {
        let mut presence = 0;
        loop {
            let event = newcomer.next_event().await;
            match event["type"].as_str() {
                Some("message") => break,
                Some("joined" | "presence") => presence += 1,
                _ => {}
            }
        }
        assert!(presence <= BURST + 2, "{presence} presence events");
    }
}

#[tokio::test]
async fn a_crowd_leaving_at_once_is_summarized_with_the_right_counts() {
    let server = bursty_server().await;
    let (mut ann, _) = server.join("ann@x.org", ROOM_ID).await;
    let crowd = crowd(&server, 30).await;
    presence_until_joined(&mut ann, 31).await;

    join_all(crowd.into_iter().map(Client::leave)).await;

    let mut gone = 0;
    let mut events = 0;
    let mut online = None;
    while gone < 30 {
        let event = ann.next_event().await;
        events += 1;
        gone += match event["type"].as_str() {
            Some("left") => 1,
            Some("presence") => event["left_count"].as_u64().unwrap(),
            _ => panic!("unexpected event: {event}"),
        };
        online = event["online"].as_u64();
    }
    assert!(events <= BURST + 2, "{events} events");
    assert_eq!(online, Some(1));
}

#[tokio::test]
async fn joins_racing_the_last_leave_all_end_up_in_one_live_room() {
    let server = TestServer::spawn().await;
    for round in 0..5 {
        let (last, _) = server.join("ann@x.org", ROOM_ID).await;

        let (_, mut joined) = tokio::join!(last.leave(), crowd(&server, 12));

        // A later newcomer is heard by every one of them: nobody sits in a removed room.
        let (mut zed, _) = server.join("zed@x.org", ROOM_ID).await;
        zed.say("hello").await;
        for client in &mut joined {
            let message = client.next_of_type("message").await;
            assert_eq!(message["text"], "hello", "round {round}");
        }
        assert_eq!(server.registry.room_count(), 1, "round {round}");
        zed.leave().await;
        join_all(joined.into_iter().map(Client::leave)).await;
        assert_eq!(server.registry.room_count(), 0, "round {round}");
    }
}

#[tokio::test]
async fn a_welcome_listing_a_big_room_arrives_whatever_its_size() {
    // The welcome grows with the room, past any size fixed for other events (frames here are at
    // most 1 KiB, which once capped the write buffer at 12 KiB): 40 members with 400-byte
    // addresses make a 16 KiB welcome.
    let server = TestServer::spawn().await;
    let long = |i: usize| format!("{i:02}{}@x.org", "a".repeat(390));
    let members = join_all((0..40).map(|i| server.connect_as(long(i)))).await;

    let (_newcomer, welcome) = server.join("zed@x.org", ROOM_ID).await;

    assert_eq!(welcome["members"].as_array().unwrap().len(), 41);
    assert!(welcome.to_string().len() > 12 * 1024);
    drop(members);
}
