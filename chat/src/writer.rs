//! A connection's writer: it writes what the connection's queue holds, one flush per batch, until
//! the close frame the reader queues last. The batch loop is a hand-written future: it takes an
//! item from the queue only once the socket has room for it, and a wake-up costs one look at the
//! queue, the same as the least broadcast loop can do (chat/README.md, "The writer").

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::rooms::{Inbox, Outgoing};

/// Frames written between two flushes at most, so one busy client cannot starve its pings.
const MAX_BATCH: usize = 64;
/// tungstenite's write buffer keeps the capacity of the largest frame for good: one `welcome`
/// listing a room of 1000 (25 KiB) would cost every newcomer that much memory.
const FRAGMENT_BYTES: usize = 1024;

/// The socket's write half.
pub type SocketSink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// Returns the sink so the connection can finish the TCP close.
pub async fn write_loop(mut sink: SocketSink, inbox: Inbox) -> SocketSink {
    let batches = Batches {
        sink: &mut sink,
        inbox,
        unflushed: 0,
        fragments: None,
        held: None,
    };
    let close_frame = match batches.await {
        Ok(close_frame) => close_frame,
        Err(error) => {
            tracing::debug!(%error, "write failed");
            return sink;
        }
    };
    // Both flush what the batches left buffered, ahead of the close.
    let _ = match close_frame {
        Some(frame) => sink.send(Message::Close(Some(frame))).await,
        // The client closed: flush tungstenite's automatic reply.
        None => sink.close().await,
    };
    sink
}

/// Writes queued items until the queue's `Close`, whose frame it returns unsent.
struct Batches<'a> {
    sink: &'a mut SocketSink,
    inbox: Inbox,
    /// Frames buffered since the last flush.
    unflushed: usize,
    /// The rest of a long event being written.
    fragments: Option<Fragments>,
    /// Taken from the queue while the socket had no room for it.
    held: Option<Message>,
}

/// What the writer does next.
enum Step {
    Write(Message),
    /// Nothing is queued: the queue holds this task's waker.
    Flush,
    Stop(Option<CloseFrame>),
}

impl Batches<'_> {
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        ready!(self.sink.poll_flush_unpin(cx))?;
        self.unflushed = 0;
        Poll::Ready(Ok(()))
    }

    fn next_step(&mut self, cx: &mut Context<'_>) -> Step {
        if let Some(message) = self.held.take() {
            return Step::Write(message);
        }
        if let Some(fragments) = &mut self.fragments {
            match fragments.next() {
                Some(fragment) => return Step::Write(Message::Frame(fragment)),
                None => self.fragments = None,
            }
        }
        match self.inbox.poll_recv(cx) {
            Poll::Ready(Some(Outgoing::Event(frame) | Outgoing::Reply(frame))) => {
                if frame.len() <= FRAGMENT_BYTES {
                    return Step::Write(Message::Text(frame));
                }
                self.fragments = Some(Fragments::of(Bytes::from(frame)));
                self.next_step(cx)
            }
            Poll::Ready(Some(Outgoing::Ping)) => Step::Write(Message::Ping(Bytes::new())),
            Poll::Ready(Some(Outgoing::Close(frame))) => Step::Stop(frame),
            // Every sender gone without a close frame: only when the connection's task itself is
            // gone.
            Poll::Ready(None) => Step::Stop(None),
            Poll::Pending => Step::Flush,
        }
    }
}

impl Future for Batches<'_> {
    type Output = Result<Option<CloseFrame>, WsError>;

    /// The socket's `poll_ready` comes only once an item is in hand: with nothing waiting in the
    /// sink's slot it costs nothing, so one event per wake-up takes the socket's lock once, in the
    /// flush.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            if this.unflushed >= MAX_BATCH {
                ready!(this.poll_flush(cx))?;
            }
            let message = match this.next_step(cx) {
                Step::Write(message) => message,
                Step::Stop(close_frame) => return Poll::Ready(Ok(close_frame)),
                Step::Flush => {
                    if this.unflushed > 0 {
                        ready!(this.poll_flush(cx))?;
                    }
                    return Poll::Pending;
                }
            };
            if this.sink.poll_ready_unpin(cx)?.is_pending() {
                this.held = Some(message);
                return Poll::Pending;
            }
            this.sink.start_send_unpin(message)?;
            this.unflushed += 1;
        }
    }
}

/// A long event as a text frame and continuation frames. Fragments may split a UTF-8
/// character; only the whole message has to be valid.
struct Fragments {
    message: Bytes,
    next: usize,
}

impl Fragments {
    fn of(message: Bytes) -> Self {
        Self { message, next: 0 }
    }
}

impl Iterator for Fragments {
    type Item = WsFrame;

    fn next(&mut self) -> Option<WsFrame> {
        let start = self.next * FRAGMENT_BYTES;
        if start >= self.message.len() {
            return None;
        }
        let end = self.message.len().min(start + FRAGMENT_BYTES);
        let opcode = if self.next == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        self.next += 1;
        let last = end == self.message.len();
        Some(WsFrame::message(
            self.message.slice(start..end),
            OpCode::Data(opcode),
            last,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_event_is_cut_into_text_then_continuation_fragments() {
        let message = Bytes::from("é".repeat(FRAGMENT_BYTES)); // 2 bytes each: two fragments
        let fragments: Vec<WsFrame> = Fragments::of(message.clone()).collect();

        let shape: Vec<_> = fragments
            .iter()
            .map(|f| (f.header().opcode, f.header().is_final, f.payload().len()))
            .collect();
        assert_eq!(
            shape,
            [
                (OpCode::Data(Data::Text), false, FRAGMENT_BYTES),
                (OpCode::Data(Data::Continue), true, FRAGMENT_BYTES),
            ]
        );
        let joined: Vec<u8> = fragments
            .iter()
            .flat_map(|f| f.payload().to_vec())
            .collect();
        assert_eq!(joined, message.to_vec());
    }
}
