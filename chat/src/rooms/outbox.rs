//! One connection's queue: the connection's end ([`Outbox`]), the room's end ([`Seat`]) and the
//! writer's end ([`Inbox`]), with the two signals that end a connection from the room's side
//! (the queue overflowed; the room was deleted). A deque, its count of room events and the
//! writer's waker behind one mutex on a cache line of its own: a delivery touches that line, the
//! slot it fills and the writer's task, where a channel would also touch its block's header, its
//! permit count and its waker's state, each a cache miss per member in a big room
//! (chat/README.md, "Rooms inside").

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
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

/// The connection's end of its queue. Cloning adds a sender; the writer learns when the last
/// one is gone.
pub struct Outbox {
    state: Arc<State>,
}

/// The room's handle on a member's queue. Lives under the room's lock.
pub struct Seat {
    outbox: Outbox,
    /// A copy of the queue's capacity: the state's own copy sits on another cache line.
    capacity: usize,
    /// Set with the queue's `too_slow` signal: nothing more is queued, without locking to learn it.
    too_slow: Cell<bool>,
}

pub struct Inbox {
    state: Arc<State>,
}

struct State {
    queue: CachePadded<Mutex<Queue>>,
    capacity: usize,
    too_slow: CancellationToken,
    room_deleted: CancellationToken,
    /// The payload of the client's latest ping not yet answered. One pong is queued for any
    /// number of pings (RFC 6455 §5.5.3 lets the latest alone be answered), so a client that
    /// floods pings without reading grows nothing.
    pong: Mutex<Option<Bytes>>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Outgoing>,
    /// Room events among `items`: only they count against the capacity.
    events: u32,
    /// The writer's, while it waits for an item.
    waker: Option<Waker>,
    /// Outboxes alive (a connection has two or three): with none left and the queue empty, the
    /// writer ends.
    senders: u16,
    /// The writer's end is gone: nothing more is queued.
    closed: bool,
}

// The queue, its lock and its counts on one cache line.
const _: () = assert!(std::mem::size_of::<Mutex<Queue>>() <= 64);

impl Queue {
    /// Queues `item`; returns the writer's waker to wake once the lock is released.
    fn push(&mut self, item: Outgoing) -> Option<Waker> {
        self.items.push_back(item);
        self.waker.take()
    }

    fn take(&mut self) -> Option<Outgoing> {
        let item = self.items.pop_front()?;
        if let Outgoing::Event(_) = item {
            self.events -= 1;
        }
        Some(item)
    }
}

impl Outbox {
    pub fn channel(capacity: usize) -> (Self, Inbox) {
        let state = Arc::new(State {
            queue: CachePadded::new(Mutex::new(Queue {
                senders: 1,
                ..Queue::default()
            })),
            // The count is a u32, to keep the queue on one cache line.
            capacity: capacity.min(u32::MAX as usize),
            too_slow: CancellationToken::new(),
            room_deleted: CancellationToken::new(),
            pong: Mutex::new(None),
        });
        let inbox = Inbox {
            state: state.clone(),
        };
        (Self { state }, inbox)
    }

