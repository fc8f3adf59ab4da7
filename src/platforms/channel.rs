//! A channel as the relay runs it: its platform, where it posts, and the keys every channel has;
//! and what a platform makes of a channel's keys ([`Built`]).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{TemplateOverrides, Threads, WebhookUrl};

/// A channel's platform: its `kind`, as registered in [`super::rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform(pub(super) &'static str);

impl Platform {
    /// The `kind`, as in `relay.toml` and the template folder.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Where a channel posts: what its platform made of the channel's keys (a webhook URL, an app's
/// token and channel, an endpoint with its secrets), which only that platform reads, and a form
/// safe to print.
#[derive(Clone)]
pub struct Target {
    shown: String,
    inner: Arc<dyn Any + Send + Sync>,
}

impl Target {
    /// A target holding `inner`, printed as `shown` (which must hold no secret).
    pub fn new<T: Any + Send + Sync>(shown: String, inner: T) -> Target {
        Target { shown, inner: Arc::new(inner) }
    }

    /// A webhook URL's target, printed as its scheme and host.
    pub fn webhook(url: WebhookUrl) -> Target {
        Target::new(url.redacted(), url)
    }

    /// A form safe to print: never a token or a URL's path.
    pub fn shown(&self) -> String {
        self.shown.clone()
    }

    /// What the platform put in it, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.shown)
    }
}

/// A validated channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The channel's name in `relay.toml`.
    pub name: String,
    /// Its platform.
    pub platform: Platform,
    /// Where to post, or why the channel is disabled (its URL's or token's environment variable
    /// is unset).
    pub target: Result<Target, String>,
    /// The author's name posts default to, where the platform has one.
    pub username: Option<String>,
    /// The author's avatar posts default to, where the platform has one.
    pub avatar_url: Option<String>,
    /// Whether waiting live messages are merged.
    pub coalesce: bool,
    /// Posting budget windows: at most `.0` posts in any `.1`.
    pub rate_limit: Vec<(u32, Duration)>,
    /// Flat posts, or one thread per call.
    pub threads: Threads,
    /// Threads: the summary is also shown in the channel.
    pub broadcast_summary: bool,
    /// One edited message per call instead of one post per utterance.
    pub live_transcript: bool,
}

/// What a platform makes of a channel's keys; [`crate::setup`] adds what every channel has.
#[derive(Debug)]
pub struct Built {
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

/// What is wrong with a channel's keys: the key at fault (its dotted path under the channel), if
/// one is, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelProblem {
    /// The key, such as `username` or `templates.message`.
    pub key: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl From<String> for ChannelProblem {
    fn from(message: String) -> Self {
        ChannelProblem { key: None, message }
    }
}

impl From<&str> for ChannelProblem {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// A platform's channel keys read into its own `T` (every key known, or the unknown one named).
pub fn keys<T: serde::de::DeserializeOwned>(
    keys: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, ChannelProblem> {
    serde_path_to_error::deserialize(serde_json::Value::Object(keys.clone())).map_err(|e| {
        let key = e.path().to_string();
        ChannelProblem { key: (key != ".").then_some(key), message: e.inner().to_string() }
    })
}
