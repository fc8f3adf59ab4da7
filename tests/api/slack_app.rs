//! Slack app channels: `chat.postMessage` with a bot token against a stand-in for Slack's Web API,
//! which answers errors as HTTP 200 with `{"ok": false}`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::platform_rules::slack_notifications;

const TOKEN: &str = "xoxb-1111-2222-SeCrEtBoTtOkEn";

/// Live messages to a Slack app channel on the stand-in.
const APP_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
[delivery]
backoff_base = "20ms"
backoff_cap = "50ms"
[channels.app]
kind = "slack"
bot_token = "xoxb-1111-2222-SeCrEtBoTtOkEn"
channel = "C0123ABCD"
api_url = "{slack_base}/api"
rate_limit = ["1000/1s"]
coalesce = false
[[routes]]
events = ["message", "test"]
channels = ["app"]
"#;

fn slack_error(error: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": error}))
}

/// Answers `chat.postMessage` with `answer`, only when the bot token is presented.
async fn web_api(server: &MockServer, answer: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(answer)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_message_is_posted_with_the_bot_token_into_the_configured_channel() {
    let app = spawn_with(APP_TOML).await;
    assert_eq!(app.post_event(&message("c1", "user", "@here my card was declined")).await.status(), 200);
    let requests = app.requests(&app.slack).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(requests[0].headers["authorization"], format!("Bearer {TOKEN}").as_str());
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["channel"], "C0123ABCD");
    assert_eq!(slack_messages(std::slice::from_ref(&body)), ["@here my card was declined"]);
    assert!(slack_notifications(&body).is_empty(), "the same mention safety as webhooks: {body}");
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_revoked_token_marks_the_channel_broken_and_keeps_its_posts() {
    let app = spawn_with(APP_TOML).await;
    web_api(&app.slack, slack_error("token_revoked")).await;
    app.post_event(&message("c1", "user", "first")).await;
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let ready = readyz(&app).await;
    assert!(ready["broken_channels"]["app"].as_str().unwrap().contains("token_revoked"), "{ready}");
    app.post_event(&message("c1", "user", "second")).await;
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 2, "nothing is lost: both wait as dead letters for a new token");
    assert_eq!(app.slack.received_requests().await.unwrap().len(), 1, "a broken token is not tried again");
}

#[tokio::test]
async fn a_refused_payload_is_dead_lettered_without_breaking_the_channel() {
    let app = spawn_with(APP_TOML).await;
    web_api(&app.slack, slack_error("invalid_blocks")).await;
    app.post_event(&message("c1", "user", "x")).await;
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert!(letters[0].reason.contains("invalid_blocks"), "{}", letters[0].reason);
    assert!(readyz(&app).await["broken_channels"].get("app").is_none());
}

#[tokio::test]
async fn ratelimited_is_retried_after_the_wait_slack_asks_for() {
    let app = spawn_with(APP_TOML).await;
    app.slack_api.answer_first([ResponseTemplate::new(429)
        .insert_header("retry-after", "1")
        .set_body_json(json!({"ok": false, "error": "ratelimited"}))]);
    let started = Instant::now();
    app.post_event(&message("c1", "user", "patience")).await;
    let requests = app.requests(&app.slack).await;
    assert_eq!(requests.len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as asked");
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[test]
fn check_explains_app_channel_mistakes_and_never_prints_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let write = |channel: &str| {
        std::fs::write(
            &file,
            format!("[channels.app]\nkind = \"slack\"\n{channel}\n[[routes]]\nchannels = [\"app\"]\n"),
        )
        .unwrap()
    };
    let check = || {
        let out = bin().arg("check").arg("--config").arg(&file).env("CALLRELAY_TEST_BOT", TOKEN).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    write("bot_token = \"${CALLRELAY_TEST_BOT}\"\nchannel = \"C0123ABCD\"");
    let (ok, said) = check();
    assert!(ok, "{said}");
    assert!(said.contains("app, channel C0123ABCD via slack.com"), "{said}");
    for (channel, expected) in [
        ("bot_token = \"${CALLRELAY_TEST_BOT}\"\nchannel = \"#general\"", "`channel` must be a channel ID"),
        ("bot_token = \"${CALLRELAY_TEST_BOT}\"", "`bot_token` needs `channel`"),
        ("webhook_url = \"https://hooks.slack.com/services/T/B/x\"\nbot_token = \"${CALLRELAY_TEST_BOT}\"", "not both"),
        ("channel = \"C0123ABCD\"", "needs `webhook_url`"),
        (
            "bot_token = \"${CALLRELAY_TEST_UNSET_BOT}\"\nchannel = \"C0123ABCD\"",
            "CALLRELAY_TEST_UNSET_BOT` is not set",
        ),
    ] {
        write(channel);
        let (ok, said) = check();
        assert!(!ok && said.contains(expected), "{channel}: {said}");
        assert!(said.contains("relay.toml:1: channel `app`") || said.contains("channel `app`: disabled"), "{said}");
        assert!(!said.contains("SeCrEtBoTtOkEn"), "{said}");
    }
}

#[tokio::test]
async fn the_bot_token_never_appears_in_logs_or_send_test_output() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    web_api(&slack, slack_error("invalid_auth")).await;
    let toml = APP_TOML.replace(&format!("\"{TOKEN}\""), "\"${CALLRELAY_TEST_BOT}\"");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("RUST_LOG", "trace").env("CALLRELAY_TEST_BOT", TOKEN);
    let served = Served::start(cmd);
    let url = format!("http://127.0.0.1:{}/webhook", served.port);
    let r = reqwest::Client::new().post(&url).json(&message("c", "user", "hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_until("the refusal to be logged", Duration::from_secs(20), async || served.log().contains("invalid_auth"))
        .await;
    let out = bin()
        .args(["send-test", "--channel", "app", "--config"])
        .arg(&file)
        .env("CALLRELAY_TEST_BOT", TOKEN)
        .output()
        .unwrap();
    let said = served.log() + &String::from_utf8_lossy(&out.stdout) + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("200 {\"ok\":false,\"error\":\"invalid_auth\"}"), "send-test shows Slack's answer: {said}");
    assert_eq!(out.status.code(), Some(1));
    assert!(!said.contains("SeCrEtBoTtOkEn"), "{said}");
}

#[tokio::test]
async fn a_long_message_is_posted_exactly_once() {
    let app = spawn_with(APP_TOML).await;
    // Slack echoes the whole message, its blocks included: this answer runs to several KB.
    let long = format!("my card was declined {}", "and then it was declined again ".repeat(80));
    assert_eq!(app.post_event(&message("c1", "user", &long)).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert_eq!(app.slack_api.requests().len(), 1, "Slack accepted it: it is not sent again");
    assert_eq!(app.slack_api.messages().len(), 1);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}
