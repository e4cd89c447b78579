//! Where the events for one connection go: its bounded queue, and the two signals that end it
//! from the room's side (the queue overflowed; the room was deleted).

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::metrics::Dropped;
use crate::protocol::Frame;

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
    pub(super) fn end_room(&self, room_deleted: &Frame) {
        let _ = self.deliver(room_deleted);
        self.room_deleted.cancel();
    }

    /// Queues `frame` without waiting. A full queue marks the receiver too slow; it gets nothing
    /// more, so the events it does get have no gap in the middle. Says why when it was not
    /// queued (the room counts it).
    pub fn deliver(&self, frame: &Frame) -> Result<(), Dropped> {
        if self.too_slow.is_cancelled() {
            return Err(Dropped::Closing);
        }
        match self.queue.try_send(frame.clone()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.too_slow.cancel();
                Err(Dropped::SlowConsumer)
            }
            // The connection is already going away; its membership leaves in a moment.
            Err(TrySendError::Closed(_)) => Err(Dropped::Gone),
        }
    }
}
