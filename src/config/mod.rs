//! `relay.toml`: the shape of the configuration and the checks that need only the file. The bottom
//! layer: it imports nothing of the relay but [`crate::event`]'s type names; [`crate::setup`]
//! compiles what it reads into the running form.
//!
//! Every field below is documented here; this file is the configuration reference.

mod error;
mod load;
mod secret;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use error::{ConfigError, Problem};
pub use load::{read, ConfigSource, Loaded, DEFAULT_CONFIG, DEFAULT_CONFIG_PATH};
pub use secret::{decode_signing_secret, Secret, WebhookUrl};

/// The whole file as written, before validation. Unknown keys anywhere are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The HTTP listener that Beyond Presence posts to.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where the Handlebars templates live.
    #[serde(default)]
    pub templates: TemplatesConfig,
    /// How posts to Slack and Discord are made and retried.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Where accepted events wait for delivery.
    #[serde(default)]
    pub store: StoreConfig,
    /// Who may post events. Every configured check must pass.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Forwarding an identical event once.
    #[serde(default)]
    pub dedup: DedupConfig,
    /// Log output.
    #[serde(default)]
    pub log: LogConfig,
    /// The web console (template playground, deliveries, dead letters) on its own listener.
    #[serde(default)]
    pub admin: AdminConfig,
    /// What the relay remembers of each call, and when it stops waiting for a call's end.
    #[serde(default)]
    pub calls: CallsConfig,
    /// Looking calls up in the Beyond Presence API (optional).
    #[serde(default)]
    pub beyond_presence: BeyondPresenceConfig,
    /// Destinations, by name. The name is what routes refer to and what logs show.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Routing rules, evaluated in order for every event.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `0.0.0.0:8080`.
    pub listen: String,
    /// Path that accepts Beyond Presence events. Default `/webhook`. Put a secret in it
    /// (`/webhook/${CALLRELAY_PATH_SECRET}`) so only whoever knows the URL can post.
    pub path: String,
    /// `path` as logs and tools show it: cut before its first segment that comes from the
    /// environment (`/webhook/…`), so the secret never reaches a log. Set by loading, not read
    /// from the file.
    #[serde(skip)]
    pub shown_path: String,
    /// Largest accepted request body in bytes; larger bodies are answered 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Longest time a client may take to send its request head, and again its body; slower
    /// clients are cut off (slowloris). Default `"10s"`.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Most open connections per worker thread; more wait to be accepted. Default 10000.
    pub max_connections: usize,
    /// Serve HTTPS directly (HTTP/1.1 and HTTP/2). Without it the relay serves plain HTTP, for
    /// use behind a TLS-terminating proxy.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            path: "/webhook".into(),
            shown_path: "/webhook".into(),
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            tls: None,
        }
    }
}

/// `[server.tls]`: certificate files, re-read on SIGHUP so renewals need no restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (relative to `relay.toml`'s directory).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[auth]`: each check is optional; all configured checks are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted tokens, sent as `Authorization: Bearer <token>` or `?token=<token>`. Several may
    /// be listed so a token can be rotated without downtime.
    pub tokens: Vec<Secret>,
    /// Standard Webhooks signing secrets (`whsec_<base64>`); requests must carry a valid
    /// `webhook-signature` for one of them. Several may be listed for rotation.
    pub signing_secrets: Vec<Secret>,
    /// How far `webhook-timestamp` may be from now. Default `"5m"`.
    #[serde(with = "humantime_serde")]
    pub signature_tolerance: Duration,
    /// Client networks allowed to post (CIDR, e.g. `"203.0.113.0/24"`). Empty: any.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed when checking `allow_networks`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            signing_secrets: Vec::new(),
            signature_tolerance: Duration::from_secs(300),
            allow_networks: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[dedup]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// An identical event received again within this window is answered 200 and not forwarded
    /// again. Identical means: same type, call_id, and for `message` the same `sent_at` and text;
    /// for other events the same body. `"0s"` turns it off. Default `"10m"`. Survives restarts.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self { window: Duration::from_secs(600) }
    }
}

/// `[calls]`: the relay remembers each call (in the store, shared by replicas): its agent,
/// caller and `call_data` fill the call's later events before routing (Beyond Presence's
/// `call_ended` names no agent), its first event brings a `call_started`, and a call that goes
/// quiet without a `call_ended` gets a `call_timed_out`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// A call with no event for this long and no `call_ended` gets one `call_timed_out` event,
    /// which also closes its thread's parent and its live transcript ("ended; no summary
    /// received"). Checked every second. `"0s"` never times a call out. Default `"30m"`.
    #[serde(with = "humantime_serde")]
    pub end_after: Duration,
    /// How long after its last event a call is remembered (with its events for the console's
    /// call page). A later event of a forgotten call starts it anew (a second `call_started`).
    /// Default `"24h"`.
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self { end_after: Duration::from_secs(30 * 60), forget_after: Duration::from_secs(24 * 3600) }
    }
}

