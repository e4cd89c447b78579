//! An accepted WebSocket as two halves with no lock between them. tungstenite parses what the
//! client sends, over the read half; the connection's writer alone writes, on the write half
//! (writer.rs). What tungstenite would write itself (the pong to a client's ping, the echo of a
//! client's close) goes nowhere: the reader hands those to the writer (chat/README.md, "The
//! writer").

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// What the client sends, frame by frame.
pub type Incoming = WebSocketStream<ReadHalf>;

pub struct Socket {
    pub incoming: Incoming,
    pub outgoing: OwnedWriteHalf,
}

impl Socket {
    /// The socket once the `101` answer is on the wire.
    pub async fn upgraded(tcp: TcpStream, config: WebSocketConfig) -> Self {
        let (read, outgoing) = tcp.into_split();
        let incoming =
            WebSocketStream::from_raw_socket(ReadHalf(read), Role::Server, Some(config)).await;
        Self { incoming, outgoing }
    }
}

/// The read half as tungstenite's whole stream: reads pass through, writes are dropped.
pub struct ReadHalf(OwnedReadHalf);

impl ReadHalf {
    pub fn get_mut(&mut self) -> &mut OwnedReadHalf {
        &mut self.0
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
