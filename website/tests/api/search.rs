//! Room search: length rule, substring and case-insensitive matching in any script, literal input.

use reqwest::StatusCode;

use crate::helpers::{TestApp, capture};

#[tokio::test]
async fn five_characters_are_refused_and_six_are_searched() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    me.created_room("Привет всем").await;

    let short = me.search("Приве").await;

    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let html = short.text().await.unwrap();
    assert!(
        html.contains(
            r#"role="alert" data-testid="search-error">Type at least 6 characters to search.</p>"#
        ),
        "{html}"
    );
    assert!(
        !html.contains(r#"data-testid="search-results""#),
        "no query ran"
    );
    assert_eq!(me.search_titles("Привет").await, ["Привет всем"]);
}

#[tokio::test]
async fn the_search_page_without_a_query_shows_just_the_form() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;

    let html = me.get_html("/search").await;

    assert!(html.contains(r#"data-testid="search-query""#));
    assert!(html.contains(r#"data-testid="search-submit""#));
    assert!(!html.contains("search-error") && !html.contains("no-results"));
}

#[tokio::test]
async fn partial_words_are_found_in_any_letter_case_and_script() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    for title in [
        "Планирование спринта",
        "привет мир",
        "Hello World",
        "Unrelated",
    ] {
        me.created_room(title).await;
    }
    let cases = [
        (
            "ланиро",
            vec!["Планирование спринта"],
            "partial Cyrillic word",
        ),
        ("ПРИВЕТ", vec!["привет мир"], "upper-case Cyrillic query"),
        ("ривет мир", vec!["привет мир"], "across a word boundary"),
        ("hello world", vec!["Hello World"], "Latin, lower case"),
        ("LLO WOR", vec!["Hello World"], "Latin, partial, upper case"),
        ("nothing like it", vec![], "no match"),
    ];
    for (query, expected, why) in cases {
        assert_eq!(me.search_titles(query).await, expected, "{why}");
    }
    let html = me.search("nothing like it").await.text().await.unwrap();
    assert!(html.contains(r#"data-testid="no-results""#));
}

#[tokio::test]
async fn other_users_rooms_are_found_with_their_owner_and_a_chat_link() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("owner@example.org").await;
    let seeker = app.signed_up_browser("seeker@example.org").await;
    let room = owner.created_room("Weekly planning").await;

    let html = seeker.search("planning").await.text().await.unwrap();

    let links = capture(
        &html,
        r#"<li data-testid="search-result">\s*<a href="(/rooms/[0-9a-f]{24})">"#,
    );
    assert_eq!(links, [format!("/rooms/{room}")]);
    assert!(html.contains("owner@example.org"));
}

#[tokio::test]
async fn results_come_newest_first() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    for title in ["standup one", "standup two", "standup three"] {
        me.created_room(title).await;
    }

    let titles = me.search_titles("standup").await;

    assert_eq!(titles, ["standup three", "standup two", "standup one"]);
}

#[tokio::test]
async fn every_result_contains_the_query_as_typed() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    for title in ["A room 24", "a+ grades", "Planning the planners"] {
        me.created_room(title).await;
    }
    // To the text index these are plain words ("a", "plan"); a title holding only the word is
    // not a title containing the query.
    for query in ["(a+)+$", "a+ a+ a+", "planned"] {
        for title in me.search_titles(query).await {
            assert!(
                title.to_lowercase().contains(&query.to_lowercase()),
                "{query:?} found {title:?}"
            );
        }
    }
    assert_eq!(
        me.search_titles("the planner").await,
        ["Planning the planners"]
    );
}

#[tokio::test]
async fn regex_metacharacters_in_the_query_are_literal() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    let special = r".*+?()[]{}|^$\";
    me.created_room(&format!("odd {special} title")).await;
    me.created_room("plain ordinary title").await;
    me.created_room("a.b.c.d.e.f").await;

    let cases = [
        (
            special.to_owned(),
            vec![format!("odd {special} title")],
            "the whole set",
        ),
        (
            ".*+?()".to_owned(),
            vec![format!("odd {special} title")],
            "a prefix of it",
        ),
        (
            "......".to_owned(),
            vec![],
            "dots are dots, not any character",
        ),
        (".*.*.*".to_owned(), vec![], "no wildcard"),
        ("^^^^^^".to_owned(), vec![], "no anchor"),
        ("(a|p)lain".to_owned(), vec![], "no alternation"),
        (
            "a.b.c.d".to_owned(),
            vec!["a.b.c.d.e.f".to_owned()],
            "literal dots match",
        ),
    ];
    for (query, expected, why) in cases {
        assert_eq!(me.search_titles(&query).await, expected, "{why}: {query:?}");
    }
}

#[tokio::test]
async fn an_overlong_query_is_refused_without_searching() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;

    let response = me.search(&"a".repeat(101)).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(r#"data-testid="search-error""#)
    );
}

#[tokio::test]
async fn control_characters_in_the_query_are_refused_without_searching() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("s@example.org").await;
    me.created_room("abcdef ghi").await;

    for query in ["abcdef\0", "abc\ndef"] {
        let response = me.search(query).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query:?}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(concat!(
                r#"data-testid="search-error">"#,
                "A search cannot contain line breaks or other control characters.</p>",
            )),
            "{query:?}: {html}"
        );
        assert!(!html.contains(r#"data-testid="search-results""#));
    }
}
