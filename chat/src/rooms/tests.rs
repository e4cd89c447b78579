//! The registry's behaviour without Redis: seating, fan-out, presence windows, removal races.

use super::*;
use crate::protocol::SUMMARY_NAMES;
use futures_util::FutureExt;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

const ROOM: &str = "65f1c0ffee0123456789abcd";
const OTHER_ROOM: &str = "65f1c0ffee0123456789ffff";

struct Client {
    membership: Membership,
    inbox: Inbox,
    outbox: Outbox,
}

impl Client {
    fn events(&mut self) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Some(next) = self.inbox.try_recv() {
            let text = match &next {
                Outgoing::Event(frame) => frame.text(),
                Outgoing::Direct(direct) => match &**direct {
                    Direct::Reply(frame) => frame.text(),
                    _ => continue,
                },
            };
            events.push(serde_json::from_str(text).unwrap());
        }
        events
    }

    fn is_too_slow(&self) -> bool {
        self.outbox.is_too_slow()
    }

    fn types(&mut self) -> Vec<String> {
        self.events()
            .into_iter()
            .map(|e| {
                serde_json::to_value(e).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn registry() -> RoomRegistry {
    RoomRegistry::new(&Limits::default())
}

const WINDOW: Duration = Duration::from_millis(200);
const BURST: usize = 4;

/// A registry that announces at most `BURST` presence changes per `WINDOW` one by one.
fn bursty_registry() -> RoomRegistry {
    RoomRegistry::new(&Limits {
        presence_window: WINDOW,
        presence_burst: BURST,
        ..Limits::default()
    })
}

fn crowd(registry: &RoomRegistry, from: usize, to: usize) -> Vec<Client> {
    (from..to)
        .map(|i| join(registry, ROOM, &format!("p{i:02}@x.org"), 64))
        .collect()
}

/// A `presence` event's fields: (joined, joined_count, left, left_count, online).
fn summary(event: &ServerEvent) -> (&[String], usize, &[String], usize, usize) {
    match event {
        ServerEvent::Presence {
            joined,
            joined_count,
            left,
            left_count,
            online,
            ..
        } => (joined, *joined_count, left, *left_count, *online),
        other => panic!("expected a presence summary, got {other:?}"),
    }
}

/// Ann alone in the room, her own arrival read and a window gone by.
async fn quiet_room(registry: &RoomRegistry, queue: usize) -> Client {
    let mut ann = join(registry, ROOM, "ann@x.org", queue);
    ann.events();
    let_window_pass().await;
    ann
}

/// Lets the runtime's (paused) clock pass `WINDOW` and every summary due in it go out.
async fn let_window_pass() {
    tokio::time::sleep(WINDOW + Duration::from_millis(1)).await;
}

fn join(registry: &RoomRegistry, room_id: &str, email: &str, queue: usize) -> Client {
    let (outbox, inbox) = Outbox::channel(queue);
    let membership = registry
        .join(
            Newcomer {
                room_id: room_id.into(),
                room: "Rust".into(),
                email: email.into(),
            },
            outbox.clone(),
        )
        .now_or_never()
        .expect("without Redis a join never waits");
    Client {
        membership,
        inbox,
        outbox,
    }
}

#[test]
fn a_newcomer_gets_welcome_then_joined_and_others_get_joined() {
    let registry = registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 16);
    let mut bob = join(&registry, ROOM, "bob@x.org", 16);

    assert_eq!(ann.types(), ["welcome", "joined", "joined"]);
    let bob_events = bob.events();
    match &bob_events[0] {
        ServerEvent::Welcome { members, you, .. } => {
            assert_eq!(members, &["ann@x.org", "bob@x.org"]);
            assert_eq!(you, "bob@x.org");
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    assert!(matches!(
        &bob_events[1],
        ServerEvent::Joined { user, online: 2, first: true, .. } if user == "bob@x.org"
    ));
}

#[test]
fn a_message_reaches_everyone_in_the_room_and_nobody_outside() {
    let registry = registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 16);
    let mut bob = join(&registry, ROOM, "bob@x.org", 16);
    let mut eve = join(&registry, OTHER_ROOM, "eve@x.org", 16);
    ann.events();
    bob.events();
    eve.events();

    ann.membership.say("hello".into());

    for client in [&mut ann, &mut bob] {
        assert!(matches!(
            &client.events()[..],
            [ServerEvent::Message { user, text, .. }] if user == "ann@x.org" && text == "hello"
        ));
    }
    assert!(eve.events().is_empty());
}

#[test]
fn presence_is_per_person_across_tabs() {
    let registry = registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 16);
    let tab1 = join(&registry, ROOM, "bob@x.org", 16);
    let mut tab2 = join(&registry, ROOM, "bob@x.org", 16);

    match &tab2.events()[..] {
        [
            ServerEvent::Welcome { members, .. },
            ServerEvent::Joined {
                first: false,
                online: 2,
                ..
            },
        ] => {
            assert_eq!(members, &["ann@x.org", "bob@x.org"]);
        }
        other => panic!("unexpected events {other:?}"),
    }
    ann.events();
    drop(tab1);
    assert!(matches!(
        &ann.events()[..],
        [ServerEvent::Left {
            last: false,
            online: 2,
            ..
        }]
    ));
    drop(tab2);
    assert!(matches!(
        &ann.events()[..],
        [ServerEvent::Left {
            last: true,
            online: 1,
            ..
        }]
    ));
}

#[test]
fn the_room_disappears_with_its_last_member() {
    let registry = registry();
    let ann = join(&registry, ROOM, "ann@x.org", 16);
    let bob = join(&registry, ROOM, "bob@x.org", 16);
    let eve = join(&registry, OTHER_ROOM, "eve@x.org", 16);
    assert_eq!(registry.room_count(), 2);

    drop(ann);
    assert_eq!(registry.room_count(), 2);
    drop(bob);
    assert_eq!(registry.room_count(), 1);
    drop(eve);
    assert_eq!(registry.room_count(), 0);
}

#[test]
fn a_closed_registry_lets_members_leave_silently() {
    let registry = registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 16);
    let bob = join(&registry, ROOM, "bob@x.org", 16);
    ann.events();

    registry.close();
    drop(bob);

    assert!(ann.events().is_empty());
    drop(ann);
    assert_eq!(registry.room_count(), 0);
}

#[test]
fn a_full_queue_marks_only_that_receiver_too_slow() {
    let registry = registry();
    let mut fast = join(&registry, ROOM, "ann@x.org", 64);
    // welcome + its own joined fill a queue of two.
    let mut slow = join(&registry, ROOM, "bob@x.org", 2);
    fast.events();

    fast.membership.say("one".into());
    fast.membership.say("two".into());

    assert!(slow.is_too_slow());
    assert!(!fast.is_too_slow());
    assert_eq!(fast.types(), ["message", "message"]);
    assert_eq!(slow.types(), ["welcome", "joined"]);
}

#[test]
fn a_receiver_that_keeps_reading_stays_however_many_events_pass_its_queue() {
    let registry = registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 64);
    let mut bob = join(&registry, ROOM, "bob@x.org", 2);
    ann.events();
    bob.events();

    for i in 0..100 {
        ann.membership.say(format!("message {i}"));
        assert_eq!(bob.types(), ["message"], "message {i}");
    }

    assert!(!bob.is_too_slow());
}