/// `[beyond_presence]`: with an API key, an event whose call's memory lacks the agent (a
/// `call_ended` of a call whose messages named none, or reached no relay) is looked up in the
/// Beyond Presence API (`GET {api_url}/calls/{call_id}`), and the answer (`id`, `agent_id`,
/// `started_at`, `ended_at`, `tags`) is offered to routes and templates as `call.*`. The
/// request path never waits on it: the event is committed and answered first, then routed when
/// the lookup answers, or after `lookup_timeout` without it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BeyondPresenceConfig {
    /// The API key (`"${BEY_API_KEY}"`; a secret, sent as `x-api-key`, never logged). Default:
    /// none (no lookups).
    pub api_key: Option<Secret>,
    /// The API's base URL. Default `"https://api.bey.dev/v1"`.
    pub api_url: String,
    /// Longest an event waits for its call's lookup before it is routed without it. Default
    /// `"5s"`.
    #[serde(with = "humantime_serde")]
    pub lookup_timeout: Duration,
}

impl Default for BeyondPresenceConfig {
    fn default() -> Self {
        Self { api_key: None, api_url: "https://api.bey.dev/v1".into(), lookup_timeout: Duration::from_secs(5) }
    }
}

/// `[templates]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// Directory of `.json.hbs` templates, relative to the directory of `relay.toml`. Default
    /// `templates`. A shipped default template missing from it is taken from the built-in copy.
    pub dir: PathBuf,
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("templates") }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Longest wait for one post to Slack or Discord, e.g. `"10s"`. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts (5xx, timeouts, connection errors; not 429s) before a post goes to the dead
    /// letters. Default 20.
    pub max_attempts: u32,
    /// Age after which a post that still fails goes to the dead letters. Default `"24h"`.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// First retry delay; doubles per attempt, with full jitter. Default `"1s"`.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest retry delay. Default `"5m"`.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    /// With `threads = "per_call"`: how long after a call's `call_ended` its thread is remembered
    /// (a late event of the call still goes into it). Default `"24h"`.
    #[serde(with = "humantime_serde")]
    pub forget_threads_after: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_attempts: 20,
            max_age: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            forget_threads_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// How a channel groups a call's posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threads {
    /// Every post on its own in the channel.
    #[default]
    Flat,
    /// One thread per call: on a Slack app channel, the call's first event posts a parent
    /// (the `call_started` template) and everything else replies to it; on a Discord forum or media
    /// channel, the call's first post creates a thread (`thread_name` template) and the rest go
    /// into it.
    PerCall,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite database, relative to the directory of `relay.toml`; created on first run.
    /// Default `data/callrelay.db`.
    pub path: PathBuf,
    /// Largest size of the database in bytes; when reached, new events are answered 503 rather
    /// than filling the disk. Default: no limit. SQLite only: refused together with `url`
    /// (PostgreSQL's own limits apply, and its disk-full answer is a 503 too).
    pub max_bytes: Option<u64>,
    /// A PostgreSQL database to use instead of the SQLite file: `"${DATABASE_URL}"`
    /// (`postgres://user:password@host:5432/db`; a secret, since it may carry a password).
    /// Several relays may share one database. TLS as the URL's `sslmode` says (`require`,
    /// `verify-ca`, `verify-full`; roots from `sslrootcert` or the Mozilla set). Default: none
    /// (SQLite at `path`).
    pub url: Option<Secret>,
    /// How long a relay's hold on a channel (its lane lease) lasts unless renewed; renewed every
    /// third of it. When a relay dies, another takes its channels over within this time. Only
    /// matters with several relays on PostgreSQL. Default `"15s"`; at least `"3s"`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("data/callrelay.db"), max_bytes: None, url: None, lease: Duration::from_secs(15) }
    }
}

