//! An HTTP endpoint on the wire: each request signed per Standard Webhooks (`webhook-id` the same
//! on every attempt of a post), the user's headers, and the answers read as a careful sender
//! would: 2xx delivered; 429, 500, 502, 503, 504 and timeouts retried (with `Retry-After`); 410
//! means the endpoint is gone; redirects are not followed.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;

use super::sign;
use crate::config::{decode_signing_secret, Secret, WebhookUrl};
use crate::platforms::{transport_error, Answer, Outcome, Place, Posted, Sink};

/// Posting budget unless the channel sets one: generous, as the endpoint is the user's.
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(50, Duration::from_secs(1))];

/// Posts signed requests to one endpoint.
pub struct EndpointSink {
    url: WebhookUrl,
    keys: Vec<Vec<u8>>,
    headers: Vec<(String, Secret)>,
    client: reqwest::Client,
}

impl EndpointSink {
    /// A sink for `url`, signing with `secrets` (checked at load) and sending `headers`.
    pub fn new(url: WebhookUrl, secrets: Vec<Secret>, headers: Vec<(String, Secret)>, client: reqwest::Client) -> Self {
        let keys = secrets.iter().filter_map(|s| decode_signing_secret(s.expose()).ok()).collect();
        Self { url, keys, headers, client }
    }
}

#[async_trait]
impl Sink for EndpointSink {
    /// A post no lane names (`send-test`, the console): an id of its own.
    async fn post(&self, body: &str, place: &Place) -> Posted {
        let key = format!("{body}/{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
        self.post_as(body, place, &key).await
    }

    async fn post_as(&self, body: &str, place: &Place, key: &str) -> Posted {
        if !matches!(place, Place::Channel) {
            let reason = "an HTTP endpoint's request cannot be edited or threaded".to_owned();
            return Posted::failed(Outcome::Permanent { reason, broken: false });
        }
        let signed = sign::sign(&sign::message_id(key), chrono::Utc::now().timestamp(), body, &self.keys);
        let mut request = self
            .client
            .post(self.url.expose().clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string());
        if !signed.signature.is_empty() {
            request = request.header("webhook-signature", &signed.signature);
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.expose());
        }
        match Answer::read(request.body(body.to_owned()).send().await.map_err(transport_error)).await {
            Ok(answer) => {
                Posted { outcome: classify(&answer), pause: None, answer: answer.summary(), id: None, thread: None }
            }
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}

/// Reads the endpoint's answer (see the module's summary).
pub fn classify(answer: &Answer) -> Outcome {
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        300..=399 => Outcome::Permanent {
            reason: format!("{reason} (a redirect is not followed: set `url` to where it points)"),
            broken: false,
        },
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500 | 502 | 503 | 504 => Outcome::Retry { after: answer.retry_after_header(), reason },
        410 => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}