#[tokio::test(start_paused = true)]
async fn a_single_join_in_a_quiet_room_is_a_plain_joined_at_once() {
    let registry = bursty_registry();
    let mut ann = quiet_room(&registry, 16).await;

    let _bob = join(&registry, ROOM, "bob@x.org", 16);

    assert!(matches!(
        &ann.events()[..],
        [ServerEvent::Joined { user, online: 2, first: true, .. }] if user == "bob@x.org"
    ));
    let_window_pass().await;
    assert!(ann.events().is_empty(), "no summary follows a quiet join");
}

#[tokio::test(start_paused = true)]
async fn fifty_joins_in_one_window_cost_each_member_the_burst_plus_one_summary() {
    let registry = bursty_registry();
    let mut ann = quiet_room(&registry, 16).await;

    // Ann's queue holds 16 events: one `joined` per newcomer would overflow it.
    let mut newcomers = crowd(&registry, 0, 50);
    let_window_pass().await;

    let events = ann.events();
    assert_eq!(events.len(), BURST + 1, "{events:?}");
    for (i, event) in events[..BURST].iter().enumerate() {
        assert!(
            matches!(
                event,
                ServerEvent::Joined { user, online, .. }
                    if *user == format!("p{i:02}@x.org") && *online == i + 2
            ),
            "{event:?}"
        );
    }
    let (joined, joined_count, left, left_count, online) = summary(&events[BURST]);
    assert_eq!(joined_count, 50 - BURST);
    assert_eq!(joined.len(), SUMMARY_NAMES);
    assert_eq!(
        joined[0],
        format!("p{BURST:02}@x.org"),
        "in order of arrival"
    );
    assert_eq!((left.len(), left_count, online), (0, 0, 51));
    // The last newcomer: its welcome lists everyone, then the summary; nobody was too slow.
    let last = newcomers.last_mut().unwrap();
    assert_eq!(last.types(), ["welcome", "presence"]);
    assert!(newcomers.iter().all(|c| !c.is_too_slow()));
    assert!(!ann.is_too_slow());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_leaves_is_summarized_with_the_right_counts() {
    let registry = bursty_registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 64);
    let mut leavers = crowd(&registry, 0, 30);
    let_window_pass().await;
    ann.events();
    let_window_pass().await;

    leavers.drain(..);
    let_window_pass().await;

    let events = ann.events();
    assert_eq!(events.len(), BURST + 1, "{events:?}");
    assert!(
        events[..BURST]
            .iter()
            .all(|e| matches!(e, ServerEvent::Left { last: true, .. }))
    );
    let (_, joined_count, left, left_count, online) = summary(&events[BURST]);
    assert_eq!((joined_count, left_count, online), (0, 30 - BURST, 1));
    assert_eq!(left.len(), SUMMARY_NAMES);
}

