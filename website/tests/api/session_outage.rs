//! MongoDB failing a session query: when the session is read, when sign-in saves it, and when the
//! idle refresh saves it after the answer. Each is answered 503, as the page or as JSON under
//! `/api/`: never a logout, never a bare 500.
//!
//! The application reaches MongoDB through `mongo_proxy`, which the tests take down or stall.

use std::time::Duration;

use mongodb::bson::{DateTime, doc};
use reqwest::{Response, StatusCode};
use website::config::Redacted;

use crate::helpers::{
    PASSWORD, TestApp, eventually_ok, leaves_session_cookie_alone, stored_sessions,
};
use crate::mongo_proxy::{Mode, MongoProxy};

/// A session update that never reaches MongoDB.
const SESSION_SAVES_STALL: Mode = Mode::StallCommand {
    command: "update",
    collection: "sessions",
};

async fn behind(proxy: &MongoProxy) -> TestApp {
    TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.mongodb_timeout = Duration::from_secs(1);
    })
    .await
}

async fn assert_unavailable_page(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(
        leaves_session_cookie_alone(&response),
        "{what}: the cookie changed"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("temporarily unavailable"), "{what}: {html}");
}

async fn assert_unavailable_json(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(
        leaves_session_cookie_alone(&response),
        "{what}: the cookie changed"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "db_unavailable", "{what}");
}

/// Moves every stored session's last refresh two minutes back, so its next use refreshes it.
async fn age_sessions(app: &TestApp) {
    let two_minutes_ago = DateTime::from_millis(DateTime::now().timestamp_millis() - 120_000);
    for mut session in stored_sessions(app).await {
        session.last_seen_at = two_minutes_ago;
        app.db
            .sessions()
            .replace_one(doc! { "_id": &session.id }, &session)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn mongodb_down_when_a_session_is_read_is_503_and_the_session_lives_on() {
    let proxy = MongoProxy::start().await;
    let one = behind(&proxy).await;
    // A replica that has not cached the session: it must read MongoDB.
    let two = one.replica().await;
    let me = one.signed_up_browser("read@example.org").await;
    let room = me.created_room("read through an outage").await;
    let token = me.csrf_token().await;
    let me_on_two = me.visiting(&two);

    proxy.set(Mode::Down);

    assert_unavailable_page(me_on_two.get("/").await, "a page").await;
    assert_unavailable_json(me_on_two.ticket_with_token(&room, &token).await, "the API").await;

    proxy.set(Mode::Up);
    assert!(
        eventually_ok(&me_on_two, "/search").await,
        "still signed in"
    );
}

#[tokio::test]
async fn mongodb_failing_the_save_at_sign_in_is_503_without_a_cookie() {
    let proxy = MongoProxy::start().await;
    let app = behind(&proxy).await;
    app.signed_up_browser("save@example.org").await;
    proxy.set(Mode::StallCommand {
        command: "insert",
        collection: "sessions",
    });

    let response = app.new_browser().login("save@example.org", PASSWORD).await;

    assert_unavailable_page(response, "logging in").await;
}

#[tokio::test]
async fn mongodb_failing_the_idle_refresh_is_503_and_the_session_lives_on() {
    let proxy = MongoProxy::start().await;
    let one = behind(&proxy).await;
    let me = one.signed_up_browser("refresh@example.org").await;
    let room = me.created_room("refreshed through an outage").await;
    let token = me.csrf_token().await;
    // Replicas that have not cached the session read it, due for its refresh, from MongoDB.
    let (two, three) = (one.replica().await, one.replica().await);
    age_sessions(&one).await;

    proxy.set(SESSION_SAVES_STALL);

    assert_unavailable_page(me.visiting(&two).get("/").await, "a page").await;
    let on_three = me.visiting(&three);
    assert_unavailable_json(on_three.ticket_with_token(&room, &token).await, "the API").await;

    proxy.set(Mode::Up);
    assert!(eventually_ok(&on_three, "/search").await, "still signed in");
}
