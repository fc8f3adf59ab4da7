//! Posting to the platforms: URL rules, retries, rate limits, pacing, coalescing, dead letters and
//! broken channels, against mock Slack and Discord servers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn a_discord_url_behind_a_proxy_keeps_its_prefix_and_query() {
    let slack = mock_slack().await;
    let discord = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/proxy/api/v10/webhooks/42/tok"))
        .and(query_param("thread_id", "9"))
        .and(query_param("wait", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1"})))
        .expect(1)
        .mount(&discord)
        .await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[templates]\ndir = \"{}\"\n[channels.d]\nkind = \"discord\"\nwebhook_url = \"{}/proxy/api/webhooks/42/tok?thread_id=9\"\n[[routes]]\nchannels = [\"d\"]\n",
        templates_dir().display(),
        discord.uri()
    );
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let config = callrelay::setup::load(&callrelay::config::ConfigSource::File(file)).unwrap();
    let app = callrelay::server::Application::build(config).await.unwrap();
    let dispatcher = app.dispatcher();
    let url = format!("http://127.0.0.1:{}/webhook", app.port());
    tokio::spawn(app.run_until_stopped());
    let r = reqwest::Client::new().post(url).json(&call_ended("c", "positive")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(dispatcher.idle(Duration::from_secs(10)).await);
    discord.verify().await;
}

/// A mock endpoint that answers from a script (one answer per request, the last repeating) and
/// records when each request arrived.
#[derive(Clone)]
pub struct Scripted {
    answers: Arc<Vec<ResponseTemplate>>,
    pub times: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    pub fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self { answers: Arc::new(answers), times: Arc::default() }
    }

    pub fn arrivals(&self) -> Vec<Instant> {
        self.times.lock().unwrap().clone()
    }
}

impl Respond for Scripted {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut times = self.times.lock().unwrap();
        times.push(Instant::now());
        self.answers[(times.len() - 1).min(self.answers.len() - 1)].clone()
    }
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("ok")
}

/// The default test setup with fast retries, and Slack answering from `script`.
async fn with_slack_script(extra: &str, script: Scripted) -> TestApp {
    let toml = DEFAULT_TOML.replace(
        "[channels.live]",
        &format!("[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"100ms\"\nrequest_timeout = \"300ms\"\n{extra}\n[channels.live]"),
    );
    let app = spawn_with(&toml).await;
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(script).mount(&app.slack).await;
    app
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered_in_order() {
    let script = Scripted::new(vec![
        ResponseTemplate::new(500).set_body_string("rollup_error"),
        ResponseTemplate::new(502),
        ResponseTemplate::new(503),
        ok(),
    ]);
    let app = with_slack_script("", script.clone()).await;
    for text in ["first", "second"] {
        assert_eq!(app.post_event(&message("c", "user", text)).await.status(), 200);
    }
    let bodies = app.received(&app.slack).await;
    assert!(bodies.len() >= 4, "three failures, then success");
    let delivered = slack_messages(&bodies[3..]);
    assert_eq!(delivered, ["first", "second"], "the second waited behind the retrying first");
    for failed in &bodies[..3] {
        assert_eq!(slack_messages(std::slice::from_ref(failed))[0], "first", "every attempt starts with the head");
    }
}

#[tokio::test]
async fn a_hung_request_times_out_and_is_retried() {
    let script =
        Scripted::new(vec![ok().set_delay(Duration::from_secs(60)), ok().set_delay(Duration::from_secs(60)), ok()]);
    let app = with_slack_script("", script.clone()).await;
    app.post_event(&message("c", "user", "patience")).await;
    let bodies = app.received(&app.slack).await;
    assert_eq!(slack_messages(&bodies), ["patience"; 3], "two timeouts, then delivered");
}

#[tokio::test]
async fn connection_refused_is_retried_until_the_endpoint_comes_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"100ms\"\n[channels.live]\nkind = \"slack\"\nwebhook_url = \"http://127.0.0.1:{port}{SLACK_PATH}\"\n[[routes]]\nchannels = [\"live\"]\n"
    );
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let app = callrelay::server::Application::build(
        callrelay::setup::load(&callrelay::config::ConfigSource::File(file)).unwrap(),
    )
    .await
    .unwrap();
    let dispatcher = app.dispatcher();
    let url = format!("http://127.0.0.1:{}/webhook", app.port());
    tokio::spawn(app.run_until_stopped());
    reqwest::Client::new().post(url).json(&message("c", "user", "hello?")).send().await.unwrap();
    let store = dispatcher.store();
    wait_until("a refused attempt", Duration::from_secs(20), async || {
        store.pending("live", 1).await.unwrap().first().is_some_and(|q| q.attempts >= 2)
    })
    .await;

    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let endpoint = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&endpoint).await;
    assert!(dispatcher.idle(Duration::from_secs(20)).await);
    assert_eq!(slack_messages(&bodies(&endpoint).await), ["hello?"]);
}

