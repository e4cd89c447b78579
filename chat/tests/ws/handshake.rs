//! Opening a socket: where the ticket goes, and every way a handshake is refused.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{
    ROOM_ID, SECRET, TestServer, claims_json, jwt_by_hand, test_config, test_limits, ticket,
};

fn hs256_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

async fn status_for_ticket(server: &TestServer, ticket: &str) -> Result<(), u16> {
    server
        .open(server.request_with_ticket(ticket))
        .await
        .map(|_| ())
}

async fn status_from_origin(server: &TestServer, origin: &str) -> Result<(), u16> {
    server
        .open(server.request_from_origin(origin))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_ticket_in_the_authorization_header_opens_the_room() {
    let server = TestServer::spawn().await;

    let (_ann, welcome) = server.join("ann@example.org", ROOM_ID).await;

    assert_eq!(welcome["room_id"], ROOM_ID);
    assert_eq!(welcome["room"], "Rust");
    assert_eq!(welcome["you"], "ann@example.org");
}

#[tokio::test]
async fn a_ticket_in_the_subprotocol_header_opens_the_room_and_chat_v1_is_selected() {
    let server = TestServer::spawn().await;
    let mut request = server.request();
    let offered = format!("chat.v1, bearer.{}", ticket("ann@example.org", ROOM_ID));
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&offered).unwrap(),
    );

    let (mut client, response) = server.open(request).await.expect("handshake accepted");

    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert_eq!(client.next_event().await["type"], "welcome");
}

#[tokio::test]
async fn a_ticket_in_the_subprotocol_header_without_chat_v1_gets_400() {
    let server = TestServer::spawn().await;
    let mut request = server.request();
    let offered = format!("bearer.{}", ticket("ann@example.org", ROOM_ID));
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&offered).unwrap(),
    );

    assert_eq!(server.open(request).await.err(), Some(400));
}

#[tokio::test]
async fn a_ticket_signed_by_an_independent_hs256_implementation_is_accepted() {
    let server = TestServer::spawn().await;
    let token = jwt_by_hand(
        &hs256_header(),
        &claims_json("ann@example.org"),
        SECRET.as_bytes(),
    );

    let (mut client, _) = server
        .open(server.request_with_ticket(&token))
        .await
        .expect("a hand-made HS256 ticket is accepted");

    assert_eq!(client.next_event().await["you"], "ann@example.org");
}

#[tokio::test]
async fn a_handshake_without_a_ticket_gets_401() {
    let server = TestServer::spawn().await;
    assert_eq!(server.open(server.request()).await.err(), Some(401));
}

#[tokio::test]
async fn tickets_that_break_the_contract_get_401() {
    let server = TestServer::spawn().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims_json("ann@example.org");
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            jwt_by_hand(
                &hs256_header(),
                &claims_json("a@b.c"),
                b"another-secret-another-secret-xyz",
            ),
        ),
        ("alg none", {
            let token = jwt_by_hand(
                &json!({"alg": "none"}),
                &claims_json("a@b.c"),
                SECRET.as_bytes(),
            );
            let unsigned = token.rsplit_once('.').unwrap().0;
            format!("{unsigned}.")
        }),
        (
            "HS512",
            jwt_by_hand(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &claims_json("a@b.c"),
                SECRET.as_bytes(),
            ),
        ),
        (
            "RS256 header",
            jwt_by_hand(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &claims_json("a@b.c"),
                SECRET.as_bytes(),
            ),
        ),
        (
            "expired",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| {
                    c["iat"] = json!(now - 200);
                    c["exp"] = json!(now - 140);
                }),
                SECRET.as_bytes(),
            ),
        ),
        (
            "wrong aud",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["aud"] = json!("website")),
                SECRET.as_bytes(),
            ),
        ),
        (
            "wrong iss",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["iss"] = json!("chat")),
                SECRET.as_bytes(),
            ),
        ),
        (
            "lifetime over 60 s",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["exp"] = json!(now + 600)),
                SECRET.as_bytes(),
            ),
        ),
        (
            "iat of the wrong type",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["iat"] = json!("yesterday")),
                SECRET.as_bytes(),
            ),
        ),
        (
            "room_id of the wrong type",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["room_id"] = json!(12345)),
                SECRET.as_bytes(),
            ),
        ),
        (
            "nbf a minute ahead",
            jwt_by_hand(
                &hs256_header(),
                &with(&|c| c["nbf"] = json!(now + 60)),
                SECRET.as_bytes(),
            ),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in cases {
        assert_eq!(
            status_for_ticket(&server, &token).await.err(),
            Some(401),
            "a ticket with {what} was not refused with 401"
        );
    }
}

