//! A sink for webhooks that take one JSON post at a time into their channel and nothing more
//! (Slack's incoming webhooks, Teams' Workflows): no threads, no edits. The platform says how to
//! read its answers.

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;

use super::{transport_error, Answer, Outcome, Place, Posted, Sink};
use crate::config::WebhookUrl;

/// Posts to one such webhook.
pub struct FlatWebhook {
    url: WebhookUrl,
    client: reqwest::Client,
    classify: fn(&Answer) -> Outcome,
    what: &'static str,
}

impl FlatWebhook {
    /// A sink for `url` whose answers `classify` reads; `what` names it in refusals ("a Slack
    /// incoming webhook").
    pub fn new(url: WebhookUrl, client: reqwest::Client, classify: fn(&Answer) -> Outcome, what: &'static str) -> Self {
        Self { url, client, classify, what }
    }
}

#[async_trait]
impl Sink for FlatWebhook {
    async fn post(&self, body: &str, place: &Place) -> Posted {
        if !matches!(place, Place::Channel) {
            let reason = format!("{}'s posts cannot be edited or threaded", self.what);
            return Posted::failed(Outcome::Permanent { reason, broken: false });
        }
        let request = self.client.post(self.url.expose().clone()).header(CONTENT_TYPE, "application/json");
        match Answer::read(request.body(body.to_owned()).send().await.map_err(transport_error)).await {
            Ok(answer) => Posted {
                outcome: (self.classify)(&answer),
                pause: None,
                answer: answer.summary(),
                id: None,
                thread: None,
            },
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}