#[tokio::test(start_paused = true)]
async fn a_summary_counts_people_by_their_net_change_over_the_window() {
    let registry = bursty_registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 64);
    let bob = join(&registry, ROOM, "bob@x.org", 64);
    let_window_pass().await;
    ann.events();
    let_window_pass().await;

    let mut crowd = crowd(&registry, 0, BURST); // announced one by one
    let cid = join(&registry, ROOM, "cid@x.org", 64); // folded from here on
    let dan = join(&registry, ROOM, "dan@x.org", 64);
    let _bob_second_tab = join(&registry, ROOM, "bob@x.org", 64);
    drop(bob); // bob still has a tab: no change of person
    drop(cid); // came and went within the window: nets out
    crowd.pop(); // announced as joined before the burst, gone now
    let_window_pass().await;

    let events = ann.events();
    assert_eq!(events.len(), BURST + 1, "{events:?}");
    let (joined, joined_count, left, left_count, online) = summary(&events[BURST]);
    assert_eq!((joined, joined_count), (&["dan@x.org".to_owned()][..], 1));
    let gone = format!("p{:02}@x.org", BURST - 1);
    assert_eq!((left, left_count), (&[gone][..], 1));
    // ann, bob, dan and the crowd but its last.
    assert_eq!(online, 3 + BURST - 1);
    drop(dan);
}

#[tokio::test(start_paused = true)]
async fn after_a_burst_a_quiet_room_announces_one_by_one_again() {
    let registry = bursty_registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 64);
    let _crowd = crowd(&registry, 0, 20);
    let_window_pass().await;
    ann.events();
    tokio::time::sleep(2 * WINDOW).await;

    let _bob = join(&registry, ROOM, "bob@x.org", 64);

    assert_eq!(ann.types(), ["joined"]);
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_of_joins_gets_one_summary_per_window() {
    let registry = bursty_registry();
    let mut ann = quiet_room(&registry, 64).await;

    // 100 joins, one every 10 ms: 20 per window, for five windows.
    let mut crowd = Vec::new();
    for i in 0..100 {
        crowd.push(join(&registry, ROOM, &format!("p{i:03}@x.org"), 64));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let_window_pass().await;

    let events = ann.events();
    let summaries: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Presence { joined_count, .. } => Some(*joined_count),
            _ => None,
        })
        .collect();
    let one_by_one = events.len() - summaries.len();
    assert_eq!(one_by_one, BURST, "{events:?}");
    assert!(summaries.len() <= 6, "{summaries:?}");
    assert_eq!(summaries.iter().sum::<usize>(), 100 - BURST);
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Presence { online: 101, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_closed_registry_sends_no_pending_summary() {
    let registry = bursty_registry();
    let mut ann = join(&registry, ROOM, "ann@x.org", 64);
    let _crowd = crowd(&registry, 0, 20);
    ann.events();

    registry.close();
    let_window_pass().await;

    assert!(ann.events().is_empty());
}

#[test]
fn joins_racing_the_last_leave_never_land_in_a_removed_room() {
    for round in 0..300 {
        let registry = registry();
        let last = join(&registry, ROOM, "ann@x.org", 16);
        let start = Arc::new(Barrier::new(3));
        let leaving = thread::spawn({
            let start = start.clone();
            move || {
                start.wait();
                drop(last);
            }
        });
        let joining: Vec<_> = ["bob@x.org", "cid@x.org"]
            .into_iter()
            .map(|email| {
                let (registry, start) = (registry.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    join(&registry, ROOM, email, 16)
                })
            })
            .collect();
        leaving.join().unwrap();
        let mut joined: Vec<Client> = joining.into_iter().map(|t| t.join().unwrap()).collect();

        let mapped = lock(&registry.shared.rooms).get(ROOM).cloned();
        for client in &joined {
            let room = &client.membership.room;
            assert!(
                !lock(&room.state).removed,
                "round {round}: seated in a removed room"
            );
            assert!(
                mapped.as_ref().is_some_and(|m| Arc::ptr_eq(m, room)),
                "round {round}: seated in a room the registry no longer holds"
            );
        }
        // And they hear each other.
        joined[0].events();
        joined[1].events();
        joined[0].membership.say("hi".into());
        assert_eq!(joined[1].types(), ["message"], "round {round}");
    }
}
