//! A load client's WebSocket: tungstenite's handshake request and frame heads, and a read buffer
//! of its own. tungstenite's grows to the longest frame the connection has received and then
//! zero-fills 4 KiB of it before every read; after a big room's `welcome` (25 KiB for 1000
//! members) that cost the generator about a quarter more CPU per frame for the rest of the run,
//! which the ceiling, sending no welcome, did not pay (chat/README.md, "Side by side").
//! Here every frame is read in place from a 4 KiB buffer, which is back to that size once a
//! longer frame is used.

use std::io::{self, Cursor};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::handshake::client::{Request, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// What one read takes at most, and what the buffer returns to after a longer frame.
const BUFFER: usize = 4096;
/// A handshake's response is a few hundred bytes; more is not a WebSocket server.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The longest frame read; the chat's longest is a big room's `welcome`.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why the handshake did not open a WebSocket, as the report counts it.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with another status than 101.
    Status(u16),
    Io(io::ErrorKind),
    /// A 101 whose `Sec-WebSocket-Accept` does not answer the key, or no HTTP response at all.
    Protocol(&'static str),
}

impl From<io::Error> for HandshakeError {
    fn from(error: io::Error) -> Self {
        Self::Io(error.kind())
    }
}

/// Sends `request`'s upgrade over `stream` and reads the answer; what came after the response's
/// head is the first frames, kept in the reader.
pub async fn handshake(
    stream: TcpStream,
    request: Request,
) -> Result<(Reader, Writer), HandshakeError> {
    let (head, key) = generate_request(request).map_err(|_| HandshakeError::Protocol("request"))?;
    let (read, mut write) = stream.into_split();
    write.write_all(&head).await?;
    let mut reader = Reader {
        stream: read,
        buffer: vec![0; BUFFER],
        start: 0,
        end: 0,
    };
    loop {
        if let Some(head_len) = check_response(&reader.buffer[..reader.end], &key)? {
            reader.start = head_len;
            break;
        }
        if reader.end >= MAX_RESPONSE_HEAD {
            return Err(HandshakeError::Protocol("response head too long"));
        }
        if !reader.read_more(reader.end + 1).await? {
            return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof));
        }
    }
    reader.settle();
    Ok((reader, Writer { stream: write }))
}

/// The length of the response's head once it is whole, if the server switched protocols.
fn check_response(bytes: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(head_len)) => head_len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HandshakeError::Protocol("response")),
    };
    match response.code {
        Some(101) => {}
        Some(status) => return Err(HandshakeError::Status(status)),
        None => return Err(HandshakeError::Protocol("response")),
    }
    let accept = response
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|header| header.value);
    if accept != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(HandshakeError::Protocol("accept key"));
    }
    Ok(Some(head_len))
}

/// One frame from the server, borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Text(&'a str),
    Ping(&'a [u8]),
    /// The close frame's code, when it has one.
    Close(Option<u16>),
    /// Binary frames and pongs: not counted.
    Other,
}

/// The receiving half: frames from a buffer of [`BUFFER`] bytes, read into from where the last
/// frame ended and back at its start whenever every byte read was used.
pub struct Reader {
    stream: OwnedReadHalf,
    buffer: Vec<u8>,
    /// The bytes read and not yet used: `buffer[start..end]`.
    start: usize,
    end: usize,
}

impl Reader {
    /// The next frame, or `None` at the end of the stream.
    pub async fn next(&mut self) -> io::Result<Option<Incoming<'_>>> {
        self.settle();
        loop {
            let pending = &self.buffer[self.start..self.end];
            let mut cursor = Cursor::new(pending);
            let parsed = FrameHeader::parse(&mut cursor).map_err(invalid)?;
            let head_len = cursor.position() as usize;
            let needed = match parsed {
                Some((header, payload_len)) => {
                    let frame_len = usize::try_from(payload_len)
                        .ok()
                        .and_then(|payload_len| head_len.checked_add(payload_len))
                        .filter(|frame_len| *frame_len <= MAX_FRAME)
                        .ok_or_else(|| invalid("a frame over 16 MiB"))?;
                    if pending.len() >= frame_len {
                        let payload = self.start + head_len..self.start + frame_len;
                        self.start += frame_len;
                        return frame(&header, &self.buffer[payload]).map(Some);
                    }
                    frame_len
                }
                None => pending.len() + 1,
            };
            if !self.read_more(needed).await? {
                return Ok(None);
            }
        }
    }

    /// Reads what the stream has, with room made for `needed` unused bytes in all; `false` at
    /// the end of the stream.
    async fn read_more(&mut self, needed: usize) -> io::Result<bool> {
        self.make_room_for(needed);
        let read = self.stream.read(&mut self.buffer[self.end..]).await?;
        self.end += read;
        Ok(read > 0)
    }

    /// Reads from the buffer's start again once everything read is used, and into a buffer of
    /// the usual size again once a longer frame is used.
    fn settle(&mut self) {
        let unused = self.end - self.start;
        if self.buffer.len() > BUFFER && unused < BUFFER {
            let mut usual = vec![0; BUFFER];
            usual[..unused].copy_from_slice(&self.buffer[self.start..self.end]);
            self.buffer = usual;
            (self.start, self.end) = (0, unused);
        } else if unused == 0 {
            (self.start, self.end) = (0, 0);
        }
    }

    /// Room after the unused bytes for a frame of `needed` bytes in all, with one read's worth
    /// to spare.
    fn make_room_for(&mut self, needed: usize) {
        if self.start + needed > self.buffer.len() || self.end == self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if needed > self.buffer.len() {
            self.buffer.resize(needed.next_multiple_of(BUFFER), 0);
        }
    }
}

