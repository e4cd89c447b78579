//! The room registry: who is in which room, and delivering an event to a room.
//!
//! This is the only state the service shares between connections, and the only module that knows
//! how fan-out happens. Its interface is deliberately small — [`RoomRegistry::join`] returns a
//! [`Membership`]; a membership can [`say`](Membership::say) something to its room and leaves the
//! room when dropped; [`RoomRegistry::room_count`] is a read-only gauge. Today rooms live in this
//! process. When one process is no longer enough, a registry with the same interface can publish
//! `say` to a room channel on Redis pub/sub or NATS and subscribe to that channel on the first
//! local join, without the handshake, the connection code or the event formats changing.
//!
//! Locking: the map of rooms has one std `Mutex`, each room another; the map lock is taken
//! before a room's, and neither is ever held across an `.await` (nothing here is async).
//! Delivering never waits: every receiver has a bounded queue, and a receiver whose queue is full
//! is marked too slow (its connection then closes with 4008) instead of delaying the others.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::protocol::{AnnouncedLimits, Frame, ServerEvent};

/// The rooms of this process. Cloning shares the same registry.
#[derive(Clone)]
pub struct RoomRegistry {
    shared: Arc<Shared>,
}

struct Shared {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    next_seat: AtomicU64,
    limits: AnnouncedLimits,
    /// Set at shutdown: everyone is leaving, so nobody needs to hear about it.
    closing: AtomicBool,
}

struct Room {
    id: String,
    title: String,
    state: Mutex<RoomState>,
}

#[derive(Default)]
struct RoomState {
    /// One seat per open connection.
    seats: HashMap<u64, Seat>,
    /// Open connections per person: presence is per person, across tabs. Sorted, so `members`
    /// comes out in a stable order.
    tabs: BTreeMap<String, usize>,
}

struct Seat {
    outbox: Outbox,
}

/// Where the events for one connection go: its bounded queue, and the signal raised when that
/// queue overflows.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Frame>,
    too_slow: CancellationToken,
}

impl Outbox {
    pub fn new(queue: mpsc::Sender<Frame>, too_slow: CancellationToken) -> Self {
        Self { queue, too_slow }
    }

