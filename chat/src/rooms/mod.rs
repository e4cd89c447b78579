//! The room registry: who is in which room, and delivering an event to a room.
//!
//! [`RoomRegistry::join`](crate::rooms::RoomRegistry::join) seats a connection and returns a
//! `Membership`, which leaves its room when dropped. With `REDIS_URL` the same interface spans
//! every replica (`redis`, which hands the registry what it receives as an `Inbound`,
//! inbound.rs). The locking and presence rules: chat/README.md, "Rooms inside".

mod deleted;
mod everywhere;
mod inbound;
mod outbox;
mod presence;
pub mod redis;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::config::{Limits, RedisUrls};
use crate::framing::TextFrame;
use crate::metrics::{Dropped, Metrics};
use crate::protocol::{self, AnnouncedLimits, Frame, ServerEvent};
use crate::sync::lock;
use everywhere::{Everywhere, Remote};
use inbound::{Inbound, RoomHandle, Snapshot, WeakRegistry};
use outbox::Seat;
pub use outbox::{Direct, Inbox, Outbox, Outgoing};
use presence::{Change, Presence, PresenceRule};
use redis::{Cluster, Control, Publish};

/// The rooms of this process. Cloning shares the same registry.
#[derive(Clone)]
pub struct RoomRegistry {
    shared: Arc<Shared>,
}

struct Shared {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    next_seat: AtomicU64,
    limits: AnnouncedLimits,
    presence: PresenceRule,
    /// Set at shutdown: everyone is leaving, so nobody needs to hear about it.
    closing: AtomicBool,
    cluster: Option<Arc<Cluster>>,
    /// A ticket issued just before a deletion still opens a socket, which must land in no room.
    deleted: Mutex<HashMap<String, Instant>>,
    metrics: Metrics,
}

/// One open room on this replica.
pub struct Room {
    id: String,
    title: String,
    state: Mutex<RoomState>,
    /// With Redis: set once the room is subscribed to and knows who is in it elsewhere.
    loaded: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct RoomState {
    /// The last member left and the room is out of the map: a join that still holds it must
    /// start over.
    removed: bool,
    /// Its owner deleted the room: nothing more is broadcast.
    deleted: bool,
    seats: HashMap<u64, Seat>,
    /// Presence is per person, across tabs; sorted, so `members` comes out in a stable order.
    tabs: BTreeMap<String, usize>,
    presence: Presence,
    /// With Redis: who is in the room on every replica, as the room channel told it.
    everywhere: Option<Everywhere>,
    /// With Redis, while the room loads who is where: what the channel brought meanwhile, applied
    /// on top of the snapshot.
    held: Option<Vec<Remote>>,
    metrics: Metrics,
}

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
    /// A registry whose rooms live in this process.
    pub fn new(limits: &Limits) -> Self {
        Self::build(limits, None, Metrics::off())
    }

    /// [`RoomRegistry::new`] counting into `metrics`.
    pub fn counted(limits: &Limits, metrics: Metrics) -> Self {
        Self::build(limits, None, metrics)
    }

    /// A registry whose rooms span every replica sharing the Redis at `urls`. Needs a Tokio
    /// runtime; does not wait for Redis: until it answers, rooms are local to this replica.
    pub fn shared_through(
        limits: &Limits,
        urls: &RedisUrls,
        metrics: Metrics,
    ) -> Result<Self, fred::error::Error> {
        let (cluster, receivers) = Cluster::new(urls, metrics.clone())?;
        let cluster = Arc::new(cluster);
        let registry = Self::build(limits, Some(cluster.clone()), metrics);
        cluster.start(receivers, WeakRegistry(Arc::downgrade(&registry.shared)));
        Ok(registry)
    }

