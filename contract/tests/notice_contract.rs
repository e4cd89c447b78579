//! The room-deleted notice as both services use it: the website signs with
//! [`NoticeIssuer::issue`], the chat checks with [`NoticeVerifier::verify`] against the room in
//! the request's path. Every way a notice is refused is pinned in one table.

// A failed unwrap in a test or its helpers is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use contract::notice::{NOTICE_AUDIENCE, notice_path, room_in_notice_path};
use contract::ticket::ISSUER;
use contract::{NoticeError, NoticeIssuer, NoticeVerifier, Secret, TicketError, TicketIssuer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "the shared secret of the two services, 32+ bytes";
const ROOM_ID: &str = "65f1c0ffee0123456789abcd";
const OTHER_ROOM_ID: &str = "65f1c0ffee0123456789abce";

fn secret(value: &str) -> Secret {
    Secret::new(value.to_owned()).unwrap()
}

fn verifier() -> NoticeVerifier {
    NoticeVerifier::new(&secret(SECRET))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn valid_claims() -> Value {
    json!({
        "room_id": ROOM_ID,
        "iat": now(),
        "exp": now() + 60,
        "iss": ISSUER,
        "aud": NOTICE_AUDIENCE,
    })
}

fn signed(claims: &Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn with(change: impl Fn(&mut Value)) -> String {
    let mut claims = valid_claims();
    change(&mut claims);
    signed(&claims, SECRET)
}

#[test]
fn a_notice_the_website_signs_is_accepted_for_its_room() {
    let notice = NoticeIssuer::new(&secret(SECRET)).issue(ROOM_ID).unwrap();
    let claims = verifier()
        .verify(&notice, ROOM_ID)
        .expect("the chat accepts it");
    assert_eq!(claims.room_id, ROOM_ID);
    assert_eq!(claims.aud, "chat.room_deleted");
    assert!(claims.exp - claims.iat <= 60);
}

/// One refused notice: what is wrong with it, the notice, and the error it must give.
type RefusedCase = (&'static str, String, fn(&NoticeError) -> bool);

#[test]
fn every_forged_stale_or_misdirected_notice_is_refused() {
    let chat_ticket = TicketIssuer::new(&secret(SECRET))
        .issue("ann@example.org", "Rust", ROOM_ID)
        .unwrap();
    let cases: Vec<RefusedCase> = vec![
        (
            "signed with another secret",
            signed(&valid_claims(), "another secret of at least 32 bytes!"),
            |e| matches!(e, NoticeError::Token(TicketError::BadSignature)),
        ),
        (
            "expired",
            with(|c| {
                c["iat"] = json!(now() - 120);
                c["exp"] = json!(now() - 60);
            }),
            |e| matches!(e, NoticeError::Token(TicketError::Expired)),
        ),
        (
            "for another room",
            NoticeIssuer::new(&secret(SECRET))
                .issue(OTHER_ROOM_ID)
                .unwrap(),
            |e| matches!(e, NoticeError::OtherRoom),
        ),
        ("a chat ticket (audience chat)", chat_ticket, |e| {
            matches!(
                e,
                NoticeError::Token(TicketError::WrongParty | TicketError::Malformed(_))
            )
        }),
        ("wrong audience", with(|c| c["aud"] = json!("chat")), |e| {
            matches!(e, NoticeError::Token(TicketError::WrongParty))
        }),
        ("wrong issuer", with(|c| c["iss"] = json!("someone")), |e| {
            matches!(e, NoticeError::Token(TicketError::WrongParty))
        }),
        (
            "living too long",
            with(|c| c["exp"] = json!(now() + 3600)),
            |e| matches!(e, NoticeError::Token(TicketError::LifetimeTooLong)),
        ),
        (
            "issued in the future",
            with(|c| {
                c["iat"] = json!(now() + 600);
                c["exp"] = json!(now() + 630);
            }),
            |e| matches!(e, NoticeError::Token(TicketError::IssuedInTheFuture)),
        ),
        (
            "not valid yet (nbf in the future)",
            with(|c| c["nbf"] = json!(now() + 60)),
            |e| matches!(e, NoticeError::Token(TicketError::NotYetValid)),
        ),
        (
            "without a room",
            with(|c| {
                c.as_object_mut().unwrap().remove("room_id");
            }),
            |e| matches!(e, NoticeError::Token(TicketError::Malformed(_))),
        ),
        (
            "unsigned (alg none)",
            {
                let body = signed(&valid_claims(), SECRET);
                let payload = body.split('.').nth(1).unwrap().to_owned();
                format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
            },
            |e| matches!(e, NoticeError::Token(_)),
        ),
    ];
    for (case, token, expected) in cases {
        let refusal = verifier()
            .verify(&token, ROOM_ID)
            .expect_err(&format!("{case}: must be refused"));
        assert!(
            expected(&refusal),
            "{case}: refused for the wrong reason: {refusal:?}"
        );
    }
}

#[test]
fn a_notice_is_not_a_chat_ticket() {
    let notice = NoticeIssuer::new(&secret(SECRET)).issue(ROOM_ID).unwrap();
    let refused = contract::TicketVerifier::new(&secret(SECRET)).verify(&notice);
    assert!(refused.is_err(), "a notice must never open a chat socket");
}

#[test]
fn the_notice_path_names_one_well_formed_room() {
    assert_eq!(
        notice_path(ROOM_ID),
        format!("/internal/rooms/{ROOM_ID}/deleted")
    );
    assert_eq!(room_in_notice_path(&notice_path(ROOM_ID)), Some(ROOM_ID));
    for path in [
        "/internal/rooms/not-an-id/deleted",
        "/internal/rooms//deleted",
        "/internal/rooms/65f1c0ffee0123456789abcd",
        "/ws",
        "/internal/rooms/65f1c0ffee0123456789abcd/deleted/more",
    ] {
        assert_eq!(room_in_notice_path(path), None, "{path}");
    }
}
