//! Which layer renders each refusal, as the page for pages and as JSON under `/api/`: inside the
//! session (with the signed-in header) or outside it (the time limit, a panic). The application
//! built with the feature `test-support` names the layer in `x-rendered-by` and has routes that
//! panic or sleep on purpose (`routes/misbehaving.rs`).

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, StatusCode};
use website::config::Redacted;

use crate::helpers::{Browser, TestApp};
use crate::mongo_proxy::{Mode, MongoProxy};

const INSIDE: &str = "inside-session";
const OUTSIDE: &str = "outside-session";

/// Asserts who rendered `response`, with which status, as a page or as JSON with `code`.
async fn assert_rendered(
    response: Response,
    status: StatusCode,
    layer: &str,
    json_code: Option<&str>,
) {
    let url = response.url().path().to_owned();
    assert_eq!(response.status(), status, "{url}");
    assert_eq!(
        response
            .headers()
            .get("x-rendered-by")
            .and_then(|v| v.to_str().ok()),
        Some(layer),
        "{url}: rendered by"
    );
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    match json_code {
        Some(code) => {
            assert!(
                content_type.starts_with("application/json"),
                "{url}: {content_type}"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], code, "{url}");
        }
        None => {
            assert!(
                content_type.starts_with("text/html"),
                "{url}: {content_type}"
            );
            let html = response.text().await.unwrap();
            assert!(
                html.contains(r#"data-testid="error-heading""#),
                "{url}: {html}"
            );
        }
    }
}

async fn send(browser: &Browser, method: Method, path: &str, body: Option<String>) -> Response {
    let mut request = browser.client.request(method, browser.url(path));
    if let Some(body) = body {
        request = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn each_refusal_is_rendered_by_its_layer_as_a_page_or_as_json() {
    let proxy = MongoProxy::start().await;
    let app = TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.mongodb_timeout = Duration::from_secs(1);
        c.request_timeout = Duration::from_secs(2);
    })
    .await;
    let me = app.signed_up_browser("layers@example.org").await;
    let room = me.created_room("layered").await;
    let ticket = format!("/api/rooms/{room}/ticket");
    let big = format!("title={}", "a".repeat(100 * 1024));
    let (get, post) = (Method::GET, Method::POST);

    // (the refusal, the request, its status, the layer, JSON's code for /api/)
    let cases = [
        (
            "timeout",
            get.clone(),
            "/misbehaving/sleep",
            None,
            503,
            OUTSIDE,
            None,
        ),
        (
            "timeout",
            get.clone(),
            "/api/misbehaving/sleep",
            None,
            503,
            OUTSIDE,
            Some("timeout"),
        ),
        ("404", get.clone(), "/no-such-page", None, 404, INSIDE, None),
        (
            "404",
            get.clone(),
            "/api/no-such-thing",
            None,
            404,
            INSIDE,
            Some("page_not_found"),
        ),
        ("405", post.clone(), "/search", None, 405, INSIDE, None),
        (
            "405",
            get.clone(),
            ticket.as_str(),
            None,
            405,
            INSIDE,
            Some("method_not_allowed"),
        ),
        (
            "413",
            post.clone(),
            "/rooms",
            Some(big.clone()),
            413,
            INSIDE,
            None,
        ),
        (
            "413",
            post.clone(),
            ticket.as_str(),
            Some(big.clone()),
            413,
            INSIDE,
            Some("body_too_large"),
        ),
        (
            "panic",
            get.clone(),
            "/misbehaving/panic",
            None,
            500,
            OUTSIDE,
            None,
        ),
        (
            "panic",
            get.clone(),
            "/api/misbehaving/panic",
            None,
            500,
            OUTSIDE,
            Some("internal"),
        ),
    ];
    for (_what, method, path, body, status, layer, code) in cases {
        let response = send(&me, method, path, body).await;
        let status = StatusCode::from_u16(status).unwrap();
        assert_rendered(response, status, layer, code).await;
    }

    // 429: the ticket budget (the login form's 429 is the form itself, rendered by its handler).
    let token = me.csrf_token().await;
    let mut refused = None;
    for _ in 0..100 {
        let response = me.ticket_with_token(&room, &token).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the ticket budget ends");
    assert_rendered(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        INSIDE,
        Some("too_many_tickets"),
    )
    .await;

    // 503: MongoDB down, found when the session is read.
    // A replica that has not cached the session reads it from MongoDB.
    let replica = app.replica().await;
    let fresh = me.visiting(&replica);
    proxy.set(Mode::Down);
    assert_rendered(
        fresh.get("/").await,
        StatusCode::SERVICE_UNAVAILABLE,
        INSIDE,
        None,
    )
    .await;
    let response = fresh.ticket_with_token(&room, &token).await;
    assert_rendered(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        INSIDE,
        Some("db_unavailable"),
    )
    .await;
}
