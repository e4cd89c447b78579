//! The HTTP side of opening a socket: path, `Origin` and the ticket, checked inside
//! tungstenite's handshake callback so that a refused client gets a plain HTTP answer and never
//! an upgrade. Browsers cannot set headers on a WebSocket, so the ticket may also come as a
//! `bearer.<jwt>` subprotocol beside `chat.v1` (chat/README.md, "Handshake"). Tickets are never
//! logged.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};

use contract::{Claims, TicketError, TicketVerifier};

use crate::metrics::{Handshake, Metrics};
use crate::notice::NoticeDesk;
use crate::per_person::{PersonSlot, SocketsPerPerson};
use crate::plain_http::{bearer_from_authorization, plain_text_response};

pub const WS_PATH: &str = "/ws";
pub const SUBPROTOCOL: &str = "chat.v1";
const BEARER_PROTOCOL_PREFIX: &str = "bearer.";

pub struct Gate {
    verifier: TicketVerifier,
    allowed_origins: Vec<String>,
    sockets: Arc<SocketsPerPerson>,
}

/// How long a person over the socket cap is told to wait: long enough for a tab to close.
const RETRY_AFTER_SECS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("path is not {WS_PATH}")]
    NotFound,
    #[error("origin {0:?} is not allowed")]
    ForeignOrigin(String),
    #[error("a bearer.<jwt> subprotocol was offered without {SUBPROTOCOL}")]
    BearerWithoutSubprotocol,
    #[error("no ticket in Authorization or Sec-WebSocket-Protocol")]
    NoTicket,
    #[error(transparent)]
    BadTicket(#[from] TicketError),
    #[error("the person already holds the most sockets allowed")]
    TooManySockets,
}

impl Refusal {
    fn outcome(&self) -> Handshake {
        match self {
            Self::NotFound | Self::BearerWithoutSubprotocol => Handshake::BadRequest,
            Self::ForeignOrigin(_) => Handshake::Origin,
            Self::NoTicket => Handshake::NoTicket,
            Self::BadTicket(_) => Handshake::BadTicket,
            Self::TooManySockets => Handshake::OverLimit,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            Self::BearerWithoutSubprotocol => StatusCode::BAD_REQUEST,
            Self::NoTicket | Self::BadTicket(_) => StatusCode::UNAUTHORIZED,
            Self::TooManySockets => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Tells the client what to fix, and nothing about which ticket check failed.
    fn into_response(self) -> ErrorResponse {
        let status = self.status();
        let body = match status {
            StatusCode::NOT_FOUND => "not found: the chat socket is at /ws\n",
            StatusCode::FORBIDDEN => "forbidden: this origin may not open the chat\n",
            StatusCode::BAD_REQUEST => {
                "bad request: offer the ticket as Sec-WebSocket-Protocol: chat.v1, \
                 bearer.<ticket>\n"
            }
            StatusCode::TOO_MANY_REQUESTS => {
                "too many requests: this account has the most chat sockets open already\n"
            }
            _ => "unauthorized: a valid chat ticket is required\n",
        };
        let mut response = plain_text_response(status, body);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

#[derive(Debug)]
pub struct Admission {
    pub admitted: Admitted,
    pub select_subprotocol: bool,
}

/// Holds one of the person's sockets for as long as the connection lives.
#[derive(Debug)]
pub struct Admitted {
    pub claims: Claims,
    pub slot: PersonSlot,
}

impl Gate {
    pub fn new(
        verifier: TicketVerifier,
        allowed_origins: Vec<String>,
        max_sockets_per_person: usize,
    ) -> Self {
        Self {
            verifier,
            allowed_origins,
            sockets: SocketsPerPerson::new(max_sockets_per_person),
        }
    }

    pub fn admit(&self, request: &Request) -> Result<Admission, Refusal> {
        if request.uri().path() != WS_PATH {
            return Err(Refusal::NotFound);
        }
        let headers = request.headers();
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if !origin_allowed(origin, site_scheme(headers), host, &self.allowed_origins) {
                return Err(Refusal::ForeignOrigin(origin.to_owned()));
            }
        }
        let offered = offered_subprotocols(headers);
        let select_subprotocol = offered.contains(&SUBPROTOCOL);
        let bearer_offered = offered
            .iter()
            .any(|p| p.starts_with(BEARER_PROTOCOL_PREFIX));
        if bearer_offered && !select_subprotocol {
            return Err(Refusal::BearerWithoutSubprotocol);
        }
        let token = bearer_from_authorization(headers)
            .or_else(|| {
                offered
                    .iter()
                    .find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX))
            })
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::NoTicket)?;
        let claims = self.verifier.verify(token)?;
        let slot = self
            .sockets
            .take(&claims.email)
            .ok_or(Refusal::TooManySockets)?;
        Ok(Admission {
            admitted: Admitted { claims, slot },
            select_subprotocol,
        })
    }
}

