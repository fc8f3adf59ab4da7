//! Slack incoming webhooks on the wire: posting, and reading Slack's plain-text answers.
//!
//! Reference: <https://api.slack.com/messaging/webhooks>.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;

use crate::config::WebhookUrl;
use crate::platforms::{transport_error, Answer, Outcome, Place, Posted, Sink};

/// Posting budget: about one message per second per webhook.
/// <https://api.slack.com/apis/rate-limits#incoming-webhooks>
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(1, Duration::from_secs(1))];

/// Posts to one incoming webhook. Its posts are never edited nor threaded: Slack does not say
/// where they went.
pub struct WebhookSink {
    url: WebhookUrl,
    client: reqwest::Client,
}

impl WebhookSink {
    /// A sink for `url`.
    pub fn new(url: WebhookUrl, client: reqwest::Client) -> Self {
        Self { url, client }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn post(&self, body: &str, place: &Place) -> Posted {
        if !matches!(place, Place::Channel) {
            let reason = "a Slack incoming webhook's post cannot be edited or threaded".to_owned();
            return Posted::failed(Outcome::Permanent { reason, broken: false });
        }
        let response = self
            .client
            .post(self.url.expose().clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await;
        match Answer::read(response.map_err(transport_error)).await {
            Ok(answer) => {
                Posted { outcome: classify(&answer), pause: None, answer: answer.summary(), id: None, thread: None }
            }
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}

/// Reads Slack's answer. Success is 200 with body `ok`; errors are plain strings such as
/// `invalid_payload` or `channel_not_found`. A webhook that is gone (404/410: `no_service`,
/// `channel_not_found`, `channel_is_archived`; 401/403 `invalid_token`) marks the channel broken.
/// <https://api.slack.com/messaging/webhooks#handling_errors>
pub fn classify(answer: &Answer) -> Outcome {
    let body = answer.body.trim();
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        404 | 410 => Outcome::Permanent { reason, broken: true },
        _ if BROKEN_ANSWERS.contains(&body) => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}

/// Slack error strings meaning the webhook itself no longer works.
const BROKEN_ANSWERS: [&str; 5] =
    ["no_service", "channel_not_found", "channel_is_archived", "invalid_token", "no_team"];
