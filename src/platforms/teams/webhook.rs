//! A Teams Workflows webhook on the wire: posting a card, and reading the answers (202 Accepted on
//! success).
//!
//! References: <https://learn.microsoft.com/en-us/power-automate/teams/teams-app-create#webhook-requests>,
//! <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors>.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;

use crate::config::WebhookUrl;
use crate::platforms::{transport_error, Answer, Outcome, Place, Posted, Sink};

/// Posting budget: Teams' webhooks take about 4 requests a second; beyond, 429.
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(4, Duration::from_secs(1))];

/// Posts to one Workflows webhook; its posts are never edited nor threaded.
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
            let reason = "a Teams Workflows webhook's post cannot be edited or threaded".to_owned();
            return Posted::failed(Outcome::Permanent { reason, broken: false });
        }
        let request = self.client.post(self.url.expose().clone()).header(CONTENT_TYPE, "application/json");
        let response = request.body(body.to_owned()).send().await;
        match Answer::read(response.map_err(transport_error)).await {
            Ok(answer) => {
                Posted { outcome: classify(&answer), pause: None, answer: answer.summary(), id: None, thread: None }
            }
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}

/// Reads a Workflows answer: any 2xx (202 Accepted, as Workflows answer) is delivered; 429 waits
/// as `Retry-After` says; 5xx is retried; 401, 403, 404 and 410 mean the flow or its URL is gone
/// (the channel is broken); any other 4xx is refused for good.
pub fn classify(answer: &Answer) -> Outcome {
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        401 | 403 | 404 | 410 => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}
