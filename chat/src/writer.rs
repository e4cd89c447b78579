//! A connection's writer: it writes what the connection's queue holds, up to a batch in one
//! vectored write, until the close frame the reader queues last. It writes the frames itself:
//! a frame's head is encoded here and its payload is the event's shared bytes, the same for every
//! member of a room, so nothing is copied or buffered per connection (chat/README.md, "The
//! writer").

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::protocol::Frame;
use crate::rooms::{Direct, Inbox, Outgoing};

/// Frames taken from the queue at a time at most, so one busy client cannot starve its pings.
const MAX_BATCH: usize = 64;
/// Frames in one vectored write at most: the slices are set up on the stack for every write.
const FRAMES_PER_WRITE: usize = 16;
/// A server's frame head: two bytes, and eight more for the longest length; never a mask.
const MAX_HEAD: usize = 10;

/// Writes until the queue's close frame is written, or a write fails. Returns the write half so
/// the connection can finish the TCP close.
pub async fn write_loop(mut socket: OwnedWriteHalf, inbox: Inbox) -> OwnedWriteHalf {
    let batches = Batches {
        socket: &mut socket,
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
    socket: &'a mut OwnedWriteHalf,
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
                Some(Outgoing::Event(frame)) => text(frame),
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
            Direct::Reply(frame) => text(frame),
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
            // One frame, as in a fanout, sets up its two slices rather than a whole write's worth.
            let written = ready!(if self.pending.frames.len() == 1 {
                self.poll_write_some::<2>(cx)
            } else {
                self.poll_write_some::<{ 2 * FRAMES_PER_WRITE }>(cx)
            })?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// One vectored send of what `SLICES` slices hold of the pending frames. It tries first and
    /// waits for room only when the socket has none: a socket is writable almost always.
    fn poll_write_some<const SLICES: usize>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); SLICES];
        let count = self.pending.io_slices(&mut slices);
        let stream: &TcpStream = self.socket.as_ref();
        loop {
            let sent = stream.try_io(Interest::WRITABLE, || {
                SockRef::from(stream).send_vectored(&slices[..count])
            });
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

fn text(frame: Frame) -> Encoded {
    Encoded::new(OpCode::Data(Data::Text), Bytes::from(frame))
}

/// A frame ready for the wire: its head, and its payload as it is.
struct Encoded {
    head: [u8; MAX_HEAD],
    head_len: u8,
    payload: Bytes,
}

impl Encoded {
    /// A whole message (FIN set) from the server (no mask): RFC 6455 §5.2.
    fn new(opcode: OpCode, payload: Bytes) -> Self {
        let mut head = [0; MAX_HEAD];
        head[0] = 0x80 | u8::from(opcode);
        let length = payload.len();
        let head_len = if length < 126 {
            head[1] = length as u8;
            2
        } else if let Ok(short) = u16::try_from(length) {
            head[1] = 126;
            head[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(length as u64).to_be_bytes());
            10
        };
        Self {
            head,
            head_len,
            payload,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.head_len) + self.payload.len()
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
            for part in [
                &frame.head[..usize::from(frame.head_len)],
                &frame.payload[..],
            ] {
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
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    use super::*;

    fn text(payload: &'static str) -> Encoded {
        Encoded::new(
            OpCode::Data(Data::Text),
            Bytes::from_static(payload.as_bytes()),
        )
    }

    fn pending(payloads: &[&'static str]) -> Pending {
        Pending {
            frames: payloads.iter().copied().map(text).collect(),
            written: 0,
        }
    }

    fn wire(pending: &Pending) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        let count = pending.io_slices(&mut slices);
        slices[..count].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn frame_heads_are_the_ones_tungstenite_would_write() {
        for length in [0, 1, 125, 126, 65_535, 65_536, 80_000] {
            for opcode in [
                OpCode::Data(Data::Text),
                OpCode::Control(Control::Ping),
                OpCode::Control(Control::Pong),
                OpCode::Control(Control::Close),
            ] {
                let frame = Encoded::new(opcode, Bytes::from(vec![b'x'; length]));
                let mut expected = Vec::new();
                let header = FrameHeader {
                    opcode,
                    ..FrameHeader::default()
                };
                header.format(length as u64, &mut expected).unwrap();
                assert_eq!(&frame.head[..usize::from(frame.head_len)], &expected[..]);
            }
        }
    }

    #[test]
    fn a_text_frame_is_its_head_then_its_payload() {
        assert_eq!(wire(&pending(&["hi"])), b"\x81\x02hi");
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
    fn empty_payloads_leave_no_empty_slices() {
        let pending = Pending {
            frames: vec![Encoded::new(OpCode::Control(Control::Ping), Bytes::new())],
            written: 0,
        };
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        assert_eq!(pending.io_slices(&mut slices), 1);
        assert_eq!(wire(&pending), b"\x89\x00");
    }

    #[test]
    fn one_write_takes_as_many_frames_as_its_slices_hold() {
        let pending = pending(&["a"; FRAMES_PER_WRITE + 3]);
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        assert_eq!(pending.io_slices(&mut slices), 2 * FRAMES_PER_WRITE);
    }
}
