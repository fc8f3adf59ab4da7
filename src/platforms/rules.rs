//! The [`Rules`] trait: what the rest of the relay asks of a platform; and the registry, the one
//! place listing the platforms, which maps a channel's `kind` to its platform.

use std::sync::Arc;
use std::time::Duration;

use maud::Markup;
use serde_json::Value;

use super::{discord, google_chat, http, slack, teams, Fitted, Refused, Sink};
use super::{Built, Channel, ChannelProblem, Platform, Target};
use crate::config::ChannelConfig;

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
    /// A parent message (the `call_started` template) is posted first; every later post replies
    /// to its id, and it is edited with the call's outcome after the summary (Slack apps).
    Parent,
    /// The call's first post names a new thread (the `thread_name` template, cut to
    /// `max_name_chars`); later posts go into it by the id the answer gives (Discord forums).
    Named {
        /// The longest name the platform takes.
        max_name_chars: usize,
    },
    /// Every post names the call's thread by a key (the call's id): the platform starts the
    /// thread with the first and keeps it, so nothing is stored (Google Chat).
    Keyed,
    /// None: the platform cannot thread (its channels refuse `threads = "per_call"` at load).
    Unthreaded,
}

/// A platform, as everything outside its folder sees it.
pub trait Rules: Send + Sync {
    /// Its `kind` in `relay.toml`, which is also its template folder.
    fn kind(&self) -> &'static str;
    /// Reads and checks a channel's keys (all but `kind`).
    fn build(&self, keys: &serde_json::Map<String, Value>) -> Result<Built, ChannelProblem>;
    /// How text is escaped and counted in templates. Default: nothing beyond JSON's escaping.
    fn text(&self) -> TextRules {
        TextRules { escape: str::to_owned, escaped_len: |_| 1, bold: "**" }
    }
    /// Template kinds beyond one per event type (`thread_name`, `transcript`).
    /// Default: none.
    fn extra_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    /// Makes a rendered body safe and within the platform's limits (the channel's defaults filled
    /// in), possibly as several posts.
    fn fit(&self, channel: &Channel, body: Value) -> Result<Fitted, Refused>;
    /// Merges `next` into `into` when the result stays within the limits. Default: never (one
    /// post per event).
    fn merge(&self, _into: &mut Value, _next: &Value) -> bool {
        false
    }
    /// How threads work, when they do. Default: they do not.
    fn threads(&self) -> ThreadStyle {
        ThreadStyle::Unthreaded
    }
    /// Whether a live transcript's body is small enough to keep editing (beyond what `fit`
    /// checks). Default: a platform that cannot edit has no live transcript.
    fn transcript_fits(&self, _body: &Value) -> bool {
        false
    }
    /// Why a rendered body would let user text through unescaped, if it would. Default: never
    /// (the platform's `fit` makes every body safe).
    fn unsafe_text(&self, _body: &Value) -> Option<String> {
        None
    }
    /// The posting budget a channel gets unless it sets `rate_limit`.
    fn default_rate_limit(&self) -> Vec<(u32, Duration)>;
    /// A sink posting to a target the platform built (see [`Rules::build`]).
    fn sink(&self, target: &Target, client: reqwest::Client) -> Arc<dyn Sink>;
    /// One post to `channel` as the platform would show it, for the console.
    fn preview(&self, channel: &Channel, body: &Value) -> Markup;
    /// The stylesheet of [`Rules::preview`]'s markup.
    fn preview_css(&self) -> &'static str;
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

/// The registry: every platform the relay posts to. A new platform is a folder beside these
/// and one line here.
const PLATFORMS: &[&dyn Rules] =
    &[&slack::Slack, &discord::Discord, &teams::Teams, &google_chat::GoogleChat, &http::Http];

/// The platform of a channel.
pub fn rules(platform: Platform) -> &'static dyn Rules {
    PLATFORMS.iter().copied().find(|p| p.kind() == platform.0).expect("a Platform is only made for a registered kind")
}

/// The platform registered as `kind`.
pub fn platform(kind: &str) -> Option<Platform> {
    PLATFORMS.iter().find(|p| p.kind() == kind).map(|p| Platform(p.kind()))
}

/// Every platform, in the registry's order.
pub fn all() -> impl Iterator<Item = &'static dyn Rules> {
    PLATFORMS.iter().copied()
}

/// A channel's platform and its platform's part, by its `kind`.
pub fn build(cfg: &ChannelConfig) -> Result<(Platform, Built), ChannelProblem> {
    let Some(platform) = platform(&cfg.kind) else {
        let known: Vec<&str> = PLATFORMS.iter().map(|p| p.kind()).collect();
        return Err(ChannelProblem {
            key: Some("kind".into()),
            message: format!("unknown kind `{}` (known: {})", cfg.kind, known.join(", ")),
        });
    };
    Ok((platform, rules(platform).build(&cfg.keys)?))
}
