//! Sessions and the login throttle in MongoDB: what every replica shares and a restart keeps.
//!
//! A "replica" is a second `Application` on the same database and settings (its own port and
//! cache); a restart is stopping one and starting another. Browsers keep cookies per host, not
//! per port, so one browser can visit both.

use std::time::{Duration, Instant};

use mongodb::bson::{DateTime, doc};
use reqwest::StatusCode;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use website::db::sessions::{SessionUser, USER_KEY, stored_id};
use website::domain::Email;

use crate::helpers::{
    PASSWORD, TestApp, cookie_value, location, session_cookie, session_is_live, stored_sessions,
};

/// The bound: a session ended through one replica stops working on the others within it.
const ENDED_EVERYWHERE_WITHIN: Duration = Duration::from_secs(5);

/// Registers `email` through `app` with a new browser; the session cookie's value.
async fn signed_up_session(app: &TestApp, email: &str) -> String {
    let response = app.new_browser().register(email, PASSWORD).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "registering {email}"
    );
    cookie_value(&session_cookie(response.headers()).expect("a session cookie"))
}

/// Polls `app` with the session cookie `value` until it is refused; how long that took.
async fn time_until_refused(app: &TestApp, value: &str) -> Duration {
    let start = Instant::now();
    while session_is_live(app, value).await {
        assert!(
            start.elapsed() < 2 * ENDED_EVERYWHERE_WITHIN,
            "the session still works after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_signed_in_user_stays_signed_in_across_a_restart() {
    let mut before = TestApp::spawn().await;
    let me = before.signed_up_browser("stays@example.org").await;
    me.created_room("made before the restart").await;

    before.stop().await;
    let after = before.replica().await;

    let me_after = me.visiting(&after);
    let rooms = me_after.my_rooms().await;
    assert_eq!(
        rooms
            .iter()
            .map(|(_, title)| title.as_str())
            .collect::<Vec<_>>(),
        ["made before the restart"],
        "the home page of the signed-in user"
    );
    me_after.created_room("made after the restart").await;
}

#[tokio::test]
async fn two_replicas_on_one_database_share_a_session() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    let me = one.signed_up_browser("both@example.org").await;
    me.created_room("from the first").await;

    let me_on_two = me.visiting(&two);
    me_on_two.created_room("from the second").await;

    let titles = |rooms: Vec<(String, String)>| {
        let mut titles: Vec<String> = rooms.into_iter().map(|(_, title)| title).collect();
        titles.sort();
        titles
    };
    let expected = ["from the first", "from the second"];
    assert_eq!(titles(me.my_rooms().await), expected);
    assert_eq!(titles(me_on_two.my_rooms().await), expected);
}

#[tokio::test]
async fn logging_out_through_one_replica_ends_the_session_on_the_others_within_five_seconds() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    let response = one.register("leaving@example.org", PASSWORD).await;
    let value = cookie_value(&session_cookie(response.headers()).unwrap());
    // The second replica has the session in its cache now.
    assert!(session_is_live(&two, &value).await);

    let logout = one.logout().await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);

    let took = time_until_refused(&two, &value).await;
    assert!(took < ENDED_EVERYWHERE_WITHIN, "refused after {took:?}");
    assert!(!session_is_live(&one, &value).await);
    assert!(stored_sessions(&one).await.is_empty(), "the record is gone");
}

#[tokio::test]
async fn removing_an_account_ends_its_sessions_on_every_replica_within_five_seconds() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    let first = signed_up_session(&one, "removed@example.org").await;
    let response = one
        .new_browser()
        .login("removed@example.org", PASSWORD)
        .await;
    let second = cookie_value(&session_cookie(response.headers()).unwrap());
    let survivor = signed_up_session(&one, "stays@example.org").await;
    assert!(session_is_live(&two, &first).await && session_is_live(&two, &second).await);
    let email = Email::parse("removed@example.org").unwrap();
    let user = one.db.find_user_by_email(&email).await.unwrap().unwrap();

    assert!(one.db.delete_user(user.id).await.unwrap());

    for value in [&first, &second] {
        let took = time_until_refused(&two, value).await;
        assert!(took < ENDED_EVERYWHERE_WITHIN, "refused after {took:?}");
    }
    assert!(session_is_live(&two, &survivor).await, "other users stay");
    let left: Vec<String> = stored_sessions(&one)
        .await
        .into_iter()
        .map(|s| s.email)
        .collect();
    assert_eq!(left, ["stays@example.org"]);
}

#[tokio::test]
async fn an_expired_session_record_is_refused_before_the_ttl_monitor_removes_it() {
    let one = TestApp::spawn().await;
    // Without its TTL index the record stays however old it is, as it does on a real server
    // until the TTL monitor's next pass (the stand-in purges at once).
    one.db.sessions().drop_indexes().await.unwrap();
    let value = signed_up_session(&one, "expired@example.org").await;
    let mut stored = stored_sessions(&one).await.pop().expect("a stored session");
    stored.expires_at = DateTime::from_millis(DateTime::now().timestamp_millis() - 1000);
    one.db
        .sessions()
        .replace_one(doc! { "_id": &stored.id }, &stored)
        .await
        .unwrap();
    assert_eq!(
        stored_sessions(&one).await.len(),
        1,
        "the record is still there"
    );

    // A replica that has not cached it reads MongoDB.
    let two = one.replica().await;

    assert!(!session_is_live(&two, &value).await);
}

