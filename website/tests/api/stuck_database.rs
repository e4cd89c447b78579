//! Sessions when MongoDB is down or hangs: nobody is signed out, nothing ends, and every request is
//! answered by its deadline (`REQUEST_TIMEOUT_SECS`), loading and saving its session included.
//!
//! The application reaches MongoDB through `mongo_proxy`, which the tests take down or stall.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use website::config::Redacted;

use crate::helpers::{PASSWORD, TestApp, eventually_ok, leaves_session_cookie_alone};
use crate::mongo_proxy::{Mode, MongoProxy};

/// Scheduling slack on top of a time limit the application sets itself.
const SLACK: Duration = Duration::from_millis(1500);

/// The response to `request` and how long it took.
async fn timed(request: impl Future<Output = Response>) -> (Response, Duration) {
    let started = Instant::now();
    let response = request.await;
    (response, started.elapsed())
}

#[tokio::test]
async fn when_mongodb_is_down_a_session_is_neither_signed_out_nor_ended() {
    let proxy = MongoProxy::start().await;
    let mongodb_timeout = Duration::from_secs(2);
    let one = TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.mongodb_timeout = mongodb_timeout;
    })
    .await;
    // Another replica, which has not cached the session: it must read MongoDB.
    let two = one.replica().await;
    let me = one.signed_up_browser("patient@example.org").await;
    me.created_room("kept through the outage").await;
    let me_on_two = me.visiting(&two);

    proxy.set(Mode::Down);

    for path in ["/", "/search", "/login"] {
        let (response, took) = timed(me_on_two.get(path)).await;
        // Not the landing page, not the redirect to /login, not the login form: 503.
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            leaves_session_cookie_alone(&response),
            "{path} touched the cookie"
        );
        // One wait for MongoDB, not a second one for the error page's header.
        assert!(took < mongodb_timeout + SLACK, "{path} took {took:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("temporarily unavailable"), "{path}: {html}");
    }

    proxy.set(Mode::Up);

    assert!(
        eventually_ok(&me_on_two, "/search").await,
        "signed in on the second replica once MongoDB is back"
    );
    let rooms = me_on_two.my_rooms().await;
    assert_eq!(rooms.len(), 1, "{rooms:?}");
}

#[tokio::test]
async fn a_stuck_mongodb_cannot_hold_a_request_past_the_deadline() {
    let proxy = MongoProxy::start().await;
    let mongodb_timeout = Duration::from_secs(1);
    let deadline = Duration::from_secs(3);
    let one = TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.mongodb_timeout = mongodb_timeout;
        c.request_timeout = deadline;
    })
    .await;
    let two = one.replica().await;
    let me = one.signed_up_browser("stuck@example.org").await;
    let room = me.created_room("behind a stuck database").await;
    // A fresh session, so the first replica's cache surely still holds it below.
    let login = me.login("stuck@example.org", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let token = me.csrf_token().await;

    proxy.set(Mode::Stalled);

    // The session comes from the first replica's cache; the pages' own queries hang.
    let ticket = async {
        me.client
            .post(me.url(&format!("/api/rooms/{room}/ticket")))
            .header("X-CSRF-Token", &token)
            .send()
            .await
            .unwrap()
    };
    let ((home, home_took), (ticket, ticket_took)) =
        tokio::join!(timed(me.get("/")), timed(ticket));
    assert_eq!(home.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(home_took < deadline + SLACK, "took {home_took:?}");
    assert!(home.text().await.unwrap().contains("took too long"));
    assert_eq!(ticket.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ticket_took < deadline + SLACK, "took {ticket_took:?}");
    let body: serde_json::Value = ticket.json().await.unwrap();
    assert_eq!(body["error"], "timeout");
    // The second replica reads the session from MongoDB: that read gives up on its own, sooner.
    let (home, took) = timed(me.visiting(&two).get("/")).await;
    assert_eq!(home.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(leaves_session_cookie_alone(&home));
    assert!(took < mongodb_timeout + SLACK, "took {took:?}");
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("temporarily unavailable")
    );
    // A login: the throttle's count gives up on its own too.
    let (login, took) = timed(two.new_browser().login("stuck@example.org", PASSWORD)).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < mongodb_timeout + SLACK, "took {took:?}");
}

#[tokio::test]
async fn a_session_save_that_hangs_is_ended_by_the_deadline() {
    let proxy = MongoProxy::start().await;
    let deadline = Duration::from_secs(2);
    let app = TestApp::spawn_with(|c| {
        c.mongodb_uri = Redacted::new(proxy.uri());
        c.request_timeout = deadline;
        // Longer than the deadline on purpose (`Config::from_env` refuses this): here only the
        // deadline around the session layer can end the request.
        c.mongodb_timeout = Duration::from_secs(30);
    })
    .await;
    // Registering creates the session record (insert) in the handler, then the session layer
    // saves it once more after the answer (update): that update never reaches MongoDB.
    proxy.set(Mode::StallCommand {
        command: "update",
        collection: "sessions",
    });

    let (response, took) = timed(app.register("saved@example.org", PASSWORD)).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < deadline + SLACK, "took {took:?}");
    assert!(response.text().await.unwrap().contains("took too long"));
}