#[tokio::test]
async fn slack_429_retry_after_is_honoured_and_not_counted_as_a_failure() {
    let limited = ResponseTemplate::new(429).insert_header("Retry-After", "2").set_body_string("rate_limited");
    let script = Scripted::new(vec![limited, ok()]);
    let app = with_slack_script("max_attempts = 1", script.clone()).await;
    app.post_event(&message("c", "user", "wait for it")).await;
    let bodies = app.received(&app.slack).await;
    assert_eq!(slack_messages(&bodies), ["wait for it"; 2], "delivered, although max_attempts is 1");
    let t = script.arrivals();
    assert!(t[1] - t[0] >= Duration::from_secs(2), "retried after {:?}, before Retry-After", t[1] - t[0]);
}

#[tokio::test]
async fn discord_429_retry_after_in_the_body_is_honoured() {
    let app = spawn_app().await;
    let limited = ResponseTemplate::new(429)
        .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}));
    app.discord_api.answer_first([limited]);
    app.post_event(&call_ended("c", "positive")).await;
    assert_eq!(app.received(&app.discord).await.len(), 2);
    assert_eq!(app.discord_api.messages().len(), 1);
    let t = app.discord_api.arrivals();
    let ready: serde_json::Value =
        app.client.get(format!("{}/readyz", app.address)).send().await.unwrap().json().await.unwrap();
    assert!(t[1] - t[0] >= Duration::from_millis(1500), "retried after {:?} {ready}", t[1] - t[0]);
}

/// Answers 429 to any request less than 900 ms after the last one it accepted (Slack's one per
/// second, with room for scheduling jitter on a loaded machine; a burst would be ~0 ms apart).
#[derive(Clone, Default)]
struct OnePerSecond {
    accepted: Arc<Mutex<Vec<Instant>>>,
    refused: Arc<Mutex<u32>>,
}

impl Respond for OnePerSecond {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut accepted = self.accepted.lock().unwrap();
        let now = Instant::now();
        if accepted.last().is_some_and(|last| now - *last < Duration::from_millis(900)) {
            *self.refused.lock().unwrap() += 1;
            return ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("rate_limited");
        }
        accepted.push(now);
        ok()
    }
}

