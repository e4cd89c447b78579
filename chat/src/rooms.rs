//! The room registry: who is in which room, and delivering an event to a room.
//!
//! This is the only state the service shares between connections, and the only module that knows
//! how fan-out happens. Its interface is deliberately small — [`RoomRegistry::join`] returns a
//! [`Membership`]; a membership can [`say`](Membership::say) something to its room and leaves the
//! room when dropped; [`RoomRegistry::room_count`] is a read-only gauge. Without Redis
//! ([`RoomRegistry::new`]) rooms live in this process and nothing below awaits anything. With
//! Redis ([`RoomRegistry::shared_through`], `REDIS_URL`) the same interface spans every replica
//! that shares it: `say` and presence changes go out through [`crate::cluster`], and what the room
//! channels bring back — this replica's own events included — is delivered here in Redis's order
//! ([`RoomRegistry::deliver`], [`RoomRegistry::apply`]). Members on this replica still have their
//! seats, queues and tabs here; `online`, `members` and the summaries then count people on every
//! replica ([`Everywhere`]).
//!
//! Presence: a room counts joins and leaves in windows of `CHAT_PRESENCE_WINDOW_MS`, each opened
//! by the first change after the previous one closed. The first `CHAT_PRESENCE_BURST` changes of
//! a window are announced on their own, at once; the rest (a restart brings a whole room back
//! within a second) are folded into one `presence` summary sent when the window closes, and while
//! the burst goes on, the next windows fold from their first change. A burst of J joins then
//! costs each member at most `burst` + 1 events in its first window and 1 in each window after,
//! instead of J, and everyone's queue stays far from `CHAT_SEND_QUEUE`.
//!
//! Locking: the map of rooms has one std `Mutex`, each room another, and neither is ever held
//! across an `.await` (the one await, a room's first load with Redis, holds neither). The map
//! lock is held only to find, insert or remove a room, never while waiting for a room's lock;
//! everything a room does — seating, welcome, fan-out, presence — happens under that room's lock
//! alone, so a busy room never holds up the others. The last member out marks its room removed and takes it out of the map under the
//! room's lock; a join that found the room just before waits for that lock, sees the mark and
//! starts over with a fresh room, so nobody is ever seated in a removed room.
//! Delivering never waits: every receiver has a bounded queue, and a receiver whose queue is full
//! is marked too slow (its connection then closes with 4008) instead of delaying the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, Outgoing, ReplicaId};
use crate::config::Limits;
use crate::protocol::{AnnouncedLimits, Frame, SUMMARY_NAMES, ServerEvent};

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
    /// With `REDIS_URL`: the other replicas' side of every room.
    cluster: Option<Arc<Cluster>>,
    /// Rooms deleted lately, and when: a ticket issued just before a deletion still opens a
    /// socket for [`DELETED_KEPT`], and it must land in no room.
    deleted: Mutex<HashMap<String, Instant>>,
}

/// How long a deleted room is remembered: a ticket's lifetime and the clock leeway.
const DELETED_KEPT: Duration =
    Duration::from_secs(contract::ticket::LIFETIME.as_secs() + contract::ticket::LEEWAY.as_secs());

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
    /// Its owner deleted the room: everyone here was told and is being closed; nothing more is
    /// broadcast.
    deleted: bool,
    /// One seat per open connection.
    seats: HashMap<u64, Seat>,
    /// Open connections per person: presence is per person, across tabs. Sorted, so `members`
    /// comes out in a stable order.
    tabs: BTreeMap<String, usize>,
    presence: Presence,
    /// With Redis: who is in the room on every replica, this one included, as the room channel
    /// told it. `None` in a single process, where `tabs` says it all.
    everywhere: Option<Everywhere>,
    /// With Redis, while the room loads who is where: what the channel brought meanwhile, applied
    /// on top of the snapshot.
    held: Option<Vec<Remote>>,
}

/// A presence fact about one replica's part of a room, as the room channel (or a liveness check)
/// tells it.
#[derive(Debug)]
pub enum Remote {
    /// `replica` holds `tabs` sockets of `user` (0: none).
    Tabs {
        replica: ReplicaId,
        user: String,
        tabs: usize,
    },
    /// `replica` holds exactly these people (tabs each), nobody else.
    All {
        replica: ReplicaId,
        people: HashMap<String, usize>,
    },
    /// `replica` is gone: none of its people are here any more.
    Gone { replica: ReplicaId },
}

