//! A `kind = "slack"` channel's keys (their reference), checked: an incoming webhook or a Slack
//! app, never both; threads and live transcripts only for an app.

use serde::Deserialize;

use crate::config::{Secret, TemplateOverrides, Threads, WebhookUrl};
use crate::platforms::{Built, ChannelProblem, Target};

use super::app;

/// `kind = "slack"`: either an incoming webhook (`webhook_url`) or a Slack app (`bot_token` and
/// `channel`), not both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannelConfig {
    /// The incoming-webhook URL (`https://hooks.slack.com/services/…`). A secret: write it as
    /// `"${SLACK_WEBHOOK_URL}"` and keep the value in the environment.
    pub webhook_url: Option<String>,
    /// A Slack app's bot token (`xoxb-…`), to post with the Web API's `chat.postMessage` instead
    /// of a webhook. A secret: write it as `"${SLACK_BOT_TOKEN}"`. Needs the `chat:write` scope,
    /// plus `chat:write.public` or the app invited to the channel.
    pub bot_token: Option<Secret>,
    /// With `bot_token`: the channel's ID (`C0123ABCD`; in Slack, the channel's details show it),
    /// not its name.
    pub channel: Option<String>,
    /// With `bot_token`: the Web API's base URL. Default `https://slack.com/api`; set it for a
    /// proxy, GovSlack (`https://slack-gov.com/api`) or a test stand-in.
    pub api_url: Option<String>,
    /// `"flat"` (default) or `"per_call"`: one thread per call (needs `bot_token`: an incoming
    /// webhook never tells the relay where its message went).
    #[serde(default)]
    pub threads: Threads,
    /// With `threads = "per_call"`: also show the `call_ended` summary in the channel, not only in
    /// the thread (Slack's `reply_broadcast`). Default false.
    #[serde(default)]
    pub broadcast_summary: bool,
    /// One message per call, edited as utterances arrive, instead of one post per utterance
    /// (needs `bot_token`: a webhook's posts cannot be edited). Default false.
    #[serde(default)]
    pub live_transcript: bool,
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

/// Where a Slack channel posts.
#[derive(Debug, Clone)]
pub enum SlackTarget {
    /// An incoming webhook.
    Webhook(WebhookUrl),
    /// A Slack app: the Web API with a bot token, into one channel.
    App {
        /// The Web API's base URL (`https://slack.com/api`).
        api_url: url::Url,
        /// The bot token.
        token: Secret,
        /// The channel's ID.
        channel: String,
    },
}

/// The Slack part of a channel, or what is wrong with its keys.
pub fn build(keys: &serde_json::Map<String, serde_json::Value>) -> Result<Built, ChannelProblem> {
    let c: SlackChannelConfig = crate::platforms::keys(keys)?;
    let needs_app = |what: &str, why: &str| -> ChannelProblem {
        format!("{what} needs a Slack app (`bot_token` and `channel`): an incoming webhook {why}").into()
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
                false => {
                    let url = WebhookUrl::parse(url).map_err(|m| format!("`webhook_url` {m}"))?;
                    Some(Target::new(url.redacted(), SlackTarget::Webhook(url)))
                }
            }
        }
        (None, Some(token)) => {
            let channel = c.channel.as_deref().ok_or("`bot_token` needs `channel`, the channel's ID (C0123ABCD)")?;
            app::check_channel_id(channel).map_err(|m| format!("`channel` {m}"))?;
            let api_url = app::base_url(c.api_url.as_deref()).map_err(|m| format!("`api_url` {m}"))?;
            match unset(token.expose()) {
                true => None,
                false => Some(Target::new(
                    format!("app, channel {channel} via {}", api_url.host_str().unwrap_or("?")),
                    SlackTarget::App { api_url, token: token.clone(), channel: channel.to_owned() },
                )),
            }
        }
    };
    Ok(Built {
        target,
        username: None,
        avatar_url: None,
        threads: c.threads,
        broadcast_summary: c.broadcast_summary,
        live_transcript: c.live_transcript,
        coalesce: c.coalesce,
        rate_limit: c.rate_limit,
        templates: c.templates,
    })
}
