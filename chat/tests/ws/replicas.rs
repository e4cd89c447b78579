//! Replicas sharing one Redis (`REDIS_URL`): a real `redis-server` on a free port, started by the
//! test, and chat replicas in this process (or the real binary, where a replica must be killed).

use std::time::Duration;

use crate::helpers::{OTHER_ROOM_ID, ROOM_ID};
use crate::redis::{
    Process, REDIS_BACK, Redis, arrive, healthcheck, left_after_a_kill, next_message,
    next_presence_of, one_order, replica,
};

#[tokio::test]
async fn messages_reach_members_on_the_other_replica_both_ways() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;

    ann.say("hello from one").await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(
            next_message(client).await,
            ("ann@x.org".into(), "hello from one".into())
        );
    }
    bob.say("hello from two").await;
    for client in [&mut bob, &mut ann] {
        assert_eq!(
            next_message(client).await,
            ("bob@x.org".into(), "hello from two".into())
        );
    }
}

#[tokio::test]
async fn three_receivers_see_one_order_while_senders_on_two_replicas_interleave() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", ROOM_ID).await;
    let (mut dan, _) = arrive(&two, "dan@x.org", ROOM_ID).await;
    let (mut eve, _) = arrive(&two, "eve@x.org", ROOM_ID).await;

    one_order([&mut ann, &mut bob], [&mut cid, &mut dan, &mut eve], 40).await;
}

#[tokio::test]
async fn presence_counts_people_on_every_replica_and_tabs_on_two_replicas_as_one() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, welcome) = arrive(&one, "ann@x.org", ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["ann@x.org"]));

    let (mut bob, welcome) = arrive(&two, "bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    let joined = next_presence_of(&mut ann, "joined", "bob@x.org").await;
    assert_eq!(
        (joined["online"].as_u64(), joined["first"].as_bool()),
        (Some(2), Some(true))
    );

    // Ann's second tab, on the other replica: still two people.
    let (ann_two, welcome) = two.join("ann@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    for client in [&mut ann, &mut bob] {
        let joined = next_presence_of(client, "joined", "ann@x.org").await;
        assert_eq!(
            (joined["online"].as_u64(), joined["first"].as_bool()),
            (Some(2), Some(false))
        );
    }

    // A third person on replica one sees everyone, once each.
    let (mut cid, welcome) = arrive(&one, "cid@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org", "cid@x.org"])
    );

    // Ann closes the tab on replica one: she is still there on two.
    ann.leave().await;
    let left = next_presence_of(&mut bob, "left", "ann@x.org").await;
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(3), Some(false))
    );
    // ... and then the other one.
    ann_two.leave().await;
    for client in [&mut bob, &mut cid] {
        let left = loop {
            let left = next_presence_of(client, "left", "ann@x.org").await;
            if left["last"] == true {
                break left;
            }
        };
        assert_eq!(left["online"].as_u64(), Some(2));
    }
}

#[tokio::test]
async fn a_room_deleted_through_one_replica_closes_its_members_on_every_replica() {
    let redis = Redis::start().await;
    let (one, two, three) = (
        replica(&redis).await,
        replica(&redis).await,
        replica(&redis).await,
    );
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;

    // The website reaches one replica; the others hear it through Redis.
    assert_eq!(one.notify_deleted(ROOM_ID, None).await, 202);

    for member in [&mut ann, &mut bob] {
        let event =
            tokio::time::timeout(Duration::from_secs(2), member.next_of_type("room_deleted"))
                .await
                .expect("told within 2 s on every replica");
        assert_eq!(event["room_id"], ROOM_ID);
        assert_eq!(member.closed_with().await, 4004);
    }
    // A replica that had nobody in the room turns a ticket still out for it away too.
    let mut late = three.connect("late@x.org", ROOM_ID).await;
    assert_eq!(late.next_event().await["type"], "room_deleted");
    assert_eq!(late.closed_with().await, 4004);
}

