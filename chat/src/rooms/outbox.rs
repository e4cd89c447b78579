//! Where the events for one connection go: its queue, and the two signals that end it from the
//! room's side (the queue overflowed; the room was deleted).
//!
//! The queue is an unbounded channel bounded by a count the sender keeps, not tokio's bounded
//! channel: that one takes a mutex on every receive to hand its permit back, and a receive happens
//! once per delivery. The "too slow" flag is an atomic for the same reason; the token beside it
//! only wakes the connection's task, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::metrics::Dropped;
use crate::protocol::Frame;

/// What the connection's writer sends next.
#[derive(Debug)]
pub enum Outgoing {
    Event(Frame),
    /// A WebSocket ping (keeps nginx and the client's side of the connection alive).
    Ping,
    /// The last item: the close frame to send (`None` answers the client's own close).
    Close(Option<CloseFrame>),
}

/// The sending side: cloned into the room's seat and kept by the connection's reader.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Outgoing>,
    state: Arc<State>,
}

/// The receiving side, owned by the connection's writer.
pub struct Inbox {
    queue: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<State>,
}

struct State {
    capacity: usize,
    /// Events queued and not yet taken by the writer.
    queued: AtomicUsize,
    too_slow: AtomicBool,
    /// Cancelled once, with `too_slow`, to wake the connection's task.
    too_slow_signal: CancellationToken,
    room_deleted: CancellationToken,
}

impl Outbox {
    /// A queue that holds at most `capacity` events.
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

    /// Resolves once the queue overflowed: the connection is to be closed as too slow.
    pub async fn too_slow(&self) {
        self.state.too_slow_signal.cancelled().await;
    }

    pub fn is_too_slow(&self) -> bool {
        self.state.too_slow.load(Ordering::Relaxed)
    }

    /// Resolves once the connection's room was deleted (its `room_deleted` event is queued).
    pub async fn room_deleted(&self) {
        self.state.room_deleted.cancelled().await;
    }

    /// Queues the `room_deleted` event and ends the connection.
    pub(super) fn end_room(&self, room_deleted: &Frame) {
        let _ = self.deliver(room_deleted);
        self.state.room_deleted.cancel();
    }

    /// Queues a ping, outside the count: it is rare, and a full queue ends the connection anyway.
    pub fn ping(&self) {
        let _ = self.queue.send(Outgoing::Ping);
    }

    /// Queues the close frame behind everything already queued, outside the count like a ping.
    pub fn close(self, frame: Option<CloseFrame>) {
        let _ = self.queue.send(Outgoing::Close(frame));
    }

    /// Queues `frame` without waiting. A full queue marks the receiver too slow; it gets nothing
    /// more, so the events it does get have no gap in the middle. Says why when it was not
    /// queued (the room counts it).
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
    /// The next item; `None` once every [`Outbox`] is gone.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let next = self.queue.recv().await;
        self.taken(next)
    }

    /// The next item if one is queued.
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
