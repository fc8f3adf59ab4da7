//! A signed HTTP endpoint of the user's (a CRM, n8n, Zapier, Make): each event as JSON
//! (`templates/http/`), signed per Standard Webhooks (`sign.rs`), posted and read
//! (`webhook.rs`); the channel's keys (`channel.rs`); and the console's preview of the exact
//! request (`preview.rs`).

pub mod channel;
pub mod preview;
pub mod sign;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

use crate::platforms::{Built, Channel, ChannelProblem, Fitted, Refused, Rules, Sink, Target};

/// A signed HTTP endpoint, as the rest of the relay sees it.
pub struct Http;

/// The endpoint's `kind`.
pub const PLATFORM: &str = "http";

impl Rules for Http {
    fn kind(&self) -> &'static str {
        PLATFORM
    }

    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem> {
        channel::build(keys)
    }

    /// Any JSON the template writes is posted as it is: the receiver is a program.
    fn fit(&self, _: &Channel, body: Value) -> Result<Fitted, Refused> {
        Ok(Fitted { posts: vec![body], notes: Vec::new() })
    }

    fn default_rate_limit(&self) -> Vec<(u32, Duration)> {
        webhook::DEFAULT_RATE_LIMIT.to_vec()
    }

    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink> {
        let e = target.get::<channel::Endpoint>().expect("an HTTP channel's target is its endpoint");
        Arc::new(webhook::EndpointSink::new(e.url.clone(), e.signing_keys.clone(), e.headers.clone(), client))
    }

    fn preview(&self, channel: &Channel, body: &Value) -> Markup {
        let endpoint = channel.target.as_ref().ok().and_then(|t| t.get::<channel::Endpoint>());
        preview::request(endpoint, body)
    }

    fn preview_css(&self) -> &'static str {
        include_str!("preview.css")
    }

    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
}

/// The shipped HTTP templates: the same envelope for every event type.
const TEMPLATES: &[(&str, &str)] = &[
    ("http/message.json.hbs", include_str!("../../../templates/http/message.json.hbs")),
    ("http/call_ended.json.hbs", include_str!("../../../templates/http/call_ended.json.hbs")),
    ("http/test.json.hbs", include_str!("../../../templates/http/test.json.hbs")),
    ("http/call_started.json.hbs", include_str!("../../../templates/http/call_started.json.hbs")),
    ("http/call_timed_out.json.hbs", include_str!("../../../templates/http/call_timed_out.json.hbs")),
];
