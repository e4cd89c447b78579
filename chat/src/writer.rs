//! A connection's writer: it writes what the connection's queue holds, in batches of up to 32
//! slices per send, until the close frame the reader queues last. It writes the frames itself: a
//! text frame (a room's event, a reply) comes encoded whole, a room's the same bytes for every
//! member, and the control frames (ping, pong, close) get their head here, so nothing is copied
//! or buffered per connection (chat/README.md, "The writer").

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use crate::framing::{Head, TextFrame};
use crate::rooms::{Direct, Inbox, Outgoing};

/// Frames taken from the queue at a time at most, so one busy client cannot starve its pings.
const MAX_BATCH: usize = 64;
/// Slices in one write at most, set up on the stack for every write: a room's event takes one,
/// a frame of the connection's own (reply, ping, pong, close) two, its head and its payload.
const SLICES_PER_WRITE: usize = 32;

/// Writes until the queue's close frame is written, or a write fails. Returns the write half so
/// the connection can finish the TCP close.
pub async fn write_loop(socket: OwnedWriteHalf, inbox: Inbox) -> OwnedWriteHalf {
    let stream: &TcpStream = socket.as_ref();
    let batches = Batches {
        stream,
        fd: stream.as_fd(),
        inbox,
        pending: Pending::default(),
        closing: false,
    };
    if let Err(error) = batches.await {
        tracing::debug!(%error, "write failed");
    }
    socket
}

struct Batches<'a> {
    stream: &'a TcpStream,
    /// The socket's descriptor, copied into the task: reading it through the write half would
    /// reach into the stream's own allocation, a cache miss per delivery in a big room.
    fd: BorrowedFd<'a>,
    inbox: Inbox,
    pending: Pending,
    /// The close frame is taken: nothing comes after it.
    closing: bool,
}

/// How a look at the queue ended.
enum Looked {
    /// Empty: the queue holds this task's waker.
    Empty,
    /// A batch is taken, or the close frame.
    Full,
}

impl Batches<'_> {
    /// Takes what the queue holds, up to a batch.
    fn take_batch(&mut self, cx: &mut Context<'_>) -> Looked {
        while !self.closing && self.pending.frames.len() < MAX_BATCH {
            let Poll::Ready(item) = self.inbox.poll_recv(cx) else {
                return Looked::Empty;
            };
            let frame = match item {
                Some(Outgoing::Event(frame)) => Encoded::whole(frame),
                Some(Outgoing::Direct(direct)) => match self.encode_direct(*direct) {
                    Some(frame) => frame,
                    None => continue,
                },
                // Every sender gone without a close frame: only when the connection's task
                // itself is gone.
                None => {
                    self.closing = true;
                    continue;
                }
            };
            self.pending.frames.push(frame);
        }
        Looked::Full
    }

    /// `None` for a pong already sent with a later ping's payload.
    fn encode_direct(&mut self, direct: Direct) -> Option<Encoded> {
        Some(match direct {
            Direct::Reply(frame) => Encoded::whole(frame),
            Direct::Ping => Encoded::new(OpCode::Control(Control::Ping), Bytes::new()),
            Direct::Pong => Encoded::new(OpCode::Control(Control::Pong), self.inbox.take_pong()?),
            Direct::Close(frame) => {
                self.closing = true;
                let payload = WsFrame::close(frame).into_payload();
                Encoded::new(OpCode::Control(Control::Close), payload)
            }
        })
    }

    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.frames.is_empty() {
            // One frame, as in a fanout, sets up its one or two slices, not a whole write's worth.
            let written = ready!(if self.pending.frames.len() == 1 {
                self.poll_write_some::<2>(cx)
            } else {
                self.poll_write_some::<SLICES_PER_WRITE>(cx)
            })?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// One send of what `SLICES` slices hold of the pending frames: send(2) for one slice, as a
    /// room's one event is; sendmsg(2), which costs the kernel more per call, for several. A
    /// socket is writable almost always, so the first try goes straight to the kernel: asking
    /// tokio first reads its readiness of the socket, a cache miss per write in a big room. Only a
    /// send that would block goes through tokio, which then clears the readiness and waits for
    /// room.
    fn poll_write_some<const SLICES: usize>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); SLICES];
        let count = self.pending.io_slices(&mut slices);
        let stream = self.stream;
        let fd = &self.fd;
        let send = || {
            let socket = SockRef::from(fd);
            match &slices[..count] {
                [one] => socket.send(one),
                several => socket.send_vectored(several),
            }
        };
        match send() {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            sent => return Poll::Ready(sent),
        }
        loop {
            let sent = stream.try_io(Interest::WRITABLE, send);
            match sent {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    ready!(stream.poll_write_ready(cx))?;
                }
                sent => return Poll::Ready(sent),
            }
        }
    }
}

