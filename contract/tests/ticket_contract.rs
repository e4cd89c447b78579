//! The ticket as both services use it: the website issues, the chat service verifies.
//!
//! Each side reads `JWT_SECRET` through its own configuration, which calls [`Env::jwt_secret`];
//! the website signs with [`TicketIssuer::issue`] and the chat service's handshake calls
//! [`TicketVerifier::verify`]. These tests drive exactly those calls, then pin every way a
//! ticket is refused in one table.

// A failed unwrap in a test or its helpers is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use contract::ticket::{AUDIENCE, ISSUER, LIFETIME};
use contract::{Claims, Env, Secret, TicketError, TicketIssuer, TicketVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "the shared secret of the two services, 32+ bytes";
const ROOM_ID: &str = "65f1c0ffee0123456789abcd";

fn secret_from_env(value: &str) -> Secret {
    let value = value.to_owned();
    Env::new(move |name| (name == "JWT_SECRET").then(|| value.clone()))
        .jwt_secret()
        .expect("a valid JWT_SECRET")
}

fn verifier() -> TicketVerifier {
    TicketVerifier::new(&secret_from_env(SECRET))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn valid_claims() -> Value {
    serde_json::to_value(Claims::new("ann@example.org", "Rust", ROOM_ID)).unwrap()
}

fn sign(header: Header, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(Header::new(Algorithm::HS256), claims, SECRET)
}

fn with(change: impl Fn(&mut Value)) -> String {
    let mut claims = valid_claims();
    change(&mut claims);
    hs256(&claims)
}

fn without(claim: &str) -> String {
    let mut claims = valid_claims();
    claims.as_object_mut().unwrap().remove(claim);
    hs256(&claims)
}

#[test]
fn a_ticket_the_website_issues_opens_the_chat() {
    let issuer = TicketIssuer::new(&secret_from_env(SECRET));

    let token = issuer
        .issue("ann@example.org", "Планирование", ROOM_ID)
        .unwrap();
    let claims = verifier().verify(&token).expect("the chat accepts it");

    assert_eq!(claims.email, "ann@example.org");
    assert_eq!(claims.room, "Планирование");
    assert_eq!(claims.room_id, ROOM_ID);
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        (ISSUER, AUDIENCE)
    );
    assert_eq!((ISSUER, AUDIENCE), ("website", "chat"));
    assert_eq!(claims.exp - claims.iat, LIFETIME.as_secs());
    assert_eq!(LIFETIME.as_secs(), 60);
    assert!(claims.iat.abs_diff(now()) <= 5);
}

#[test]
fn the_wire_form_is_an_hs256_jwt_with_exactly_the_contracts_claims() {
    let token = TicketIssuer::new(&secret_from_env(SECRET))
        .issue("ann@example.org", "Rust", ROOM_ID)
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);

    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();

    assert_eq!(header["alg"], "HS256");
    let mut names: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["aud", "email", "exp", "iat", "iss", "room", "room_id"]
    );
    assert!(payload["iat"].is_u64() && payload["exp"].is_u64());
}

#[test]
fn a_ticket_expired_within_the_leeway_still_opens_the_chat() {
    let token = with(|c| {
        c["iat"] = json!(now() - 62);
        c["exp"] = json!(now() - 2);
    });
    assert!(verifier().verify(&token).is_ok());
}

#[test]
fn a_ticket_whose_nbf_has_passed_or_is_within_the_leeway_opens_the_chat() {
    for nbf in [now() - 10, now() + 2] {
        let token = with(|c| c["nbf"] = json!(nbf));
        assert!(verifier().verify(&token).is_ok(), "nbf {nbf} was refused");
    }
}

#[test]
fn every_refusal_of_the_contract() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(valid_claims().to_string())
    );
    let now = now();
    // (what is wrong, the ticket, the refusal it must get)
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "signed with another secret",
            sign(
                Header::new(Algorithm::HS256),
                &valid_claims(),
                "another secret, also 32 bytes long",
            ),
            "BadSignature",
        ),
        ("unsigned (alg none)", unsigned, "Malformed"),
        (
            "signed with HS512",
            sign(Header::new(Algorithm::HS512), &valid_claims(), SECRET),
            "WrongAlgorithm",
        ),
        (
            "expired",
            with(|c| {
                c["iat"] = json!(now - 120);
                c["exp"] = json!(now - 60);
            }),
            "Expired",
        ),
        (
            "for another audience",
            with(|c| c["aud"] = json!("website")),
            "WrongParty",
        ),
        (
            "from another issuer",
            with(|c| c["iss"] = json!("someone")),
            "WrongParty",
        ),
        (
            "living over 60 s",
            with(|c| c["exp"] = json!(now + 3600)),
            "LifetimeTooLong",
        ),
        (
            "issued in the future",
            with(|c| {
                c["iat"] = json!(now + 30);
                c["exp"] = json!(now + 60);
            }),
            "IssuedInTheFuture",
        ),
        (
            "not valid before a minute from now (nbf)",
            with(|c| c["nbf"] = json!(now + 60)),
            "NotYetValid",
        ),
        (
            "with nbf as a string",
            with(|c| c["nbf"] = json!("soon")),
            "Malformed",
        ),
        (
            "with iat as a string",
            with(|c| c["iat"] = json!(now.to_string())),
            "Malformed",
        ),
        (
            "with email as a number",
            with(|c| c["email"] = json!(42)),
            "Malformed",
        ),
        (
            "with aud as a list",
            with(|c| c["aud"] = json!(["chat"])),
            "Malformed",
        ),
        (
            "with a room_id that is not hex",
            with(|c| c["room_id"] = json!("not-an-object-id-at-all!")),
            "BadRoomId",
        ),
        (
            "with a short room_id",
            with(|c| c["room_id"] = json!("65f1c0ffee")),
            "BadRoomId",
        ),
        (
            "with an empty email",
            with(|c| c["email"] = json!("")),
            "EmptyEmail",
        ),
        ("without email", without("email"), "Malformed"),
        ("without room", without("room"), "Malformed"),
        ("without room_id", without("room_id"), "Malformed"),
        ("without iat", without("iat"), "Malformed"),
        ("without exp", without("exp"), "Malformed"),
        ("without iss", without("iss"), "Malformed"),
        ("without aud", without("aud"), "Malformed"),
        (
            "that is not a JWT at all",
            "not.a.jwt".to_owned(),
            "Malformed",
        ),
    ];
    let verifier = verifier();
    for (what, token, expected) in cases {
        let refusal: TicketError = match verifier.verify(&token) {
            Ok(claims) => panic!("a ticket {what} was accepted: {claims:?}"),
            Err(refusal) => refusal,
        };
        let got = format!("{refusal:?}");
        assert!(
            got.starts_with(expected),
            "a ticket {what} was refused as {got}, expected {expected}"
        );
    }
}