    fn build(limits: &Limits, cluster: Option<Arc<Cluster>>, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                rooms: Mutex::new(HashMap::new()),
                next_seat: AtomicU64::new(1),
                limits: AnnouncedLimits::from(limits),
                presence: PresenceRule {
                    window: limits.presence_window,
                    burst: limits.presence_burst,
                },
                closing: AtomicBool::new(false),
                cluster,
                deleted: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// `None` without Redis; otherwise whether rooms are shared through it right now (`false`:
    /// degraded, each replica's rooms are its own until Redis is back).
    pub fn redis_up(&self) -> Option<bool> {
        self.shared.cluster.as_ref().map(|cluster| cluster.is_up())
    }

    /// Resolves once rooms are shared through Redis (at once without Redis).
    pub async fn wait_for_redis(&self) {
        if let Some(mut up) = self.watch_redis() {
            let _ = up.wait_for(|up| *up).await;
        }
    }

    pub fn watch_redis(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.shared
            .cluster
            .as_ref()
            .map(|cluster| cluster.watch_up())
    }

    /// Seats a connection, sends it `welcome`, then announces the join to the room. With Redis
    /// the first join of a room here waits for the room to load, and the `joined` comes back
    /// through the room's channel; without Redis it never waits.
    pub async fn join(&self, newcomer: Newcomer, outbox: Outbox) -> Membership {
        let seat = self.shared.next_seat.fetch_add(1, Ordering::Relaxed);
        loop {
            if self.was_deleted(&newcomer.room_id) {
                return self.turn_away(newcomer, &outbox, seat);
            }
            let room = self.find_or_open(&newcomer);
            if let Some(cluster) = &self.shared.cluster {
                room.loaded.get_or_init(|| cluster.load(&room)).await;
            }
            let mut state = lock(&room.state);
            if state.removed {
                // Its last member left between the two locks; the map no longer holds it.
                continue;
            }
            if state.deleted || self.was_deleted(&room.id) {
                // Deleted since the check above: a fresh room opened for this join goes again.
                state.deleted = true;
                if state.seats.is_empty() {
                    state.removed = true;
                    self.unmap(&room);
                }
                drop(state);
                return self.turn_away(newcomer, &outbox, seat);
            }
            let tabs = state.tabs.entry(newcomer.email.clone()).or_insert(0);
            *tabs += 1;
            let (first, tabs) = (*tabs == 1, *tabs);
            let members = match &state.everywhere {
                None => state.tabs.keys().cloned().collect(),
                Some(everywhere) => {
                    let mut members: Vec<String> = everywhere
                        .people
                        .keys()
                        .chain(state.tabs.keys())
                        .cloned()
                        .collect();
                    members.sort();
                    members.dedup();
                    members
                }
            };
            let welcome = ServerEvent::Welcome {
                room: room.title.clone(),
                room_id: room.id.clone(),
                you: newcomer.email.clone(),
                members,
                limits: self.shared.limits.clone(),
            };
            let place = outbox.seat();
            let _ = place.deliver(&TextFrame::encode(&welcome));
            state.seats.insert(seat, place);
            let summary_due = match &self.shared.cluster {
                None => state.announce(
                    &newcomer.email,
                    Change::Joined { first },
                    self.shared.presence,
                ),
                // Queued under the room's lock: this replica's changes reach Redis in order.
                Some(cluster) => {
                    cluster.publish(Publish::Tabs {
                        room_id: room.id.clone(),
                        user: newcomer.email.clone(),
                        tabs,
                    });
                    None
                }
            };
            drop(state);
            if let Some(due) = summary_due {
                self.send_summary_at(&room, due);
            }
            return Membership {
                registry: self.clone(),
                room,
                seat,
                email: newcomer.email,
            };
        }
    }

    /// Takes `room` out of the map (unless it was opened again meanwhile) and, with Redis, stops
    /// listening to it. Called under the room's lock, with `removed` set.
    fn unmap(&self, room: &Arc<Room>) {
        let mut rooms = lock(&self.shared.rooms);
        if rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.id);
        }
        drop(rooms);
        if let Some(cluster) = &self.shared.cluster
            && !self.closing()
        {
            cluster.control(Control::Unsubscribe {
                room_id: room.id.clone(),
            });
        }
    }

    /// Stops announcing `left` for the rest of this registry's life: at shutdown every member
    /// leaves, and telling each of N members about the other N - 1 would cost N² events.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
    }

    /// With Redis, at shutdown: takes this replica's people out of every room at once, so the
    /// other replicas announce them as `left` without waiting for liveness to expire.
    pub async fn leave_cluster(&self) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.leave().await;
        }
    }

    pub fn room_count(&self) -> usize {
        lock(&self.shared.rooms).len()
    }

    /// The only work done under the map's lock on the way in.
    fn find_or_open(&self, newcomer: &Newcomer) -> Arc<Room> {
        let clustered = self.shared.cluster.is_some();
        lock(&self.shared.rooms)
            .entry(newcomer.room_id.clone())
            .or_insert_with(|| {
                Arc::new(Room {
                    id: newcomer.room_id.clone(),
                    title: newcomer.room.clone(),
                    state: Mutex::new(RoomState {
                        everywhere: clustered.then(Everywhere::default),
                        metrics: self.shared.metrics.clone(),
                        ..RoomState::default()
                    }),
                    loaded: tokio::sync::OnceCell::new(),
                })
            })
            .clone()
    }

    fn room(&self, room_id: &str) -> Option<Arc<Room>> {
        lock(&self.shared.rooms).get(room_id).cloned()
    }

    fn closing(&self) -> bool {
        self.shared.closing.load(Ordering::Relaxed)
    }

    /// Sends `room`'s pending presence summary at `due`, from a timer task. Outside a runtime
    /// (nothing left to run a timer) it goes out at once rather than never.
    fn send_summary_at(&self, room: &Arc<Room>, due: Instant) {
        let shared = self.shared.clone();
        let room = room.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep_until(due).await;
                    room.send_summary(&shared);
                });
            }
            Err(_) => room.send_summary(&shared),
        }
    }
}