#[tokio::test]
async fn default_slack_pacing_makes_no_429_against_one_per_second() {
    let toml = DEFAULT_TOML
        .replace("rate_limit = [\"1000/1s\"]\n\n[channels.summaries]", "coalesce = false\n\n[channels.summaries]");
    assert!(toml.contains("coalesce = false"));
    let app = spawn_with(&toml).await;
    app.slack.reset().await;
    let limiter = OnePerSecond::default();
    Mock::given(method("POST")).respond_with(limiter.clone()).mount(&app.slack).await;
    for i in 0..20 {
        app.post_event(&message("c", "user", &format!("m{i}"))).await;
    }
    let bodies = app.received(&app.slack).await;
    assert_eq!(*limiter.refused.lock().unwrap(), 0, "the relay paced itself");
    assert_eq!(slack_messages(&bodies), (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn messages_queued_behind_a_rate_limit_are_coalesced_in_order_within_limits() {
    let toml = DEFAULT_TOML
        .replace("events = [\"message\"]\nchannels = [\"live\"]", "events = [\"message\"]\nchannels = [\"summaries\"]");
    let app = spawn_with(&toml).await;
    let limited = ResponseTemplate::new(429)
        .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": false}));
    app.discord_api.answer_first([limited]);
    for i in 0..50 {
        assert_eq!(app.post_event(&message("c", "user", &format!("m{i:02}"))).await.status(), 200);
    }
    let bodies = app.received(&app.discord).await;
    let delivered = &bodies[1..];
    assert!(delivered.len() <= 5, "{} posts for 50 messages", delivered.len());
    let texts: Vec<String> = delivered
        .iter()
        .flat_map(|b| {
            b["embeds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["description"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(texts, (0..50).map(|i| format!("m{i:02}")).collect::<Vec<_>>());
    for b in delivered {
        assert_valid_discord_body(b);
    }
}

#[tokio::test]
async fn a_failing_channel_does_not_delay_another() {
    let script = Scripted::new(vec![ResponseTemplate::new(500)]);
    let app = with_slack_script("", script.clone()).await;
    for i in 0..5 {
        app.post_event(&call_ended(&format!("c{i}"), "positive")).await;
        app.post_event(&message(&format!("c{i}"), "user", "live")).await;
    }
    wait_until("Discord to get every summary", Duration::from_secs(20), async || bodies(&app.discord).await.len() == 5)
        .await;
    assert!(!script.arrivals().is_empty(), "Slack is being tried meanwhile");
    assert!(
        app.dispatcher.store().pending("live", 100).await.unwrap().len() == 5,
        "Slack's posts are still queued, not lost"
    );
}

#[tokio::test]
async fn a_400_goes_to_the_dead_letters_and_dlq_replay_delivers_it() {
    let script = Scripted::new(vec![ResponseTemplate::new(400).set_body_string("invalid_blocks")]);
    let app = with_slack_script("", script).await;
    app.post_event(&message("c", "user", "rejected once")).await;
    app.post_event(&message("c", "user", "also rejected")).await;
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert!(!letters.is_empty());
    assert!(letters.iter().all(|d| d.reason.contains("400 invalid_blocks") && d.channel == "live"), "{letters:?}");

    let out = bin().args(["dlq", "list", "--config"]).arg(app.config_file()).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && listed.contains("invalid_blocks"), "{listed}");

    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&app.slack).await;
    let out = bin().args(["dlq", "replay", "--all", "--config"]).arg(app.config_file()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the replayed posts", Duration::from_secs(20), async || {
        slack_messages(&bodies(&app.slack).await).len() == 2
    })
    .await;
    assert_eq!(slack_messages(&bodies(&app.slack).await), ["rejected once", "also rejected"]);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_discord_webhook_breaks_the_channel_and_readyz_says_so() {
    let app = spawn_app().await;
    app.discord_api.delete();
    let readyz = || async { app.client.get(format!("{}/readyz", app.address)).send().await.unwrap() };
    assert_eq!(readyz().await.status(), 200);
    for i in 0..3 {
        app.post_event(&call_ended(&format!("c{i}"), "negative")).await;
    }
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert_eq!(app.discord_api.arrivals().len(), 1, "no further requests to a dead webhook");
    assert_eq!(app.dispatcher.store().dead_letters().await.unwrap().len(), 3, "all kept as dead letters");
    let r = readyz().await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["broken_channels"]["summaries"].as_str().unwrap().contains("10015"), "{body}");
    let intake = app.client.get(format!("{}/readyz?scope=intake", app.address)).send().await.unwrap();
    assert_eq!(intake.status(), 200, "a broken channel does not stop intake for the others");
    app.post_event(&message("c", "user", "slack still works")).await;
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["slack still works"]);
}

#[tokio::test]
async fn a_full_store_answers_503_forwards_nothing_and_recovers() {
    // A small store cap, and Slack down, so the queue fills.
    let toml = DEFAULT_TOML.replace(
        "[channels.live]",
        "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"50ms\"\n[store]\nmax_bytes = 262144\n\n[channels.live]",
    );
    let app = spawn_with(&toml).await;
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&app.slack).await;
    let mut accepted = Vec::new();
    let refused = loop {
        let text = format!("n{:03} {}", accepted.len(), "x".repeat(20_000));
        let r = app.post_event(&message("c", "user", &text)).await;
        if r.status() != 200 {
            break (r.status(), r.json::<serde_json::Value>().await.unwrap(), text);
        }
        accepted.push(text);
        assert!(accepted.len() < 200, "store.max_bytes was not enforced");
    };
    assert_eq!(refused.0, 503);
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz says the store cannot take writes");
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert!(ready["store"].as_str().unwrap().contains("full"), "{ready}");
    assert!(refused.1["error"].as_str().unwrap().contains("cannot store"), "{}", refused.1);

    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&app.slack).await;
    assert!(app.dispatcher.idle(Duration::from_secs(30)).await, "the backlog drains");
    let r = app.post_event(&message("c", "user", "after recovery")).await;
    assert_eq!(r.status(), 200, "accepting again once space is freed");
    assert_eq!(app.client.get(format!("{}/readyz", app.address)).send().await.unwrap().status(), 200);
    let delivered: Vec<String> =
        slack_messages(&app.received(&app.slack).await).into_iter().filter(|m| !m.is_empty()).collect();
    let joined = delivered.concat();
    for (i, text) in accepted.iter().enumerate() {
        assert!(joined.contains(&text[..4]), "accepted message {i} was lost");
    }
    assert!(!joined.contains(&refused.2[..4]), "the refused message was forwarded");
    assert!(joined.contains("after recovery"));
}

