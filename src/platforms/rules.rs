//! The [`Rules`] trait: what the rest of the relay asks of a platform; the registry, [`rules`]
//! and [`build`], that maps a channel's `kind` to its platform (the one place listing them).

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

use super::{discord, slack, Fitted, Refused, Sink};
use crate::config::{Channel, ChannelConfig, Platform, Target, TemplateOverrides, Threads, WebhookUrl};

/// How a platform writes text into a template's output: the escaping applied before JSON's, how
/// many characters one character becomes once escaped (for cutting within limits), and its bold
/// marker (for transcript lines).
#[derive(Clone, Copy)]
pub struct TextRules {
    /// Escapes text for the platform's markup (Slack: `&`, `<`, `>`); JSON escaping follows.
    pub escape: fn(&str) -> String,
    /// What one character counts once escaped.
    pub escaped_len: fn(char) -> usize,
    /// Bold markup around a speaker's name.
    pub bold: &'static str,
}

/// How a platform keeps a call's posts together with `threads = "per_call"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadStyle {
    /// A parent message (the `thread_parent` template) is posted first; every later post replies
    /// to its id, and it is edited with the call's outcome after the summary (Slack apps).
    Parent,
    /// The call's first post names a new thread (the `thread_name` template, cut to
    /// `max_name_chars`); later posts go into it by the id the answer gives (Discord forums).
    Named {
        /// The longest name the platform takes.
        max_name_chars: usize,
    },
}

/// A platform, as everything outside its folder sees it.
pub trait Rules: Send + Sync {
    /// How text is escaped and counted in templates.
    fn text(&self) -> TextRules;
    /// Template kinds beyond one per event type (`thread_parent`, `thread_name`, `transcript`).
    fn extra_kinds(&self) -> &'static [&'static str];
    /// Makes a rendered body safe and within the platform's limits (the channel's defaults filled
    /// in), possibly as several posts.
    fn fit(&self, channel: &Channel, body: Value) -> Result<Fitted, Refused>;
    /// Merges `next` into `into` when the result stays within the limits.
    fn merge(&self, into: &mut Value, next: &Value) -> bool;
    /// How threads work, when they do.
    fn threads(&self) -> ThreadStyle;
    /// Whether a live transcript's body is small enough to keep editing (beyond what `fit` checks).
    fn transcript_fits(&self, body: &Value) -> bool;
    /// Why a rendered body would let user text through unescaped, if it would.
    fn unsafe_text(&self, body: &Value) -> Option<String>;
    /// The posting budget a channel gets unless it sets `rate_limit`.
    fn default_rate_limit(&self) -> Vec<(u32, Duration)>;
    /// The URL to post to for a webhook URL as the user wrote it, or why it is not one.
    fn webhook_url(&self, url: WebhookUrl) -> Result<WebhookUrl, String>;
    /// A sink posting to a webhook URL (as [`Rules::webhook_url`] made it).
    fn sink(&self, url: WebhookUrl, client: reqwest::Client) -> Arc<dyn Sink>;
    /// One post as the platform would show it, for the console.
    fn preview(&self, body: &Value) -> Markup;
    /// The shipped templates, as (path under `templates/`, text): built into the binary as
    /// fallbacks for files missing from the templates directory.
    fn builtin_templates(&self) -> &'static [(&'static str, &'static str)];
    /// A post into a thread, made to show in the channel too (`broadcast_summary`); as it is
    /// where the platform has no such thing.
    fn also_in_channel(&self, body: &str) -> String {
        body.to_owned()
    }
    /// A budget for edits shared across channels (by a key such as the credential they post
    /// with), when the platform counts edits that way.
    fn shared_edit_budget(&self, _target: &Target) -> Option<(String, Vec<(u32, Duration)>)> {
        None
    }
}

/// Every platform, in the registry's order.
pub fn all() -> impl Iterator<Item = &'static dyn Rules> {
    [Platform::Slack, Platform::Discord].into_iter().map(rules)
}

/// The platform of a channel's `kind`.
pub fn rules(platform: Platform) -> &'static dyn Rules {
    match platform {
        Platform::Slack => &slack::Slack,
        Platform::Discord => &discord::Discord,
    }
}

/// What a platform makes of a channel's keys; [`crate::setup`] adds what every channel has.
#[derive(Debug)]
pub struct Built {
    /// The platform.
    pub platform: Platform,
    /// Where to post; `None` when a secret names an unset environment variable.
    pub target: Option<Target>,
    /// The author's name, where the platform has one.
    pub username: Option<String>,
    /// The author's avatar, where the platform has one.
    pub avatar_url: Option<String>,
    /// `threads`.
    pub threads: Threads,
    /// `broadcast_summary`, where the platform has it.
    pub broadcast_summary: bool,
    /// `live_transcript`.
    pub live_transcript: bool,
    /// `coalesce`, if set.
    pub coalesce: Option<bool>,
    /// `rate_limit`, if set.
    pub rate_limit: Option<Vec<String>>,
    /// `[channels.NAME.templates]`.
    pub templates: TemplateOverrides,
}

/// A channel's platform part, by its `kind`.
pub fn build(cfg: &ChannelConfig) -> Result<Built, String> {
    match cfg {
        ChannelConfig::Slack(c) => slack::channel::build(c),
        ChannelConfig::Discord(c) => discord::channel::build(c),
    }
}