/// A whole frame as the report counts it. Servers send whole messages, unmasked.
fn frame<'a>(header: &FrameHeader, payload: &'a [u8]) -> io::Result<Incoming<'a>> {
    if !header.is_final || header.mask.is_some() || header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(invalid(
            "a fragmented, masked or extension's frame from the server",
        ));
    }
    Ok(match header.opcode {
        OpCode::Data(Data::Text) => Incoming::Text(std::str::from_utf8(payload).map_err(invalid)?),
        OpCode::Control(Control::Ping) => Incoming::Ping(payload),
        OpCode::Control(Control::Close) => Incoming::Close(
            payload
                .first_chunk()
                .map(|code: &[u8; 2]| u16::from_be_bytes(*code)),
        ),
        OpCode::Data(Data::Continue) => {
            return Err(invalid("a continuation frame without a start"));
        }
        _ => Incoming::Other,
    })
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The sending half: every frame masked, as a client's must be, and written whole.
pub struct Writer {
    stream: OwnedWriteHalf,
}

impl Writer {
    pub async fn text(&mut self, text: String) -> io::Result<()> {
        self.send(Frame::message(text, OpCode::Data(Data::Text), true))
            .await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(Frame::pong(payload.to_vec())).await
    }

    async fn send(&mut self, mut frame: Frame) -> io::Result<()> {
        frame.header_mut().mask = Some(rand::random());
        let mut wire = Vec::with_capacity(frame.len());
        frame.format(&mut wire).map_err(io::Error::other)?;
        self.stream.write_all(&wire).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::*;

    /// A server that answers the handshake with `status` and then writes `frames`, as raw bytes,
    /// in pieces of `piece` bytes; it keeps what the client sends in the returned vector.
    async fn serve_raw(
        status: u16,
        frames: Vec<u8>,
        piece: usize,
    ) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0];
            while !request.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).unwrap();
            let key = request
                .lines()
                .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap();
            let response = format!(
                "HTTP/1.1 {status} Whatever\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            let mut out = response.into_bytes();
            out.extend_from_slice(&frames);
            for chunk in out.chunks(piece) {
                stream.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            let mut received = Vec::new();
            let _ = stream.read_to_end(&mut received).await;
            received
        });
        (url, task)
    }

    fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        header.format(payload.len() as u64, &mut wire).unwrap();
        wire.extend_from_slice(payload);
        wire
    }

    async fn open(url: &str) -> Result<(Reader, Writer), HandshakeError> {
        let request = url.into_client_request().unwrap();
        let stream = TcpStream::connect(request.uri().authority().unwrap().as_str())
            .await
            .unwrap();
        handshake(stream, request).await
    }

    #[tokio::test]
    async fn frames_arrive_whole_however_the_bytes_are_cut_and_a_long_one_leaves_the_buffer_small()
    {
        let long = "m".repeat(25_000);
        let mut frames = server_frame(OpCode::Data(Data::Text), long.as_bytes());
        frames.extend(server_frame(OpCode::Data(Data::Text), b"hi"));
        frames.extend(server_frame(OpCode::Control(Control::Ping), b"p"));
        frames.extend(server_frame(OpCode::Data(Data::Text), &[b'x'; 300]));
        frames.extend(server_frame(OpCode::Control(Control::Close), &[0x0f, 0xa4]));
        for piece in [1, 7, 150, 5000, 100_000] {
            let (url, _server) = serve_raw(101, frames.clone(), piece).await;
            let (mut reader, _writer) = open(&url).await.unwrap();
            assert_eq!(
                reader.next().await.unwrap(),
                Some(Incoming::Text(&long)),
                "{piece}"
            );
            assert_eq!(reader.next().await.unwrap(), Some(Incoming::Text("hi")));
            assert_eq!(reader.buffer.len(), BUFFER, "{piece}");
            assert_eq!(reader.next().await.unwrap(), Some(Incoming::Ping(b"p")));
            let text = "x".repeat(300);
            assert_eq!(reader.next().await.unwrap(), Some(Incoming::Text(&text)));
            assert_eq!(
                reader.next().await.unwrap(),
                Some(Incoming::Close(Some(4004)))
            );
        }
    }

    #[tokio::test]
    async fn the_client_sends_masked_frames_the_server_reads_back() {
        let (url, server) = serve_raw(101, Vec::new(), 1).await;
        let (reader, mut writer) = open(&url).await.unwrap();
        writer.text("hello".into()).await.unwrap();
        writer.pong(b"p").await.unwrap();
        drop((reader, writer));
        let received = server.await.unwrap();
        let mut cursor = Cursor::new(&received[..]);
        let mut payloads = Vec::new();
        while let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
            let start = cursor.position() as usize;
            let mut payload = received[start..start + len as usize].to_vec();
            cursor.set_position((start + len as usize) as u64);
            let mask = header.mask.expect("a client's frames are masked");
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[i % 4];
            }
            payloads.push((header.opcode, payload));
        }
        assert_eq!(
            payloads,
            [
                (OpCode::Data(Data::Text), b"hello".to_vec()),
                (OpCode::Control(Control::Pong), b"p".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_handshake_names_its_status() {
        let (url, _server) = serve_raw(503, Vec::new(), 1000).await;
        assert_eq!(open(&url).await.err(), Some(HandshakeError::Status(503)));
    }
}
