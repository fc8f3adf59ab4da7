//! `spawn_app` and friends: a real relay on a free loopback port, configured from a real file,
//! with mock Slack and Discord endpoints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use callrelay::config::ConfigSource;
use std::sync::Arc;

use callrelay::dispatch::Dispatcher;
use callrelay::server::Application;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::standins::{Discord, SlackApi};

/// Slack webhook path on the mock (token included, so secrecy can be checked).
pub const SLACK_PATH: &str = "/services/T000/B000/slacksecrettoken";
/// Discord webhook path as a user would paste it (no API version).
pub const DISCORD_PASTED_PATH: &str = "/api/webhooks/123456/discordsecrettoken";
/// Where the relay must post for Discord.
pub const DISCORD_PATH: &str = "/api/v10/webhooks/123456/discordsecrettoken";
/// The Discord webhook's id.
pub const DISCORD_WEBHOOK_ID: &str = "123456";
/// The Discord webhook's token.
pub const DISCORD_TOKEN: &str = "discordsecrettoken";

/// The shipped templates directory.
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// A running relay and its mocks.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The webhook URL.
    pub webhook: String,
    /// Mock Slack: an incoming webhook at [`SLACK_PATH`] and the Web API under `/api/`.
    pub slack: MockServer,
    /// The Slack Web API stand-in on `slack` (until a test resets `slack`).
    pub slack_api: SlackApi,
    /// Mock Discord: the webhook at [`DISCORD_PATH`].
    pub discord: MockServer,
    /// The Discord stand-in on `discord` (until a test resets `discord`).
    pub discord_api: Discord,
    /// Plain client.
    pub client: reqwest::Client,
    /// The running relay's lanes.
    pub dispatcher: Arc<Dispatcher>,
    dir: tempfile::TempDir,
    /// The console's address (`http://127.0.0.1:PORT`), when it runs.
    pub console: Option<String>,
}

/// The default test configuration: the shipped shape (live messages to Slack, summaries to
/// Discord, tests to Slack), on the mocks. `{slack}` and `{discord}` are replaced by mock URLs.
pub const DEFAULT_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
path = "/webhook"

[channels.live]
kind = "slack"
webhook_url = "{slack}"
rate_limit = ["1000/1s"]

[channels.summaries]
kind = "discord"
webhook_url = "{discord}"
username = "Call Relay"
rate_limit = ["1000/1s"]

[[routes]]
name = "live messages"
events = ["message"]
channels = ["live"]

[[routes]]
name = "summaries"
events = ["call_ended"]
channels = ["summaries"]

[[routes]]
name = "connection test"
events = ["test"]
channels = ["live"]
"#;

/// Mock Slack: the stand-ins for an incoming webhook and the Web API (see [`crate::standins`]).
pub async fn mock_slack() -> MockServer {
    let server = MockServer::start().await;
    crate::standins::slack::mount(&server).await;
    server
}

/// Mock Discord: the stand-in for a text channel's webhook (see [`crate::standins`]).
pub async fn mock_discord() -> MockServer {
    let server = MockServer::start().await;
    Discord::mount(&server).await;
    server
}

/// Writes `toml` (with `{slack}`, `{slack_base}`, `{discord}` and `{templates}` filled in) to a
/// temp dir.
pub fn write_config(toml: &str, slack: &MockServer, discord: &MockServer) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = toml
        .replace("{slack}", &format!("{}{SLACK_PATH}", slack.uri()))
        .replace("{discord}", &format!("{}{DISCORD_PASTED_PATH}", discord.uri()))
        .replace("{slack_base}", &slack.uri())
        .replace("{templates}", &templates_dir().display().to_string());
    let text = if text.contains("[templates]") {
        text
    } else {
        format!("[templates]\ndir = \"{}\"\n{text}", templates_dir().display())
    };
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// The relay with [`DEFAULT_TOML`].
pub async fn spawn_app() -> TestApp {
    spawn_with(DEFAULT_TOML).await
}

/// The relay with a given configuration.
pub async fn spawn_with(toml: &str) -> TestApp {
    spawn_prepared(toml, |_| {}).await
}

