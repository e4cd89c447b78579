//! Response headers, escaping, languages, static files, error pages and probes.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};

use crate::helpers::{TestApp, capture, form_error, location};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("h@example.org").await;
    let static_url = capture(
        &app.get_html("/login").await,
        r#"href="(/static/app\.css\?v=[0-9a-f]+)""#,
    )
    .remove(0);

    for path in [
        "/",
        "/login",
        "/no-such-page",
        "/healthz",
        static_url.as_str(),
        "/search",
    ] {
        let response = me.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing from {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn pages_of_a_signed_in_user_are_never_stored() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("ns@example.org").await;
    let room = me.created_room("private").await;

    for path in [
        "/".to_owned(),
        "/search?q=private".to_owned(),
        format!("/rooms/{room}"),
    ] {
        let response = me.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store", "{path}");
    }
    assert_eq!(
        me.ticket_for(&room).await.headers()[CACHE_CONTROL],
        "no-store"
    );
}

#[tokio::test]
async fn pages_contain_no_inline_scripts() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("js@example.org").await;
    let room = me.created_room("scripts").await;

    let anonymous = app.new_browser();
    for (browser, path) in [
        (&me, "/".to_owned()),
        (&anonymous, "/".to_owned()),
        (&anonymous, "/login".to_owned()),
        (&me, format!("/rooms/{room}")),
    ] {
        let html = browser.get_html(&path).await;
        for tag in capture(&html, r"(<script[^>]*>)") {
            assert!(
                tag.contains(" src=\"/static/") || tag.contains(r#"type="application/json""#),
                "{path}: inline script {tag}"
            );
        }
        assert!(
            !html.contains(" onclick=") && !html.contains(" style="),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_room_title_with_markup_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("x@example.org").await;
    let evil = r#"<script>alert("x")</script>"#;
    let room = me.created_room(evil).await;

    let home = me.get_html("/").await;
    let chat = me.get_html(&format!("/rooms/{room}")).await;
    let search = me.search("<script>").await.text().await.unwrap();

    for (page, html) in [("home", &home), ("chat", &chat), ("search", &search)] {
        assert!(!html.contains("<script>alert"), "{page} leaks markup");
        assert!(
            html.contains("&lt;script&gt;alert("),
            "{page} shows it escaped"
        );
    }
    // The JSON data block must not be closable by the title either.
    assert!(!chat.contains("</script>alert") && !chat.contains(r#""</script>"#));
}

#[tokio::test]
async fn a_russian_browser_gets_russian_and_others_get_english() {
    let app = TestApp::spawn().await;
    let ru = app.get_html_in("/", "ru-RU,ru;q=0.9,en;q=0.8").await;
    let de = app.get_html_in("/login", "de-DE").await;

    assert!(ru.contains(r#"<html lang="ru">"#));
    assert!(ru.contains(r#"href="/register">Регистрация</a>"#), "{ru}");
    assert!(ru.contains(r#"href="/login">Войти</a>"#));
    assert!(de.contains(r#"<html lang="en">"#));
    assert!(de.contains(r#"<label for="password">Password</label>"#));
}

#[tokio::test]
async fn error_messages_come_in_the_visitors_language() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .post(app.url("/login"))
        .header(ACCEPT_LANGUAGE, "ru")
        .form(&[("email", "nobody@example.org"), ("password", "whatever1")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(html.contains("Неверный email или пароль."), "{html}");
    assert!(html.contains(r#"<label for="password">Пароль</label>"#));
}

#[tokio::test]
async fn the_language_switch_sets_a_cookie_and_returns_to_the_page() {
    let app = TestApp::spawn().await;
    let login = app.get_html("/login").await;
    assert!(
        login.contains(r#"href="/lang/ru?next=%2Flogin""#),
        "{login}"
    );
    assert!(
        login.contains(r#"data-testid="lang-ru""#) && login.contains(r#"data-testid="lang-en""#)
    );

    let response = app.get("/lang/ru?next=/login").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("lang=ru;") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = app.get_html_in("/login", "en").await;
    assert!(
        html.contains(r#"<label for="password">Пароль</label>"#),
        "the cookie wins over the browser"
    );
    // And back.
    app.get("/lang/en?next=/login").await;
    assert!(
        app.get_html("/login")
            .await
            .contains(r#"<label for="password">Password</label>"#)
    );
}

#[tokio::test]
async fn the_language_switch_keeps_the_search_and_its_results() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("lang@example.org").await;
    me.created_room("Привет всем").await;
    let results = me.search("Привет всем").await;
    let here = format!(
        "{}?{}",
        results.url().path(),
        results.url().query().unwrap()
    );
    let html = results.text().await.unwrap();

    let href = capture(&html, r#"<a href="(/lang/ru\?next=[^"]+)""#)
        .into_iter()
        .next()
        .expect("a link to the Russian page");
    let switched = me.get(&href).await;

    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&switched), here, "back to the same search");
    let russian = me.get_html(location(&switched)).await;
    assert!(russian.contains("Найденные комнаты"), "{russian}");
    assert!(russian.contains("Привет всем"));
}

#[tokio::test]
async fn the_language_switch_on_an_error_page_comes_back_to_it() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("lang@example.org").await;
    let missing = "/rooms/0123456789abcdef01234567?from=link";
    let html = me.get(missing).await.text().await.unwrap();

    let href = capture(&html, r#"<a href="(/lang/ru\?next=[^"]+)""#)
        .into_iter()
        .next()
        .expect("a link to the Russian page");
    let switched = me.get(&href).await;

    assert_eq!(location(&switched), missing);
    let response = me.get(missing).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Такой комнаты нет.")
    );
}

#[tokio::test]
async fn the_language_switch_only_returns_to_local_pages() {
    let app = TestApp::spawn().await;
    for next in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
    ] {
        let response = app
            .client
            .get(app.url("/lang/en"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/", "{next}");
    }
    assert_eq!(
        app.get("/lang/xx?next=/").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_language_switch_with_an_overlong_next_goes_home() {
    let app = TestApp::spawn().await;
    let next = format!("/{}", "a".repeat(4000));

    let response = app
        .client
        .get(app.url("/lang/en"))
        .query(&[("next", next.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn the_lang_cookie_alone_never_creates_a_session() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/"))
        .header(COOKIE, "lang=ru")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert!(response.text().await.unwrap().contains("Регистрация"));
}

#[tokio::test]
async fn static_files_are_served_with_types_and_cache_headers() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/login").await;
    let css = capture(&html, r#"href="(/static/app\.css\?v=[0-9a-f]+)""#).remove(0);

    let versioned = app.get(&css).await;
    let unversioned = app.get("/static/chat.js").await;

    assert_eq!(versioned.status(), StatusCode::OK);
    assert_eq!(versioned.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(
        versioned.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        unversioned.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(unversioned.headers()[CACHE_CONTROL], "no-cache");
    assert_eq!(
        app.get("/static/secret.txt").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/static/..%2FCargo.toml").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_pages_get_a_friendly_localized_404() {
    let app = TestApp::spawn().await;

    let response = app.get_in("/no/such/page", "ru").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Такой страницы нет.")
    );
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn().await;

    let health = app.get("/healthz").await;
    let ready = app.get("/readyz").await;

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_healthcheck_probe_sees_a_running_server() {
    let app = TestApp::spawn().await;
    assert!(website::healthcheck::probe(app.addr.port()).await.unwrap());
}

#[tokio::test]
async fn the_site_has_an_icon_linked_from_every_page_and_at_favicon_ico() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/login").await;
    let linked = capture(
        &html,
        r#"<link rel="icon" type="image/svg\+xml" href="(/static/favicon\.svg\?v=[0-9a-f]+)">"#,
    );
    assert_eq!(linked.len(), 1, "{html}");

    for path in [linked[0].as_str(), "/favicon.ico"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml", "{path}");
        let body = response.text().await.unwrap();
        assert!(
            body.starts_with("<svg") && body.contains("</svg>"),
            "{path}"
        );
        assert!(!body.contains("<script"), "{path}: an icon runs nothing");
    }
}

/// The `<h1>` of an error page.
fn error_heading(html: &str) -> String {
    capture(html, r#"<h1 data-testid="error-heading">([^<]*)</h1>"#)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no error heading in {html}"))
}

#[tokio::test]
async fn error_pages_say_what_happened_in_their_heading_in_both_languages() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    let room = owner.created_room("not yours").await;
    let other = app.signed_up_browser("other@example.org").await;
    let token = other.csrf_token().await;

    for (lang, not_found, no_access) in [
        ("en", "Not found", "No access"),
        ("ru", "Не найдено", "Нет доступа"),
    ] {
        let missing = other.get_in("/rooms/0123456789abcdef01234567", lang).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let html = missing.text().await.unwrap();
        assert_eq!(error_heading(&html), not_found, "{lang}");
        assert!(html.contains(&format!("<title>{not_found} ·")), "{lang}");

        let forbidden = other
            .client
            .post(other.url(&format!("/rooms/{room}/delete")))
            .header(ACCEPT_LANGUAGE, lang)
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_heading(&forbidden.text().await.unwrap()), no_access);
    }
}

#[tokio::test]
async fn a_blank_room_title_gets_its_own_message() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("blank@example.org").await;

    let blank = me.create_room("    ").await;
    let too_long = me.create_room(&"ж".repeat(101)).await;

    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let blank = form_error(&blank.text().await.unwrap()).unwrap();
    let too_long = form_error(&too_long.text().await.unwrap()).unwrap();
    assert!(blank.starts_with("Enter a room title"), "{blank}");
    assert!(too_long.contains("too long"), "{too_long}");
    assert_ne!(blank, too_long);
}
