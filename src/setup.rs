//! The configuration compiled for running: validated channels (with their platform's URL rules),
//! the router and the renderer, built from what [`crate::config`] read. The one place that knows
//! both the file's shape and the modules that run it, so dependencies point one way:
//! `config` ← `routing`, `render`, `platforms` ← `setup` ← the pipeline, lanes, server and CLI.
//!
//! `check`, `serve` and live reload all come through [`load`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{
    self, AuthConfig, ChannelConfig, ConfigError, ConfigSource, DedupConfig, DeliveryConfig, LogConfig, ServerConfig,
    StoreConfig, TemplateOverrides,
};
use crate::platforms::{self, Built, Channel, ChannelProblem, Platform};
use crate::render::Renderer;
use crate::routing::Router;

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
    /// `[calls]`: call memory and time-outs.
    pub calls: crate::config::CallsConfig,
    /// `[beyond_presence]`: call lookups in the Beyond Presence API.
    pub beyond_presence: crate::config::BeyondPresenceConfig,
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
/// A channel with a key (its webhook URL, its token) that names an unset environment variable is
/// loaded as disabled (its `target` holds the reason) so a first run still starts; `check`
/// reports those as errors.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    let loaded = config::read(source)?;
    let mut problems = loaded.problems.clone();
    let file = &loaded.file;

    let mut channels = BTreeMap::new();
    let mut overrides: BTreeMap<String, (Platform, TemplateOverrides)> = BTreeMap::new();
    for (name, cfg) in &file.channels {
        match build_channel(name, cfg, loaded.disabled.get(name)) {
            Ok((channel, templates)) => {
                overrides.insert(name.clone(), (channel.platform, templates));
                channels.insert(name.clone(), channel);
            }
            Err(ChannelProblem { key: None, message }) => {
                problems.push(loaded.problem_at(&["channels", name], &format!("channel `{name}`"), message))
            }
            Err(ChannelProblem { key: Some(key), message }) => {
                let path: Vec<&str> = ["channels", name.as_str()].into_iter().chain(key.split('.')).collect();
                problems.push(loaded.problem_at(&path, &format!("key `channels.{name}.{key}`"), message))
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
        calls: file.calls,
        beyond_presence: file.beyond_presence,
        templates_dir: loaded.templates_dir,
        channels,
        router,
        renderer,
    })
}

/// A channel (and its template overrides) from its platform's part (see [`platforms::build`])
/// and the keys every channel has.
fn build_channel(
    name: &str,
    cfg: &ChannelConfig,
    disabled: Option<&String>,
) -> Result<(Channel, TemplateOverrides), ChannelProblem> {
    let (platform, built) = platforms::build(cfg)?;
    let Built {
        target,
        username,
        avatar_url,
        threads,
        broadcast_summary,
        live_transcript,
        coalesce,
        rate_limit,
        templates,
    } = built;
    let rate_limit = match rate_limit {
        None => platforms::rules(platform).default_rate_limit(),
        Some(windows) => windows
            .iter()
            .map(|w| parse_window(w))
            .collect::<Result<_, _>>()
            .map_err(|message| ChannelProblem { key: Some("rate_limit".into()), message })?,
    };
    let target = match (disabled, target) {
        (Some(why), _) => Err(why.clone()),
        (None, Some(target)) => Ok(target),
        (None, None) => return Err("its webhook URL or token holds a `${` that is not a `${VARIABLE}`".into()),
    };
    let channel = Channel {
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
    };
    Ok((channel, templates))
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
