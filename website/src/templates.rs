//! Server-rendered pages: the embedded minijinja templates, the static assets they link to, and the
//! [`View`](crate::templates::View) extractor that renders a page in the visitor's language.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::Html;
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::auth::session::CurrentUser;
use crate::error::AppError;
use crate::i18n::{I18n, Lang};

/// Every template, embedded so the binary is the whole deployment. Names end in `.html`, which
/// turns on minijinja's HTML auto-escaping.
const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("../templates/base.html")),
    (
        "auth_form.html",
        include_str!("../templates/auth_form.html"),
    ),
    (
        "search_form.html",
        include_str!("../templates/search_form.html"),
    ),
    ("home.html", include_str!("../templates/home.html")),
    ("register.html", include_str!("../templates/register.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("search.html", include_str!("../templates/search.html")),
    ("chat.html", include_str!("../templates/chat.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The site's icon, an asset like the others; `/favicon.ico` answers it too, for browsers and
/// tools that ask there without reading the page.
pub const FAVICON: &str = "favicon.svg";

/// A file under `/static/`, linked with a content hash so it can be cached for a year.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    pub version: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static str) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        Self {
            name,
            content_type,
            body,
            version: format!("{:016x}", hasher.finish()),
        }
    }

    pub fn url(&self) -> String {
        format!("/static/{}?v={}", self.name, self.version)
    }
}

#[derive(Clone)]
pub struct Pages {
    env: Arc<Environment<'static>>,
    i18n: I18n,
    texts: Arc<[(Lang, Value)]>,
    assets: Arc<[Asset]>,
}

impl Pages {
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // A typo in a template variable or catalogue key fails the render (and the tests)
        // instead of printing nothing.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let i18n = I18n::load()?;
        let texts = Lang::ALL
            .into_iter()
            .map(|lang| (lang, Value::from_serialize(&**i18n.catalogue(lang))))
            .collect();
        let assets = [
            Asset::new(
                "app.css",
                "text/css; charset=utf-8",
                include_str!("../static/app.css"),
            ),
            Asset::new(
                "chat.js",
                "text/javascript; charset=utf-8",
                include_str!("../static/chat.js"),
            ),
            Asset::new(
                "confirm.js",
                "text/javascript; charset=utf-8",
                include_str!("../static/confirm.js"),
            ),
            Asset::new(
                FAVICON,
                "image/svg+xml",
                include_str!("../static/favicon.svg"),
            ),
        ];
        Ok(Self {
            env: Arc::new(env),
            i18n,
            texts,
            assets: Arc::new(assets),
        })
    }

    pub fn i18n(&self) -> &I18n {
        &self.i18n
    }

    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|asset| asset.name == name)
    }

    fn asset_url(&self, name: &str) -> String {
        self.asset(name).map(Asset::url).unwrap_or_default()
    }

    pub fn render_page(
        &self,
        lang: Lang,
        user: Option<&CurrentUser>,
        current_path: &str,
        name: &str,
        page_context: Value,
    ) -> Result<Html<String>, AppError> {
        let t = self
            .texts
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let user =
            user.map(|u| context! { email => u.email.as_str(), csrf => u.csrf_token.as_str() });
        let ctx = context! {
            ..page_context,
            ..context! {
                t,
                lang => lang.code(),
                lang_links => lang_links(current_path),
                user,
                current_path,
                // Our own URLs: marked safe so they are not entity-encoded (`&#x2f;`).
                css_url => Value::from_safe_string(self.asset_url("app.css")),
                chat_js_url => Value::from_safe_string(self.asset_url("chat.js")),
                confirm_js_url => Value::from_safe_string(self.asset_url("confirm.js")),
                favicon_url => Value::from_safe_string(self.asset_url(FAVICON)),
            }
        };
        let html = self.env.get_template(name)?.render(ctx)?;
        Ok(Html(html))
    }
}