#[tokio::test]
async fn rooms_stay_apart_across_replicas() {
    let redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&two, "cid@x.org", ROOM_ID).await;
    let (mut bob, welcome) = arrive(&two, "bob@x.org", OTHER_ROOM_ID).await;
    assert_eq!(welcome["members"], serde_json::json!(["bob@x.org"]));

    ann.say("for the first room").await;
    assert_eq!(next_message(&mut cid).await.1, "for the first room");
    bob.say("for the other room").await;

    // Had ann's message reached bob's room, it would have come first: it was published first.
    assert_eq!(
        next_message(&mut bob).await,
        ("bob@x.org".into(), "for the other room".into())
    );
    assert_eq!(next_message(&mut ann).await.1, "for the first room");
    cid.say("still apart").await;
    assert_eq!(next_message(&mut ann).await.1, "still apart");
}

#[tokio::test]
async fn after_a_redis_restart_members_on_one_replica_kept_talking_and_fan_out_comes_back() {
    let mut redis = Redis::start().await;
    let (one, two) = (replica(&redis).await, replica(&redis).await);
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", ROOM_ID).await;
    let mut one_up = one.registry.watch_redis().unwrap();
    let mut two_up = two.registry.watch_redis().unwrap();

    redis.kill();
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| !*up).await;
        let _ = two_up.wait_for(|up| !*up).await;
    })
    .await
    .expect("both replicas notice that Redis is gone");
    assert_eq!(
        healthcheck(&one).await,
        (true, true),
        "healthy but degraded"
    );

    // Members on the same replica still hear each other.
    ann.say("while Redis is down").await;
    for client in [&mut ann, &mut cid] {
        assert_eq!(next_message(client).await.1, "while Redis is down");
    }

    redis.run().await;
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| *up).await;
        let _ = two_up.wait_for(|up| *up).await;
    })
    .await
    .expect("both replicas share their rooms again within 5 s of Redis coming back");
    assert_eq!(healthcheck(&one).await, (true, false), "no longer degraded");

    bob.say("Redis is back").await;
    for client in [&mut ann, &mut cid, &mut bob] {
        assert_eq!(
            next_message(client).await,
            ("bob@x.org".into(), "Redis is back".into())
        );
    }
    // Presence was rebuilt in the new Redis: a newcomer on either replica sees everyone.
    let (_dan, welcome) = arrive(&two, "dan@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org", "cid@x.org", "dan@x.org"])
    );
    let joined = next_presence_of(&mut ann, "joined", "dan@x.org").await;
    assert_eq!(joined["online"].as_u64(), Some(4));
}

#[tokio::test]
async fn a_killed_replicas_people_leave_the_other_replicas_within_15_seconds() {
    let redis = Redis::start().await;
    let one = replica(&redis).await;
    let (two, _) = Process::start(&redis.url()).await;
    two.until_up().await;
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (_bob, welcome) = arrive(&two.server, "bob@x.org", ROOM_ID).await;
    assert_eq!(
        welcome["members"],
        serde_json::json!(["ann@x.org", "bob@x.org"])
    );
    next_presence_of(&mut ann, "joined", "bob@x.org").await;

    two.signal("KILL");

    let left = left_after_a_kill(&mut ann, "bob@x.org").await;
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(1), Some(true))
    );
}

#[tokio::test]
async fn a_replica_stopped_with_sigterm_takes_its_people_out_at_once() {
    let redis = Redis::start().await;
    let one = replica(&redis).await;
    let (two, _) = Process::start(&redis.url()).await;
    two.until_up().await;
    let (mut ann, _) = arrive(&one, "ann@x.org", ROOM_ID).await;
    let (mut bob, _) = arrive(&two.server, "bob@x.org", ROOM_ID).await;
    next_presence_of(&mut ann, "joined", "bob@x.org").await;

    two.signal("TERM");

    let left = next_presence_of(&mut ann, "left", "bob@x.org").await;
    assert_eq!(
        (left["online"].as_u64(), left["last"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(bob.closed_with().await, 1001);
}