#[tokio::test]
async fn discord_rate_limit_headers_hold_the_next_post_so_discord_refuses_nothing() {
    // The channel's own budget (1,000 a second) is far above Discord's: only the answers'
    // X-RateLimit headers keep the relay within 5 posts per 2 s.
    let app = spawn_app().await;
    app.discord_api.rate_limited();
    for i in 0..8 {
        app.post_event(&call_ended(&format!("c{i}"), "positive")).await;
    }
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert_eq!(app.discord_api.limited(), 0, "no post went over Discord's budget");
    assert_eq!(app.discord_api.messages().len(), 8);
    let t = app.discord_api.arrivals();
    assert!(t[5] - t[0] >= Duration::from_millis(1900), "the 6th post waited for the window: {:?}", t[5] - t[0]);
}

#[tokio::test]
async fn a_template_that_fails_at_runtime_keeps_the_event_for_a_replay_after_the_fix() {
    let slack = mock_slack().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates/slack")).unwrap();
    let template = dir.path().join("templates/slack/tiered.json.hbs");
    std::fs::write(&template, r#"{"text": "{{message.message}} (tier {{call_data.tier}})"}"#).unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[channels.live]\nkind = \"slack\"\nwebhook_url = \"{}{SLACK_PATH}\"\ntemplates.message = \"slack/tiered.json.hbs\"\n[[routes]]\nchannels = [\"live\"]\n",
            slack.uri()
        ),
    )
    .unwrap();
    let app = callrelay::server::Application::build(
        callrelay::setup::load(&callrelay::config::ConfigSource::File(file.clone())).unwrap(),
    )
    .await
    .unwrap();
    let (dispatcher, url) = (app.dispatcher(), format!("http://127.0.0.1:{}/webhook", app.port()));
    tokio::spawn(app.run_until_stopped());
    // No `call_data.tier` in this event: strict mode fails the template.
    let r = reqwest::Client::new()
        .post(&url)
        .json(&json!({"event_type":"message","call_id":"c7","message":{"sender":"user","message":"hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a template bug is the relay's problem, not the sender's");
    assert!(dispatcher.idle(Duration::from_secs(20)).await, "the lane renders it and gives up on it");
    let letters = dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("slack/tiered.json.hbs") && letters[0].reason.contains("call `c7`"),
        "{}",
        letters[0].reason
    );
    assert!(bodies(&slack).await.is_empty());

    std::fs::write(&template, r#"{"text": "{{message.message}} (tier {{default call_data.tier "none"}})"}"#).unwrap();
    // The running relay renders the replay, so it must have reloaded the fix first.
    let readyz = url.replace("/webhook", "/readyz");
    wait_until("the fixed template to be reloaded", Duration::from_secs(20), async || {
        let r: serde_json::Value = reqwest::get(&readyz).await.unwrap().json().await.unwrap();
        r["config"]["reloads"].as_u64().unwrap() >= 1
    })
    .await;
    let out = bin().args(["dlq", "replay", "--all", "--config"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dispatcher.idle(Duration::from_secs(20)).await);
    let got = bodies(&slack).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "hi (tier none)");
}

#[tokio::test]
async fn dlq_replays_one_by_id_and_purges_by_age() {
    let script = Scripted::new(vec![ResponseTemplate::new(400).set_body_string("invalid_payload")]);
    let app = with_slack_script("", script).await;
    for text in ["first", "second", "third"] {
        app.post_event(&message("c", "user", text)).await;
        assert!(app.dispatcher.idle(Duration::from_secs(20)).await, "each dead-lettered before the next");
    }
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 3);
    let dlq = |args: &[&str]| {
        let out = bin().arg("dlq").args(args).arg("--config").arg(app.config_file()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&app.slack).await;
    let (ok, said) = dlq(&["replay", &letters[1].id.to_string()]);
    assert!(ok, "{said}");
    wait_until("the replayed post", Duration::from_secs(20), async || !bodies(&app.slack).await.is_empty()).await;
    assert_eq!(slack_messages(&bodies(&app.slack).await), ["second"], "only the one replayed");
    let (ok, said) = dlq(&["replay", "999999"]);
    assert!(!ok && said.contains("no dead letter with id 999999"), "{said}");

    let (ok, said) = dlq(&["purge", "--older-than", "1h"]);
    assert!(ok && said.contains("Purged 0 dead letters"), "{said}");
    let (ok, said) = dlq(&["purge"]);
    assert!(ok && said.contains("Purged 2 dead letters"), "{said}");
    let (_, said) = dlq(&["list"]);
    assert!(said.contains("No dead letters"), "{said}");
}
