//! One connection's queue, and the two signals that end it from the room's side (the queue
//! overflowed; the room was deleted). An unbounded channel bounded by a count the sender keeps:
//! tokio's bounded channel takes a mutex on every receive, and a receive happens once per delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::metrics::Dropped;
use crate::protocol::Frame;

#[derive(Debug)]
pub enum Outgoing {
    Event(Frame),
    Ping,
    /// The last item; `None` answers the client's own close.
    Close(Option<CloseFrame>),
}

#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Outgoing>,
    state: Arc<State>,
}

pub struct Inbox {
    queue: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<State>,
}

struct State {
    capacity: usize,
    queued: AtomicUsize,
    too_slow: AtomicBool,
    /// Only wakes the connection's task, once; `too_slow` is what the hot path reads.
    too_slow_signal: CancellationToken,
    room_deleted: CancellationToken,
}

impl Outbox {
    pub fn channel(capacity: usize) -> (Self, Inbox) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            capacity,
            queued: AtomicUsize::new(0),
            too_slow: AtomicBool::new(false),
            too_slow_signal: CancellationToken::new(),
            room_deleted: CancellationToken::new(),
        });
        let inbox = Inbox {
            queue: receiver,
            state: state.clone(),
        };
        (
            Self {
                queue: sender,
                state,
            },
            inbox,
        )
    }

    pub async fn too_slow(&self) {
        self.state.too_slow_signal.cancelled().await;
    }

    #[cfg(test)]
    pub fn is_too_slow(&self) -> bool {
        self.state.too_slow.load(Ordering::Relaxed)
    }

    pub async fn room_deleted(&self) {
        self.state.room_deleted.cancelled().await;
    }

    pub(super) fn end_room(&self, room_deleted: &Frame) {
        let _ = self.deliver(room_deleted);
        self.state.room_deleted.cancel();
    }

    /// Queues a ping, outside the count: it is rare, and a full queue ends the connection anyway.
    pub fn ping(&self) {
        let _ = self.queue.send(Outgoing::Ping);
    }

    /// Behind everything already queued, outside the count like a ping.
    pub fn close(self, frame: Option<CloseFrame>) {
        let _ = self.queue.send(Outgoing::Close(frame));
    }

    /// A full queue marks the receiver too slow; it gets nothing more, so the events it does get
    /// have no gap in the middle.
    pub fn deliver(&self, frame: &Frame) -> Result<(), Dropped> {
        let state = &*self.state;
        if state.too_slow.load(Ordering::Relaxed) {
            return Err(Dropped::Closing);
        }
        if state.queued.fetch_add(1, Ordering::Relaxed) >= state.capacity {
            state.queued.fetch_sub(1, Ordering::Relaxed);
            state.too_slow.store(true, Ordering::Relaxed);
            state.too_slow_signal.cancel();
            return Err(Dropped::SlowConsumer);
        }
        match self.queue.send(Outgoing::Event(frame.clone())) {
            Ok(()) => Ok(()),
            // The connection is already going away; its membership leaves in a moment.
            Err(_closed) => {
                state.queued.fetch_sub(1, Ordering::Relaxed);
                Err(Dropped::Gone)
            }
        }
    }
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let next = self.queue.recv().await;
        self.taken(next)
    }

    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let next = self.queue.try_recv().ok();
        self.taken(next)
    }

    fn taken(&self, next: Option<Outgoing>) -> Option<Outgoing> {
        if let Some(Outgoing::Event(_)) = next {
            self.state.queued.fetch_sub(1, Ordering::Relaxed);
        }
        next
    }
}
