//! One client from handshake to close: a reader (this task) and a writer (its own task) joined by
//! a bounded queue. The reader enforces the limits and queues the pings, and the answers to the
//! client's pings and close; the writer waits on nothing but its queue, until the close frame the
//! reader queues last. Whatever ends the connection, the membership is dropped, so the room always
//! hears `left`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

pub use crate::close_reason::CloseReason;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::protocol::{ClientEvent, ErrorCode, ServerEvent, parse_client_event};
use crate::rooms::{Membership, Newcomer, Outbox, RoomRegistry};
use crate::socket::{Incoming, Socket};
use crate::writer::write_loop;
use contract::Claims;

const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub async fn serve(
    socket: Socket,
    claims: Claims,
    peer: SocketAddr,
    registry: RoomRegistry,
    limits: &Limits,
    metrics: &Metrics,
    shutdown: CancellationToken,
) {
    let (outbox, inbox) = Outbox::channel(limits.send_queue);
    let Socket {
        incoming: mut stream,
        outgoing,
    } = socket;

    let membership = registry
        .join(
            Newcomer {
                room_id: claims.room_id,
                room: claims.room,
                email: claims.email,
            },
            outbox.clone(),
        )
        .await;
    tracing::info!(
        %peer,
        room_id = membership.room_id(),
        user = %membership.email(),
        "connection opened"
    );
    metrics.connection_opened();

    let mut writer = tokio::spawn(write_loop(outgoing, inbox));

    let mut reader = Reader {
        membership: &membership,
        outbox: &outbox,
        limits,
        metrics,
        bucket: TokenBucket::new(
            limits.messages_per_second,
            limits.messages_burst,
            Instant::now(),
        ),
        strikes: 0,
        client_close: None,
    };
    let mut writer_ended = None;
    let reason = tokio::select! {
        biased;
        () = shutdown.cancelled() => CloseReason::ShuttingDown,
        () = outbox.room_deleted() => CloseReason::RoomDeleted,
        () = outbox.too_slow() => CloseReason::TooSlow,
        // The writer stopped on its own: a write failed.
        written = &mut writer => {
            writer_ended = Some(written);
            CloseReason::Gone
        }
        reason = reader.run(&mut stream) => reason,
    };
    let client_close = reader.client_close.take();
    tracing::info!(
        %peer,
        room_id = membership.room_id(),
        user = %membership.email(),
        ?reason,
        "connection closed"
    );
    metrics.connection_closed(reason);
    // Leave first: the room hears `left` even if the closing handshake drags on.
    drop(membership);
    // Behind what is queued (e.g. the error that earned a 1008), which goes out first. A client's
    // own close is echoed, code and reason (RFC 6455 §5.5.1).
    let close_frame = match reason {
        CloseReason::ClientClosed => client_close,
        _ => reason.close_frame(),
    };
    outbox.close(close_frame);

    let written = match writer_ended {
        Some(written) => written,
        None => match tokio::time::timeout(CLOSE_GRACE, &mut writer).await {
            Ok(written) => written,
            // A client that stopped reading leaves the writer's `flush` pending for good.
            Err(_elapsed) => {
                writer.abort();
                return;
            }
        },
    };
    let Ok(outgoing) = written else {
        return;
    };
    if reason != CloseReason::Gone {
        // Boxed: the closing steps (and their read buffer) would otherwise be part of every
        // connection's task for its whole life, not only while it closes.
        Box::pin(linger(stream, outgoing)).await;
    }
}

/// The closing handshake, then FIN, then reading until the client closes too, so that no reset
/// destroys the close code (chat/README.md, "Close codes").
async fn linger(mut incoming: Incoming, mut outgoing: OwnedWriteHalf) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = incoming.next().await {
            if message.is_close() {
                break;
            }
        }
        let _ = outgoing.shutdown().await;
        let tcp = incoming.get_mut().get_mut();
        let mut scratch = [0u8; 1024];
        while matches!(tcp.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

struct Reader<'a> {
    membership: &'a Membership,
    outbox: &'a Outbox,
    limits: &'a Limits,
    metrics: &'a Metrics,
    bucket: TokenBucket,
    strikes: u32,
    /// The close frame the client sent, to echo.
    client_close: Option<CloseFrame>,
}

impl Reader<'_> {
    async fn run(&mut self, stream: &mut Incoming) -> CloseReason {
        let idle = tokio::time::sleep(self.limits.idle_timeout);
        tokio::pin!(idle);
        let ping_interval = self.limits.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                biased;
                () = &mut idle => return CloseReason::Idle,
                _ = ping.tick() => {
                    self.outbox.ping();
                    continue;
                }
                next = stream.next() => next,
            };
            let message = match next {
                None => return CloseReason::Gone,
                Some(Err(error)) => {
                    tracing::debug!(%error, "read failed");
                    return CloseReason::from_error(&error);
                }
                Some(Ok(message)) => message,
            };
            idle.as_mut()
                .reset(Instant::now() + self.limits.idle_timeout);
            let outcome = match message {
                Message::Text(text) => self.on_text(text.as_str()),
                Message::Binary(_) => Err(ServerEvent::error(
                    ErrorCode::BinaryNotSupported,
                    "frames must be JSON text",
                )),
                Message::Close(frame) => {
                    self.client_close = frame;
                    return CloseReason::ClientClosed;
                }
                Message::Ping(payload) => {
                    self.outbox.pong(payload);
                    continue;
                }
                // Any frame at all already reset the idle timer.
                Message::Pong(_) | Message::Frame(_) => continue,
            };
            match outcome {
                Ok(()) => self.strikes = 0,
                Err(error) => {
                    self.outbox.reply(&error.to_frame());
                    self.strikes += 1;
                    if self.strikes >= self.limits.max_strikes {
                        return CloseReason::KeptAbusing;
                    }
                }
            }
        }
    }

    fn on_text(&mut self, frame: &str) -> Result<(), ServerEvent> {
        if !self.bucket.try_take(Instant::now()) {
            return Err(ServerEvent::error(
                ErrorCode::RateLimited,
                format!(
                    "at most {} messages per second (bursts of {})",
                    self.limits.messages_per_second, self.limits.messages_burst
                ),
            ));
        }
        let ClientEvent::Message { text } = parse_client_event(frame)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(ServerEvent::error(
                ErrorCode::EmptyText,
                "the message is empty",
            ));
        }
        if text.chars().count() > self.limits.max_text_chars {
            return Err(ServerEvent::error(
                ErrorCode::TextTooLong,
                format!(
                    "at most {} characters per message",
                    self.limits.max_text_chars
                ),
            ));
        }
        self.membership.say(text.to_owned());
        self.metrics.message_received();
        Ok(())
    }
}

#[derive(Debug)]
struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, start);

        let burst = (0..20).filter(|_| bucket.try_take(start)).count();
        assert_eq!(burst, 10);

        let one_second_later = start + Duration::from_secs(1);
        let refilled = (0..20)
            .filter(|_| bucket.try_take(one_second_later))
            .count();
        assert_eq!(refilled, 5);
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5, 10, start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| bucket.try_take(much_later)).count(), 10);
    }
}