#[tokio::test]
async fn the_stored_session_names_its_user_and_dates_but_not_its_cookie() {
    let app = TestApp::spawn().await;
    let before = DateTime::now().timestamp_millis();

    let value = signed_up_session(&app, "readable@example.org").await;

    let email = Email::parse("readable@example.org").unwrap();
    let user = app.db.find_user_by_email(&email).await.unwrap().unwrap();
    let sessions = stored_sessions(&app).await;
    assert_eq!(sessions.len(), 1);
    let stored = &sessions[0];
    assert_eq!(stored.user_id, user.id);
    assert_eq!(stored.email, "readable@example.org");
    let created = stored.created_at.timestamp_millis();
    assert!(
        (before - 1000..=before + 5000).contains(&created),
        "{stored:?}"
    );
    let idle = i64::try_from(app.config.session_idle.as_millis()).unwrap();
    let expires = stored.expires_at.timestamp_millis();
    assert!(
        (before + idle - 1000..=before + idle + 5000).contains(&expires),
        "expires after the idle timeout: {stored:?}"
    );
    assert_ne!(stored.id, value, "the cookie's value is not stored");
    let id: Id = value.parse().unwrap();
    assert_eq!(stored.id, stored_id(&id));
}

#[tokio::test]
async fn anonymous_visitors_leave_no_session_record() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("someone@example.org").await;
    app.db.sessions().delete_many(doc! {}).await.unwrap();
    let visitor = app.new_browser();

    for path in [
        "/",
        "/login",
        "/register",
        "/search",
        "/no-such-page",
        "/healthz",
    ] {
        visitor.get(path).await;
    }
    visitor.login("someone@example.org", "wrong password").await;
    visitor.register("not an email", PASSWORD).await;
    visitor.post_form("/logout", &[]).await;

    assert!(stored_sessions(&app).await.is_empty());
}

#[tokio::test]
async fn failed_logins_through_one_replica_count_on_the_others_and_after_a_restart() {
    let mut one = TestApp::spawn_with(|c| c.login_max_failures = 3).await;
    let two = one.replica().await;
    one.signed_up_browser("guarded@example.org").await;
    let attacker = one.new_browser();
    for (attempt, app) in [&one, &two, &one].into_iter().enumerate() {
        let response = attacker
            .visiting(app)
            .login("guarded@example.org", "wrong password")
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }

    let on_two = two
        .new_browser()
        .login("guarded@example.org", PASSWORD)
        .await;
    assert_eq!(on_two.status(), StatusCode::TOO_MANY_REQUESTS);

    one.stop().await;
    let restarted = one.replica().await;
    let after_restart = restarted
        .new_browser()
        .login("guarded@example.org", PASSWORD)
        .await;
    assert_eq!(after_restart.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_successful_login_forgives_the_accounts_failures_on_every_replica() {
    let one = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    let two = one.replica().await;
    one.signed_up_browser("forgiven@example.org").await;
    let response = one.login("forgiven@example.org", "wrong password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let success = two.login("forgiven@example.org", PASSWORD).await;
    assert_eq!(success.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&success), "/");

    // Two more failures are allowed again before the account is throttled.
    for _ in 0..2 {
        let response = one
            .new_browser()
            .login("forgiven@example.org", "nope nope")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = two
        .new_browser()
        .login("forgiven@example.org", PASSWORD)
        .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_login_failure_stops_counting_when_its_window_ends_even_before_the_ttl_monitor_runs() {
    let app = TestApp::spawn().await;
    // Without the TTL index, as in the time before the TTL monitor's next pass.
    app.db.login_failures().drop_indexes().await.unwrap();
    let key = "account:window@example.org".to_owned();

    app.db
        .insert_login_failures(std::slice::from_ref(&key), Duration::from_secs(1))
        .await
        .unwrap();

    assert_eq!(app.db.count_login_failures(&key, 10).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.db.count_login_failures(&key, 10).await.unwrap(), 0);
    let stored = app
        .db
        .login_failures()
        .count_documents(doc! { "key": &key })
        .await
        .unwrap();
    assert_eq!(stored, 1, "still stored, no longer counted");
}

#[tokio::test]
async fn creating_a_session_under_a_taken_id_draws_another_and_overwrites_nothing() {
    let app = TestApp::spawn().await;
    let store = app.db.session_store();
    let record_of = |email: &str| {
        let user = SessionUser {
            user_id: mongodb::bson::oid::ObjectId::new(),
            email: email.to_owned(),
            csrf_token: "ab".repeat(32),
            signed_in_at: 1_700_000_000,
            last_seen_at: 1_700_000_000,
        };
        Record {
            id: Id::default(),
            data: [(USER_KEY.to_owned(), serde_json::to_value(user).unwrap())].into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        }
    };
    let mut first = record_of("first@example.org");
    store.create(&mut first).await.unwrap();
    let mut second = record_of("second@example.org");
    second.id = first.id;

    store.create(&mut second).await.unwrap();

    assert_ne!(second.id, first.id, "a new id was drawn");
    let stored = |id: Id| {
        let store = store.clone();
        async move { store.load(&id).await.unwrap().unwrap().data[USER_KEY]["email"].clone() }
    };
    assert_eq!(stored(first.id).await, "first@example.org");
    assert_eq!(stored(second.id).await, "second@example.org");
}
