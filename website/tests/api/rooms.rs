//! Creating, listing and deleting rooms; CSRF protection of the forms; the chat page.

use reqwest::StatusCode;

use crate::helpers::{TestApp, capture, form_error, location};

#[tokio::test]
async fn my_rooms_are_listed_newest_first() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("owner@example.org").await;
    assert!(
        me.get_html("/").await.contains(r#"data-testid="no-rooms""#),
        "empty state"
    );

    for title in ["first", "second", "third"] {
        let response = me.create_room(title).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{title}");
        assert_eq!(location(&response), "/");
    }

    let titles: Vec<String> = me.my_rooms().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["third", "second", "first"]);
}

#[tokio::test]
async fn room_titles_must_be_1_to_100_characters_after_trimming() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("titles@example.org").await;
    let hundred = "ж".repeat(100);
    let cases = [
        (String::new(), false, "empty"),
        ("    ".to_owned(), false, "blank"),
        ("я".to_owned(), true, "one Cyrillic character"),
        (hundred.clone(), true, "100 Cyrillic characters (200 bytes)"),
        (
            format!("  {hundred}  "),
            true,
            "100 characters with padding",
        ),
        ("ж".repeat(101), false, "101 characters"),
    ];
    for (title, accepted, why) in cases {
        let response = me.create_room(&title).await;
        if accepted {
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{why}");
        } else {
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
            let html = response.text().await.unwrap();
            let error = form_error(&html).unwrap_or_default();
            assert!(error.contains("1 to 100 characters"), "{why}: {error:?}");
        }
    }
    let titles: Vec<String> = me.my_rooms().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        titles,
        [hundred.clone(), hundred, "я".to_owned()],
        "only valid rooms, trimmed"
    );
}

#[tokio::test]
async fn a_title_of_100_emoji_is_not_cut_short_by_the_form() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("emoji@example.org").await;
    let html = me.get_html("/").await;
    let search = me.get_html("/search").await;

    // A browser's maxlength counts UTF-16 units, so "100" would stop at 50 emoji; the server
    // counts characters and is the one to say when a title is too long.
    let input = capture(&html, r#"(<input id="room-title"[^>]*>)"#);
    assert!(!input[0].contains("maxlength"), "{}", input[0]);
    let query = capture(&search, r#"(<input id="search-query"[^>]*>)"#);
    assert!(!query[0].contains("maxlength"), "{}", query[0]);
    let emoji = "🙂".repeat(100);
    assert_eq!(me.create_room(&emoji).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(me.search_titles(&"🙂".repeat(6)).await, [emoji]);
}

#[tokio::test]
async fn room_titles_are_one_line_without_control_characters() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("titles@example.org").await;

    for (title, why) in [
        ("first\nsecond", "a newline"),
        ("nul\0byte", "a NUL byte"),
        ("admin\u{202E}txt.exe", "a right-to-left override"),
        ("\u{2067}isolated", "a direction isolate"),
    ] {
        let response = me.create_room(title).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let html = response.text().await.unwrap();
        assert_eq!(
            form_error(&html).as_deref(),
            Some(concat!(
                "A room title must be one line of text, ",
                "without control or text-direction characters.",
            )),
            "{why}"
        );
    }
    let response = me.create_room("\u{200B}\u{3164}\u{FEFF}").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        form_error(&response.text().await.unwrap()).as_deref(),
        Some("A room title needs at least one visible character.")
    );
    assert!(me.my_rooms().await.is_empty(), "no room was created");
}

#[tokio::test]
async fn room_titles_with_an_invisible_direction_mark_are_refused() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("marks@example.org").await;

    for (title, why) in [
        ("left\u{200E}mark", "a left-to-right mark"),
        ("right\u{200F}mark", "a right-to-left mark"),
        ("arabic\u{061C}mark", "an Arabic letter mark"),
    ] {
        let response = me.create_room(title).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    assert!(me.my_rooms().await.is_empty(), "no room was created");
}

#[tokio::test]
async fn deleting_my_own_room_removes_it() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("del@example.org").await;
    let keep = me.created_room("keep me").await;
    let gone = me.created_room("delete me").await;

    let response = me.delete_room(&gone).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let ids: Vec<String> = me.my_rooms().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [keep]);
    let again = me.delete_room(&gone).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_someone_elses_room_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    let intruder = app.signed_up_browser("intruder@example.org").await;
    let room = owner.created_room("mine, not yours").await;

    let response = intruder.delete_room(&room).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Only the owner of a room can delete it."),
        "{html}"
    );
    assert_eq!(owner.my_rooms().await.len(), 1, "the room is still there");
    assert!(
        intruder
            .get_html("/")
            .await
            .contains(r#"data-testid="no-rooms""#)
    );
}

