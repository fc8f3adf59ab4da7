//! A `kind = "discord"` channel's keys, checked: the webhook URL (moved to the versioned
//! `?wait=true` form), and the author's name.

use crate::config::{DiscordChannelConfig, Platform, Target, WebhookUrl};
use crate::platforms::Built;

use super::{check_username, webhook};

/// The Discord part of a channel, or what is wrong with its keys.
pub fn build(c: &DiscordChannelConfig) -> Result<Built, String> {
    if let Some(u) = &c.username {
        check_username(u).map_err(|m| format!("`username` {m}"))?;
    }
    let target = match c.webhook_url.contains("${") {
        true => None,
        false => {
            let url = WebhookUrl::parse(&c.webhook_url).map_err(|m| format!("`webhook_url` {m}"))?;
            Some(Target::Webhook(webhook::execute_url(&url).map_err(|m| format!("`webhook_url` {m}"))?))
        }
    };
    Ok(Built {
        platform: Platform::Discord,
        target,
        username: c.username.clone(),
        avatar_url: c.avatar_url.clone(),
        threads: c.threads,
        broadcast_summary: false,
        live_transcript: c.live_transcript,
        coalesce: c.coalesce,
        rate_limit: c.rate_limit.clone(),
        templates: c.templates.clone(),
    })
}
