//! `TestApp` and `Browser`: spawn the application, act like a user, read what came back.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use mongodb::options::{ValidationAction, ValidationLevel};
use regex::Regex;
use reqwest::header::{ACCEPT_LANGUAGE, HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use website::config::{Config, Redacted, Secret};
use website::db::Db;
use website::db::schema::Schema;
use website::startup::Application;

pub const JWT_SECRET: &str = "test secret: thirty-two bytes or more, of course";
pub const PASSWORD: &str = "correct horse battery";

pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI").expect("set MONGODB_URI or run scripts/test")
}

/// A configuration for tests: port 0, a fresh database, short timeouts.
pub fn test_config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().expect("a valid address"),
        mongodb_uri: Redacted::new(mongodb_uri()),
        mongodb_db: format!("webchat_test_{}", uuid::Uuid::new_v4().simple()),
        jwt_secret: Secret::new(JWT_SECRET).expect("the test secret is long enough"),
        cookie_secure: false,
        session_idle: Duration::from_secs(3600),
        session_max_age: Duration::from_secs(12 * 3600),
        trust_proxy_headers: false,
        login_max_failures: 5,
        mongodb_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(8),
        // Nothing listens there: a test that wants the chat told points this at its own listener.
        chat_notice_urls: vec!["http://127.0.0.1:9".to_owned()],
        chat_notice_timeout: Duration::from_millis(500),
        mongodb_startup_wait: Duration::from_secs(10),
        metrics_addr: None,
    }
}

/// One running application and a browser-like client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Db,
    pub config: Config,
    /// The default visitor; `app.new_browser()` makes more.
    pub browser: Browser,
    db_name: String,
    /// Whether dropping this app drops its database (not for a replica of another app).
    owns_database: bool,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl std::ops::Deref for TestApp {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        adjust(&mut config);
        create_validated_collections(&client_for(&config).await.database(&config.mongodb_db)).await;
        Self::serve(config, true).await
    }

    /// Another website process on this one's database and settings, on its own port: a second
    /// replica, or the site after a restart. It leaves the database to this app.
    pub async fn replica(&self) -> Self {
        Self::serve(self.config.clone(), false).await
    }

    /// Stops serving, gracefully, as a deploy or restart stops the process.
    pub async fn stop(&mut self) {
        let (stop, server) = self.stop.take().expect("the app is running");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("the app stops within 20 s")
            .expect("the server task ends cleanly");
    }

    async fn serve(config: Config, owns_database: bool) -> Self {
        let app = Application::build(config.clone())
            .await
            .expect("the application builds");
        let addr = app.local_addr();
        let db = app.db();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("the app serves until stopped");
        });
        let db_name = config.mongodb_db.clone();
        Self {
            addr,
            db,
            config,
            browser: Browser::new(addr),
            db_name,
            owns_database,
            stop: Some((stop, server)),
        }
    }

    /// Another visitor with its own cookies.
    pub fn new_browser(&self) -> Browser {
        Browser::new(self.addr)
    }

    /// A new visitor who registered (and so is logged in) as `email`.
    pub async fn signed_up_browser(&self, email: &str) -> Browser {
        let browser = self.new_browser();
        let response = browser.register(email, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "registering {email}"
        );
        browser
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Creates `users` and `rooms` with the validators of `db/schema.json`, as the database's init
/// script does in a deployment, so that against a real MongoDB every write of every test passes
/// the server's own validator. (The stand-in accepts the option and ignores it; there the
/// document checker in `schema.rs` is the check.)
pub async fn create_validated_collections(database: &mongodb::Database) {
    let schema = Schema::embedded().expect("db/schema.json parses");
    for (name, spec) in &schema.collections {
        let validator =
            mongodb::bson::to_document(&spec.validator).expect("a validator is a JSON object");
        database
            .create_collection(name)
            .validator(validator)
            .validation_level(ValidationLevel::Strict)
            .validation_action(ValidationAction::Error)
            .await
            .unwrap_or_else(|e| panic!("creating {name} with its validator: {e}"));
    }
}

/// A client of `config`'s server, for test set-up and inspection.
pub async fn client_for(config: &Config) -> mongodb::Client {
    let mut options = mongodb::options::ClientOptions::parse(config.mongodb_uri.expose())
        .await
        .expect("a valid MONGODB_URI");
    options.server_selection_timeout = Some(Duration::from_secs(5));
    mongodb::Client::with_options(options).expect("a MongoDB client")
}

impl Drop for TestApp {
    /// Drops the test's database. The test's runtime is going away, so this uses its own thread,
    /// runtime and client; failures only leave a stray database behind.
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let uri = self.config.mongodb_uri.expose().to_owned();
        let name = self.db_name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut options) = mongodb::options::ClientOptions::parse(&uri).await {
                    options.server_selection_timeout = Some(Duration::from_secs(2));
                    if let Ok(client) = mongodb::Client::with_options(options) {
                        let _ = client.database(&name).drop().await;
                    }
                }
            });
        })
        .join();
    }
}

