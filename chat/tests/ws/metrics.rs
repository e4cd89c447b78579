//! `/metrics` on a listener of its own: what a day in a room adds up to, in Prometheus's text
//! format.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// One GET on the metrics listener: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(EVENT_TIMEOUT, tcp.read_to_end(&mut raw))
        .await
        .expect("the metrics listener answers and closes")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `series` (name and labels, exactly as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn metrics_count_handshakes_messages_deliveries_and_disconnects() {
    let mut config = test_config(test_limits());
    config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = TestServer::spawn_with(config).await;
    let metrics = server.metrics_addr.expect("the metrics listener is bound");

    let (mut ann, _) = server.join("ann@example.org", ROOM_ID).await;
    let (mut bob, _) = server.join("bob@example.org", ROOM_ID).await;
    ann.next_of_type("joined").await;
    ann.say("hello").await;
    ann.next_of_type("message").await;
    bob.next_of_type("message").await;
    let refused = server
        .open(server.request_with_ticket("not-a-ticket"))
        .await;
    assert_eq!(refused.err(), Some(401));
    let (open_status, open) = get(metrics, "/metrics").await;
    bob.leave().await;
    let (_, after) = get(metrics, "/metrics").await;

    assert_eq!(open_status, 200);
    assert_eq!(sample(&open, "webchat_chat_connections"), 2.0);
    assert_eq!(sample(&open, "webchat_chat_rooms"), 1.0);
    assert_eq!(
        sample(&open, r#"webchat_chat_handshakes_total{result="ok"}"#),
        2.0
    );
    assert_eq!(
        sample(
            &open,
            r#"webchat_chat_handshakes_total{result="bad_ticket"}"#
        ),
        1.0
    );
    assert_eq!(sample(&open, "webchat_chat_messages_received_total"), 1.0);
    assert_eq!(sample(&after, "webchat_chat_connections"), 1.0);
    assert_eq!(
        sample(
            &after,
            r#"webchat_chat_disconnects_total{reason="client_closed"}"#
        ),
        1.0
    );
    assert!(after.contains("# TYPE webchat_chat_fanout_duration_seconds histogram"));
    assert!(after.contains("webchat_process_resident_memory_bytes "));
    server.shut_down().await;
}

#[tokio::test]
async fn only_the_metrics_path_answers_and_the_chat_port_has_none() {
    let mut config = test_config(test_limits());
    config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = TestServer::spawn_with(config).await;
    let metrics = server.metrics_addr.unwrap();

    assert_eq!(get(metrics, "/").await.0, 404);
    assert_eq!(
        server
            .http("GET /metrics HTTP/1.1\r\nHost: chat\r\n\r\n")
            .await,
        404,
        "the WebSocket port never serves metrics"
    );
}
