//! The one HTTP request a connection starts with, and its answer: `101` and a WebSocket, or a
//! plain HTTP status. Every request gets an answer, so nginx never turns a stray one into 502
//! (`accept_hdr_async` would drop a refused request without a byte); the WebSocket checks are
//! tungstenite's own. Why, and every status: chat/README.md, "Handshake".

use std::io;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::headers::MAX_HEADERS;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, create_response, write_response,
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use contract::notice::INTERNAL_PREFIX;

use crate::handshake::{Check, WS_PATH};
use crate::plain_http::plain_text_response;
use crate::socket::Socket;

/// A browser's upgrade with the site's cookies is well under it; nginx's own default limit for a
/// whole head is larger, so it is the one place a head is cut.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Reading what the client still sends before closing: unread bytes reset the connection, and a
/// reset can destroy the answer before the client reads it (e.g. after a `POST` body).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("connection closed before a complete request head")]
    Incomplete,
    #[error("answered {status}")]
    Answered { status: StatusCode },
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Response(#[from] WsError),
}

#[derive(Debug, thiserror::Error)]
enum NotAnUpgrade {
    #[error("request head too large")]
    HeadTooLarge,
    #[error("malformed request head")]
    Malformed,
    #[error("path is not {WS_PATH}")]
    NotFound,
    #[error("method is not GET")]
    WrongMethod,
    #[error("not a WebSocket upgrade ({0})")]
    NotWebSocket(ProtocolError),
    #[error("upgrade without Sec-WebSocket-Key")]
    NoKey,
    #[error("bytes sent after the upgrade request, before its answer")]
    EarlyData,
}

impl NotAnUpgrade {
    fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Malformed | Self::NoKey | Self::EarlyData => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotWebSocket(_) => StatusCode::UPGRADE_REQUIRED,
        }
    }

    fn into_response(self) -> ErrorResponse {
        let body = match self {
            Self::HeadTooLarge => "request header fields too large\n",
            Self::Malformed => "bad request: not an HTTP/1.1 request\n",
            Self::NotFound => "not found: the chat socket is at /ws\n",
            Self::WrongMethod => "method not allowed: open /ws with a WebSocket GET\n",
            Self::NotWebSocket(_) => {
                "upgrade required: /ws speaks WebSocket only (RFC 6455, version 13)\n"
            }
            Self::NoKey => "bad request: a WebSocket upgrade needs Sec-WebSocket-Key\n",
            Self::EarlyData => "bad request: send frames only after the 101 answer\n",
        };
        let mut response = plain_text_response(self.status(), body);
        let headers = response.headers_mut();
        match self {
            Self::WrongMethod => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::NotWebSocket(_) => {
                // RFC 9110 §15.5.22: a 426 names the protocol to switch to; `Upgrade` is
                // hop-by-hop, so `Connection` lists it (and still says the socket closes).
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(
                    header::CONNECTION,
                    HeaderValue::from_static("Upgrade, close"),
                );
                // RFC 6455 §4.2.2: the versions the server speaks.
                headers.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            _ => {}
        }
        response
    }
}

pub async fn accept(
    mut tcp: TcpStream,
    check: Check<'_>,
    config: WebSocketConfig,
) -> Result<Socket, HandshakeError> {
    let peer = check.peer;
    let (request, early_data) = match read_request(&mut tcp).await? {
        Ok(read) => read,
        Err(refusal) => return answer(tcp, None, refusal.status(), refusal.into_response()).await,
    };
    if request.uri().path().starts_with(INTERNAL_PREFIX) {
        let response = check.notices.answer(&request, peer);
        let status = response.status();
        return answer(tcp, Some(request.method()), status, response).await;
    }
    let judged = create_response(&request)
        .map_err(|error| classify(&request, error))
        .and_then(|response| {
            if early_data {
                Err(NotAnUpgrade::EarlyData)
            } else {
                Ok(response)
            }
        });
    let response = match judged {
        Ok(response) => response,
        Err(refusal) => {
            tracing::debug!(
                %peer,
                method = %request.method(),
                path = request.uri().path(),
                status = refusal.status().as_u16(),
                reason = %refusal,
                "not a WebSocket upgrade: answered"
            );
            let status = refusal.status();
            return answer(tcp, Some(request.method()), status, refusal.into_response()).await;
        }
    };
    match check.on_request(&request, response) {
        Ok(response) => {
            let mut head = Vec::with_capacity(256);
            write_response(&mut head, &response)?;
            tcp.write_all(&head).await?;
            tcp.flush().await?;
            Ok(Socket::upgraded(tcp, config).await)
        }
        Err(refusal) => {
            let status = refusal.status();
            answer(tcp, Some(request.method()), status, refusal).await
        }
    }
}

pub async fn refuse_full(tcp: TcpStream, retry_after_secs: u64) {
    let mut response = plain_text_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "service unavailable: this chat server is full, try again shortly\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    let _ = tokio::time::timeout(
        LINGER + LINGER,
        answer(tcp, None, StatusCode::SERVICE_UNAVAILABLE, response),
    )
    .await;
}