/// The admitted person leaves the callback through `admitted`, which the accepting task reads
/// once the handshake is done.
pub struct Check<'a> {
    pub gate: &'a Gate,
    pub notices: &'a NoticeDesk,
    pub peer: SocketAddr,
    pub admitted: &'a mut Option<Admitted>,
    pub redis_up: Option<bool>,
    pub metrics: &'a Metrics,
}

/// On the 401 answer to a ticketless handshake (the health probe), with `REDIS_URL`: `up` or
/// `down`.
pub const REDIS_HEADER: &str = "chat-redis";

impl Callback for Check<'_> {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        match self.gate.admit(request) {
            Ok(admission) => {
                if admission.select_subprotocol {
                    response.headers_mut().insert(
                        header::SEC_WEBSOCKET_PROTOCOL,
                        HeaderValue::from_static(SUBPROTOCOL),
                    );
                }
                *self.admitted = Some(admission.admitted);
                self.metrics.handshake(Handshake::Ok);
                Ok(response)
            }
            Err(refusal) => {
                log_refusal(self.peer, &refusal);
                self.metrics.handshake(refusal.outcome());
                let probe = matches!(refusal, Refusal::NoTicket);
                let mut response = refusal.into_response();
                if let (true, Some(up)) = (probe, self.redis_up) {
                    response.headers_mut().insert(
                        REDIS_HEADER,
                        HeaderValue::from_static(if up { "up" } else { "down" }),
                    );
                }
                Err(response)
            }
        }
    }
}

/// A ticketless handshake is the health probe's, every 10 seconds (the page always fetches a
/// ticket first): at info it would bury the refusals worth reading.
fn log_refusal(peer: SocketAddr, refusal: &Refusal) {
    let status = refusal.status().as_u16();
    if matches!(refusal, Refusal::NoTicket) {
        tracing::debug!(%peer, status, reason = %refusal, "handshake refused");
    } else {
        tracing::info!(%peer, status, reason = %refusal, "handshake refused");
    }
}

fn offered_subprotocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// nginx's `X-Forwarded-Proto`, else plain HTTP, which is what this service itself speaks.
fn site_scheme(headers: &HeaderMap) -> &str {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("http")
}

/// The site's own pages may always connect; `ALLOWED_ORIGINS` only ever adds origins.
fn origin_allowed(origin: &str, site_scheme: &str, host: &str, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    allowed.contains(&origin) || same_site(&origin, site_scheme, host)
}

/// `Host` names the place, port included (nginx forwards `$http_host`).
fn same_site(origin: &str, site_scheme: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // "null" and other opaque origins
    };
    let host = host.trim().to_ascii_lowercase();
    if authority.is_empty() || host.is_empty() || !scheme.eq_ignore_ascii_case(site_scheme) {
        return false;
    }
    if authority == host {
        return true;
    }
    // "http://example.org" and "Host: example.org:80" name the same place.
    let default_port = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return false,
    };
    host.strip_suffix(default_port) == Some(authority)
        || authority.strip_suffix(default_port) == Some(host.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_list_the_origin_must_be_the_site_itself() {
        let cases = [
            ("http://localhost:8080", "http", "localhost:8080", true),
            ("http://LOCALHOST:8080/", "http", "localhost:8080", true),
            ("http://localhost:8081", "http", "localhost:8080", false),
            ("http://evil.example", "http", "localhost:8080", false),
            (
                "https://chat.example.org",
                "https",
                "chat.example.org:443",
                true,
            ),
            (
                "http://chat.example.org:80",
                "http",
                "chat.example.org",
                true,
            ),
            ("null", "http", "localhost:8080", false),
            ("http://localhost:8080", "http", "", false),
            // The same host and port with another scheme is another origin.
            ("https://localhost:8080", "http", "localhost:8080", false),
            (
                "http://chat.example.org",
                "https",
                "chat.example.org",
                false,
            ),
        ];
        for (origin, scheme, host, expected) in cases {
            assert_eq!(
                origin_allowed(origin, scheme, host, &[]),
                expected,
                "origin {origin} on a {scheme} site at {host}"
            );
        }
    }

    #[test]
    fn the_site_scheme_comes_from_nginx_or_is_plain_http() {
        let mut headers = HeaderMap::new();
        assert_eq!(site_scheme(&headers), "http");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(site_scheme(&headers), "https");
    }

    #[test]
    fn a_list_adds_origins_to_the_same_host_rule() {
        let allowed = vec!["https://partner.example".to_owned()];
        // The site's own page still passes with a list set.
        assert!(origin_allowed(
            "http://localhost:8080",
            "http",
            "localhost:8080",
            &allowed
        ));
        // A listed origin passes although it is not the request's host.
        assert!(origin_allowed(
            "https://Partner.example/",
            "http",
            "localhost:8080",
            &allowed
        ));
        // Anything else is still foreign.
        assert!(!origin_allowed(
            "http://evil.example",
            "http",
            "localhost:8080",
            &allowed
        ));
        assert!(!origin_allowed("null", "http", "localhost:8080", &allowed));
    }

    #[test]
    fn a_person_over_the_socket_cap_is_told_when_to_come_back() {
        let response = Refusal::TooManySockets.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "10");
    }
}
