//! The real binary: `check`, `render`, `serve` on a fresh machine, and `simulate`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml")
}

const SLACK_SECRET: &str = "https://hooks.slack.test/services/T000/B000/slack-token-do-not-print";
const DISCORD_SECRET: &str = "https://discord.test/api/webhooks/123/discord-token-do-not-print";

#[test]
fn check_passes_the_shipped_config_and_templates_without_printing_secrets() {
    let out = bin()
        .args(["check", "--config"])
        .arg(shipped_config())
        .env("SLACK_WEBHOOK_URL", SLACK_SECRET)
        .env("DISCORD_WEBHOOK_URL", DISCORD_SECRET)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("live") && text.contains("summaries") && text.contains("OK"), "{text}");
    assert!(text.contains("https://hooks.slack.test/…"), "{text}");
    assert!(!text.contains("do-not-print") && !text.contains("T000"), "{text}");
}

#[test]
fn check_reports_unset_webhook_variables_and_fails() {
    let out = bin().args(["check", "--config"]).arg(shipped_config()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("channel `live`") && err.contains("SLACK_WEBHOOK_URL"), "{err}");
    assert!(err.contains("channel `summaries`") && err.contains("DISCORD_WEBHOOK_URL"), "{err}");
}

#[test]
fn check_names_file_line_and_channel_of_a_template_bug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates/slack")).unwrap();
    std::fs::write(
        dir.path().join("templates/slack/mine.json.hbs"),
        "{\n  \"text\": \"{{message.message}}\",\n  \"oops\": {{message.sender}}\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("relay.toml"),
        format!("[channels.live]\nkind = \"slack\"\nwebhook_url = \"{SLACK_SECRET}\"\ntemplates.message = \"slack/mine.json.hbs\"\n[[routes]]\nchannels = [\"live\"]\n"),
    )
    .unwrap();
    let out = bin().args(["check", "--config"]).arg(dir.path().join("relay.toml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("template `slack/mine.json.hbs`")
            && err.contains("not valid JSON")
            && err.contains("channel `live`"),
        "{err}"
    );
    // call_ended still uses the shipped default (from the built-in copy: this directory lacks it)
    assert!(!err.contains("call_ended.json.hbs"), "{err}");
}

#[test]
fn check_renders_the_relays_own_events_through_their_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates/discord")).unwrap();
    std::fs::write(
        dir.path().join("templates/discord/call_timed_out.json.hbs"),
        "{\"content\": \"{{call.no_such}}\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("relay.toml"),
        "[channels.ops]\nkind = \"discord\"\nwebhook_url = \"https://discord.com/api/webhooks/1/x\"\n\
         [[routes]]\nevents = [\"call_started\", \"call_timed_out\"]\nchannels = [\"ops\"]\n",
    )
    .unwrap();
    let out = bin().args(["check", "--config"]).arg(dir.path().join("relay.toml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("discord/call_timed_out.json.hbs") && err.contains("sample \"call_timed_out"), "{err}");
    assert!(!err.contains("call_started.json.hbs"), "the shipped call_started renders every sample: {err}");

    // `render` shows a call_started as the channel would get it.
    let event = dir.path().join("started.json");
    std::fs::write(
        &event,
        r#"{"event_type":"call_started","call_id":"c-1","user_name":"Ann","call_data":{"agentId":"a-1"}}"#,
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("templates/discord/call_timed_out.json.hbs")).unwrap();
    let out = bin()
        .args(["render", "--config"])
        .arg(dir.path().join("relay.toml"))
        .arg("--event")
        .arg(&event)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("Call started") && stdout.contains("a-1"), "{stdout}");
}

#[test]
fn render_prints_the_exact_body_for_each_routed_channel() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, serde_json::to_string(&message("call_9", "ai", "Hello <there> & welcome")).unwrap())
        .unwrap();
    let out = bin().args(["render", "--config"]).arg(shipped_config()).arg("--event").arg(&event).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("channel `live`") && lines[0].contains("slack/message.json.hbs"), "{stdout}");
    let body: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(body["blocks"][1]["text"]["text"], "Hello &lt;there&gt; &amp; welcome");
    assert_eq!(lines.len(), 2, "messages go to `live` only: {stdout}");

    let out = bin()
        .args(["render", "--config"])
        .arg(shipped_config())
        .args(["--channel", "summaries", "--event"])
        .arg(&event)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no route sends this event here"), "{stdout}");
    let body: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_valid_discord_body(&body);
}

#[tokio::test]
async fn serve_starts_on_a_fresh_machine_with_unset_urls_and_says_which_channels_are_disabled() {
    let slack = mock_slack().await;
    let mut cmd = bin();
    let data = tempfile::tempdir().unwrap();
    cmd.arg("--config").arg(shipped_config()).env("CALLRELAY__SERVER__LISTEN", "127.0.0.1:0");
    cmd.env("CALLRELAY__STORE__PATH", data.path().join("callrelay.db"));
    cmd.env("SLACK_WEBHOOK_URL", format!("{}{SLACK_PATH}", slack.uri()));
    let served = Served::start(cmd);
    let base = format!("http://127.0.0.1:{}", served.port);
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let r =
        client.post(format!("{base}/webhook")).json(&serde_json::json!({"event_type":"test"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.post(format!("{base}/webhook")).json(&call_ended("c", "positive")).send().await.unwrap();
    assert_eq!(r.status(), 200, "accepted even though its only channel is disabled");

    let deadline = Instant::now() + Duration::from_secs(10);
    while slack.received_requests().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the test event never reached Slack");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = served.log();
    assert!(log.contains("summaries") && log.contains("DISCORD_WEBHOOK_URL"), "{log}");
    assert!(!log.contains("slacksecrettoken"), "the webhook token leaked into the log: {log}");
}

#[tokio::test]
async fn simulate_plays_a_call_that_reaches_both_platforms() {
    let app = spawn_app().await;
    let url = app.webhook.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin().args(["simulate", "--messages", "4", "--url", &url]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("CORS preflight → 204"), "{stdout}");
    let slack = app.received(&app.slack).await;
    assert!(slack[0]["text"].as_str().unwrap().contains("connected"), "the test event comes first");
    assert_eq!(slack_messages(&slack[1..]).len(), 4, "then the 4 messages");
    let discord = app.received(&app.discord).await;
    assert_eq!(discord.len(), 1);
    assert_eq!(discord[0]["embeds"][0]["title"], "📞 Billing question");
}
