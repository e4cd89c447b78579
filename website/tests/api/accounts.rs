//! Registration, login, logout and their error messages.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, form_error, location, retry_after_secs, session_cookie};

#[tokio::test]
async fn the_landing_page_invites_to_register_or_log_in_without_a_session() {
    let app = TestApp::spawn().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        session_cookie(response.headers()).is_none(),
        "anonymous visitors get no session"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<a class="button" href="/register">Register</a>"#),
        "{html}"
    );
    assert!(html.contains(r#"<a class="button secondary" href="/login">Log in</a>"#));
    assert!(!html.contains("data-testid=\"current-user\""));
}

#[tokio::test]
async fn registering_logs_the_user_in_and_goes_home() {
    let app = TestApp::spawn().await;

    let response = app.register("  New.User@Example.ORG ", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let home = app.get_html("/").await;
    assert!(
        home.contains(concat!(
            r#"data-testid="current-user" title="new.user@example.org">"#,
            "new.user@example.org</strong>",
        )),
        "the normalized email is shown: {home}"
    );
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_a_clear_message_and_the_email_kept() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "not-an-email",
            PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter a valid email address",
            "invalid email",
        ),
        (
            "",
            PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter a valid email address",
            "empty email",
        ),
        (
            "a@example.org",
            "short12",
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least 8 characters",
            "7-char password",
        ),
        (
            "a@example.org",
            "пароль1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least 8 characters",
            "7 Cyrillic chars",
        ),
        (
            "a@example.org",
            "password1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "one of the most common",
            "a top-ten password",
        ),
        (
            "a@example.org",
            "qwertyuiop",
            StatusCode::UNPROCESSABLE_ENTITY,
            "one of the most common",
            "a keyboard row",
        ),
    ];
    for (email, password, status, message, why) in cases {
        let response = app.register(email, password).await;

        assert_eq!(response.status(), status, "{why}");
        let html = response.text().await.unwrap();
        let error = form_error(&html).unwrap_or_default();
        assert!(error.contains(message), "{why}: {error:?}");
        assert!(
            html.contains(&format!(r#"value="{email}""#)),
            "{why}: the email is kept"
        );
    }
    // A long passphrase is fine.
    let response = app
        .register(
            "long@example.org",
            &"correct horse battery staple ".repeat(10),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_email_registered_in_any_letter_case_is_taken() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("a@x.io").await;

    let response = app.register("A@X.io", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error = form_error(&response.text().await.unwrap()).unwrap_or_default();
    assert!(error.contains("already registered"), "{error:?}");
}

#[tokio::test]
async fn an_email_spelled_with_look_alike_or_invisible_characters_is_not_a_second_account() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("ann@example.org").await;

    let fullwidth = app
        .new_browser()
        .register("ａｎｎ@example.org", PASSWORD)
        .await;
    assert_eq!(
        fullwidth.status(),
        StatusCode::CONFLICT,
        "fullwidth letters"
    );
    for (email, why) in [
        ("an\u{200B}n@example.org", "a zero-width space"),
        ("\u{0430}nn@example.org", "a Cyrillic а"),
    ] {
        let response = app.new_browser().register(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
}

#[tokio::test]
async fn logging_in_with_any_letter_case_of_the_email_works() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("a@x.io").await;

    let response = app.login(" A@X.IO ", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(app.get_html("/").await.contains("a@x.io"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("known@example.org").await;

    let wrong_password = app.login("known@example.org", "wrong password").await;
    let unknown_email = app.login("nobody@example.org", PASSWORD).await;

    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    let a = form_error(&wrong_password.text().await.unwrap());
    let b = form_error(&unknown_email.text().await.unwrap());
    assert_eq!(a.as_deref(), Some("Wrong email or password."));
    assert_eq!(a, b, "no user enumeration");
}

#[tokio::test]
async fn repeated_failed_logins_for_an_account_are_throttled() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("target@example.org").await;
    for attempt in 0..5 {
        let response = app.login("target@example.org", "wrong password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }

    // Even the right password is refused while the account is throttled.
    let response = app.login("target@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after_secs(&response) > 0);
    let error = form_error(&response.text().await.unwrap()).unwrap_or_default();
    assert!(error.contains("Too many failed attempts"), "{error:?}");
    // Other accounts are not affected.
    app.signed_up_browser("other@example.org").await;
    let other = app.new_browser().login("other@example.org", PASSWORD).await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_are_throttled_across_accounts() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    // The address allows four times the per-account limit.
    for i in 0..8 {
        let response = app
            .login(&format!("guess{i}@example.org"), "wrong password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }

    let response = app.login("fresh@example.org", "wrong password").await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let browser = app.signed_up_browser("bye@example.org").await;

    let response = browser.logout().await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let home = browser.get_html("/").await;
    assert!(!home.contains("bye@example.org"));
    assert!(home.contains(r#"href="/login""#));
}

#[tokio::test]
async fn the_login_and_register_pages_show_labelled_fields_and_stable_hooks() {
    let app = TestApp::spawn().await;
    for (path, submit) in [("/login", "login-submit"), ("/register", "register-submit")] {
        let html = app.get_html(path).await;
        assert!(
            html.contains(r#"<label for="email">Email</label>"#),
            "{path}"
        );
        assert!(
            html.contains(r#"<label for="password">Password</label>"#),
            "{path}"
        );
        assert!(
            html.contains(&format!(r#"data-testid="{submit}""#)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn signed_in_users_visiting_login_or_register_go_home() {
    let app = TestApp::spawn().await;
    let browser = app.signed_up_browser("in@example.org").await;
    for path in ["/login", "/register"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/");
    }
}

#[tokio::test]
async fn the_russian_forms_name_the_email_field_in_russian() {
    let app = TestApp::spawn().await;
    for path in ["/login", "/register"] {
        let html = app.get_html_in(path, "ru").await;
        assert!(
            html.contains(r#"<label for="email">Электронная почта</label>"#),
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn strangers_failures_do_not_keep_the_owner_out_of_a_device_they_logged_in_on() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    assert_eq!(owner.logout().await.status(), StatusCode::SEE_OTHER);
    let attacker = app.new_browser();
    for attempt in 0..5 {
        let response = attacker.login("owner@example.org", "wrong password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        attacker.login("owner@example.org", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker is slowed down"
    );

    let response = owner.login("owner@example.org", PASSWORD).await;

    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the owner's device gets in"
    );
}

#[tokio::test]
async fn an_address_over_its_limit_still_lets_its_known_devices_in() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    let neighbour = app.signed_up_browser("neighbour@example.org").await;
    neighbour.logout().await;
    // Someone behind the same NAT tries eight accounts: the address's limit (4 × 2).
    for i in 0..8 {
        let response = app
            .new_browser()
            .login(&format!("guess{i}@example.org"), "wrong password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }

    let response = neighbour.login("neighbour@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failures_from_many_addresses_slow_strangers_on_the_account_not_its_owner() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures = 2;
        c.trust_proxy_headers = true;
    })
    .await;
    let owner = app.signed_up_browser("spread@example.org").await;
    owner.logout().await;
    let login_from = |ip: String, password: &'static str| {
        let stranger = app.new_browser();
        async move {
            stranger
                .client
                .post(stranger.url("/login"))
                .header("X-Real-IP", ip)
                .form(&[("email", "spread@example.org"), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // One failure from each of eight addresses: the account's limit (4 × 2), no address's.
    for i in 0..8 {
        let status = login_from(format!("198.51.100.{i}"), "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "address {i}");
    }

    let stranger = login_from("198.51.100.200".to_owned(), PASSWORD).await;
    let response = owner.login("spread@example.org", PASSWORD).await;

    assert_eq!(
        stranger,
        StatusCode::TOO_MANY_REQUESTS,
        "a new address is slowed down"
    );
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the owner's device gets in"
    );
}
