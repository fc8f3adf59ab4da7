//! A `kind = "teams"` channel's keys (their reference), checked: a Workflows webhook URL (the
//! retired Office 365 connector URLs are refused, with where to look), and no threads or live
//! transcript (a Workflows webhook can neither reply in a thread nor edit its posts).

use serde::Deserialize;

use crate::config::{TemplateOverrides, Threads, WebhookUrl};
use crate::platforms::{Built, ChannelProblem, Target};

/// `kind = "teams"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsChannelConfig {
    /// The Workflows webhook URL ("Post to a channel when a webhook request is received"). A
    /// secret: write it as `"${TEAMS_WEBHOOK_URL}"`.
    pub webhook_url: String,
    /// Only `"flat"`: a Workflows webhook cannot reply in a thread.
    #[serde(default)]
    pub threads: Threads,
    /// Only `false`: a Workflows webhook cannot edit its posts.
    #[serde(default)]
    pub live_transcript: bool,
    /// Per-event template overrides, relative to `templates.dir`.
    #[serde(default)]
    pub templates: TemplateOverrides,
    /// Posting budget as `"N/DURATION"` windows, e.g. `["4/1s"]`. Default: Teams' 4 a second.
    pub rate_limit: Option<Vec<String>>,
}

/// Hosts of the Office 365 connectors Microsoft retired (their URLs no longer post).
const RETIRED_HOSTS: [&str; 2] = ["webhook.office.com", "outlook.office.com"];

/// The Teams part of a channel, or what is wrong with its keys.
pub fn build(keys: &serde_json::Map<String, serde_json::Value>) -> Result<Built, ChannelProblem> {
    let c: TeamsChannelConfig = crate::platforms::keys(keys)?;
    let why = "a Teams Workflows webhook";
    if c.threads == Threads::PerCall {
        return Err(ChannelProblem {
            key: Some("threads".into()),
            message: format!("`threads = \"per_call\"` is not possible with {why}: it cannot reply in a thread"),
        });
    }
    if c.live_transcript {
        return Err(ChannelProblem {
            key: Some("live_transcript".into()),
            message: format!("`live_transcript = true` is not possible with {why}: it cannot edit its posts"),
        });
    }
    let target = match c.webhook_url.contains("${") {
        true => None,
        false => {
            let url = WebhookUrl::parse(&c.webhook_url).map_err(|m| format!("`webhook_url` {m}"))?;
            let host = url.expose().host_str().unwrap_or("").to_ascii_lowercase();
            if RETIRED_HOSTS.iter().any(|h| host == *h || host.ends_with(&format!(".{h}"))) {
                return Err(ChannelProblem {
                    key: Some("webhook_url".into()),
                    message: "is an Office 365 connector URL, which Microsoft retired: create a Workflows webhook \
                              instead (README, \"Microsoft Teams\")"
                        .into(),
                });
            }
            Some(Target::webhook(url))
        }
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