#[tokio::test]
async fn addressing_a_room_that_does_not_exist_is_not_found() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("missing@example.org").await;
    for id in ["0123456789abcdef01234567", "not-an-id", "%3Cscript%3E"] {
        assert_eq!(
            me.delete_room(id).await.status(),
            StatusCode::NOT_FOUND,
            "delete {id}"
        );
        let page = me.get(&format!("/rooms/{id}")).await;
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "chat page {id}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("This room does not exist"),
            "a friendly 404 page: {html}"
        );
    }
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("csrf@example.org").await;
    let room = me.created_room("protected").await;
    let token = me.csrf_token().await;

    let no_token = me.post_form("/rooms", &[("title", "forged")]).await;
    let wrong_token = me
        .post_form(
            "/rooms",
            &[("title", "forged"), ("csrf_token", &"0".repeat(64))],
        )
        .await;
    let foreign_origin = me
        .client
        .post(me.url("/rooms"))
        .header("Origin", "http://evil.example")
        .form(&[("title", "forged"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let foreign_delete = me
        .client
        .post(me.url(&format!("/rooms/{room}/delete")))
        .header("Origin", "http://evil.example")
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let no_token_delete = me.post_form(&format!("/rooms/{room}/delete"), &[]).await;
    let no_token_logout = me.post_form("/logout", &[]).await;

    for (response, why) in [
        (no_token, "missing token"),
        (wrong_token, "wrong token"),
        (foreign_origin, "foreign Origin"),
        (foreign_delete, "foreign Origin on delete"),
        (no_token_delete, "delete without token"),
        (no_token_logout, "logout without token"),
    ] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{why}");
    }
    let titles: Vec<String> = me.my_rooms().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        titles,
        ["protected"],
        "nothing changed, and the session survived"
    );
}

