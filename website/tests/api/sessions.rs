//! The session cookie: flags, lifecycle, fixation, and pages that need a login.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, cookie_value, location, session_cookie, session_is_live};

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax_and_not_secure_by_default() {
    let app = TestApp::spawn().await;

    let response = app.register("c@example.org", PASSWORD).await;

    let cookie = session_cookie(response.headers()).expect("a session cookie at registration");
    let attributes = cookie.to_ascii_lowercase();
    assert!(attributes.contains("httponly"), "{cookie}");
    assert!(attributes.contains("samesite=lax"), "{cookie}");
    assert!(attributes.contains("path=/"), "{cookie}");
    assert!(
        !attributes.contains("secure;") && !attributes.ends_with("secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_and_host_prefixed_when_configured() {
    let app = TestApp::spawn_with(|c| c.cookie_secure = true).await;

    let response = app.register("s@example.org", PASSWORD).await;

    let cookie = session_cookie(response.headers()).expect("a session cookie");
    // A browser keeps a `__Host-` cookie only when it is Secure, has Path=/ and no Domain.
    assert!(cookie.starts_with("__Host-session="), "{cookie}");
    let attributes = cookie.to_ascii_lowercase();
    assert!(attributes.contains("; secure"), "{cookie}");
    assert!(attributes.contains("; path=/"), "{cookie}");
    assert!(!attributes.contains("domain="), "{cookie}");
    assert!(attributes.contains("httponly"), "{cookie}");
}

#[tokio::test]
async fn a_plain_http_session_cookie_has_no_host_prefix() {
    let app = TestApp::spawn().await;

    let response = app.register("plain@example.org", PASSWORD).await;

    let cookie = session_cookie(response.headers()).expect("a session cookie");
    assert!(cookie.starts_with("session="), "{cookie}");
}

#[tokio::test]
async fn anonymous_pages_never_set_a_cookie() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/login",
        "/register",
        "/healthz",
        "/no-such-page",
        "/search",
    ] {
        let response = app.get(path).await;
        assert!(
            response
                .headers()
                .get(reqwest::header::SET_COOKIE)
                .is_none(),
            "{path} set a cookie"
        );
    }
    let failed_login = app.login("x@example.org", "wrong password").await;
    assert!(
        failed_login
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_none()
    );
}

#[tokio::test]
async fn logging_in_issues_a_new_session_id_and_retires_the_old_one() {
    let app = TestApp::spawn().await;
    let registered = app.register("fix@example.org", PASSWORD).await;
    let before = cookie_value(&session_cookie(registered.headers()).unwrap());
    assert!(session_is_live(&app, &before).await);

    let relogin = app.login("fix@example.org", PASSWORD).await;

    let after = cookie_value(&session_cookie(relogin.headers()).expect("a new cookie at login"));
    assert_ne!(before, after, "the session id changes at login");
    assert!(!session_is_live(&app, &before).await, "the old id is dead");
    assert!(session_is_live(&app, &after).await);
}

#[tokio::test]
async fn after_logout_the_old_session_cookie_no_longer_works() {
    let app = TestApp::spawn().await;
    let registered = app.register("out@example.org", PASSWORD).await;
    let value = cookie_value(&session_cookie(registered.headers()).unwrap());

    let response = app.logout().await;

    let removal = session_cookie(response.headers()).expect("the cookie is removed");
    assert!(
        removal.to_ascii_lowercase().contains("max-age=0"),
        "{removal}"
    );
    assert!(
        !session_is_live(&app, &value).await,
        "a replayed cookie is refused"
    );
}

#[tokio::test]
async fn a_session_older_than_the_absolute_limit_is_refused() {
    let app = TestApp::spawn_with(|c| c.session_max_age = std::time::Duration::ZERO).await;
    let registered = app.register("old@example.org", PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    // Timestamps have one-second resolution; wait until the session is strictly older.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let response = app.get("/search").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fsearch");
}

#[tokio::test]
async fn pages_that_need_login_send_visitors_to_the_login_page() {
    let app = TestApp::spawn().await;
    let room = "0123456789abcdef01234567";
    // The page asked for comes back after login (the login form carries it on as `next`).
    for (path, next) in [
        ("/search", "%2Fsearch"),
        ("/search?q=abcdefgh", "%2Fsearch%3Fq%3Dabcdefgh"),
        (
            &format!("/rooms/{room}"),
            "%2Frooms%2F0123456789abcdef01234567",
        ),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), format!("/login?next={next}"), "{path}");
    }
    let create = app.post_form("/rooms", &[("title", "sneaky")]).await;
    assert_eq!(create.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&create), "/login");
}
