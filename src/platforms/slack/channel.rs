//! A `kind = "slack"` channel's keys, checked: an incoming webhook or a Slack app, never both;
//! threads and live transcripts only for an app.

use crate::config::{Platform, SlackChannelConfig, Target, Threads, WebhookUrl};
use crate::platforms::Built;

use super::app;

/// The Slack part of a channel, or what is wrong with its keys.
pub fn build(c: &SlackChannelConfig) -> Result<Built, String> {
    let needs_app = |what: &str, why: &str| {
        format!("{what} needs a Slack app (`bot_token` and `channel`): an incoming webhook {why}")
    };
    if c.threads == Threads::PerCall && c.bot_token.is_none() {
        return Err(needs_app(
            "`threads = \"per_call\"`",
            "never says where its message went, so no reply can find it",
        ));
    }
    if c.live_transcript && c.bot_token.is_none() {
        return Err(needs_app("`live_transcript = true`", "cannot edit its posts"));
    }
    let unset = |v: &str| v.contains("${");
    let target = match (&c.webhook_url, &c.bot_token) {
        (Some(_), Some(_)) => return Err("set either `webhook_url` or `bot_token` (with `channel`), not both".into()),
        (None, None) => {
            return Err("needs `webhook_url` (an incoming webhook) or `bot_token` and `channel` (a Slack app)".into())
        }
        (Some(url), None) => {
            if c.channel.is_some() || c.api_url.is_some() {
                return Err("`channel` and `api_url` go with `bot_token`; a webhook posts to its own channel".into());
            }
            match unset(url) {
                true => None,
                false => Some(Target::Webhook(WebhookUrl::parse(url).map_err(|m| format!("`webhook_url` {m}"))?)),
            }
        }
        (None, Some(token)) => {
            let channel = c.channel.as_deref().ok_or("`bot_token` needs `channel`, the channel's ID (C0123ABCD)")?;
            app::check_channel_id(channel).map_err(|m| format!("`channel` {m}"))?;
            let api_url = app::base_url(c.api_url.as_deref()).map_err(|m| format!("`api_url` {m}"))?;
            match unset(token.expose()) {
                true => None,
                false => Some(Target::SlackApp { api_url, token: token.clone(), channel: channel.to_owned() }),
            }
        }
    };
    Ok(Built {
        platform: Platform::Slack,
        target,
        username: None,
        avatar_url: None,
        threads: c.threads,
        broadcast_summary: c.broadcast_summary,
        live_transcript: c.live_transcript,
        coalesce: c.coalesce,
        rate_limit: c.rate_limit.clone(),
        templates: c.templates.clone(),
    })
}
