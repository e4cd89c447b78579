//! MongoDB going away and coming back, and MongoDB absent at startup.
//!
//! The application reaches the test server through a TCP proxy the test can switch off
//! (`mongo_proxy`).

use std::time::Duration;

use reqwest::StatusCode;
use website::config::Redacted;
use website::startup::Application;

use crate::helpers::{PASSWORD, TestApp, eventually_ok, test_config};
use crate::mongo_proxy::{Mode, MongoProxy};

/// A request that hangs is a failure; a slow answer within this bound is not our concern here.
const NO_HANG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn when_mongodb_goes_away_pages_answer_503_and_recover_when_it_is_back() {
    let proxy = MongoProxy::start().await;
    let app = TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.mongodb_timeout = Duration::from_secs(1);
    })
    .await;
    let me = app.signed_up_browser("steady@example.org").await;
    let room = me.created_room("still here").await;
    let token = me.csrf_token().await;

    proxy.set(Mode::Down);

    let ready = tokio::time::timeout(NO_HANG, app.get("/readyz"))
        .await
        .expect("readyz hung");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let home = tokio::time::timeout(NO_HANG, me.get("/"))
        .await
        .expect("home hung");
    assert_eq!(home.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = home.text().await.unwrap();
    assert!(
        html.contains("temporarily unavailable"),
        "a friendly page: {html}"
    );
    let login = tokio::time::timeout(
        NO_HANG,
        app.new_browser().login("steady@example.org", PASSWORD),
    )
    .await
    .expect("login hung");
    assert_eq!(
        login.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never 'wrong password'"
    );
    let ticket = tokio::time::timeout(
        NO_HANG,
        me.client
            .post(me.url(&format!("/api/rooms/{room}/ticket")))
            .header("X-CSRF-Token", &token)
            .send(),
    )
    .await
    .expect("ticket hung")
    .unwrap();
    assert_eq!(ticket.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ticket.json().await.unwrap();
    assert_eq!(body["error"], "db_unavailable");
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "the process is alive"
    );

    proxy.set(Mode::Up);

    assert!(
        eventually_ok(&app, "/readyz").await,
        "ready again once MongoDB is back"
    );
    let home = me.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        home.text().await.unwrap().contains("still here"),
        "the session survived the outage"
    );
}

#[tokio::test]
async fn the_application_refuses_to_start_when_mongodb_stays_unreachable() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = test_config();
    config.mongodb_uri = Redacted::new(format!(
        "mongodb://127.0.0.1:{closed_port}/?directConnection=true"
    ));
    config.mongodb_timeout = Duration::from_millis(300);
    config.mongodb_startup_wait = Duration::from_secs(2);

    let result = tokio::time::timeout(Duration::from_secs(20), Application::build(config))
        .await
        .expect("startup gives up within its bounded wait");

    let error = result.err().expect("no application without MongoDB");
    assert!(
        format!("{error:#}").contains("MongoDB did not answer"),
        "{error:#}"
    );
}