/// The relay with a given configuration, after `prepare` has written files into its directory.
pub async fn spawn_prepared(toml: &str, prepare: impl FnOnce(&Path)) -> TestApp {
    let slack = MockServer::start().await;
    let slack_api = crate::standins::slack::mount(&slack).await;
    let discord = MockServer::start().await;
    let discord_api = Discord::mount(&discord).await;
    let (dir, file) = write_config(toml, &slack, &discord);
    prepare(dir.path());
    console_on_any_port();
    let config = callrelay::setup::load(&ConfigSource::File(file)).unwrap_or_else(|e| panic!("{e}"));
    let path = config.server.path.clone();
    let app = Application::build(config).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let console = callrelay::console::start(app.state()).map(|p| format!("http://127.0.0.1:{p}"));
    let dispatcher = app.dispatcher();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        webhook: format!("{address}{path}"),
        address,
        slack,
        slack_api,
        discord,
        discord_api,
        client: reqwest::Client::new(),
        dispatcher,
        dir,
        console,
    }
}

/// Tests run many relays at once: each one's console takes any free loopback port (the default,
/// 9090, would be taken by the first). A test that sets `[admin] listen` in its file still gets
/// this (the environment overrides the file), which is what every test wants.
pub fn console_on_any_port() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("CALLRELAY__ADMIN__LISTEN", "127.0.0.1:0"));
}

impl TestApp {
    /// The `relay.toml` the relay runs on (its store is beside it).
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("relay.toml")
    }

    /// POSTs a JSON event to the webhook.
    pub async fn post_event(&self, body: &Value) -> reqwest::Response {
        self.client.post(&self.webhook).json(body).send().await.unwrap()
    }

    /// POSTs raw bytes to the webhook.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client.post(&self.webhook).header("content-type", "application/json").body(body).send().await.unwrap()
    }

    /// Waits until nothing is queued (every accepted post delivered or dead-lettered), then
    /// returns the JSON bodies a mock received, in order.
    pub async fn received(&self, mock: &MockServer) -> Vec<Value> {
        assert!(self.dispatcher.idle(Duration::from_secs(20)).await, "deliveries still pending");
        bodies(mock).await
    }

    /// The raw requests a mock received, after waiting for pending deliveries.
    pub async fn requests(&self, mock: &MockServer) -> Vec<wiremock::Request> {
        assert!(self.dispatcher.idle(Duration::from_secs(20)).await, "deliveries still pending");
        mock.received_requests().await.unwrap()
    }
}

/// The JSON bodies a mock received, in order.
pub async fn bodies(mock: &MockServer) -> Vec<Value> {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
        })
        .collect()
}

/// A Beyond Presence `message` event.
pub fn message(call_id: &str, sender: &str, text: &str) -> Value {
    serde_json::json!({"event_type":"message","call_id":call_id,
        "message":{"sender":sender,"message":text,"sent_at":"2024-01-15T10:30:00Z"},
        "call_data":{"userName":"John Doe","agentId":"agent_456"}})
}

/// A Beyond Presence `call_ended` event.
pub fn call_ended(call_id: &str, sentiment: &str) -> Value {
    serde_json::json!({"event_type":"call_ended","call_id":call_id,
        "evaluation":{"topic":"Account Support","user_sentiment":sentiment,"duration_minutes":5.5,"messages_count":2},
        "messages":[{"sender":"ai","message":"Hello, how can I help?","sent_at":"2024-01-15T10:30:00Z"},
                    {"sender":"user","message":"My card was declined.","sent_at":"2024-01-15T10:30:05Z"}],
        "user_name":"John Doe"})
}

/// A `call_ended` whose transcript is `n` long utterances, `line 000 words words …` onwards.
pub fn long_call_ended(call_id: &str, n: usize) -> Value {
    let mut ended = call_ended(call_id, "neutral");
    let lines: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({"sender": if i % 2 == 0 { "ai" } else { "user" }, "message": format!("line {i:03} {}", "words ".repeat(40))}))
        .collect();
    ended["messages"] = serde_json::json!(lines);
    ended
}

/// Asserts `said` holds `line 000` … `line {n-1}` in order (what arrived of a [`long_call_ended`]).
pub fn assert_lines_in_order(said: &str, n: usize) {
    let mut at = 0;
    for i in 0..n {
        let line = format!("line {i:03}");
        at += said[at..].find(&line).unwrap_or_else(|| panic!("{line} is missing or out of order"));
    }
}

/// Every string inside a JSON value.
pub fn strings(v: &Value) -> Vec<String> {
    callrelay::text::strings(v).into_iter().map(str::to_owned).collect()
}