/// People in a room across replicas: each replica's tabs per person, and on how many replicas
/// each person has a tab. Two tabs of one person on two replicas are one person.
#[derive(Default)]
struct Everywhere {
    by_replica: HashMap<ReplicaId, HashMap<String, usize>>,
    people: BTreeMap<String, usize>,
}

impl Everywhere {
    /// Sets `replica`'s tabs of `user`; the join or leave to announce, if it is one.
    fn set(&mut self, replica: &ReplicaId, user: &str, tabs: usize) -> Option<Change> {
        let held = self.by_replica.entry(replica.clone()).or_default();
        let before = held.get(user).copied().unwrap_or(0);
        if tabs == 0 {
            held.remove(user);
        } else {
            held.insert(user.to_owned(), tabs);
        }
        if held.is_empty() {
            self.by_replica.remove(replica);
        }
        if before == tabs {
            return None;
        }
        let present_before = self.people.contains_key(user);
        if before == 0 {
            *self.people.entry(user.to_owned()).or_insert(0) += 1;
        } else if tabs == 0
            && let Some(replicas) = self.people.get_mut(user)
        {
            *replicas -= 1;
            if *replicas == 0 {
                self.people.remove(user);
            }
        }
        Some(if tabs > before {
            Change::Joined {
                first: !present_before,
            }
        } else {
            Change::Left {
                last: !self.people.contains_key(user),
            }
        })
    }

    /// Applies `remote`; the changes to announce, in order.
    fn apply(&mut self, remote: Remote) -> Vec<(String, Change)> {
        let (replica, people) = match remote {
            Remote::Tabs {
                replica,
                user,
                tabs,
            } => {
                let change = self.set(&replica, &user, tabs);
                return change.map(|change| (user, change)).into_iter().collect();
            }
            Remote::All { replica, people } => (replica, people),
            Remote::Gone { replica } => (replica, HashMap::new()),
        };
        let mut changes = Vec::new();
        let before: Vec<String> = self
            .by_replica
            .get(&replica)
            .map(|held| held.keys().cloned().collect())
            .unwrap_or_default();
        for user in before {
            if !people.contains_key(&user)
                && let Some(change) = self.set(&replica, &user, 0)
            {
                changes.push((user, change));
            }
        }
        let mut people: Vec<(String, usize)> = people.into_iter().collect();
        people.sort();
        for (user, tabs) in people {
            if let Some(change) = self.set(&replica, &user, tabs) {
                changes.push((user, change));
            }
        }
        changes
    }
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
    room_deleted: CancellationToken,
}

impl Outbox {
    pub fn new(queue: mpsc::Sender<Frame>, too_slow: CancellationToken) -> Self {
        Self {
            queue,
            too_slow,
            room_deleted: CancellationToken::new(),
        }
    }

    /// Resolves once the connection's room was deleted (its `room_deleted` event is queued).
    pub async fn room_deleted(&self) {
        self.room_deleted.cancelled().await;
    }