    /// The room's end of this queue; a connection has one.
    pub(super) fn seat(&self) -> Seat {
        Seat {
            outbox: self.clone(),
            capacity: self.state.capacity,
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
        let mut queue = lock(&self.state.queue);
        if queue.closed {
            return;
        }
        let waker = queue.push(Outgoing::Direct(Box::new(item)));
        drop(queue);
        wake(waker);
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        lock(&self.state.queue).senders += 1;
        Self {
            state: self.state.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut queue = lock(&self.state.queue);
        queue.senders -= 1;
        let waker = if queue.senders == 0 {
            queue.waker.take()
        } else {
            None
        };
        drop(queue);
        wake(waker);
    }
}

impl Seat {
    /// A full queue marks the receiver too slow; it gets nothing more, so the events it does get
    /// have no gap in the middle.
    pub fn deliver(&self, frame: &TextFrame) -> Result<(), Dropped> {
        if self.too_slow.get() {
            return Err(Dropped::Closing);
        }
        let state = &*self.outbox.state;
        let mut queue = lock(&state.queue);
        if queue.closed {
            // The connection is already going away; its membership leaves in a moment.
            return Err(Dropped::Gone);
        }
        if queue.events as usize >= self.capacity {
            drop(queue);
            self.too_slow.set(true);
            state.too_slow.cancel();
            return Err(Dropped::SlowConsumer);
        }
        queue.events += 1;
        let waker = queue.push(Outgoing::Event(frame.clone()));
        drop(queue);
        wake(waker);
        Ok(())
    }

    pub(super) fn end_room(&self, room_deleted: &TextFrame) {
        self.outbox.end_room(room_deleted);
    }
}

impl Inbox {
    /// The next item; `None` once every outbox is gone and the queue is empty.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let mut queue = lock(&self.state.queue);
        match queue.take() {
            Some(item) => Poll::Ready(Some(item)),
            None if queue.senders == 0 => Poll::Ready(None),
            None => {
                match &mut queue.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        lock(&self.state.queue).take()
    }

    /// The payload of the pong that `Direct::Pong` stands for.
    pub fn take_pong(&self) -> Option<Bytes> {
        lock(&self.state.pong).take()
    }
}

/// Wakes the writer, once the queue's lock is released: a woken task may run at once elsewhere
/// and look at the queue.
fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The writer is gone: what it left unsent is dropped now, and nothing more is queued.
impl Drop for Inbox {
    fn drop(&mut self) {
        let mut queue = lock(&self.state.queue);
        queue.closed = true;
        let unsent = std::mem::take(&mut queue.items);
        queue.events = 0;
        drop(queue);
        drop(unsent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &'static str) -> TextFrame {
        TextFrame::new(&Frame::from_static(text))
    }

    fn texts(inbox: &mut Inbox) -> Vec<String> {
        std::iter::from_fn(|| inbox.try_recv())
            .map(|item| match item {
                Outgoing::Event(frame) => frame.text().to_owned(),
                Outgoing::Direct(direct) => format!("{direct:?}"),
            })
            .collect()
    }

    #[test]
    fn a_full_queue_marks_its_member_too_slow_and_queues_nothing_more() {
        let (outbox, mut inbox) = Outbox::channel(2);
        let seat = outbox.seat();
        assert_eq!(seat.deliver(&frame("1")), Ok(()));
        assert_eq!(seat.deliver(&frame("2")), Ok(()));
        // Replies and pings are outside the count.
        outbox.ping();
        assert_eq!(seat.deliver(&frame("3")), Err(Dropped::SlowConsumer));
        assert!(outbox.is_too_slow());
        assert_eq!(texts(&mut inbox), ["1", "2", "Ping"]);
        // Taking frees the queue, but a member once too slow gets no gap in what it receives.
        assert_eq!(seat.deliver(&frame("4")), Err(Dropped::Closing));
    }

    #[test]
    fn events_taken_make_room_for_more() {
        let (outbox, mut inbox) = Outbox::channel(2);
        let seat = outbox.seat();
        for _ in 0..3 {
            assert_eq!(seat.deliver(&frame("x")), Ok(()));
            assert_eq!(seat.deliver(&frame("y")), Ok(()));
            assert_eq!(texts(&mut inbox), ["x", "y"]);
        }
        assert!(!outbox.is_too_slow());
    }

    #[test]
    fn the_writer_is_woken_by_a_push_and_ends_once_every_outbox_is_gone() {
        let (outbox, mut inbox) = Outbox::channel(4);
        let seat = outbox.seat();
        let woken = Arc::new(WakeCount::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(inbox.poll_recv(&mut cx).is_pending());
        seat.deliver(&frame("hello")).unwrap();
        assert_eq!(woken.count(), 1);
        assert!(matches!(
            inbox.poll_recv(&mut cx),
            Poll::Ready(Some(Outgoing::Event(_)))
        ));
        assert!(inbox.poll_recv(&mut cx).is_pending());
        outbox.reply(&Frame::from_static("last words"));
        drop((seat, outbox));
        assert_eq!(woken.count(), 2);
        assert!(matches!(
            inbox.poll_recv(&mut cx),
            Poll::Ready(Some(Outgoing::Direct(_)))
        ));
        assert!(matches!(inbox.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_member_whose_writer_is_gone_is_reported_gone() {
        let (outbox, inbox) = Outbox::channel(4);
        let seat = outbox.seat();
        seat.deliver(&frame("unsent")).unwrap();
        drop(inbox);
        assert_eq!(seat.deliver(&frame("more")), Err(Dropped::Gone));
    }

    #[derive(Default)]
    struct WakeCount(std::sync::atomic::AtomicUsize);

    impl WakeCount {
        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl std::task::Wake for WakeCount {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
