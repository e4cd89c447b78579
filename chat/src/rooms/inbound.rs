//! What the Redis side hands the registry ([`Inbound`]), and the few questions it asks of it: the
//! rooms of a shard, held while they load, and the replicas they have seen. The Redis tasks see
//! a room only as a [`RoomHandle`] to subscribe to and load, and hold the registry only weakly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use super::everywhere::Remote;
use super::redis::ReplicaId;
use super::{Room, RoomRegistry, Shared};
use crate::protocol::Frame;
use crate::sync::lock;

/// A room as the Redis side sees it: something with an id to subscribe to and load.
pub(in crate::rooms) type RoomHandle = Arc<Room>;

/// Who is in a room on each other replica, as Redis holds it: tabs per person.
pub(in crate::rooms) type Snapshot = HashMap<ReplicaId, HashMap<String, usize>>;

/// What the Redis side hands the registry: all it receives, and what it could not publish.
pub(in crate::rooms) enum Inbound {
    Frame {
        room_id: String,
        frame: Frame,
    },
    Presence {
        room_id: String,
        fact: Remote,
    },
    /// Who is in `room` elsewhere, after a load or resync (`None`: Redis failed meanwhile).
    Snapshot {
        room: RoomHandle,
        elsewhere: Option<Snapshot>,
    },
    /// A replica's liveness key expired on `shard`: its people leave every room of that shard.
    ReplicaGone {
        replica: ReplicaId,
        shard: usize,
    },
    RoomDeleted(String),
}

/// A registry the Redis tasks hold without keeping it alive.
#[derive(Clone)]
pub(in crate::rooms) struct WeakRegistry(pub(super) Weak<Shared>);

impl WeakRegistry {
    pub(in crate::rooms) fn upgrade(&self) -> Option<RoomRegistry> {
        self.0.upgrade().map(|shared| RoomRegistry { shared })
    }
}

impl RoomRegistry {
    fn rooms(&self) -> Vec<Arc<Room>> {
        lock(&self.shared.rooms).values().cloned().collect()
    }

    fn rooms_on(&self, shard: usize) -> Vec<Arc<Room>> {
        let mut rooms = self.rooms();
        if let Some(cluster) = &self.shared.cluster {
            rooms.retain(|room| cluster.shard_of(&room.id) == shard);
        }
        rooms
    }

    /// What the Redis side brings, or what it could not publish while Redis is down.
    pub(in crate::rooms) fn receive(&self, inbound: Inbound) {
        match inbound {
            Inbound::Frame { room_id, frame } => {
                if let Some(room) = self.room(&room_id) {
                    lock(&room.state).broadcast_frame(&frame);
                }
            }
            Inbound::Presence { room_id, fact } => {
                if let Some(room) = self.room(&room_id) {
                    self.apply(&room, fact);
                }
            }
            Inbound::Snapshot { room, elsewhere } => self.loaded(&room, elsewhere),
            Inbound::ReplicaGone { replica, shard } => {
                tracing::info!(
                    %replica,
                    shard,
                    "a replica stopped refreshing its presence: its people left"
                );
                for room in self.rooms_on(shard) {
                    self.apply(
                        &room,
                        Remote::Gone {
                            replica: replica.clone(),
                        },
                    );
                }
            }
            Inbound::RoomDeleted(room_id) => {
                self.room_deleted_here(&room_id);
            }
        }
    }

    /// From now until its [`Inbound::Snapshot`], `room` keeps what its channel brings about
    /// presence instead of applying it.
    pub(in crate::rooms) fn hold(&self, room: &RoomHandle) {
        lock(&room.state).held.get_or_insert_with(Vec::new);
    }

    /// For a resync of `shard`: every open room on it, held (as [`RoomRegistry::hold`]), with
    /// the people this replica holds in it.
    pub(in crate::rooms) fn hold_all(
        &self,
        shard: usize,
    ) -> Vec<(RoomHandle, Vec<(String, usize)>)> {
        self.rooms_on(shard)
            .into_iter()
            .map(|room| {
                self.hold(&room);
                let people = people_here(&room);
                (room, people)
            })
            .collect()
    }

    pub(in crate::rooms) fn is_open(&self, room_id: &str) -> bool {
        lock(&self.shared.rooms).contains_key(room_id)
    }

    pub(in crate::rooms) fn room_ids(&self, shard: usize) -> Vec<String> {
        self.rooms_on(shard)
            .iter()
            .map(|room| room.id.clone())
            .collect()
    }

    pub(in crate::rooms) fn replicas_elsewhere(&self, shard: usize) -> HashSet<ReplicaId> {
        let mut replicas = HashSet::new();
        for room in self.rooms_on(shard) {
            if let Some(everywhere) = &lock(&room.state).everywhere {
                replicas.extend(everywhere.replicas().cloned());
            }
        }
        if let Some(cluster) = &self.shared.cluster {
            replicas.remove(&cluster.me);
        }
        replicas
    }

    /// Announces what changed, or keeps the fact for later while the room loads.
    fn apply(&self, room: &Arc<Room>, remote: Remote) {
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

    /// `room`'s snapshot is in (`None`: Redis failed meanwhile): the other replicas' parts
    /// replaced by it (a replica missing from it is left as it was: it may simply not have
    /// written yet), this replica's by its own seats, then what the channel brought meanwhile.
    fn loaded(&self, room: &Arc<Room>, elsewhere: Option<Snapshot>) {
        let mut facts: Vec<Remote> = Vec::new();
        if let Some(elsewhere) = elsewhere {
            facts.extend(
                elsewhere
                    .into_iter()
                    .map(|(replica, people)| Remote::All { replica, people }),
            );
            if let Some(cluster) = &self.shared.cluster {
                facts.push(Remote::All {
                    replica: cluster.me.clone(),
                    people: people_here(room).into_iter().collect(),
                });
            }
        }
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
}

fn people_here(room: &Room) -> Vec<(String, usize)> {
    lock(&room.state)
        .tabs
        .iter()
        .map(|(user, tabs)| (user.clone(), *tabs))
        .collect()
}
