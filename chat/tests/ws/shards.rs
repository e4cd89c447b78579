//! Rooms spread over two Redis (`REDIS_URL` with two URLs): each room lives on one of them, and
//! every guarantee of one Redis holds per shard: one order, presence, a dead replica's people
//! leaving, and a restarted Redis coming back while the other keeps serving.

use std::time::Duration;

use chat::rooms::redis::Shards;
use serde_json::json;

use crate::redis::{
    Process, REDIS_BACK, Redis, arrive, healthcheck, left_after_a_kill, next_message,
    next_presence_of, one_order, replica_on, shards_url,
};

/// A room id that lives on `shard` of two (the same choice every replica makes).
fn room_on(shard: usize) -> String {
    (0..)
        .map(|i: u32| format!("65f1c0ffee01234567{i:06x}"))
        .find(|room_id| Shards::new(2).of(room_id) == shard)
        .unwrap()
}

/// Whether `redis` holds `room_id`'s presence hash: the room lives there.
async fn holds(redis: &Redis, room_id: &str) -> bool {
    let answer = redis
        .command(&format!("EXISTS chat:room:{room_id}:presence"))
        .await;
    answer.as_deref() == Some(":1")
}

#[tokio::test]
async fn rooms_on_both_shards_deliver_across_replicas_in_one_order_with_presence() {
    let (red, blue) = (Redis::start().await, Redis::start().await);
    let (one, two) = (
        replica_on(&[&red, &blue]).await,
        replica_on(&[&red, &blue]).await,
    );

    for (shard, home, other) in [(0, &red, &blue), (1, &blue, &red)] {
        let room = room_on(shard);
        let (mut ann, _) = arrive(&one, "ann@x.org", &room).await;
        let (mut bob, welcome) = arrive(&two, "bob@x.org", &room).await;
        assert_eq!(welcome["members"], json!(["ann@x.org", "bob@x.org"]));
        let joined = next_presence_of(&mut ann, "joined", "bob@x.org").await;
        assert_eq!(joined["online"], 2, "shard {shard}");
        let (mut cid, welcome) = arrive(&one, "cid@x.org", &room).await;
        assert_eq!(
            welcome["members"],
            json!(["ann@x.org", "bob@x.org", "cid@x.org"])
        );
        let (mut dan, _) = arrive(&two, "dan@x.org", &room).await;
        assert!(
            holds(home, &room).await,
            "room of shard {shard} on its Redis"
        );
        assert!(
            !holds(other, &room).await,
            "room of shard {shard} elsewhere"
        );

        one_order([&mut ann, &mut bob], [&mut cid, &mut dan], 30).await;

        cid.leave().await;
        let left = next_presence_of(&mut bob, "left", "cid@x.org").await;
        assert_eq!(left["online"], 3, "shard {shard}");
    }
}

