//! One connection's queue: the connection's end ([`Outbox`]), the room's end ([`Seat`]) and the
//! writer's end ([`Inbox`]), with the two signals that end a connection from the room's side
//! (the queue overflowed; the room was deleted). An unbounded channel bounded by counts: tokio's
//! bounded channel takes a mutex on every receive, and a receive happens once per delivery. The
//! room counts what it queued and the writer what it took, each in memory of its own, so a
//! delivery writes nothing both cores share except the channel itself.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use crossbeam_utils::CachePadded;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::framing::TextFrame;
use crate::metrics::Dropped;
use crate::protocol::Frame;
use crate::sync::lock;

/// An item of a client's queue.
#[derive(Debug)]
pub enum Outgoing {
    /// From the room, counted against the queue's capacity; encoded once for every member.
    Event(TextFrame),
    /// From the connection itself, outside the count. Rare, so boxed: every slot of the queue,
    /// which a room's fan-out writes once per member, stays the size of a frame.
    Direct(Box<Direct>),
}

const _: () = assert!(std::mem::size_of::<Outgoing>() == std::mem::size_of::<TextFrame>());

#[derive(Debug)]
pub enum Direct {
    /// An answer to the client's own frame, or its room's end.
    Reply(TextFrame),
    Ping,
    /// The answer to the client's latest ping, whose payload waits in the queue's state.
    Pong,
    /// The last item: the close frame, with a code and reason or without.
    Close(Option<CloseFrame>),
}

#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Outgoing>,
    state: Arc<State>,
}

/// The room's handle on a member's queue. Lives under the room's lock, so its counts are plain
/// cells.
pub struct Seat {
    outbox: Outbox,
    /// A copy of the queue's capacity: the hot path reads nothing behind the outbox's pointer.
    capacity: usize,
    queued: Cell<usize>,
    /// The writer's count as last read: refreshed only when `queued` runs `capacity` ahead of it,
    /// about once per `capacity` deliveries to a reader that keeps up.
    taken_seen: Cell<usize>,
    too_slow: Cell<bool>,
}

pub struct Inbox {
    queue: mpsc::UnboundedReceiver<Outgoing>,
    taken: usize,
    state: Arc<State>,
}

struct State {
    capacity: usize,
    /// Written by the writer on every event, read by the room rarely: a cache line of its own.
    taken: CachePadded<AtomicUsize>,
    too_slow: CancellationToken,
    room_deleted: CancellationToken,
    /// The payload of the client's latest ping not yet answered. One pong is queued for any
    /// number of pings (RFC 6455 §5.5.3 lets the latest alone be answered), so a client that
    /// floods pings without reading grows nothing.
    pong: Mutex<Option<Bytes>>,
}

impl Outbox {
    pub fn channel(capacity: usize) -> (Self, Inbox) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            capacity,
            taken: CachePadded::new(AtomicUsize::new(0)),
            too_slow: CancellationToken::new(),
            room_deleted: CancellationToken::new(),
            pong: Mutex::new(None),
        });
        let inbox = Inbox {
            queue: receiver,
            taken: 0,
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

    /// The room's end of this queue; a connection has one.
    pub(super) fn seat(&self) -> Seat {
        Seat {
            outbox: self.clone(),
            capacity: self.state.capacity,
            queued: Cell::new(0),
            taken_seen: Cell::new(0),
            too_slow: Cell::new(false),
        }
    }

    pub async fn too_slow(&self) {
        self.state.too_slow.cancelled().await;
    }

    #[cfg(test)]
    pub fn is_too_slow(&self) -> bool {
        self.state.too_slow.is_cancelled()
    }

    pub async fn room_deleted(&self) {
        self.state.room_deleted.cancelled().await;
    }

    pub(super) fn end_room(&self, room_deleted: &TextFrame) {
        self.direct(Direct::Reply(room_deleted.clone()));
        self.state.room_deleted.cancel();
    }

    /// Queues a frame for this client alone, outside the count: answers are rare and a client
    /// that draws too many of them is closed.
    pub fn reply(&self, frame: &Frame) {
        self.direct(Direct::Reply(TextFrame::new(frame)));
    }

    /// Queues a ping, outside the count: it is rare, and a full queue ends the connection anyway.
    pub fn ping(&self) {
        self.direct(Direct::Ping);
    }

    /// Answers a client's ping, outside the count (see `State::pong`).
    pub fn pong(&self, payload: Bytes) {
        let first = lock(&self.state.pong).replace(payload).is_none();
        if first {
            self.direct(Direct::Pong);
        }
    }

    /// Behind everything already queued, outside the count like a ping.
    pub fn close(self, frame: Option<CloseFrame>) {
        self.direct(Direct::Close(frame));
    }

    fn direct(&self, item: Direct) {
        let _ = self.queue.send(Outgoing::Direct(Box::new(item)));
    }
}

impl Seat {
    /// A full queue marks the receiver too slow; it gets nothing more, so the events it does get
    /// have no gap in the middle.
    pub fn deliver(&self, frame: &TextFrame) -> Result<(), Dropped> {
        if self.too_slow.get() {
            return Err(Dropped::Closing);
        }
        let queued = self.queued.get();
        if queued - self.taken_seen.get() >= self.capacity {
            let state = &*self.outbox.state;
            self.taken_seen.set(state.taken.load(Ordering::Relaxed));
            if queued - self.taken_seen.get() >= self.capacity {
                self.too_slow.set(true);
                state.too_slow.cancel();
                return Err(Dropped::SlowConsumer);
            }
        }
        match self.outbox.queue.send(Outgoing::Event(frame.clone())) {
            Ok(()) => {
                self.queued.set(queued + 1);
                Ok(())
            }
            // The connection is already going away; its membership leaves in a moment.
            Err(_closed) => Err(Dropped::Gone),
        }
    }

    pub(super) fn end_room(&self, room_deleted: &TextFrame) {
        self.outbox.end_room(room_deleted);
    }
}

impl Inbox {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let next = ready!(self.queue.poll_recv(cx));
        Poll::Ready(self.taken(next))
    }

    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let next = self.queue.try_recv().ok();
        self.taken(next)
    }

    /// The payload of the pong that `Direct::Pong` stands for.
    pub fn take_pong(&self) -> Option<Bytes> {
        lock(&self.state.pong).take()
    }

    fn taken(&mut self, next: Option<Outgoing>) -> Option<Outgoing> {
        if let Some(Outgoing::Event(_)) = next {
            self.taken += 1;
            self.state.taken.store(self.taken, Ordering::Relaxed);
        }
        next
    }
}