    /// Queues `frame` without waiting. A full queue marks the receiver too slow; it gets nothing
    /// more, so the events it does get have no gap in the middle.
    pub fn deliver(&self, frame: &Frame) {
        if self.too_slow.is_cancelled() {
            return;
        }
        match self.queue.try_send(frame.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.too_slow.cancel(),
            // The connection is already going away; its membership leaves in a moment.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// Who is joining which room.
pub struct Newcomer {
    pub room_id: String,
    pub room: String,
    pub email: String,
}

/// One connection's place in a room. Dropping it leaves the room (announcing `left`) and removes
/// the room when it was the last member — whatever ended the connection.
pub struct Membership {
    registry: RoomRegistry,
    room: Arc<Room>,
    seat: u64,
    email: String,
}

impl RoomRegistry {
    /// A registry whose `welcome` events announce `limits`.
    pub fn new(limits: AnnouncedLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                rooms: Mutex::new(HashMap::new()),
                next_seat: AtomicU64::new(1),
                limits,
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// Seats a connection in its room (creating the room on first join), sends it `welcome`, then
    /// sends `joined` to everyone in the room, the newcomer included.
    pub fn join(&self, newcomer: Newcomer, outbox: Outbox) -> Membership {
        let seat = self.shared.next_seat.fetch_add(1, Ordering::Relaxed);
        let mut rooms = lock(&self.shared.rooms);
        let room = rooms
            .entry(newcomer.room_id.clone())
            .or_insert_with(|| {
                Arc::new(Room {
                    id: newcomer.room_id.clone(),
                    title: newcomer.room.clone(),
                    state: Mutex::default(),
                })
            })
            .clone();
        let mut state = lock(&room.state);
        let tabs = state.tabs.entry(newcomer.email.clone()).or_insert(0);
        *tabs += 1;
        let first = *tabs == 1;
        let welcome = ServerEvent::Welcome {
            room: room.title.clone(),
            room_id: room.id.clone(),
            you: newcomer.email.clone(),
            members: state.tabs.keys().cloned().collect(),
            limits: self.shared.limits.clone(),
        };
        outbox.deliver(&welcome.to_frame());
        state.seats.insert(seat, Seat { outbox });
        state.broadcast(&ServerEvent::Joined {
            user: newcomer.email.clone(),
            online: state.tabs.len(),
            at: OffsetDateTime::now_utc(),
            first,
        });
        drop(state);
        drop(rooms);
        Membership {
            registry: self.clone(),
            room,
            seat,
            email: newcomer.email,
        }
    }

    /// Stops announcing `left` for the rest of this registry's life: at shutdown every member
    /// leaves, and telling each of N members about the other N - 1 would cost N² events.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
    }

    /// How many rooms have at least one member (a gauge for tests and logs).
    pub fn room_count(&self) -> usize {
        lock(&self.shared.rooms).len()
    }
}

impl Membership {
    /// Sends a chat message to everyone in the room, the sender included. Everyone receives the
    /// room's messages in the same order: the order in which they passed through here.
    pub fn say(&self, text: String) {
        let state = lock(&self.room.state);
        // Stamped under the lock, so timestamps never run backwards within a room.
        state.broadcast(&ServerEvent::Message {
            user: self.email.clone(),
            text,
            at: OffsetDateTime::now_utc(),
        });
    }

    /// The room this membership is in.
    pub fn room_id(&self) -> &str {
        &self.room.id
    }

    /// Whose membership this is.
    pub fn email(&self) -> &str {
        &self.email
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut rooms = lock(&self.registry.shared.rooms);
        let mut state = lock(&self.room.state);
        if state.seats.remove(&self.seat).is_none() {
            return;
        }
        let closing = self.registry.shared.closing.load(Ordering::Relaxed);
        let last = match state.tabs.get_mut(&self.email) {
            Some(tabs) if *tabs > 1 => {
                *tabs -= 1;
                false
            }
            _ => {
                state.tabs.remove(&self.email);
                true
            }
        };
        if !closing {
            state.broadcast(&ServerEvent::Left {
                user: self.email.clone(),
                online: state.tabs.len(),
                at: OffsetDateTime::now_utc(),
                last,
            });
        }
        if state.seats.is_empty() {
            rooms.remove(&self.room.id);
        }
    }
}

impl RoomState {
    /// Serializes `event` once and queues the same bytes for every seat.
    fn broadcast(&self, event: &ServerEvent) {
        let frame = event.to_frame();
        for seat in self.seats.values() {
            seat.outbox.deliver(&frame);
        }
    }
}

/// Locks `mutex`, carrying on after a panic elsewhere: the registry's invariants hold between
/// statements, and refusing every later connection would be worse.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    const ROOM: &str = "65f1c0ffee0123456789abcd";
    const OTHER_ROOM: &str = "65f1c0ffee0123456789ffff";

    struct Client {
        membership: Membership,
        inbox: mpsc::Receiver<Frame>,
        too_slow: CancellationToken,
    }

    impl Client {
        fn events(&mut self) -> Vec<ServerEvent> {
            let mut events = Vec::new();
            while let Ok(frame) = self.inbox.try_recv() {
                events.push(serde_json::from_str(frame.as_str()).unwrap());
            }
            events
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
        RoomRegistry::new(AnnouncedLimits::from(&Limits::default()))
    }

    fn join(registry: &RoomRegistry, room_id: &str, email: &str, queue: usize) -> Client {
        let (tx, inbox) = mpsc::channel(queue);
        let too_slow = CancellationToken::new();
        let membership = registry.join(
            Newcomer {
                room_id: room_id.into(),
                room: "Rust".into(),
                email: email.into(),
            },
            Outbox::new(tx, too_slow.clone()),
        );
        Client {
            membership,
            inbox,
            too_slow,
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
        assert!(
            matches!(&bob_events[1], ServerEvent::Joined { user, online: 2, first: true, .. } if user == "bob@x.org")
        );
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
            assert!(
                matches!(&client.events()[..], [ServerEvent::Message { user, text, .. }] if user == "ann@x.org" && text == "hello")
            );
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

        assert!(slow.too_slow.is_cancelled());
        assert!(!fast.too_slow.is_cancelled());
        assert_eq!(fast.types(), ["message", "message"]);
        assert_eq!(slow.types(), ["welcome", "joined"]);
    }
}