#[tokio::test]
async fn a_ticket_missing_any_claim_gets_401() {
    let server = TestServer::spawn().await;
    for claim in ["email", "room", "room_id", "iat", "exp", "iss", "aud"] {
        let mut claims = claims_json("ann@example.org");
        claims.as_object_mut().unwrap().remove(claim);
        let token = jwt_by_hand(&hs256_header(), &claims, SECRET.as_bytes());
        assert_eq!(
            status_for_ticket(&server, &token).await.err(),
            Some(401),
            "a ticket without {claim} was not refused with 401"
        );
    }
}

#[tokio::test]
async fn any_path_but_ws_gets_404() {
    let server = TestServer::spawn().await;
    let mut request = server.request_with_ticket(&ticket("ann@example.org", ROOM_ID));
    *request.uri_mut() = server.url("/chat").parse().unwrap();

    assert_eq!(server.open(request).await.err(), Some(404));
}

#[tokio::test]
async fn a_foreign_origin_gets_403_and_the_same_host_passes() {
    let server = TestServer::spawn().await;
    assert_eq!(
        server
            .open(server.request_from_origin("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let same_host = format!("http://{}", server.addr);
    assert!(
        server
            .open(server.request_from_origin(&same_host))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn allowed_origins_are_added_to_the_site_itself() {
    let mut config = test_config(test_limits());
    config.allowed_origins = vec!["https://partner.example".to_owned()];
    let server = TestServer::spawn_with(config).await;
    let same_host = format!("http://{}", server.addr);

    assert_eq!(
        status_from_origin(&server, &same_host).await,
        Ok(()),
        "the site's own page"
    );
    assert_eq!(
        status_from_origin(&server, "https://partner.example").await,
        Ok(()),
        "a listed origin"
    );
    assert_eq!(
        status_from_origin(&server, "http://evil.example").await,
        Err(403),
        "an unlisted foreign origin"
    );
}

#[tokio::test]
async fn a_half_sent_handshake_is_dropped_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut limits = test_limits();
    limits.handshake_timeout = std::time::Duration::from_millis(300);
    let server = TestServer::spawn_with(test_config(limits)).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();

    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();

    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(crate::helpers::EVENT_TIMEOUT, tcp.read(&mut buf))
        .await
        .expect("the server hangs up on a stalled handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "got {read:?}");
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_is_refused_at_once_with_503_and_retry_after() {
    let mut limits = test_limits();
    limits.max_connections = 1;
    let server = TestServer::spawn_with(test_config(limits)).await;
    let (ann, _) = server.join("ann@example.org", ROOM_ID).await;

    let started = std::time::Instant::now();
    let refused = server
        .open(server.request_with_ticket(&ticket("bob@example.org", ROOM_ID)))
        .await;

    assert_eq!(
        refused.err(),
        Some(503),
        "full: another replica may take it"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "refused at once, not after a connect timeout"
    );
    let answer = server
        .http_answer("GET /ws HTTP/1.1\r\nHost: chat\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 5"),
        "{answer}"
    );

    // A freed slot takes the next client.
    ann.leave().await;
    let (_bob, welcome) = server.join("bob@example.org", ROOM_ID).await;
    assert_eq!(welcome["members"], json!(["bob@example.org"]));
}
