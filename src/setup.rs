//! The configuration compiled for running: validated channels (with their platform's URL rules),
//! the router and the renderer, built from what [`crate::config`] read. The one place that knows
//! both the file's shape and the modules that run it, so dependencies point one way:
//! `config` ← `routing`, `render`, `sinks` ← `setup` ← the pipeline, lanes, server and CLI.
//!
//! `check`, `serve` and live reload all come through [`load`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{
    self, AuthConfig, Channel, ChannelConfig, ConfigError, ConfigSource, DedupConfig, DeliveryConfig, LogConfig,
    Platform, ServerConfig, StoreConfig, Target, TemplateOverrides, Threads, WebhookUrl,
};
use crate::render::Renderer;
use crate::routing::Router;
use crate::sinks::{discord, slack, slack_api};

/// A loaded, validated and compiled configuration: the immutable snapshot every stage reads.
#[derive(Debug)]
pub struct Config {
    /// Where it came from, for messages.
    pub source: ConfigSource,
    /// `[server]`
    pub server: ServerConfig,
    /// `[delivery]`
    pub delivery: DeliveryConfig,
    /// The store's file (resolved against the config file's directory) and size cap.
    pub store: StoreConfig,
    /// `[auth]`, with signing secrets checked.
    pub auth: AuthConfig,
    /// `[dedup]`
    pub dedup: DedupConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[admin]`: the web console.
    pub admin: crate::config::AdminConfig,
    /// The templates directory, resolved against the config file's directory.
    pub templates_dir: PathBuf,
    /// Channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// Compiled routes.
    pub router: Router,
    /// Compiled templates for every channel and event type.
    pub renderer: Renderer,
}

impl Config {
    /// Channels that cannot send, with the reason, in name order.
    pub fn disabled_channels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.channels.values().filter_map(|c| match &c.target {
            Ok(_) => None,
            Err(why) => Some((c.name.as_str(), why.as_str())),
        })
    }
}

/// Reads, validates and compiles a configuration, reporting every problem at once (each naming
/// file, line and the key, channel, route or template at fault).
///
/// A channel whose `webhook_url` or `bot_token` names an unset environment variable is loaded as
/// disabled (its `target` holds the reason) so a first run still starts; `check` reports those as
/// errors.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    let loaded = config::read(source)?;
    let mut problems = loaded.problems.clone();
    let file = &loaded.file;

    let mut channels = BTreeMap::new();
    let mut overrides: BTreeMap<String, (Platform, TemplateOverrides)> = BTreeMap::new();
    for (name, cfg) in &file.channels {
        match build_channel(name, cfg, loaded.disabled.get(name)) {
            Ok(channel) => {
                overrides.insert(name.clone(), (channel.platform, templates_of(cfg).clone()));
                channels.insert(name.clone(), channel);
            }
            Err(message) => {
                problems.push(loaded.problem_at(&["channels", name], &format!("channel `{name}`"), message))
            }
        }
    }
    let router = Router::compile(&file.routes, &file.channels).map_err(|route_problems| {
        route_problems.into_iter().map(|rp| loaded.route_problem(rp.index, &format!("route `{}`", rp.name), rp.message))
    });
    let renderer = Renderer::load(&loaded.templates_dir, &overrides);
    let (router, renderer) = match (router, renderer) {
        (Ok(router), Ok(renderer)) if problems.is_empty() => (router, renderer),
        (router, renderer) => {
            problems.extend(router.err().into_iter().flatten());
            problems.extend(renderer.err().into_iter().flatten());
            return Err(ConfigError { problems });
        }
    };
    let file = loaded.file;
    Ok(Config {
        source: loaded.source,
        server: file.server,
        delivery: file.delivery,
        store: file.store,
        auth: file.auth,
        dedup: file.dedup,
        log: file.log,
        admin: file.admin,
        templates_dir: loaded.templates_dir,
        channels,
        router,
        renderer,
    })
}

fn templates_of(cfg: &ChannelConfig) -> &TemplateOverrides {
    match cfg {
        ChannelConfig::Slack(c) => &c.templates,
        ChannelConfig::Discord(c) => &c.templates,
    }
}

fn build_channel(name: &str, cfg: &ChannelConfig, disabled: Option<&String>) -> Result<Channel, String> {
    let (platform, username, avatar_url, coalesce, rate_limit) = match cfg {
        ChannelConfig::Slack(c) => (Platform::Slack, None, None, c.coalesce, &c.rate_limit),
        ChannelConfig::Discord(c) => {
            (Platform::Discord, c.username.clone(), c.avatar_url.clone(), c.coalesce, &c.rate_limit)
        }
    };
    let (threads, broadcast_summary, live_transcript) = match cfg {
        ChannelConfig::Slack(c) => {
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
            (c.threads, c.broadcast_summary, c.live_transcript)
        }
        ChannelConfig::Discord(c) => (c.threads, false, c.live_transcript),
    };
    let rate_limit = match rate_limit {
        None => match platform {
            Platform::Slack => slack::DEFAULT_RATE_LIMIT.to_vec(),
            Platform::Discord => discord::DEFAULT_RATE_LIMIT.to_vec(),
        },
        Some(windows) => windows.iter().map(|w| parse_window(w)).collect::<Result<_, _>>()?,
    };
    if let Some(u) = &username {
        discord::check_username(u).map_err(|m| format!("`username` {m}"))?;
    }
    let target = match (disabled, target(cfg)?) {
        (Some(why), _) => Err(why.clone()),
        (None, Some(target)) => Ok(target),
        (None, None) => return Err("its webhook URL or token holds a `${` that is not a `${VARIABLE}`".into()),
    };
    Ok(Channel {
        name: name.to_owned(),
        platform,
        target,
        username,
        avatar_url,
        coalesce: coalesce.unwrap_or(true),
        rate_limit,
        threads,
        broadcast_summary,
        live_transcript,
    })
}

/// Where a channel posts, checked; `None` when its secret is an unset variable (the channel is then
/// disabled, but everything else about it is still checked).
fn target(cfg: &ChannelConfig) -> Result<Option<Target>, String> {
    let unset = |v: &str| v.contains("${");
    let webhook = |raw: &str, platform: Platform| -> Result<Option<Target>, String> {
        if unset(raw) {
            return Ok(None);
        }
        let url = WebhookUrl::parse(raw).map_err(|m| format!("`webhook_url` {m}"))?;
        Ok(Some(Target::Webhook(match platform {
            Platform::Slack => url,
            Platform::Discord => discord::execute_url(&url).map_err(|m| format!("`webhook_url` {m}"))?,
        })))
    };
    match cfg {
        ChannelConfig::Discord(c) => webhook(&c.webhook_url, Platform::Discord),
        ChannelConfig::Slack(c) => match (&c.webhook_url, &c.bot_token) {
            (Some(_), Some(_)) => Err("set either `webhook_url` or `bot_token` (with `channel`), not both".into()),
            (None, None) => {
                Err("needs `webhook_url` (an incoming webhook) or `bot_token` and `channel` (a Slack app)".into())
            }
            (Some(url), None) => {
                if c.channel.is_some() || c.api_url.is_some() {
                    return Err(
                        "`channel` and `api_url` go with `bot_token`; a webhook posts to its own channel".into()
                    );
                }
                webhook(url, Platform::Slack)
            }
            (None, Some(token)) => {
                let channel =
                    c.channel.as_deref().ok_or("`bot_token` needs `channel`, the channel's ID (C0123ABCD)")?;
                slack_api::check_channel_id(channel).map_err(|m| format!("`channel` {m}"))?;
                let api_url = slack_api::base_url(c.api_url.as_deref()).map_err(|m| format!("`api_url` {m}"))?;
                if unset(token.expose()) {
                    return Ok(None);
                }
                Ok(Some(Target::SlackApp { api_url, token: token.clone(), channel: channel.to_owned() }))
            }
        },
    }
}

/// `"5/2s"` means at most 5 posts in any 2 seconds.
fn parse_window(text: &str) -> Result<(u32, std::time::Duration), String> {
    let bad = || format!("`rate_limit` entry `{text}` must look like \"5/2s\" (posts/duration)");
    let (n, d) = text.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let d = humantime::parse_duration(d.trim()).map_err(|_| bad())?;
    if n == 0 || d.is_zero() {
        return Err(bad());
    }
    Ok((n, d))
}