#[tokio::test]
async fn one_redis_restarted_while_the_other_keeps_serving() {
    let (mut red, blue) = (Redis::start().await, Redis::start().await);
    let (one, two) = (
        replica_on(&[&red, &blue]).await,
        replica_on(&[&red, &blue]).await,
    );
    let (on_red, on_blue) = (room_on(0), room_on(1));
    let (mut ann, _) = arrive(&one, "ann@x.org", &on_red).await;
    let (mut bob, _) = arrive(&two, "bob@x.org", &on_red).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", &on_blue).await;
    let (mut dan, _) = arrive(&two, "dan@x.org", &on_blue).await;
    let (mut one_up, mut two_up) = (
        one.registry.watch_redis().unwrap(),
        two.registry.watch_redis().unwrap(),
    );

    red.kill();
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| !*up).await;
        let _ = two_up.wait_for(|up| !*up).await;
    })
    .await
    .expect("both replicas notice that one Redis is gone");
    assert_eq!(healthcheck(&one).await, (true, true), "healthy, degraded");

    // The other Redis's rooms are still one room across replicas, presence included.
    dan.say("blue while red is down").await;
    for client in [&mut cid, &mut dan] {
        assert_eq!(next_message(client).await.1, "blue while red is down");
    }
    let (mut eve, welcome) = arrive(&two, "eve@x.org", &on_blue).await;
    assert_eq!(
        welcome["members"],
        json!(["cid@x.org", "dan@x.org", "eve@x.org"])
    );
    assert_eq!(
        next_presence_of(&mut cid, "joined", "eve@x.org").await["online"],
        3
    );
    // The dead Redis's rooms are local to each replica meanwhile.
    ann.say("red while red is down").await;
    assert_eq!(next_message(&mut ann).await.1, "red while red is down");

    red.run().await;
    tokio::time::timeout(REDIS_BACK, async {
        let _ = one_up.wait_for(|up| *up).await;
        let _ = two_up.wait_for(|up| *up).await;
    })
    .await
    .expect("both replicas share every room again within 5 s of Redis coming back");
    assert_eq!(healthcheck(&two).await, (true, false), "no longer degraded");

    // Bob never got the local message: the first he gets is the one after the return.
    bob.say("red is back").await;
    for client in [&mut bob, &mut ann] {
        assert_eq!(
            next_message(client).await,
            ("bob@x.org".into(), "red is back".into())
        );
    }
    // Presence was written again into the restarted Redis.
    let (_fay, welcome) = arrive(&one, "fay@x.org", &on_red).await;
    assert_eq!(
        welcome["members"],
        json!(["ann@x.org", "bob@x.org", "fay@x.org"])
    );
    assert!(holds(&red, &on_red).await);
    eve.say("blue all along").await;
    for client in [&mut cid, &mut dan, &mut eve] {
        assert_eq!(next_message(client).await.1, "blue all along");
    }
}

#[tokio::test]
async fn a_killed_replicas_people_leave_the_rooms_of_both_shards() {
    let (red, blue) = (Redis::start().await, Redis::start().await);
    let one = replica_on(&[&red, &blue]).await;
    let (two, _) = Process::start(&shards_url(&[&red, &blue])).await;
    two.until_up().await;
    let (on_red, on_blue) = (room_on(0), room_on(1));
    let (mut ann, _) = arrive(&one, "ann@x.org", &on_red).await;
    let (mut cid, _) = arrive(&one, "cid@x.org", &on_blue).await;
    let (_bob_red, _) = arrive(&two.server, "bob@x.org", &on_red).await;
    let (_bob_blue, _) = arrive(&two.server, "bob@x.org", &on_blue).await;
    for member in [&mut ann, &mut cid] {
        next_presence_of(member, "joined", "bob@x.org").await;
    }

    two.signal("KILL");

    for member in [&mut ann, &mut cid] {
        let left = left_after_a_kill(member, "bob@x.org").await;
        assert_eq!(
            (left["online"].as_u64(), left["last"].as_bool()),
            (Some(1), Some(true))
        );
    }
}

#[tokio::test]
async fn a_room_deleted_on_either_shard_closes_its_members_on_every_replica() {
    let (red, blue) = (Redis::start().await, Redis::start().await);
    let (one, two) = (
        replica_on(&[&red, &blue]).await,
        replica_on(&[&red, &blue]).await,
    );
    for shard in [0, 1] {
        let room = room_on(shard);
        let (mut ann, _) = arrive(&two, "ann@x.org", &room).await;

        // The website reaches replica one, which has nobody in the room.
        assert_eq!(one.notify_deleted(&room, None).await, 202);

        let event = tokio::time::timeout(Duration::from_secs(2), ann.next_of_type("room_deleted"))
            .await
            .expect("told within 2 s");
        assert_eq!(event["room_id"], room.as_str());
        assert_eq!(ann.closed_with().await, 4004);
        // Replica two keeps turning tickets for it away.
        let mut late = two.connect("late@x.org", &room).await;
        assert_eq!(late.next_event().await["type"], "room_deleted");
    }
}
