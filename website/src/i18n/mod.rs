//! Russian and English: one catalogue per language (`website/i18n/*.json`) and the visitor's
//! language, from the `lang` cookie or else the browser's `Accept-Language`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use serde::Serialize;
use tower_sessions::cookie::Cookie;

/// The cookie that remembers an explicit choice; a plain cookie, because anonymous visitors
/// get no session.
pub const LANG_COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The cookie wins; then the best-weighted supported language of `Accept-Language`; then
    /// English.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        cookie_value(headers, LANG_COOKIE)
            .and_then(|code| Self::from_code(&code))
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Self::negotiate)
            })
            .unwrap_or(Lang::En)
    }

    /// Picks from an `Accept-Language` value such as `ru-RU,ru;q=0.9,en;q=0.8`.
    fn negotiate(accept_language: &str) -> Option<Self> {
        let mut best: Option<(Lang, f32)> = None;
        for item in accept_language.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_code(primary)
                && quality > 0.0
                && best.is_none_or(|(_, q)| quality > q)
            {
                best = Some((lang, quality));
            }
        }
        best.map(|(lang, _)| lang)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value_trimmed().to_owned())
}

pub type Catalogue = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct I18n {
    en: Arc<Catalogue>,
    ru: Arc<Catalogue>,
}

const EN_JSON: &str = include_str!("../../i18n/en.json");
const RU_JSON: &str = include_str!("../../i18n/ru.json");

impl I18n {
    pub fn load() -> Result<Self, serde_json::Error> {
        Ok(Self {
            en: Arc::new(serde_json::from_str(EN_JSON)?),
            ru: Arc::new(serde_json::from_str(RU_JSON)?),
        })
    }

    pub fn catalogue(&self, lang: Lang) -> &Arc<Catalogue> {
        match lang {
            Lang::En => &self.en,
            Lang::Ru => &self.ru,
        }
    }

    /// A message by key; a missing key shows the key itself rather than failing a request
    /// (the catalogue test keeps that from happening).
    pub fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.catalogue(lang)
            .get(key)
            .map(String::as_str)
            .unwrap_or(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys_and_no_empty_text() {
        let i18n = I18n::load().expect("catalogues are valid JSON objects of strings");
        let en: Vec<_> = i18n.en.keys().collect();
        let ru: Vec<_> = i18n.ru.keys().collect();
        assert_eq!(en, ru, "en.json and ru.json must have the same keys");
        for (lang, catalogue) in [("en", &i18n.en), ("ru", &i18n.ru)] {
            for (key, text) in catalogue.iter() {
                assert!(!text.trim().is_empty(), "{lang}.json: {key} is empty");
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let cases = [
            ("ru-RU,ru;q=0.9,en-US;q=0.8", Some(Lang::Ru)),
            ("en-GB,en;q=0.9,ru;q=0.8", Some(Lang::En)),
            ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", Some(Lang::Ru)),
            ("fr;q=1, en;q=0", None),
            ("", None),
            ("RU", Some(Lang::Ru)),
        ];
        for (header, expected) in cases {
            assert_eq!(Lang::negotiate(header), expected, "{header:?}");
        }
    }

    #[test]
    fn the_cookie_overrides_the_browser_language() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("ru"));
        assert_eq!(Lang::from_headers(&headers), Lang::Ru);
        headers.insert(COOKIE, HeaderValue::from_static("id=abc; lang=en"));
        assert_eq!(Lang::from_headers(&headers), Lang::En);
        headers.insert(COOKIE, HeaderValue::from_static("lang=xx"));
        assert_eq!(
            Lang::from_headers(&headers),
            Lang::Ru,
            "unknown cookie ignored"
        );
    }
}