/// Validates a body against Discord's official execute-webhook schema, plus the rules the schema
/// does not state (6,000 characters across embeds; content or embeds required).
pub fn assert_valid_discord_body(body: &Value) {
    let errors = discord_schema_errors(body);
    assert!(errors.is_empty(), "Discord would refuse this body: {errors:?}\n{body}");
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    let total: usize = embeds.iter().map(callrelay::platforms::discord::embed_chars).sum();
    assert!(total <= 6000, "{total} characters across embeds");
    let content = body["content"].as_str().unwrap_or("");
    assert!(!content.is_empty() || !embeds.is_empty(), "a body needs content or embeds");
}

/// What Discord's official execute-webhook schema finds wrong with a body (per-field limits).
pub fn discord_schema_errors(body: &Value) -> Vec<String> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/discord-webhook-schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::draft202012::new(&schema).unwrap()
    });
    validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

/// The utterances in Slack posts, in order (one section per message with the shipped template,
/// however many were coalesced into one post).
pub fn slack_messages(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|b| b["blocks"].as_array().cloned().unwrap_or_default())
        .filter(|block| block["type"] == "section")
        .filter_map(|block| block["text"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The real binary, with the webhook variables of the developer's shell removed.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callrelay"));
    c.env_remove("SLACK_WEBHOOK_URL")
        .env_remove("DISCORD_WEBHOOK_URL")
        .env_remove("CALLRELAY_CONFIG")
        .env("CALLRELAY__ADMIN__LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1");
    c
}

/// A `callrelay serve` child process whose log lines are collected.
pub struct Served {
    /// The process.
    pub child: std::process::Child,
    log: Arc<Mutex<String>>,
    /// The port it listens on.
    pub port: u16,
}

impl Served {
    /// Spawns `cmd` and waits for its "listening" line.
    pub fn start(mut cmd: Command) -> Served {
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let text = log.lock().unwrap().clone();
            if let Some(p) = text
                .split("port=")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the relay did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Served { child, log, port }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 10 ms until it holds; fails naming `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A relay whose templates are a private copy (returned), so tests can edit them.
pub async fn spawn_with_own_templates() -> (TestApp, PathBuf) {
    let toml = DEFAULT_TOML.replace("[server]", "[templates]\ndir = \"templates\"\n\n[server]");
    let app = spawn_prepared(&toml, |dir| copy_dir(&templates_dir(), &dir.join("templates"))).await;
    let dir = app.config_file().parent().unwrap().join("templates");
    (app, dir)
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The relay's `/readyz` answer.
pub async fn readyz(app: &TestApp) -> Value {
    app.client.get(format!("{}/readyz", app.address)).send().await.unwrap().json().await.unwrap()
}

/// Waits until `/readyz` counts at least `n` of `key` (`reloads` or `failed_reloads`).
pub async fn wait_for_reloads(app: &TestApp, key: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = readyz(app).await;
        if r["config"][key].as_u64().unwrap() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "no {key} reached {n}: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Served {
    /// `callrelay` serving `file`.
    pub fn config(file: &Path) -> Served {
        let mut cmd = bin();
        cmd.arg("--config").arg(file);
        Served::start(cmd)
    }

    /// Waits until its queues are empty (every accepted post delivered and recorded), by its
    /// `/metrics`.
    pub async fn wait_idle(&self) {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        wait_until("the relay's queues to empty", Duration::from_secs(20), async || {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            text.lines().filter(|l| l.starts_with("callrelay_queue_depth{")).all(|l| l.ends_with(" 0"))
        })
        .await;
    }

    /// POSTs a JSON event to its `/webhook`.
    pub async fn post_event(&self, body: &Value) -> reqwest::Response {
        let url = format!("http://127.0.0.1:{}/webhook", self.port);
        reqwest::Client::new().post(url).json(body).send().await.unwrap()
    }
}

/// Makes the relay's Slack stand-in answer `answer` first (the next `times` posts, or all of them
/// when `None`), ahead of its usual 200.
pub async fn slack_answers(app: &TestApp, answer: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("POST")).respond_with(answer).with_priority(1);
    let mock = match times {
        Some(n) => mock.up_to_n_times(n),
        None => mock,
    };
    mock.mount(&app.slack).await;
}
