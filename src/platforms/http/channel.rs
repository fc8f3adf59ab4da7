//! A `kind = "http"` channel's keys (their reference), checked: the endpoint's URL (`https`,
//! except on this machine), its Standard Webhooks signing secrets and its extra headers.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{decode_signing_secret, Secret, TemplateOverrides, Threads, WebhookUrl};
use crate::platforms::{Built, ChannelProblem, Target};

/// `kind = "http"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpChannelConfig {
    /// The endpoint (`"${CRM_WEBHOOK_URL}"`; a secret, as URLs of such endpoints often carry a
    /// token). `https`, except on this machine (`localhost`, `127.0.0.1`, `::1`).
    pub url: String,
    /// Standard Webhooks signing secret(s), `whsec_<base64>`: one, or a list while rotating (each
    /// request then carries a signature per secret). Secrets: write them as `"${VAR}"`. Default:
    /// requests are not signed (they still carry `webhook-id` and `webhook-timestamp`).
    pub signing_secret: Option<OneOrMany>,
    /// Headers sent with every request, such as `{ "Authorization" = "Bearer ${CRM_TOKEN}" }`;
    /// their values are secrets (never shown). `Content-Type` and the `webhook-*` headers are the
    /// relay's.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Only `"flat"`: an endpoint has no threads.
    #[serde(default)]
    pub threads: Threads,
    /// Only `false`: an endpoint's requests cannot be edited.
    #[serde(default)]
    pub live_transcript: bool,
    /// Per-event template overrides, relative to `templates.dir`.
    #[serde(default)]
    pub templates: TemplateOverrides,
    /// Posting budget as `"N/DURATION"` windows. Default 50 a second: set what the endpoint
    /// allows (its 429s are waited out either way).
    pub rate_limit: Option<Vec<String>>,
}

/// One secret, or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(Secret),
    /// Several, newest last.
    Many(Vec<Secret>),
}

/// Where an HTTP channel posts, and how.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL.
    pub url: WebhookUrl,
    /// Standard Webhooks signing secrets; several while one is rotated.
    pub signing_keys: Vec<Secret>,
    /// Headers sent with every request (values are secrets).
    pub headers: Vec<(String, Secret)>,
}

/// Headers only the relay sets.
const RESERVED_HEADERS: [&str; 5] =
    ["content-type", "content-length", "webhook-id", "webhook-timestamp", "webhook-signature"];

/// The endpoint part of a channel, or what is wrong with its keys.
pub fn build(keys: &serde_json::Map<String, serde_json::Value>) -> Result<Built, ChannelProblem> {
    let c: HttpChannelConfig = crate::platforms::keys(keys)?;
    let problem = |key: &str, message: String| ChannelProblem { key: Some(key.into()), message };
    if c.threads == Threads::PerCall {
        return Err(problem("threads", "`threads = \"per_call\"` is not possible with an HTTP endpoint".into()));
    }
    if c.live_transcript {
        return Err(problem(
            "live_transcript",
            "`live_transcript = true` is not possible with an HTTP endpoint".into(),
        ));
    }
    let secrets = match c.signing_secret {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(list)) => list,
    };
    for name in c.headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(problem("headers", format!("`{name}` is not a valid header name")));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(problem("headers", format!("`{name}` is set by the relay")));
        }
    }
    let unset = c.url.contains("${")
        || secrets.iter().any(|s| s.expose().contains("${"))
        || c.headers.values().any(|v| v.expose().contains("${"));
    let target = if unset {
        None
    } else {
        let url = WebhookUrl::parse(&c.url).map_err(|m| problem("url", format!("`url` {m}")))?;
        let host = url.expose().host_str().unwrap_or("");
        let local = host == "localhost"
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if url.expose().scheme() != "https" && !local {
            return Err(problem("url", "`url` must be https (plain http only on this machine)".into()));
        }
        let mut signing_keys = Vec::new();
        for s in &secrets {
            decode_signing_secret(s.expose())
                .map_err(|m| problem("signing_secret", format!("`signing_secret` {m}")))?;
            signing_keys.push(s.clone());
        }
        let headers = c.headers.into_iter().collect();
        Some(Target::new(url.redacted(), Endpoint { url, signing_keys, headers }))
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