fn lang_links(current_path: &str) -> Vec<Value> {
    Lang::ALL
        .iter()
        .map(|lang| {
            let href = format!(
                "/lang/{}?next={}",
                lang.code(),
                percent_encode(current_path)
            );
            // Built here from a code and a percent-encoded path: nothing left to escape.
            context! { code => lang.code(), href => Value::from_safe_string(href) }
        })
        .collect()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Messages of website errors that the chat script shows when the ticket endpoint answers them.
const CHAT_SCRIPT_ERRORS: [&str; 1] = ["error_user_not_found"];

pub struct View {
    pages: Pages,
    lang: Lang,
    path: String,
}

impl View {
    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn text(&self, key: &str) -> String {
        self.pages.i18n().text(self.lang, key).to_owned()
    }

    /// The chat page's script strings: every `chat_*` message and the errors of the ticket
    /// endpoint it explains itself, handed over as JSON data.
    pub fn chat_texts(&self) -> std::collections::BTreeMap<String, String> {
        self.pages
            .i18n()
            .catalogue(self.lang)
            .iter()
            .filter(|(key, _)| {
                key.starts_with("chat_") || CHAT_SCRIPT_ERRORS.contains(&key.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn render(
        &self,
        user: Option<&CurrentUser>,
        name: &str,
        page_context: Value,
    ) -> Result<Html<String>, AppError> {
        self.pages
            .render_page(self.lang, user, &self.path, name, page_context)
    }
}

impl<S> FromRequestParts<S> for View
where
    S: Send + Sync,
    Pages: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            pages: Pages::from_ref(state),
            lang: Lang::from_headers(&parts.headers),
            path: return_path(&parts.method, &parts.uri),
        })
    }
}

/// Where the language switch sends the visitor back to: the page itself, query included (a search
/// keeps its results). A page rendered for a POST goes back to the form's own page where one
/// exists (GET /login, GET /register), else home, since a POST cannot be repeated by a link.
pub fn return_path(method: &Method, uri: &Uri) -> String {
    if method == Method::GET {
        uri.path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
    } else {
        match uri.path() {
            p @ ("/login" | "/register") => p.to_owned(),
            _ => "/".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_links_carry_the_current_path_percent_encoded() {
        assert_eq!(
            percent_encode("/search?q=Привет мир&x=1"),
            "%2Fsearch%3Fq%3D%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%20%D0%BC%D0%B8%D1%80%26x%3D1"
        );
        assert_eq!(percent_encode("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn every_template_renders_for_both_languages() {
        let pages = Pages::load().unwrap();
        for lang in Lang::ALL {
            for name in [
                "home.html",
                "login.html",
                "register.html",
                "search.html",
                "error.html",
            ] {
                let _html = pages
                    .render_page(
                        lang,
                        None,
                        "/",
                        name,
                        context! { status => 404, heading => "h", message => "m" },
                    )
                    .unwrap_or_else(|e| panic!("{name} ({lang:?}): {e:#}"));
            }
        }
    }

    #[test]
    fn deleting_a_room_asks_first_in_the_pages_language_and_the_form_still_posts() {
        let pages = Pages::load().unwrap();
        let room = context! { id => "665f1c2ab3d4e5f601234567", title => r#"Tea & "talk""# };
        let page = context! {
            rooms => vec![room],
            title => "",
            user => context! { email => "anna@example.com", csrf => "token" },
        };
        for (lang, question) in [
            (Lang::En, "Delete the room “Tea &amp; &quot;talk&quot;”?"),
            (Lang::Ru, "Удалить комнату «Tea &amp; &quot;talk&quot;»?"),
        ] {
            let html = pages
                .render_page(lang, None, "/", "home.html", page.clone())
                .unwrap()
                .0;
            assert!(
                html.contains(r#"action="/rooms/665f1c2ab3d4e5f601234567/delete""#),
                "{html}"
            );
            assert!(html.contains(r#"data-confirm=""#), "{html}");
            assert!(html.contains(question), "{lang:?}: {html}");
            let script = format!(r#"<script src="{}" defer>"#, pages.asset_url("confirm.js"));
            assert!(html.contains(&script), "{html}");
        }
    }

    /// Markup that breaks out of text, of a quoted attribute and of a script's JSON if it is not
    /// escaped.
    const HOSTILE: &str = r#""'></script><x-hostile onclick=alert(1)>&amp;"#;

    /// What a page may be given, every leaf hostile: the pages' own variables and, overriding
    /// the shared one, the user. (The language links are built from the language codes and the
    /// percent-encoded path, which is hostile below.)
    fn hostile_context() -> Value {
        let room = context! { id => HOSTILE, title => HOSTILE, owner_email => HOSTILE };
        context! {
            action => HOSTILE, email => HOSTILE, error => HOSTILE, heading => HOSTILE,
            message => HOSTILE, next => HOSTILE, next_query => HOSTILE, other_href => HOSTILE,
            other_link => HOSTILE,
            other_prompt => HOSTILE, q => HOSTILE, status => HOSTILE, submit => HOSTILE,
            testid => HOSTILE, title => HOSTILE,
            rooms => vec![room.clone()],
            results => vec![room.clone()],
            room,
            chat_config => context! { room_id => HOSTILE, texts => context! { chat_x => HOSTILE } },
            user => context! { email => HOSTILE, csrf => HOSTILE },
        }
    }

    #[test]
    fn hostile_data_in_every_variable_comes_out_escaped() {
        let pages = Pages::load().unwrap();
        let given = hostile_context();
        let shared = [
            "t",
            "lang",
            "lang_links",
            "user",
            "current_path",
            "css_url",
            "chat_js_url",
            "confirm_js_url",
            "favicon_url",
        ];
        for (name, _) in TEMPLATES {
            let template = pages.env.get_template(name).unwrap();
            // Every variable a template reads is covered: a new one must be added above.
            for variable in template.undeclared_variables(false) {
                assert!(
                    shared.contains(&variable.as_str())
                        || given.get_attr(&variable).is_ok_and(|v| !v.is_undefined()),
                    "{name} reads {variable}, which this test does not fill"
                );
            }
            for lang in Lang::ALL {
                let html = pages
                    .render_page(lang, None, HOSTILE, name, given.clone())
                    .unwrap_or_else(|e| panic!("{name} ({lang:?}): {e:#}"));
                assert!(
                    !html.0.contains("<x-hostile") && !html.0.contains("</script><"),
                    "{name} ({lang:?}) let markup through"
                );
            }
        }
        // The hostile values did reach the output, escaped (or the test proves nothing).
        let html = pages
            .render_page(Lang::En, None, "/", "home.html", given)
            .unwrap();
        assert!(html.0.contains("&lt;x-hostile"), "{}", html.0);
    }
}