impl Room {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Broadcasts the pending presence summary, if anyone's presence changed after all.
    fn send_summary(&self, shared: &Shared) {
        let mut state = lock(&self.state);
        let summary = state.take_summary();
        if let Some(event) = summary
            && !shared.closing.load(Ordering::Relaxed)
        {
            state.broadcast(&event);
        }
    }
}

impl Membership {
    /// Sends a chat message to everyone in the room, the sender included. Everyone receives the
    /// room's messages in the same order: the order in which they passed through here.
    pub fn say(&self, text: String) {
        let state = lock(&self.room.state);
        // Stamped under the lock, so timestamps never run backwards within a room (with Redis:
        // within what one replica sends).
        let event = ServerEvent::Message {
            user: self.email.clone(),
            text,
            at: protocol::now(),
        };
        match &self.registry.shared.cluster {
            None => state.broadcast(&event),
            // Everyone, this replica included, gets it back from Redis, in Redis's order.
            Some(cluster) => cluster.publish(Publish::Message {
                room_id: self.room.id.clone(),
                frame: event.to_frame(),
            }),
        }
    }

    pub fn room_id(&self) -> &str {
        &self.room.id
    }

    pub fn email(&self) -> &str {
        &self.email
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let shared = &self.registry.shared;
        let mut state = lock(&self.room.state);
        if state.seats.remove(&self.seat).is_none() {
            return;
        }
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
        let closing = shared.closing.load(Ordering::Relaxed);
        let summary_due = match &shared.cluster {
            _ if closing => None,
            None => state.announce(&self.email, Change::Left { last }, shared.presence),
            Some(cluster) => {
                cluster.publish(Publish::Tabs {
                    room_id: self.room.id.clone(),
                    user: self.email.clone(),
                    tabs: state.tabs.get(&self.email).copied().unwrap_or(0),
                });
                None
            }
        };
        if state.seats.is_empty() {
            // Marked and unmapped under the room's lock: see "Locking" above.
            state.removed = true;
            self.registry.unmap(&self.room);
        }
        drop(state);
        if let Some(due) = summary_due {
            self.registry.send_summary_at(&self.room, due);
        }
    }
}

impl RoomState {
    /// Serializes `event` once and queues the same bytes for every seat.
    fn broadcast(&self, event: &ServerEvent) {
        self.broadcast_wire(&TextFrame::encode(event));
    }

    /// Queues an event that came through Redis, as a replica encoded it, for every seat.
    fn broadcast_frame(&self, frame: &Frame) {
        self.broadcast_wire(&TextFrame::new(frame));
    }

    /// Counted once per fan-out, not per receiver: its deliveries, their bytes, its time, and
    /// the receivers it missed by reason.
    fn broadcast_wire(&self, wire: &TextFrame) {
        if self.deleted {
            return;
        }
        let started = std::time::Instant::now();
        let mut queued = 0;
        let mut missed = [0_u64; Dropped::ALL.len()];
        for seat in self.seats.values() {
            match seat.deliver(wire) {
                Ok(()) => queued += 1,
                Err(reason) => missed[reason as usize] += 1,
            }
        }
        self.metrics
            .fanned_out(queued, wire.payload_len(), started.elapsed());
        for (reason, count) in Dropped::ALL.into_iter().zip(missed) {
            if count > 0 {
                self.metrics.dropped(reason, count);
            }
        }
    }

    fn online(&self) -> usize {
        match &self.everywhere {
            Some(everywhere) => everywhere.people.len(),
            None => self.tabs.len(),
        }
    }

    fn is_present(&self, user: &str) -> bool {
        match &self.everywhere {
            Some(everywhere) => everywhere.is_present(user),
            None => self.tabs.contains_key(user),
        }
    }
}

#[cfg(test)]
mod tests;