impl Future for Batches<'_> {
    type Output = io::Result<()>;

    /// With one event per wake-up (the fanout case): two looks at the queue, the second finding
    /// it empty and leaving this task's waker there, then one write.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let looked = this.take_batch(cx);
            ready!(this.poll_write_pending(cx))?;
            match looked {
                _ if this.closing => return Poll::Ready(Ok(())),
                Looked::Empty => return Poll::Pending,
                Looked::Full => {}
            }
        }
    }
}

/// A frame ready for the wire: its head, unless the payload holds it, and its payload as it is.
struct Encoded {
    head: Head,
    payload: Bytes,
}

impl Encoded {
    fn new(opcode: OpCode, payload: Bytes) -> Self {
        Self {
            head: Head::new(opcode, payload.len()),
            payload,
        }
    }

    /// A text frame, head included.
    fn whole(frame: TextFrame) -> Self {
        Self {
            head: Head::NONE,
            payload: frame.into_bytes(),
        }
    }

    fn len(&self) -> usize {
        self.head.as_bytes().len() + self.payload.len()
    }
}

/// Frames taken from the queue and not yet wholly written.
#[derive(Default)]
struct Pending {
    frames: Vec<Encoded>,
    /// Bytes of the first frame already written.
    written: usize,
}

impl Pending {
    /// What is left to write, as slices into `out`; returns how many.
    fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        let mut skip = self.written;
        for frame in &self.frames {
            for part in [frame.head.as_bytes(), &frame.payload[..]] {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                if count == out.len() {
                    return count;
                }
                out[count] = IoSlice::new(&part[skip..]);
                skip = 0;
                count += 1;
            }
        }
        count
    }

    fn advance(&mut self, written: usize) {
        let mut left = self.written + written;
        let mut done = 0;
        for frame in &self.frames {
            if left < frame.len() {
                break;
            }
            left -= frame.len();
            done += 1;
        }
        self.frames.drain(..done);
        self.written = left;
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;

    use super::*;
    use crate::protocol::Frame;

    fn text(payload: &'static str) -> Encoded {
        Encoded::new(
            OpCode::Data(Data::Text),
            Bytes::from_static(payload.as_bytes()),
        )
    }

    fn room_event(payload: &'static str) -> Encoded {
        Encoded::whole(TextFrame::new(&Frame::from(payload)))
    }

    fn pending(payloads: &[&'static str]) -> Pending {
        Pending {
            frames: payloads.iter().copied().map(text).collect(),
            written: 0,
        }
    }

    fn wire(pending: &Pending) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
        let count = pending.io_slices(&mut slices);
        slices[..count].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn a_reply_is_its_head_then_its_payload() {
        assert_eq!(wire(&pending(&["hi"])), b"\x81\x02hi");
    }

    #[test]
    fn a_rooms_event_goes_out_as_one_slice() {
        let pending = Pending {
            frames: vec![room_event("hi")],
            written: 0,
        };
        let mut slices = [IoSlice::new(&[]); 2];
        assert_eq!(pending.io_slices(&mut slices), 1);
        assert_eq!(wire(&pending), b"\x81\x02hi");
    }

    #[test]
    fn a_partial_write_resumes_mid_frame_and_drops_what_is_done() {
        let mut pending = pending(&["abc", "de"]);
        pending.advance(3); // the first head and "a"
        assert_eq!(wire(&pending), b"bc\x81\x02de");
        pending.advance(3); // "bc", then the second head's first byte
        assert_eq!(pending.frames.len(), 1);
        assert_eq!(wire(&pending), b"\x02de");
        pending.advance(3);
        assert!(pending.frames.is_empty());
        assert_eq!(pending.written, 0);
    }

    #[test]
    fn one_write_takes_a_rooms_events_a_slice_each() {
        let pending = Pending {
            frames: (0..SLICES_PER_WRITE + 3).map(|_| room_event("a")).collect(),
            written: 0,
        };
        let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
        assert_eq!(pending.io_slices(&mut slices), SLICES_PER_WRITE);
        assert!(slices.iter().all(|slice| &slice[..] == b"\x81\x01a"));
    }

    #[test]
    fn a_partial_write_resumes_mid_event_then_writes_a_reply_with_its_head() {
        let mut pending = Pending {
            frames: vec![room_event("abc"), text("de")],
            written: 0,
        };
        pending.advance(3); // the event's head and "a"
        assert_eq!(wire(&pending), b"bc\x81\x02de");
        pending.advance(2);
        assert_eq!(pending.frames.len(), 1);
        assert_eq!(wire(&pending), b"\x81\x02de");
    }

    #[test]
    fn empty_payloads_leave_no_empty_slices() {
        let pending = Pending {
            frames: vec![Encoded::new(OpCode::Control(Control::Ping), Bytes::new())],
            written: 0,
        };
        let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
        assert_eq!(pending.io_slices(&mut slices), 1);
        assert_eq!(wire(&pending), b"\x89\x00");
    }

    #[test]
    fn one_write_takes_as_many_frames_as_its_slices_hold() {
        let pending = pending(&["a"; SLICES_PER_WRITE / 2 + 3]);
        let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
        assert_eq!(pending.io_slices(&mut slices), SLICES_PER_WRITE);
    }
}
