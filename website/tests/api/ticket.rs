//! `POST /api/rooms/{room_id}/ticket`: the JWT contract with the chat service.

use contract::Claims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{JWT_SECRET, TestApp, retry_after_secs};

async fn json_error(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_valid_ticket_carries_every_claim_of_the_contract() {
    let app = TestApp::spawn().await;
    let owner = app.signed_up_browser("Owner@Example.org").await;
    let me = app.signed_up_browser("me@example.org").await;
    let room = owner.created_room("Планирование <и> \"кавычки\"").await;

    let response = me.ticket_for(&room).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["ws_path"], "/ws");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["website"]);
    validation.set_audience(&["chat"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = 0;
    let token = body["token"].as_str().unwrap();
    let decoded = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("a valid HS256 ticket for the chat audience");
    assert_eq!(decoded.header.alg, Algorithm::HS256);
    let claims = decoded.claims;
    let now = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .unsigned_abs();
    assert_eq!(claims.email, "me@example.org");
    assert_eq!(claims.room, "Планирование <и> \"кавычки\"");
    assert_eq!(claims.room_id, room);
    assert_eq!(claims.iss, "website");
    assert_eq!(claims.aud, "chat");
    assert!(
        claims.iat.abs_diff(now) <= 5,
        "iat {} is now ({now})",
        claims.iat
    );
    assert_eq!(claims.exp, claims.iat + 60);
    // Exactly the contract's claims, nothing more.
    let payload: Value =
        serde_json::from_slice(&base64_url_decode(token.split('.').nth(1).unwrap())).unwrap();
    let mut keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["aud", "email", "exp", "iat", "iss", "room", "room_id"]
    );
}

/// Enough base64url for a JWT payload, without another dependency.
fn base64_url_decode(input: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in input.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[tokio::test]
async fn anonymous_visitors_get_401_json() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .post(app.url("/api/rooms/0123456789abcdef01234567/ticket"))
        .send()
        .await
        .unwrap();

    let (status, body) = json_error(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    assert!(body["message"].as_str().unwrap().contains("log in"));
}

#[tokio::test]
async fn unknown_invalid_and_deleted_rooms_get_404_json() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("me@example.org").await;
    let deleted = me.created_room("short-lived").await;
    assert_eq!(
        me.delete_room(&deleted).await.status(),
        StatusCode::SEE_OTHER
    );

    for room in [
        "0123456789abcdef01234567",
        "not-an-object-id",
        deleted.as_str(),
    ] {
        let (status, body) = json_error(me.ticket_for(room).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{room}");
        assert_eq!(body["error"], "room_not_found", "{room}");
    }
}

#[tokio::test]
async fn a_user_who_no_longer_exists_gets_404() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("ghost@example.org").await;
    let room = me.created_room("haunted").await;
    let user = app
        .db
        .find_user_by_email(&website::domain::Email::parse("ghost@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let token = me.csrf_token().await;
    assert!(app.db.delete_user(user.id).await.unwrap());

    let response = me
        .client
        .post(me.url(&format!("/api/rooms/{room}/ticket")))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();

    let (status, body) = json_error(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "user_not_found");
    // The session of the deleted account is over as well.
    assert_eq!(me.get("/search").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_ticket_request_without_the_csrf_header_or_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("me@example.org").await;
    let room = me.created_room("guarded").await;
    let token = me.csrf_token().await;
    let url = me.url(&format!("/api/rooms/{room}/ticket"));

    let no_header = me.client.post(&url).send().await.unwrap();
    let wrong_header = me
        .client
        .post(&url)
        .header("X-CSRF-Token", "nope")
        .send()
        .await
        .unwrap();
    let foreign = me
        .client
        .post(&url)
        .header("X-CSRF-Token", &token)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();

    for (response, why) in [
        (no_header, "no header"),
        (wrong_header, "wrong token"),
        (foreign, "foreign Origin"),
    ] {
        let (status, body) = json_error(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}");
        assert_eq!(body["error"], "csrf", "{why}");
    }
}

#[tokio::test]
async fn a_person_asking_for_tickets_in_a_loop_is_slowed_down_and_others_are_not() {
    let app = TestApp::spawn().await;
    let me = app.signed_up_browser("me@example.org").await;
    let other = app.signed_up_browser("other@example.org").await;
    let room = me.created_room("busy room").await;

    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = me.ticket_for(&room).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after_secs(&response) > 0);
            let (_, body) = json_error(response).await;
            assert_eq!(body["error"], "too_many_tickets");
            break;
        }
    }

    // The page's own pace (a page open, a few reconnects) is far inside the burst.
    assert!(
        statuses[..10].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(other.ticket_for(&room).await.status(), StatusCode::OK);
}

/// How many tickets in a row `browser` gets for `room` from `replicas`, asked in turn, before the
/// first 429.
async fn tickets_before_refusal(
    browser: &crate::helpers::Browser,
    replicas: &[&TestApp],
    room: &str,
) -> usize {
    for asked in 0..100 {
        let response = browser
            .visiting(replicas[asked % replicas.len()])
            .ticket_for(room)
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return asked;
        }
        assert_eq!(response.status(), StatusCode::OK, "ticket {asked}");
    }
    panic!("no 429 in 100 tickets");
}

#[tokio::test]
async fn two_replicas_give_a_person_no_more_tickets_than_one() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    let alone = one.signed_up_browser("alone@example.org").await;
    let spread = one.signed_up_browser("spread@example.org").await;
    let room = alone.created_room("shared budget").await;

    let from_one = tickets_before_refusal(&alone, &[&one], &room).await;
    let from_two = tickets_before_refusal(&spread, &[&one, &two], &room).await;

    assert_eq!(from_one, 20, "the burst");
    assert_eq!(
        from_two, from_one,
        "the budget is the person's, not each replica's"
    );
}
