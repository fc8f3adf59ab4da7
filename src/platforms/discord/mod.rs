//! Discord webhooks: message rules (`fit.rs`), posting, threads, edits and Discord's answers
//! (`webhook.rs`), and the console's look-alike (`preview.rs`).

pub mod channel;
pub mod fit;
pub mod preview;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

pub use fit::{check_username, embed_chars, merge, MAX_THREAD_NAME_CHARS};

use crate::config::WebhookUrl;
use crate::platforms::{Built, Channel, ChannelProblem, Fitted, Refused, Rules, Sink, Target, TextRules, ThreadStyle};

/// Discord, as the rest of the relay sees it.
pub struct Discord;

/// Discord's `kind`.
pub const PLATFORM: &str = "discord";
/// Discord, as channels name their platform.
pub const DISCORD: crate::platforms::Platform = crate::platforms::Platform(PLATFORM);

impl Rules for Discord {
    fn kind(&self) -> &'static str {
        PLATFORM
    }

    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem> {
        channel::build(keys)
    }

    fn text(&self) -> TextRules {
        TextRules { escape: str::to_owned, escaped_len: |_| 1, bold: "**" }
    }

    fn extra_kinds(&self) -> &'static [&'static str] {
        &["thread_name", "transcript"]
    }

    fn fit(&self, channel: &Channel, mut body: Value) -> Result<Fitted, Refused> {
        fit::apply_defaults(&mut body, channel.username.as_deref(), channel.avatar_url.as_deref());
        fit::fit(body)
    }

    fn merge(&self, into: &mut Value, next: &Value) -> bool {
        merge(into, next)
    }

    fn threads(&self) -> ThreadStyle {
        ThreadStyle::Named { max_name_chars: MAX_THREAD_NAME_CHARS }
    }

    fn transcript_fits(&self, _: &Value) -> bool {
        true
    }

    /// `fit` gives every body `allowed_mentions` with `parse: []` or refuses it.
    fn unsafe_text(&self, _: &Value) -> Option<String> {
        None
    }

    fn default_rate_limit(&self) -> Vec<(u32, Duration)> {
        webhook::DEFAULT_RATE_LIMIT.to_vec()
    }

    /// Discord channels post to webhooks only (see `channel::build`).
    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink> {
        let url = target.get::<WebhookUrl>().expect("a Discord channel's target is its webhook URL");
        Arc::new(webhook::WebhookSink::new(url.clone(), client))
    }

    fn preview(&self, _: &Channel, body: &Value) -> Markup {
        preview::discord(body)
    }

    fn preview_css(&self) -> &'static str {
        include_str!("preview.css")
    }

    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
}

/// The shipped Discord templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("discord/message.json.hbs", include_str!("../../../templates/discord/message.json.hbs")),
    ("discord/call_ended.json.hbs", include_str!("../../../templates/discord/call_ended.json.hbs")),
    ("discord/test.json.hbs", include_str!("../../../templates/discord/test.json.hbs")),
    ("discord/call_started.json.hbs", include_str!("../../../templates/discord/call_started.json.hbs")),
    ("discord/call_timed_out.json.hbs", include_str!("../../../templates/discord/call_timed_out.json.hbs")),
    ("discord/thread_name.json.hbs", include_str!("../../../templates/discord/thread_name.json.hbs")),
    ("discord/transcript.json.hbs", include_str!("../../../templates/discord/transcript.json.hbs")),
];

#[cfg(test)]
mod tests;