    /// Queues the `room_deleted` event and ends the connection.
    fn end_room(&self, room_deleted: &Frame) {
        self.deliver(room_deleted);
        self.room_deleted.cancel();
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

/// A registry the Redis tasks hold without keeping it alive.
#[derive(Clone)]
pub struct WeakRegistry(Weak<Shared>);

impl WeakRegistry {
    pub fn upgrade(&self) -> Option<RoomRegistry> {
        self.0.upgrade().map(|shared| RoomRegistry { shared })
    }
}

impl RoomRegistry {
    /// A registry whose `welcome` events announce `limits` and whose rooms coalesce presence by
    /// its `presence_*` settings. Rooms live in this process.
    pub fn new(limits: &Limits) -> Self {
        Self::build(limits, None)
    }

    /// A registry whose rooms span every replica that shares the Redis at `url` (`REDIS_URL`).
    /// Starts its Redis tasks (so it needs a Tokio runtime) and does not wait for Redis: until
    /// Redis answers, rooms are local to this replica ([`RoomRegistry::wait_for_redis`]).
    pub fn shared_through(limits: &Limits, url: &str) -> Result<Self, fred::error::Error> {
        let (cluster, receivers) = Cluster::new(url)?;
        let cluster = Arc::new(cluster);
        let registry = Self::build(limits, Some(cluster.clone()));
        cluster.start(receivers, WeakRegistry(Arc::downgrade(&registry.shared)));
        Ok(registry)
    }

    fn build(limits: &Limits, cluster: Option<Arc<Cluster>>) -> Self {
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

    /// With Redis: follows [`RoomRegistry::redis_up`] as it changes.
    pub fn watch_redis(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.shared
            .cluster
            .as_ref()
            .map(|cluster| cluster.watch_up())
    }

    /// Seats a connection in its room (creating the room on first join), sends it `welcome`, then
    /// announces the join to everyone in the room, the newcomer included: a `joined` at once, or
    /// its part in the next `presence` summary when the room is in a burst. Without Redis it never
    /// waits; with Redis the first join of a room here waits for the room to be loaded, and the
    /// `joined` comes back through the room's channel.
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
            outbox.deliver(&welcome.to_frame());
            state.seats.insert(seat, Seat { outbox });
            let summary_due = match &self.shared.cluster {
                None => state.announce(
                    &newcomer.email,
                    Change::Joined { first },
                    self.shared.presence,
                ),
                // Queued under the room's lock: this replica's changes reach Redis in order.
                Some(cluster) => {
                    cluster.send(Outgoing::Tabs {
                        room: room.clone(),
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

    /// The room `room_id` was deleted by its owner: everyone in it, on every replica, gets
    /// `room_deleted` and is closed with 4004, and for [`DELETED_KEPT`] nobody gets in again.
    /// With Redis the other replicas hear it through Redis (this one at once, Redis or not).
    /// Returns how many connections on this replica were told.
    pub fn delete_room(&self, room_id: &str) -> usize {
        let told = self.room_deleted_here(room_id);
        if let Some(cluster) = &self.shared.cluster {
            cluster.send(Outgoing::RoomDeleted {
                room_id: room_id.to_owned(),
            });
        }
        told
    }

    /// [`RoomRegistry::delete_room`] on this replica only (what Redis brings from another).
    pub(crate) fn room_deleted_here(&self, room_id: &str) -> usize {
        {
            let now = Instant::now();
            let mut deleted = lock(&self.shared.deleted);
            deleted.retain(|_, at| now.duration_since(*at) < DELETED_KEPT);
            deleted.insert(room_id.to_owned(), now);
        }
        let Some(room) = self.room(room_id) else {
            return 0;
        };
        let mut state = lock(&room.state);
        if state.deleted {
            return 0;
        }
        state.deleted = true;
        let frame = room_deleted_event(room_id).to_frame();
        for seat in state.seats.values() {
            seat.outbox.end_room(&frame);
        }
        state.seats.len()
    }

    fn was_deleted(&self, room_id: &str) -> bool {
        lock(&self.shared.deleted)
            .get(room_id)
            .is_some_and(|at| at.elapsed() < DELETED_KEPT)
    }

    /// A join for a deleted room: `room_deleted` at once, and a membership of no room that the
    /// connection drops as it closes.
    fn turn_away(&self, newcomer: Newcomer, outbox: &Outbox, seat: u64) -> Membership {
        outbox.end_room(&room_deleted_event(&newcomer.room_id).to_frame());
        let room = Arc::new(Room {
            id: newcomer.room_id,
            title: newcomer.room,
            state: Mutex::new(RoomState {
                removed: true,
                deleted: true,
                ..RoomState::default()
            }),
            loaded: tokio::sync::OnceCell::new(),
        });
        Membership {
            registry: self.clone(),
            room,
            seat,
            email: newcomer.email,
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
            cluster.send(Outgoing::Unsubscribe {
                room_id: room.id.clone(),
            });
        }
    }

    /// Stops announcing `left` for the rest of this registry's life: at shutdown every member
    /// leaves, and telling each of N members about the other N - 1 would cost N² events.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
    }

    /// With Redis, at shutdown: takes this replica's people out of every room at once (the other
    /// replicas announce them as `left`) and closes the connections to Redis.
    pub async fn leave_cluster(&self) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.leave().await;
        }
    }

    /// How many rooms have at least one member (a gauge for tests and logs).
    pub fn room_count(&self) -> usize {
        lock(&self.shared.rooms).len()
    }

    /// The room `newcomer` asks for, opened if nobody is in it: the only work done under the
    /// map's lock on the way in.
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
                        ..RoomState::default()
                    }),
                    loaded: tokio::sync::OnceCell::new(),
                })
            })
            .clone()
    }

    /// The open room `room_id` on this replica, if anyone here is in it.
    pub(crate) fn room(&self, room_id: &str) -> Option<Arc<Room>> {
        lock(&self.shared.rooms).get(room_id).cloned()
    }

    /// Every open room on this replica.
    pub(crate) fn rooms(&self) -> Vec<Arc<Room>> {
        lock(&self.shared.rooms).values().cloned().collect()
    }

    /// Queues `frame` (already serialized) for everyone in `room` on this replica.
    pub(crate) fn deliver(&self, room: &Room, frame: &Frame) {
        lock(&room.state).broadcast_frame(frame);
    }

    /// Applies a presence fact about some replica's part of `room` and announces what changed
    /// (or keeps it for later while the room loads).
    pub(crate) fn apply(&self, room: &Arc<Room>, remote: Remote) {
        let mut state = lock(&room.state);
        if let Some(held) = &mut state.held {
            held.push(remote);
            return;
        }
        let summary_due = state.apply(remote, self.shared.presence, self.closing());
        drop(state);
        if let Some(due) = summary_due {
            self.send_summary_at(room, due);
        }
    }

    /// From now until [`RoomRegistry::loaded`] or [`RoomRegistry::release`], `room` keeps what its
    /// channel brings about presence instead of applying it.
    pub(crate) fn hold(&self, room: &Room) {
        lock(&room.state).held.get_or_insert_with(Vec::new);
    }

    /// Applies what `room` kept while loading, without a snapshot (Redis failed meanwhile).
    pub(crate) fn release(&self, room: &Arc<Room>) {
        self.loaded_with(room, Vec::new());
    }

    /// `room`'s snapshot is in: the other replicas' parts replaced by `elsewhere` (a replica
    /// missing from it is left as it was: it may simply not have written yet), this replica's by
    /// its own seats, then what the channel brought meanwhile on top.
    pub(crate) fn loaded(
        &self,
        room: &Arc<Room>,
        elsewhere: HashMap<ReplicaId, HashMap<String, usize>>,
    ) {
        let mut facts: Vec<Remote> = elsewhere
            .into_iter()
            .map(|(replica, people)| Remote::All { replica, people })
            .collect();
        if let Some(cluster) = &self.shared.cluster {
            facts.push(Remote::All {
                replica: cluster.me.clone(),
                people: self.people_here(room).into_iter().collect(),
            });
        }
        self.loaded_with(room, facts);
    }

    fn loaded_with(&self, room: &Arc<Room>, facts: Vec<Remote>) {
        let mut state = lock(&room.state);
        let held = state.held.take().unwrap_or_default();
        let mut summary_due = None;
        for remote in facts.into_iter().chain(held) {
            let due = state.apply(remote, self.shared.presence, self.closing());
            summary_due = summary_due.or(due);
        }
        drop(state);
        if let Some(due) = summary_due {
            self.send_summary_at(room, due);
        }
    }

    /// The people on this replica in `room`, with their tabs.
    pub(crate) fn people_here(&self, room: &Room) -> Vec<(String, usize)> {
        lock(&room.state)
            .tabs
            .iter()
            .map(|(user, tabs)| (user.clone(), *tabs))
            .collect()
    }

    /// The other replicas that hold someone in a room here.
    pub(crate) fn replicas_elsewhere(&self) -> HashSet<ReplicaId> {
        let me = self
            .shared
            .cluster
            .as_ref()
            .map(|cluster| cluster.me.clone());
        let mut replicas = HashSet::new();
        for room in self.rooms() {
            if let Some(everywhere) = &lock(&room.state).everywhere {
                replicas.extend(everywhere.by_replica.keys().cloned());
            }
        }
        if let Some(me) = me {
            replicas.remove(&me);
        }
        replicas
    }

    /// `replica` stopped refreshing its liveness key: its people leave every room here.
    pub(crate) fn forget_replica(&self, replica: &ReplicaId) {
        for room in self.rooms() {
            self.apply(
                &room,
                Remote::Gone {
                    replica: replica.clone(),
                },
            );
        }
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
    /// The room's id (its Redis channel is named after it).
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
            at: OffsetDateTime::now_utc(),
        };
        match &self.registry.shared.cluster {
            None => state.broadcast(&event),
            // Everyone, this replica included, gets it back from Redis, in Redis's order.
            Some(cluster) => cluster.send(Outgoing::Message {
                room: self.room.clone(),
                frame: event.to_frame(),
            }),
        }
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
                cluster.send(Outgoing::Tabs {
                    room: self.room.clone(),
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

fn room_deleted_event(room_id: &str) -> ServerEvent {
    ServerEvent::RoomDeleted {
        room_id: room_id.to_owned(),
        at: OffsetDateTime::now_utc(),
    }
}

/// One connection joining or leaving, as [`RoomState::announce`] tells it.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// `first`: the person's first open tab in the room.
    Joined { first: bool },
    /// `last`: the person's last open tab in the room.
    Left { last: bool },
}

impl RoomState {
    /// Serializes `event` once and queues the same bytes for every seat.
    fn broadcast(&self, event: &ServerEvent) {
        self.broadcast_frame(&event.to_frame());
    }

    fn broadcast_frame(&self, frame: &Frame) {
        if self.deleted {
            return;
        }
        for seat in self.seats.values() {
            seat.outbox.deliver(frame);
        }
    }

    /// People in the room: on every replica with Redis, here without.
    fn online(&self) -> usize {
        match &self.everywhere {
            Some(everywhere) => everywhere.people.len(),
            None => self.tabs.len(),
        }
    }

    fn is_present(&self, user: &str) -> bool {
        match &self.everywhere {
            Some(everywhere) => everywhere.people.contains_key(user),
            None => self.tabs.contains_key(user),
        }
    }

    /// Applies a presence fact (with Redis) and announces each change; returns when a summary it
    /// started is due.
    fn apply(&mut self, remote: Remote, rule: PresenceRule, closing: bool) -> Option<Instant> {
        let changes = self.everywhere.as_mut()?.apply(remote);
        let mut summary_due = None;
        for (user, change) in changes {
            if !closing {
                summary_due = summary_due.or(self.announce(&user, change, rule));
            }
        }
        summary_due
    }

    /// Tells the room that `user` joined or left (already counted in `tabs`): at once as
    /// `joined` / `left`, or folded into the pending summary. Returns when that summary is due
    /// if this change started it; the caller schedules it once the lock is released.
    fn announce(&mut self, user: &str, change: Change, rule: PresenceRule) -> Option<Instant> {
        let now = Instant::now();
        match self.presence.route(rule, now) {
            Route::AtOnce => {
                let (online, at) = (self.online(), OffsetDateTime::now_utc());
                let user = user.to_owned();
                self.broadcast(&match change {
                    Change::Joined { first } => ServerEvent::Joined {
                        user,
                        online,
                        at,
                        first,
                    },
                    Change::Left { last } => ServerEvent::Left {
                        user,
                        online,
                        at,
                        last,
                    },
                });
                None
            }
            Route::Fold { summary_due } => {
                let present_before = match change {
                    // Present before this join unless it was the first tab.
                    Change::Joined { first } => !first,
                    Change::Left { .. } => true,
                };
                self.presence.pending_mut().note(user, present_before);
                summary_due
            }
        }
    }

    /// The pending summary as an event, by person: who is here now and was not when the summary
    /// began, and the reverse. `None` when there is none, or when it nets out to nothing.
    fn take_summary(&mut self) -> Option<ServerEvent> {
        let pending = *self.presence.pending.take()?;
        let (mut joined, mut joined_count, mut left, mut left_count) =
            (Vec::new(), 0, Vec::new(), 0);
        for (user, present_before) in pending.people {
            let (names, count) = match (present_before, self.is_present(&user)) {
                (false, true) => (&mut joined, &mut joined_count),
                (true, false) => (&mut left, &mut left_count),
                _ => continue,
            };
            *count += 1;
            if names.len() < SUMMARY_NAMES {
                names.push(user);
            }
        }
        (joined_count + left_count > 0).then(|| ServerEvent::Presence {
            joined,
            joined_count,
            left,
            left_count,
            online: self.online(),
            at: OffsetDateTime::now_utc(),
        })
    }
}

/// When a room announces presence changes one by one, and when it folds them into a summary.
#[derive(Debug, Clone, Copy)]
struct PresenceRule {
    /// `CHAT_PRESENCE_WINDOW_MS`.
    window: Duration,
    /// `CHAT_PRESENCE_BURST`.
    burst: usize,
}

/// A room's presence windows and the summary changes are being folded into. Small and
/// allocation-free until a burst: every room carries one.
#[derive(Default)]
struct Presence {
    /// When the current window opened: at the first change after the previous one closed.
    opened: Option<Instant>,
    /// Changes in the current window.
    changes: usize,
    /// This window folds from its first change: it opened right as a crowded one closed.
    burst_goes_on: bool,
    /// Changes waiting for the next summary.
    pending: Option<Box<PendingSummary>>,
}

/// How one presence change goes out.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// As its own `joined` / `left`, now.
    AtOnce,
    /// Into the pending summary; `summary_due` is set when this change started it.
    Fold { summary_due: Option<Instant> },
}

