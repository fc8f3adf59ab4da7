//! A `kind = "google_chat"` channel's keys (their reference), checked: the space's webhook URL
//! (its `key` and `token` are secrets), threads per call (by key, no stored id), and no live
//! transcript (a webhook cannot edit its messages).

use serde::Deserialize;

use crate::config::{TemplateOverrides, Threads, WebhookUrl};
use crate::platforms::{Built, ChannelProblem, Target};

/// `kind = "google_chat"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleChatChannelConfig {
    /// The space's incoming-webhook URL (`https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…`).
    /// A secret: write it as `"${GOOGLE_CHAT_WEBHOOK_URL}"`.
    pub webhook_url: String,
    /// `"flat"` (default) or `"per_call"`: each call's messages in a thread of their own, keyed by
    /// the call's id.
    #[serde(default)]
    pub threads: Threads,
    /// Only `false`: a webhook cannot edit its messages.
    #[serde(default)]
    pub live_transcript: bool,
    /// Per-event template overrides, relative to `templates.dir`.
    #[serde(default)]
    pub templates: TemplateOverrides,
    /// Posting budget as `"N/DURATION"` windows. Default: Google's one a second and 60 a minute
    /// per space (shared by everything posting to the space: lower it if others post there too).
    pub rate_limit: Option<Vec<String>>,
}

/// The Google Chat part of a channel, or what is wrong with its keys.
pub fn build(keys: &serde_json::Map<String, serde_json::Value>) -> Result<Built, ChannelProblem> {
    let c: GoogleChatChannelConfig = crate::platforms::keys(keys)?;
    if c.live_transcript {
        return Err(ChannelProblem {
            key: Some("live_transcript".into()),
            message: "`live_transcript = true` is not possible with a Google Chat webhook: it cannot edit its messages"
                .into(),
        });
    }
    let target = match c.webhook_url.contains("${") {
        true => None,
        false => Some(Target::webhook(WebhookUrl::parse(&c.webhook_url).map_err(|m| format!("`webhook_url` {m}"))?)),
    };
    Ok(Built {
        target,
        username: None,
        avatar_url: None,
        threads: c.threads,
        broadcast_summary: false,
        live_transcript: false,
        coalesce: Some(false),
        rate_limit: c.rate_limit,
        templates: c.templates,
    })
}