#[tokio::test]
async fn same_origin_forms_with_the_token_are_accepted() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("origin@example.org").await;
    let token = me.csrf_token().await;
    let origin = format!("http://{}", app.addr);

    let response = me
        .client
        .post(me.url("/rooms"))
        .header("Origin", origin)
        .form(&[("title", "same origin"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_login_form_posted_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    app.signed_up_browser("victim@example.org").await;

    let response = app
        .client
        .post(app.url("/login"))
        .header("Origin", "http://evil.example")
        .form(&[
            ("email", "victim@example.org"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_none()
    );
}

#[tokio::test]
async fn the_chat_page_of_any_room_has_its_title_and_the_chat_hooks() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    let visitor = app.signed_up_browser("visitor@example.org").await;
    let room = owner.created_room("Планирование").await;

    let html = visitor.get_html(&format!("/rooms/{room}")).await;

    assert!(html.contains(r#"<h1 data-testid="chat-title">Планирование</h1>"#));
    assert!(html.contains(&format!(r#"data-room-id="{room}""#)));
    for hook in [
        r#"data-testid="connection-state" data-state="connecting""#,
        r#"data-testid="messages""#,
        r#"data-testid="online""#,
        r#"data-testid="message-input""#,
        r#"data-testid="send""#,
        r#"<label for="message-input">Message</label>"#,
        r#"<script type="application/json" id="chat-config">"#,
    ] {
        assert!(html.contains(hook), "{hook}");
    }
    let script = capture(
        &html,
        r#"<script src="(/static/chat\.js\?v=[0-9a-f]+)" defer></script>"#,
    );
    assert_eq!(script.len(), 1, "the chat script is an external file");
    let config = capture(
        &html,
        r#"(?s)<script type="application/json" id="chat-config">(.*?)</script>"#,
    );
    let config: serde_json::Value = serde_json::from_str(&config[0]).unwrap();
    assert_eq!(config["room_id"], room.as_str());
    assert_eq!(config["ticket_url"], format!("/api/rooms/{room}/ticket"));
    assert_eq!(config["me"], "visitor@example.org");
    assert_eq!(config["texts"]["chat_state_open"], "Connected");
    assert_eq!(config["csrf_token"].as_str().unwrap().len(), 64);
}

/// The chat service's `error` codes and close codes, from its contract (chat/README.md).
fn chat_contract_codes() -> (Vec<String>, Vec<String>) {
    let readme = include_str!("../../../chat/README.md");
    let (_, events) = readme
        .split_once("Error codes:")
        .expect("chat/README.md lists the error codes");
    let (errors, closes) = events
        .split_once("### Close codes")
        .expect("chat/README.md lists the close codes");
    let closes = closes.split("\n## ").next().unwrap_or_default();
    let mut error_codes = capture(errors, r"(?m)^\| `([a-z_]+)` \|");
    error_codes.retain(|code| code != "code"); // the table's header
    (error_codes, capture(closes, r"(?m)^\| (\d{4}) \|"))
}

#[tokio::test]
async fn the_chat_page_words_every_chat_error_and_close_code_in_its_language() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("ru@example.org").await;
    let room = me.created_room("Комната").await;
    let (error_codes, close_codes) = chat_contract_codes();
    assert!(
        error_codes.len() >= 7 && close_codes.len() >= 7,
        "{error_codes:?} {close_codes:?}"
    );

    let html = me.get_html_in(&format!("/rooms/{room}"), "ru").await;
    let config = capture(
        &html,
        r#"(?s)<script type="application/json" id="chat-config">(.*?)</script>"#,
    );
    let config: serde_json::Value = serde_json::from_str(&config[0]).unwrap();
    let script_url = capture(&html, r#"<script src="(/static/chat\.js\?v=[0-9a-f]+)""#);
    let script = me.get(&script_url[0]).await.text().await.unwrap();

    assert_eq!(
        config["lang"], "ru",
        "times are shown in the page's language"
    );
    let texts = &config["texts"];
    for code in &error_codes {
        let text = texts[format!("chat_error_{code}")].as_str();
        assert!(
            text.is_some_and(|t| t.chars().any(|c| matches!(c, 'а'..='я'))),
            "no Russian text for the error code {code}: {text:?}"
        );
    }
    let close_keys = capture(&script, r#"(?m)^\s*(\d{4}): "chat_close_[a-z0-9_]+","#);
    for code in &close_codes {
        assert!(
            close_keys.contains(code),
            "chat.js has no text for close code {code}"
        );
        let key = capture(&script, &format!(r#"{code}: "(chat_close_[a-z0-9_]+)""#));
        assert!(
            texts[&key[0]].as_str().is_some_and(|t| !t.is_empty()),
            "{key:?} is not in the texts"
        );
    }
    assert_eq!(
        texts["error_user_not_found"], "Вашего аккаунта больше не существует.",
        "the script explains a ticket refused for a deleted account"
    );
}

/// Reads one HTTP request from `listener` (head only: the notice has no body) and answers 202.
async fn take_one_request(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    tcp.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn deleting_a_room_tells_the_chat_with_a_notice_the_chat_accepts_for_that_room() {
    let chat = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let chat_url = format!("http://{}", chat.local_addr().unwrap());
    let app = TestApp::spawn_with(|config| {
        // The first address refuses: the next one is tried.
        config.chat_notice_urls = vec!["http://127.0.0.1:9".into(), chat_url];
        config.chat_notice_timeout = std::time::Duration::from_secs(5);
    })
    .await;
    let me = app.signed_up_browser("notice@example.org").await;
    let room = me.created_room("told").await;
    let received = tokio::spawn(take_one_request(chat));

    assert_eq!(me.delete_room(&room).await.status(), StatusCode::SEE_OTHER);

    let head = received.await.unwrap();
    let request_line = head.lines().next().unwrap();
    assert_eq!(
        request_line,
        format!("POST /internal/rooms/{room}/deleted HTTP/1.1")
    );
    let notice = head
        .lines()
        .find_map(|line| line.strip_prefix("authorization: Bearer "))
        .unwrap_or_else(|| panic!("no bearer notice in {head:?}"));
    // What the chat runs on it (contract::NoticeVerifier), with the shared secret.
    let verifier = contract::NoticeVerifier::new(&app.config.jwt_secret);
    assert_eq!(verifier.verify(notice, &room).unwrap().room_id, room);
}

#[tokio::test]
async fn a_chat_that_never_answers_does_not_hold_up_a_deletion_beyond_the_notice_timeout() {
    // Accepts connections and never answers: a hung chat.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let timeout = std::time::Duration::from_millis(300);
    let app = TestApp::spawn_with(|config| {
        config.chat_notice_urls = vec![hung_url];
        config.chat_notice_timeout = timeout;
    })
    .await;
    let me = app.signed_up_browser("hung@example.org").await;
    let room = me.created_room("deleted anyway").await;

    let started = std::time::Instant::now();
    let response = me.delete_room(&room).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(me.my_rooms().await.is_empty(), "the room is gone");
    // Generous against a slow machine; without the bound the request would hang until the
    // request timeout (8 s) answers 503.
    assert!(started.elapsed() < timeout + std::time::Duration::from_secs(3));
    drop(hung);
}
