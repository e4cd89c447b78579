//! Telling the chat service that a room was deleted, so the people inside learn it at once: a
//! notice (`contract::notice`) to the first address of `CHAT_NOTICE_URL` that accepts it. Best
//! effort, bounded by `CHAT_NOTICE_TIMEOUT_MS`: a lost notice costs only speed, as members learn
//! it at their next reconnect, when the ticket request answers 404.

use std::time::Duration;

use contract::notice::notice_path;
use contract::{NoticeIssuer, Secret};

/// Sends the room-deleted notice. Built once; cheap to clone.
#[derive(Clone)]
pub struct ChatNotice {
    issuer: NoticeIssuer,
    http: reqwest::Client,
    chat_urls: Vec<String>,
    timeout: Duration,
}

impl ChatNotice {
    pub fn new(secret: &Secret, chat_urls: Vec<String>, timeout: Duration) -> Self {
        Self {
            issuer: NoticeIssuer::new(secret),
            http: reqwest::Client::builder()
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            chat_urls,
            timeout,
        }
    }

    /// Tells the chat that `room_id` was deleted. Never fails and never takes longer than the
    /// timeout; what went wrong is logged.
    pub async fn room_deleted(&self, room_id: &str) {
        match tokio::time::timeout(self.timeout, self.send(room_id)).await {
            Ok(Ok(url)) => tracing::info!(room_id, chat = url, "the chat was told of the deletion"),
            Ok(Err(failures)) => tracing::warn!(
                room_id,
                %failures,
                "the chat could not be told of the deletion: its members learn it when they \
                 reconnect"
            ),
            Err(_elapsed) => tracing::warn!(
                room_id,
                timeout_ms = self.timeout.as_millis(),
                "the chat did not answer the deletion notice in time: its members learn it when \
                 they reconnect"
            ),
        }
    }

    /// Tries each chat address in turn; the first that accepts is enough.
    async fn send(&self, room_id: &str) -> Result<&str, String> {
        let notice = self
            .issuer
            .issue(room_id)
            .map_err(|error| error.to_string())?;
        let mut failures = Vec::new();
        for url in &self.chat_urls {
            let target = format!("{}{}", url.trim_end_matches('/'), notice_path(room_id));
            match self.http.post(&target).bearer_auth(&notice).send().await {
                Ok(response) if response.status().is_success() => return Ok(url),
                Ok(response) => failures.push(format!("{url}: {}", response.status())),
                Err(error) => failures.push(format!("{url}: {error}")),
            }
        }
        Err(failures.join("; "))
    }
}
