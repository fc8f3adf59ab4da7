//! A Google Chat incoming webhook on the wire: posting (into a call's thread by key) and reading
//! the answers.
//!
//! References: <https://developers.google.com/workspace/chat/quickstart/webhooks> (threads by
//! `threadKey` with `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`),
//! <https://developers.google.com/workspace/chat/limits> (one write a second and 60 a minute per
//! space, shared by everything posting to it; 429 `RESOURCE_EXHAUSTED` beyond).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::config::WebhookUrl;
use crate::platforms::{transport_error, Answer, Outcome, Place, Posted, Sink};

/// Posting budget: one message a second and 60 a minute per space.
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 2] = [(1, Duration::from_secs(1)), (60, Duration::from_secs(60))];

/// Posts to one space's webhook.
pub struct WebhookSink {
    url: WebhookUrl,
    client: reqwest::Client,
}

impl WebhookSink {
    /// A sink for `url` (with its `key` and `token`).
    pub fn new(url: WebhookUrl, client: reqwest::Client) -> Self {
        Self { url, client }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn post(&self, body: &str, place: &Place) -> Posted {
        let mut url = self.url.expose().clone();
        let body = match place {
            Place::Channel => body.to_owned(),
            // A call's thread is named by its key: the first message with the key starts it.
            Place::Thread(key) => {
                url.query_pairs_mut().append_pair("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
                match serde_json::from_str::<Value>(body) {
                    Ok(Value::Object(mut m)) => {
                        m.insert("thread".into(), json!({"threadKey": key}));
                        Value::Object(m).to_string()
                    }
                    _ => body.to_owned(),
                }
            }
            Place::NewThread(_) | Place::Edit { .. } => {
                let reason = "a Google Chat webhook's message cannot be edited".to_owned();
                return Posted::failed(Outcome::Permanent { reason, broken: false });
            }
        };
        let request = self.client.post(url).header(CONTENT_TYPE, "application/json; charset=UTF-8");
        let response = request.body(body).send().await;
        match Answer::read(response.map_err(transport_error)).await {
            Ok(answer) => {
                let name = answer.json().and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_owned));
                Posted { outcome: classify(&answer), pause: None, answer: answer.summary(), id: name, thread: None }
            }
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}

/// Reads Google Chat's answer: 200 with the message is delivered; 429 (`RESOURCE_EXHAUSTED`)
/// waits as `Retry-After` says (else the lane's default); 5xx is retried; 401, 403
/// (`PERMISSION_DENIED`: the webhook was removed) and 404 (`NOT_FOUND`: the space is gone) break
/// the channel; any other 4xx (`INVALID_ARGUMENT`) is refused for good.
pub fn classify(answer: &Answer) -> Outcome {
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        401 | 403 | 404 => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}