/// A client that keeps cookies and does not follow redirects, like a browser whose every step
/// the test looks at.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a reqwest client");
        Self {
            base: format!("http://{addr}"),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The same visitor (the same cookies) talking to another app: a replica behind the same
    /// address, or the same site after a restart.
    pub fn visiting(&self, app: &TestApp) -> Browser {
        Browser {
            base: format!("http://{}", app.addr),
            client: self.client.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("a body")
    }

    /// A GET from a browser set to `accept_language` (an `Accept-Language` header).
    pub async fn get_in(&self, path: &str, accept_language: &str) -> Response {
        self.client
            .get(self.url(path))
            .header(ACCEPT_LANGUAGE, accept_language)
            .send()
            .await
            .expect("GET")
    }

    pub async fn get_html_in(&self, path: &str, accept_language: &str) -> String {
        let response = self.get_in(path, accept_language).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("a body")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_form("/register", &[("email", email), ("password", password)])
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// The CSRF token of the signed-in session, as the pages carry it.
    pub async fn csrf_token(&self) -> String {
        let html = self.get_html("/").await;
        capture(&html, r#"name="csrf_token" value="([0-9a-f]+)""#)
            .into_iter()
            .next()
            .expect("a signed-in page carries the CSRF token")
    }

    pub async fn logout(&self) -> Response {
        let token = self.csrf_token().await;
        self.post_form("/logout", &[("csrf_token", &token)]).await
    }

    pub async fn create_room(&self, title: &str) -> Response {
        let token = self.csrf_token().await;
        self.post_form("/rooms", &[("title", title), ("csrf_token", &token)])
            .await
    }

    /// Creates a room and returns its id.
    pub async fn created_room(&self, title: &str) -> String {
        let response = self.create_room(title).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "creating {title:?}"
        );
        self.my_rooms()
            .await
            .into_iter()
            .find(|(_, t)| t == title.trim())
            .map(|(id, _)| id)
            .expect("the new room is listed")
    }

    pub async fn delete_room(&self, room_id: &str) -> Response {
        let token = self.csrf_token().await;
        self.post_form(
            &format!("/rooms/{room_id}/delete"),
            &[("csrf_token", &token)],
        )
        .await
    }

    /// My rooms as listed on the home page: (id, title), in page order.
    pub async fn my_rooms(&self) -> Vec<(String, String)> {
        let html = self.get_html("/").await;
        let item = Regex::new(concat!(
            r#"(?s)data-testid="room-item" data-room-id="([0-9a-f]{24})">\s*"#,
            r#"<a href="/rooms/[0-9a-f]{24}" data-testid="room-link">([^<]*)</a>"#,
        ))
        .expect("a valid pattern");
        item.captures_iter(&html)
            .map(|c| (c[1].to_owned(), unescape(&c[2])))
            .collect()
    }

    pub async fn search(&self, query: &str) -> Response {
        self.client
            .get(self.url("/search"))
            .query(&[("q", query)])
            .send()
            .await
            .expect("GET /search")
    }

    /// Titles of the search results, in page order.
    pub async fn search_titles(&self, query: &str) -> Vec<String> {
        let response = self.search(query).await;
        assert_eq!(response.status(), StatusCode::OK, "search {query:?}");
        let html = response.text().await.expect("a body");
        let result = Regex::new(
            r#"(?s)<li data-testid="search-result">\s*<a href="/rooms/[0-9a-f]{24}">([^<]*)</a>"#,
        )
        .expect("a valid pattern");
        result
            .captures_iter(&html)
            .map(|c| unescape(&c[1]))
            .collect()
    }

    pub async fn ticket_for(&self, room_id: &str) -> Response {
        let token = self.csrf_token().await;
        self.ticket_with_token(room_id, &token).await
    }

    /// A ticket asked for with a CSRF token read earlier (when reading it now would fail).
    pub async fn ticket_with_token(&self, room_id: &str, token: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/rooms/{room_id}/ticket")))
            .header("X-CSRF-Token", token)
            .send()
            .await
            .expect("POST ticket")
    }
}

/// Whether `response` leaves the session cookie alone: neither sets nor expires it.
pub fn leaves_session_cookie_alone(response: &Response) -> bool {
    session_cookie(response.headers()).is_none()
        && response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|v| !v.to_str().unwrap_or("").contains("Max-Age=0"))
}

/// Every session record stored in `app`'s database.
pub async fn stored_sessions(app: &TestApp) -> Vec<website::db::SessionDoc> {
    use futures_util::TryStreamExt;
    app.db
        .sessions()
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Asks for `path` every 250 ms, at most 60 times, until it answers 200: whether it did. (After
/// an outage the MongoDB driver finds the server again on its own, in its own time.)
pub async fn eventually_ok(browser: &Browser, path: &str) -> bool {
    for _ in 0..60 {
        if browser.get(path).await.status() == StatusCode::OK {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// The first capture group of every match of `pattern` in `text`.
pub fn capture(text: &str, pattern: &str) -> Vec<String> {
    Regex::new(pattern)
        .expect("a valid pattern")
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Undoes minijinja's HTML escaping.
pub fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The seconds a 429 or 503 asks the client to wait (`Retry-After`); fails the test without one.
pub fn retry_after_secs(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .expect("Retry-After is text")
        .parse()
        .expect("Retry-After is a number of seconds")
}

/// The text of the form error box, if any.
pub fn form_error(html: &str) -> Option<String> {
    static ERROR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<p [^>]*data-testid="form-error"[^>]*>([^<]*)</p>"#).expect("a valid pattern")
    });
    ERROR.captures(html).map(|c| unescape(&c[1]))
}

/// The session cookie set by a response (`name=value` and its attributes), under either name.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    use website::startup::{SECURE_SESSION_COOKIE, SESSION_COOKIE};
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| {
            [SESSION_COOKIE, SECURE_SESSION_COOKIE]
                .iter()
                .any(|name| v.starts_with(&format!("{name}=")))
        })
        .map(str::to_owned)
}

/// Requests `/search` of `app` with only the given session cookie: whether it is a live session
/// there (200, not the redirect to `/login`).
pub async fn session_is_live(app: &TestApp, value: &str) -> bool {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/search"))
        .header(
            reqwest::header::COOKIE,
            format!("{}={value}", website::startup::SESSION_COOKIE),
        )
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => false,
        other => panic!("GET /search with a session cookie answered {other}"),
    }
}

/// Just the value of the session cookie in a `Set-Cookie` line.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("name=value")
}

pub fn location(response: &Response) -> &str {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
