//! A `kind = "discord"` channel's keys (their reference), checked: the webhook URL (moved to the
//! versioned `?wait=true` form), and the author's name.

use serde::Deserialize;

use crate::config::{TemplateOverrides, Threads, WebhookUrl};
use crate::platforms::{Built, ChannelProblem, Target};

use super::{check_username, webhook};

/// `kind = "discord"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordChannelConfig {
    /// `"flat"` (default) or `"per_call"`: one forum thread per call (forum and media channels
    /// only; in a text channel the relay posts flat and warns).
    #[serde(default)]
    pub threads: Threads,
    /// One message per call, edited as utterances arrive, instead of one post per utterance.
    /// Default false.
    #[serde(default)]
    pub live_transcript: bool,
    /// The webhook URL as copied from Discord (`https://discord.com/api/webhooks/ID/TOKEN`). A secret.
    /// The relay posts to `/api/v10/webhooks/ID/TOKEN?wait=true` on the same host and path prefix.
    pub webhook_url: String,
    /// Name shown as the author of the posts (1–80 characters, not containing "discord" or
    /// "clyde"). Optional; a template that sets `username` wins.
    pub username: Option<String>,
    /// Avatar image URL for the posts. Optional; a template that sets `avatar_url` wins.
    pub avatar_url: Option<String>,
    /// Per-event template overrides, relative to `templates.dir`.
    #[serde(default)]
    pub templates: TemplateOverrides,
    /// Merge several waiting live `message` posts into one (within the platform's limits, in
    /// order). Default true.
    pub coalesce: Option<bool>,
    /// Posting budget as `"N/DURATION"` windows, all of which must allow a post, e.g.
    /// `["5/2s", "30/1m"]`. Default: the platform's (see [`crate::dispatch::pacing`]).
    pub rate_limit: Option<Vec<String>>,
}

/// The Discord part of a channel, or what is wrong with its keys.
pub fn build(keys: &serde_json::Map<String, serde_json::Value>) -> Result<Built, ChannelProblem> {
    let c: DiscordChannelConfig = crate::platforms::keys(keys)?;
    if let Some(u) = &c.username {
        check_username(u).map_err(|m| format!("`username` {m}"))?;
    }
    let target = match c.webhook_url.contains("${") {
        true => None,
        false => {
            let url = WebhookUrl::parse(&c.webhook_url).map_err(|m| format!("`webhook_url` {m}"))?;
            Some(Target::webhook(webhook::execute_url(&url).map_err(|m| format!("`webhook_url` {m}"))?))
        }
    };
    Ok(Built {
        target,
        username: c.username,
        avatar_url: c.avatar_url,
        threads: c.threads,
        broadcast_summary: false,
        live_transcript: c.live_transcript,
        coalesce: c.coalesce,
        rate_limit: c.rate_limit,
        templates: c.templates,
    })
}
