//! A page that needs a session, opened without one, comes back after logging in (`next`), and
//! `next` never leads to another site.

use reqwest::StatusCode;

use crate::helpers::{Browser, PASSWORD, TestApp, capture, location, unescape};

/// The hidden `next` field of a login or register page, if any.
fn hidden_next(html: &str) -> Option<String> {
    capture(html, r#"<input type="hidden" name="next" value="([^"]*)">"#)
        .into_iter()
        .next()
        .map(|value| unescape(&value))
}

async fn log_in_with_next(browser: &Browser, email: &str, next: &str) -> reqwest::Response {
    browser
        .post_form(
            "/login",
            &[("email", email), ("password", PASSWORD), ("next", next)],
        )
        .await
}

#[tokio::test]
async fn a_room_link_opened_logged_out_comes_back_to_the_room_after_login() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    let room = owner.created_room("Back after login").await;
    app.signed_up_browser("guest@example.org").await;
    let guest = app.new_browser();
    let room_path = format!("/rooms/{room}");

    let refused = guest.get(&room_path).await;
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let login_page = location(&refused).to_owned();
    assert_eq!(login_page, format!("/login?next=%2Frooms%2F{room}"));

    let form = guest.get_html(&login_page).await;
    assert_eq!(hidden_next(&form).as_deref(), Some(room_path.as_str()));
    assert!(
        unescape(&form).contains(&format!(r#"href="/register?next=%2Frooms%2F{room}""#)),
        "the link to the register form carries next on: {form}"
    );
    assert!(
        form.contains(r#"data-testid="login-to-continue""#),
        "the form says why it is shown: {form}"
    );

    let logged_in = log_in_with_next(&guest, "guest@example.org", &room_path).await;

    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logged_in), room_path);
    let chat = guest.get_html(&room_path).await;
    assert!(chat.contains("Back after login"), "{chat}");
}

#[tokio::test]
async fn a_failed_login_keeps_next_for_the_next_attempt() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("retry@example.org").await;
    let visitor = app.new_browser();

    let response = visitor
        .post_form(
            "/login",
            &[
                ("email", "retry@example.org"),
                ("password", "not the password"),
                ("next", "/search?q=abcdef"),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert_eq!(hidden_next(&html).as_deref(), Some("/search?q=abcdef"));
}

#[tokio::test]
async fn registering_from_a_room_link_comes_back_to_the_room() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("host@example.org").await;
    let room = owner.created_room("Newcomers welcome").await;
    let newcomer = app.new_browser();
    let room_path = format!("/rooms/{room}");

    let form = newcomer
        .get_html(&format!("/register?next=%2Frooms%2F{room}"))
        .await;
    assert_eq!(hidden_next(&form).as_deref(), Some(room_path.as_str()));
    let registered = newcomer
        .post_form(
            "/register",
            &[
                ("email", "newcomer@example.org"),
                ("password", PASSWORD),
                ("next", &room_path),
            ],
        )
        .await;

    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&registered), room_path);
}

#[tokio::test]
async fn next_never_leads_to_another_site_or_anything_but_a_local_path() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("careful@example.org").await;
    let very_long = format!("/{}", "a".repeat(600));
    let refused = [
        ("//evil.example", "protocol-relative URL"),
        ("//evil.example/rooms", "protocol-relative URL with a path"),
        ("https://evil.example", "absolute URL"),
        ("/\\evil.example", "backslash"),
        ("javascript:alert(1)", "script URL"),
        ("rooms", "relative path"),
        ("/rooms\r\nSet-Cookie: x=1", "header injection"),
        (very_long.as_str(), "longer than 512 bytes"),
    ];
    for (next, why) in refused {
        // The form does not carry it on...
        let form = app
            .client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::OK, "{why}");
        let html = form.text().await.unwrap();
        assert_eq!(hidden_next(&html), None, "{why}: the form keeps it");
        assert!(!unescape(&html).contains("/register?next"), "{why}: {html}");

        // ...and a login posted with it by hand goes home.
        let visitor = app.new_browser();
        let response = log_in_with_next(&visitor, "careful@example.org", next).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{why}");
        assert_eq!(location(&response), "/", "{why}");
    }
}

#[tokio::test]
async fn someone_already_signed_in_goes_straight_to_next() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("already@example.org").await;

    for (path, expected) in [
        ("/login?next=%2Fsearch%3Fq%3Dabcdef", "/search?q=abcdef"),
        ("/register?next=%2Fsearch", "/search"),
        ("/login?next=%2F%2Fevil.example", "/"),
        ("/login?next=https%3A%2F%2Fevil.example", "/"),
    ] {
        let response = me.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), expected, "{path}");
    }
}

#[tokio::test]
async fn a_form_posted_without_a_session_goes_to_the_plain_login_page() {
    let app = TestApp::spawn().await;

    let response = app.post_form("/rooms", &[("title", "sneaky")]).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/login",
        "a post cannot be repeated by a link"
    );
}
