//! Sinks post a rendered body to one platform and say what happened. One module per platform
//! holds all that platform's knowledge (URL rules, limits, escaping, answers). Sinks never loop or
//! sleep; whoever drives them decides about retries.

pub mod discord;
pub mod slack;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

use crate::config::{Channel, Platform, WebhookUrl};

/// What became of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The platform accepted it.
    Delivered,
    /// Worth trying again (5xx, 429, timeout, connection error), after `after` if the platform said.
    Retry {
        /// How long the platform asked to wait.
        after: Option<Duration>,
        /// Status and body, or the transport error, for logs.
        reason: String,
    },
    /// The platform refused it for good (4xx other than 429).
    Permanent {
        /// Status and body, for logs and dead letters.
        reason: String,
    },
}

/// A platform's answer, as the classifiers read it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body (cut to 1,000 characters).
    pub body: String,
}

impl Answer {
    /// The `Retry-After` header in seconds (integer or decimal), if present.
    pub fn retry_after_header(&self) -> Option<Duration> {
        let v = self
            .headers
            .get(RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
    }
}

/// A body that fits the platform's limits, possibly as several posts, plus notes about what was
/// cut or split (logged as warnings).
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Bodies to post, in order.
    pub posts: Vec<Value>,
    /// What enforcement changed.
    pub notes: Vec<String>,
}

/// Posts one body to one destination.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Posts `body` (a JSON document) once and classifies the answer.
    async fn post(&self, body: &str) -> Outcome;
}

/// A sink posting over HTTP with a shared client.
pub struct HttpSink {
    platform: Platform,
    url: WebhookUrl,
    client: reqwest::Client,
}

impl HttpSink {
    /// A sink for `url` on `platform`.
    pub fn new(platform: Platform, url: WebhookUrl, client: reqwest::Client) -> Self {
        Self {
            platform,
            url,
            client,
        }
    }
}

#[async_trait]
impl Sink for HttpSink {
    async fn post(&self, body: &str) -> Outcome {
        let sent = self
            .client
            .post(self.url.expose().clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // `without_url`: reqwest errors carry the URL, which holds the webhook's token.
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    reason: transport_error(e),
                }
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.text().await {
            Ok(b) => crate::text::truncate(&b, 1000),
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    reason: transport_error(e),
                }
            }
        };
        let answer = Answer {
            status,
            headers,
            body,
        };
        match self.platform {
            Platform::Slack => slack::classify(&answer),
            Platform::Discord => discord::classify(&answer),
        }
    }
}

fn transport_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// The HTTP client every sink shares: rustls, a per-request timeout, no redirects (a redirected
/// webhook post would lose its body), and a recognisable user agent.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callrelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A sink for a channel, or `None` when the channel is disabled.
pub fn for_channel(channel: &Channel, client: &reqwest::Client) -> Option<Arc<dyn Sink>> {
    let url = channel.target.as_ref().ok()?;
    Some(Arc::new(HttpSink::new(
        channel.platform,
        url.clone(),
        client.clone(),
    )))
}
