//! Microsoft Teams through a Workflows webhook ("post to a channel when a webhook request is
//! received"): Adaptive Cards (`fit.rs`), posting and reading the answers (`webhook.rs`), the
//! channel's keys (`channel.rs`) and the console's look-alike (`preview.rs`). Such a webhook
//! can neither edit its posts nor reply in a thread, so a Teams channel has neither.

pub mod channel;
pub mod fit;
pub mod preview;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

use crate::config::WebhookUrl;
use crate::platforms::{Built, Channel, ChannelProblem, Fitted, FlatWebhook, Refused, Rules, Sink, Target};

/// Microsoft Teams, as the rest of the relay sees it.
pub struct Teams;

/// Teams' `kind`.
pub const PLATFORM: &str = "teams";

impl Rules for Teams {
    fn kind(&self) -> &'static str {
        PLATFORM
    }

    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem> {
        channel::build(keys)
    }

    fn fit(&self, _: &Channel, body: Value) -> Result<Fitted, Refused> {
        fit::fit(body)
    }

    fn unsafe_text(&self, body: &Value) -> Option<String> {
        fit::has_entities(body).then(|| "a mention entity (`msteams.entities`) would make text ping people".into())
    }

    fn default_rate_limit(&self) -> Vec<(u32, Duration)> {
        webhook::DEFAULT_RATE_LIMIT.to_vec()
    }

    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink> {
        let url = target.get::<WebhookUrl>().expect("a Teams channel's target is its webhook URL");
        Arc::new(FlatWebhook::new(url.clone(), client, webhook::classify, "a Teams Workflows webhook"))
    }

    fn preview(&self, _: &Channel, body: &Value) -> Markup {
        preview::teams(body)
    }

    fn preview_css(&self) -> &'static str {
        include_str!("preview.css")
    }

    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
}

/// The shipped Teams templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("teams/message.json.hbs", include_str!("../../../templates/teams/message.json.hbs")),
    ("teams/call_ended.json.hbs", include_str!("../../../templates/teams/call_ended.json.hbs")),
    ("teams/test.json.hbs", include_str!("../../../templates/teams/test.json.hbs")),
    ("teams/call_started.json.hbs", include_str!("../../../templates/teams/call_started.json.hbs")),
    ("teams/call_timed_out.json.hbs", include_str!("../../../templates/teams/call_timed_out.json.hbs")),
];
