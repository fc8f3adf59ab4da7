//! Slack: incoming webhooks (`webhook.rs`) and a Slack app posting with the Web API (`app.rs`),
//! sharing Block Kit's rules (`fit.rs`) and the console's look-alike (`preview.rs`).

pub mod app;
pub mod channel;
pub mod fit;
pub mod preview;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

pub use channel::SlackTarget;
pub use fit::{escape, escaped_len, merge};

use crate::platforms::{
    Built, Channel, ChannelProblem, Fitted, FlatWebhook, Refused, Rules, Sink, Target, TextRules, ThreadStyle,
};

/// Slack, as the rest of the relay sees it.
pub struct Slack;

/// Mention and link syntax in the built-in samples' hostile text: found in a rendered body, it
/// reached Slack unescaped (a template used `{{{value}}}`).
const HOSTILE_TOKENS: [&str; 4] = ["<@U123>", "<!subteam^S123>", "<#C123>", "<https://evil.example|click>"];

/// Slack's `kind`.
pub const PLATFORM: &str = "slack";
/// Slack, as channels name their platform.
pub const SLACK: crate::platforms::Platform = crate::platforms::Platform(PLATFORM);

impl Rules for Slack {
    fn kind(&self) -> &'static str {
        PLATFORM
    }

    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem> {
        channel::build(keys)
    }

    fn text(&self) -> TextRules {
        TextRules { escape, escaped_len, bold: "*" }
    }

    fn extra_kinds(&self) -> &'static [&'static str] {
        &["transcript"]
    }

    fn fit(&self, _: &Channel, body: Value) -> Result<Fitted, Refused> {
        fit::fit(body)
    }

    fn merge(&self, into: &mut Value, next: &Value) -> bool {
        merge(into, next)
    }

    fn threads(&self) -> ThreadStyle {
        ThreadStyle::Parent
    }

    /// The transcript's text stays within what `chat.update` shows whole.
    fn transcript_fits(&self, body: &Value) -> bool {
        let blocks = body.get("blocks").cloned().unwrap_or(Value::Null);
        crate::text::strings(&blocks).iter().map(|s| crate::text::chars(s)).sum::<usize>() <= app::TRANSCRIPT_CHARS
    }

    fn unsafe_text(&self, body: &Value) -> Option<String> {
        let strings = crate::text::strings(body);
        HOSTILE_TOKENS
            .iter()
            .find(|t| strings.iter().any(|s| s.contains(*t)))
            .map(|t| format!("user text reached Slack unescaped (`{t}`); use {{{{value}}}}, not {{{{{{value}}}}}}"))
    }

    fn default_rate_limit(&self) -> Vec<(u32, Duration)> {
        webhook::DEFAULT_RATE_LIMIT.to_vec()
    }

    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink> {
        match target.get::<SlackTarget>().expect("a Slack channel's target is a SlackTarget") {
            SlackTarget::Webhook(url) => {
                Arc::new(FlatWebhook::new(url.clone(), client, webhook::classify, "a Slack incoming webhook"))
            }
            SlackTarget::App { api_url, token, channel } => {
                Arc::new(app::AppSink::new(api_url, token.clone(), channel.clone(), client))
            }
        }
    }

    fn preview(&self, _: &Channel, body: &Value) -> Markup {
        preview::slack(body)
    }

    fn preview_css(&self) -> &'static str {
        include_str!("preview.css")
    }

    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    /// Slack's `reply_broadcast`: the reply also shows in the channel.
    fn also_in_channel(&self, body: &str) -> String {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(mut m)) => {
                m.insert("reply_broadcast".into(), Value::Bool(true));
                Value::Object(m).to_string()
            }
            _ => body.to_owned(),
        }
    }

    /// `chat.update` is Tier 3 per workspace and app: every channel posting with one token
    /// shares its budget.
    fn shared_edit_budget(&self, target: &Target) -> Option<(String, Vec<(u32, Duration)>)> {
        match target.get::<SlackTarget>()? {
            SlackTarget::App { token, .. } => Some((token.expose().to_owned(), app::EDIT_RATE_LIMIT.to_vec())),
            SlackTarget::Webhook(_) => None,
        }
    }
}

/// The shipped Slack templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("slack/message.json.hbs", include_str!("../../../templates/slack/message.json.hbs")),
    ("slack/call_ended.json.hbs", include_str!("../../../templates/slack/call_ended.json.hbs")),
    ("slack/test.json.hbs", include_str!("../../../templates/slack/test.json.hbs")),
    ("slack/call_started.json.hbs", include_str!("../../../templates/slack/call_started.json.hbs")),
    ("slack/call_timed_out.json.hbs", include_str!("../../../templates/slack/call_timed_out.json.hbs")),
    ("slack/transcript.json.hbs", include_str!("../../../templates/slack/transcript.json.hbs")),
];