/// The path decides first: anything but `/ws` is a 404 whatever else is wrong with it.
fn classify(request: &Request<()>, error: WsError) -> NotAnUpgrade {
    if request.uri().path() != WS_PATH {
        return NotAnUpgrade::NotFound;
    }
    match error {
        WsError::Protocol(ProtocolError::WrongHttpMethod) => NotAnUpgrade::WrongMethod,
        WsError::Protocol(
            error @ (ProtocolError::WrongHttpVersion
            | ProtocolError::MissingConnectionUpgradeHeader
            | ProtocolError::MissingUpgradeWebSocketHeader
            | ProtocolError::MissingSecWebSocketVersionHeader),
        ) => NotAnUpgrade::NotWebSocket(error),
        WsError::Protocol(ProtocolError::MissingSecWebSocketKey) => NotAnUpgrade::NoKey,
        _ => NotAnUpgrade::Malformed,
    }
}

/// The outer `Result` is the socket's (nothing to answer); the inner one is the request's
/// (answer with its status), with whether bytes followed the head.
async fn read_request(
    tcp: &mut TcpStream,
) -> Result<Result<(Request<()>, bool), NotAnUpgrade>, HandshakeError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let room = MAX_HEAD_BYTES - buf.len();
        if room == 0 {
            return Ok(Err(NotAnUpgrade::HeadTooLarge));
        }
        let searched_from = buf.len().saturating_sub(3);
        let read = (&mut *tcp).take(room as u64).read_buf(&mut buf).await?;
        if read == 0 {
            return Err(HandshakeError::Incomplete);
        }
        // Parse only once the head can be complete: a head dribbled in byte by byte is not
        // re-parsed after every byte.
        if !ends_a_head(&buf[searched_from..]) {
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(length)) => {
                return Ok(to_request(&parsed).map(|request| (request, length < buf.len())));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Ok(Err(NotAnUpgrade::HeadTooLarge));
            }
            Err(_) => return Ok(Err(NotAnUpgrade::Malformed)),
        }
    }
}

/// httparse also takes bare `\n` lines.
fn ends_a_head(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

fn to_request(parsed: &httparse::Request<'_, '_>) -> Result<Request<()>, NotAnUpgrade> {
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(NotAnUpgrade::Malformed);
    };
    let mut request = Request::new(());
    *request.method_mut() =
        Method::from_bytes(method.as_bytes()).map_err(|_| NotAnUpgrade::Malformed)?;
    *request.uri_mut() = path.parse().map_err(|_| NotAnUpgrade::Malformed)?;
    *request.version_mut() = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| NotAnUpgrade::Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| NotAnUpgrade::Malformed)?;
        headers.append(name, value);
    }
    *request.headers_mut() = headers;
    Ok(request)
}

async fn answer(
    mut tcp: TcpStream,
    method: Option<&Method>,
    status: StatusCode,
    response: ErrorResponse,
) -> Result<Socket, HandshakeError> {
    let mut bytes = Vec::with_capacity(256);
    write_response(&mut bytes, &response)?;
    if method != Some(&Method::HEAD)
        && let Some(body) = response.body()
    {
        bytes.extend_from_slice(body.as_bytes());
    }
    tcp.write_all(&bytes).await?;
    tcp.shutdown().await?;
    let _ = tokio::time::timeout(LINGER, async {
        let mut scratch = [0u8; 1024];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match tcp.read(&mut scratch).await {
                Ok(n) if n > 0 => discarded += n,
                _ => break,
            }
        }
    })
    .await;
    Err(HandshakeError::Answered { status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Request<()> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(head.as_bytes()).unwrap().is_complete());
        to_request(&parsed).unwrap()
    }

    fn verdict(head: &str) -> Option<StatusCode> {
        let request = parse(head);
        create_response(&request)
            .err()
            .map(|error| classify(&request, error).status())
    }

    #[test]
    fn a_complete_upgrade_passes_to_the_gate() {
        let head = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(verdict(head), None);
    }

    #[test]
    fn requests_that_are_not_upgrades_get_their_status() {
        let cases = [
            ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426),
            ("GET /ws HTTP/1.0\r\n\r\n", 426),
            (
                "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: a2V5\r\n\r\n",
                426,
            ),
            (
                "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
                400,
            ),
            ("POST /ws HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
            ("GET / HTTP/1.1\r\n\r\n", 404),
            ("POST /other HTTP/1.1\r\n\r\n", 404),
            (
                "GET /other HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                404,
            ),
        ];
        for (head, status) in cases {
            assert_eq!(verdict(head).map(|s| s.as_u16()), Some(status), "{head:?}");
        }
    }

    #[test]
    fn a_head_ends_at_a_blank_line() {
        assert!(ends_a_head(b"Host: x\r\n\r\n"));
        assert!(ends_a_head(b"Host: x\n\n"));
        assert!(!ends_a_head(b"GET /ws HTTP/1.1\r\nHost: x\r\n"));
    }
}