impl Presence {
    /// Routes the change happening `now`. The first `burst` changes of a window go out at once;
    /// the ones after them are folded into a summary due when the window closes. A window that
    /// opens within a window's time of a crowded one closing folds from its first change (the
    /// burst goes on), and so does any change while a summary is pending — an event sent past
    /// it would overtake the changes it holds.
    fn route(&mut self, rule: PresenceRule, now: Instant) -> Route {
        let closes = self.opened.map(|opened| opened + rule.window);
        if closes.is_none_or(|closes| now >= closes) {
            self.burst_goes_on = self.changes > rule.burst
                && closes.is_some_and(|closed| now < closed + rule.window);
            self.opened = Some(now);
            self.changes = 0;
        }
        self.changes += 1;
        if !self.burst_goes_on && self.changes <= rule.burst && self.pending.is_none() {
            return Route::AtOnce;
        }
        let summary_due = self
            .pending
            .is_none()
            .then(|| self.opened.map_or(now, |opened| opened + rule.window));
        self.pending_mut();
        Route::Fold { summary_due }
    }

    fn pending_mut(&mut self) -> &mut PendingSummary {
        self.pending.get_or_insert_with(Box::default)
    }
}

/// The people whose presence changed since the summary began.
#[derive(Default)]
struct PendingSummary {
    /// Each person once, in order of their first change, with whether they were in the room
    /// just before it.
    people: Vec<(String, bool)>,
    noted: HashSet<String>,
}

impl PendingSummary {
    fn note(&mut self, user: &str, present_before: bool) {
        if self.noted.insert(user.to_owned()) {
            self.people.push((user.to_owned(), present_before));
        }
    }
}

/// Locks `mutex`, carrying on after a panic elsewhere: the registry's invariants hold between
/// statements, and refusing every later connection would be worse.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::Barrier;
    use std::thread;

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
        let (tx, inbox) = mpsc::channel(queue);
        let too_slow = CancellationToken::new();
        let membership = registry
            .join(
                Newcomer {
                    room_id: room_id.into(),
                    room: "Rust".into(),
                    email: email.into(),
                },
                Outbox::new(tx, too_slow.clone()),
            )
            .now_or_never()
            .expect("without Redis a join never waits");
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
                matches!(event, ServerEvent::Joined { user, online, .. } if *user == format!("p{i:02}@x.org") && *online == i + 2),
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
        assert!(newcomers.iter().all(|c| !c.too_slow.is_cancelled()));
        assert!(!ann.too_slow.is_cancelled());
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
}
