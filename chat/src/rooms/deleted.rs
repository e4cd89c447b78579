//! Rooms deleted by their owners: everyone inside is told and closed, and for a while nobody
//! gets in again (a ticket issued just before the deletion is still valid).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::outbox::Outbox;
use super::redis::Control;
use super::{Membership, Newcomer, Room, RoomRegistry, RoomState};
use crate::framing::TextFrame;
use crate::protocol::{self, ServerEvent};
use crate::sync::lock;

/// A ticket's lifetime and the clock leeway.
const DELETED_KEPT: Duration =
    Duration::from_secs(contract::ticket::LIFETIME.as_secs() + contract::ticket::LEEWAY.as_secs());

impl RoomRegistry {
    /// Everyone in the room, on every replica, gets `room_deleted` and is closed with 4004; this
    /// replica acts at once, Redis or not. Returns how many connections here were told.
    pub fn delete_room(&self, room_id: &str) -> usize {
        let told = self.room_deleted_here(room_id);
        if let Some(cluster) = &self.shared.cluster {
            cluster.control(Control::RoomDeleted {
                room_id: room_id.to_owned(),
            });
        }
        told
    }

    pub(super) fn room_deleted_here(&self, room_id: &str) -> usize {
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
        let frame = room_deleted_frame(room_id);
        for seat in state.seats.values() {
            seat.end_room(&frame);
        }
        state.seats.len()
    }

    pub(super) fn was_deleted(&self, room_id: &str) -> bool {
        lock(&self.shared.deleted)
            .get(room_id)
            .is_some_and(|at| at.elapsed() < DELETED_KEPT)
    }

    /// A membership of no room, which the connection drops as it closes.
    pub(super) fn turn_away(&self, newcomer: Newcomer, outbox: &Outbox, seat: u64) -> Membership {
        outbox.end_room(&room_deleted_frame(&newcomer.room_id));
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
}

fn room_deleted_frame(room_id: &str) -> TextFrame {
    let event = ServerEvent::RoomDeleted {
        room_id: room_id.to_owned(),
        at: protocol::now(),
    };
    TextFrame::encode(&event)
}
