//! Google Chat through a space's incoming webhook: `text` plus `cardsV2` (`fit.rs`), posting
//! (into a call's thread by key) and reading the answers (`webhook.rs`), the channel's keys
//! (`channel.rs`) and the console's look-alike (`preview.rs`). A webhook cannot edit its
//! messages, so a Google Chat channel has no live transcript; threads need no stored id.

pub mod channel;
pub mod fit;
pub mod preview;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

use crate::config::WebhookUrl;
use crate::platforms::{Built, Channel, ChannelProblem, Fitted, Refused, Rules, Sink, Target, TextRules, ThreadStyle};

/// Google Chat, as the rest of the relay sees it.
pub struct GoogleChat;

/// Google Chat's `kind`.
pub const PLATFORM: &str = "google_chat";
/// Google Chat, as channels name their platform.
pub const GOOGLE_CHAT: crate::platforms::Platform = crate::platforms::Platform(PLATFORM);

impl Rules for GoogleChat {
    fn kind(&self) -> &'static str {
        PLATFORM
    }

    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem> {
        channel::build(keys)
    }

    fn text(&self) -> TextRules {
        TextRules { escape: fit::escape, escaped_len: fit::escaped_len, bold: "*" }
    }

    fn fit(&self, _: &Channel, body: Value) -> Result<Fitted, Refused> {
        fit::fit(body)
    }

    fn threads(&self) -> ThreadStyle {
        ThreadStyle::Keyed
    }

    fn unsafe_text(&self, body: &Value) -> Option<String> {
        fit::mention(body).map(|m| format!("user text reached Google Chat unescaped (`{m}`); use {{{{value}}}}"))
    }

    fn default_rate_limit(&self) -> Vec<(u32, Duration)> {
        webhook::DEFAULT_RATE_LIMIT.to_vec()
    }

    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink> {
        let url = target.get::<WebhookUrl>().expect("a Google Chat channel's target is its webhook URL");
        Arc::new(webhook::WebhookSink::new(url.clone(), client))
    }

    fn preview(&self, _: &Channel, body: &Value) -> Markup {
        preview::google_chat(body)
    }

    fn preview_css(&self) -> &'static str {
        include_str!("preview.css")
    }

    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
}

/// The shipped Google Chat templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("google_chat/message.json.hbs", include_str!("../../../templates/google_chat/message.json.hbs")),
    ("google_chat/call_ended.json.hbs", include_str!("../../../templates/google_chat/call_ended.json.hbs")),
    ("google_chat/test.json.hbs", include_str!("../../../templates/google_chat/test.json.hbs")),
    ("google_chat/call_started.json.hbs", include_str!("../../../templates/google_chat/call_started.json.hbs")),
    ("google_chat/call_timed_out.json.hbs", include_str!("../../../templates/google_chat/call_timed_out.json.hbs")),
];