/// `[admin]`: the web console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the console. Default true.
    pub enabled: bool,
    /// The console's own address, never the webhook port. Default `127.0.0.1:9090` (this machine
    /// only). Any other address requires `token`. If the address is taken, the relay logs an
    /// error and runs without the console (taking events matters more).
    pub listen: String,
    /// The console's password (`"${CALLRELAY_ADMIN_TOKEN}"`; a secret): a login form exchanges it
    /// for a session cookie. Required unless `listen` is a loopback address. Default: none.
    pub token: Option<Secret>,
    /// Whether the playground's "Save" may write template files into the templates directory
    /// (live reload then puts them in force). Default false: the playground offers the file
    /// to download instead.
    pub allow_template_edits: bool,
    /// How long accepted events and their posts' status are kept for the console's recent
    /// events, call pages and charts (in the store, so every replica sees them). Default `"1h"`.
    /// `"0s"` keeps none and writes none: keeping them costs about a tenth of SQLite's ingest
    /// ceiling (one more row per event).
    #[serde(with = "humantime_serde")]
    pub keep_events: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9090".into(),
            token: None,
            allow_template_edits: false,
            keep_events: Duration::from_secs(3600),
        }
    }
}

impl AdminConfig {
    /// Whether `listen` is a loopback address (then the console needs no token).
    pub fn on_loopback(&self) -> bool {
        let host = self.listen.rsplit_once(':').map_or(self.listen.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `"pretty"` (default) for people, `"json"` for log collectors. `--log-format` overrides it.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[channels.NAME]`: one destination. `kind` names its platform (`"slack"`, `"discord"`); the
/// platform reads the channel's other keys, each documented in its folder
/// (`src/platforms/KIND/channel.rs`) and in the README.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelConfig {
    /// The platform.
    pub kind: String,
    /// The platform's keys, as written.
    #[serde(flatten)]
    pub keys: serde_json::Map<String, serde_json::Value>,
}

/// `[channels.NAME.templates]`: which template renders each event type for this channel.
/// Unset entries use `<kind>/<event_type>.json.hbs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverrides {
    /// Template for live `message` events.
    pub message: Option<String>,
    /// Template for `call_ended` summaries.
    pub call_ended: Option<String>,
    /// Template for the dashboard's `test` event.
    pub test: Option<String>,
    /// Template for the relay's `call_started` event; on a Slack app channel with
    /// `threads = "per_call"` also the thread's parent (edited when the call ends).
    pub call_started: Option<String>,
    /// Template for the relay's `call_timed_out` event.
    pub call_timed_out: Option<String>,
    /// The name `call_started` had for a while as the Slack thread parent's template
    /// (deprecated: read with a warning).
    pub thread_parent: Option<String>,
    /// Discord, with `threads = "per_call"`: the forum thread's name (the template renders a JSON
    /// string; cut to 100 characters).
    pub thread_name: Option<String>,
    /// With `live_transcript = true`: the call's transcript message (`messages` holds the
    /// utterances it shows, `part` counts the messages).
    pub transcript: Option<String>,
}

impl TemplateOverrides {
    /// The override for one kind of template (an event type's name, `thread_name`,
    /// `transcript`), if any.
    pub fn get(&self, kind: &str) -> Option<&str> {
        match kind {
            "message" => self.message.as_deref(),
            "call_ended" => self.call_ended.as_deref(),
            "test" => self.test.as_deref(),
            "call_started" => self.call_started.as_deref().or_else(|| {
                self.thread_parent.as_deref().inspect(|_| {
                    tracing::warn!("`templates.thread_parent` is now `templates.call_started` (the thread parent is that event's post); rename the key (the old one is read for now).")
                })
            }),
            "call_timed_out" => self.call_timed_out.as_deref(),
            "thread_name" => self.thread_name.as_deref(),
            "transcript" => self.transcript.as_deref(),
            _ => None,
        }
    }
}

/// `[[routes]]`: one rule. Every route whose `events` and `match` hold sends the event to its channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name used in errors and logs. Default `route N` (1-based position).
    pub name: Option<String>,
    /// Event types this route takes: `"message"`, `"call_ended"`, `"test"`, and the relay's own
    /// `"call_started"` and `"call_timed_out"`. Default `["message", "call_ended"]`; the other
    /// types are routed only where listed.
    pub events: Option<Vec<String>>,
    /// Channel names to send to.
    pub channels: Vec<String>,
    /// Conditions on the normalised event, keyed by dotted path (`"call_data.agentId"`). All must
    /// hold. A value means equals; an array means one of; a table with one operator means `regex`,
    /// `not`, `not_in`, `gt`, `gte`, `lt`, `lte` or `exists`.
    #[serde(default, rename = "match")]
    pub conditions: BTreeMap<String, serde_json::Value>,
    /// When true, routes after this one are not evaluated once this one matches.
    #[serde(default)]
    pub stop: bool,
}
