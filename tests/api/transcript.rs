//! Live transcripts (`live_transcript = true`): one message per call, edited as utterances
//! arrive, continued in a new message when full, on stand-ins for Slack's Web API and Discord.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::platform_rules::SlackWebApi;

const TRANSCRIBED: &str = r#"
[server]
listen = "127.0.0.1:0"
[delivery]
backoff_base = "20ms"
backoff_cap = "50ms"
[channels.live]
kind = "slack"
bot_token = "xoxb-test"
channel = "C0123ABCD"
api_url = "{slack_base}/api"
live_transcript = true
rate_limit = ["1000/1s"]
[channels.calls]
kind = "discord"
webhook_url = "{discord}"
live_transcript = true
rate_limit = ["1000/1s"]
[[routes]]
events = ["message"]
channels = ["live", "calls"]
"#;

async fn slack_api(server: &MockServer) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/chat\\.(postMessage|update)$"))
        .respond_with(SlackWebApi::default())
        .mount(server)
        .await;
}

async fn discord_api(server: &MockServer) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(DISCORD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "m1", "channel_id": "c"})))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/api/v10/webhooks/123456/discordsecrettoken/messages/m[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "m1", "channel_id": "c"})))
        .mount(server)
        .await;
}

/// The requests a mock got, as (method name or HTTP verb, JSON body).
async fn calls(app: &TestApp, server: &MockServer) -> Vec<(String, Value)> {
    app.requests(server)
        .await
        .iter()
        .map(|r| {
            let what = match r.url.path().rsplit('/').next().unwrap() {
                m if m.starts_with("chat.") => m.to_owned(),
                _ => r.method.to_string(),
            };
            (what, serde_json::from_slice(&r.body).unwrap())
        })
        .collect()
}

fn said(body: &Value) -> String {
    strings(body).join("\n")
}

#[tokio::test]
async fn one_message_per_call_is_edited_as_utterances_arrive() {
    let app = spawn_with(TRANSCRIBED).await;
    slack_api(&app.slack).await;
    discord_api(&app.discord).await;
    for text in ["first @here", "second", "third"] {
        assert_eq!(app.post_event(&message("call-t", "user", text)).await.status(), 200);
        assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    }
    assert_eq!(app.post_event(&message("call-u", "user", "other call")).await.status(), 200);

    let slack = calls(&app, &app.slack).await;
    let posted: Vec<&(String, Value)> = slack.iter().filter(|(m, _)| m == "chat.postMessage").collect();
    assert_eq!(posted.len(), 2, "one message per call: {slack:#?}");
    let updates: Vec<&Value> = slack.iter().filter(|(m, _)| m == "chat.update").map(|(_, b)| b).collect();
    assert_eq!(updates.len(), 2, "each later utterance edits the call's message");
    assert!(updates.iter().all(|u| u["ts"] == "1700000000.000001"));
    let last = said(updates[1]);
    let order: Vec<usize> = ["first @here", "second", "third"].iter().map(|t| last.find(t).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "every utterance, in order: {last}");
    assert!(crate::platform_rules::slack_notifications(updates[1]).is_empty());
    assert!(said(&posted[1].1).contains("other call"));

    let discord = calls(&app, &app.discord).await;
    assert_eq!(discord.iter().filter(|(m, _)| m == "POST").count(), 2);
    let patches: Vec<&Value> = discord.iter().filter(|(m, _)| m == "PATCH").map(|(_, b)| b).collect();
    assert_eq!(patches.len(), 2);
    for p in &patches {
        assert_eq!(p["allowed_mentions"], json!({"parse": []}), "every edit re-sends allowed_mentions");
        assert_valid_discord_body(p);
    }
    assert!(said(patches[1]).contains("third") && said(patches[1]).contains("first @here"));
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_full_transcript_continues_in_a_new_message() {
    let app = spawn_with(TRANSCRIBED).await;
    slack_api(&app.slack).await;
    discord_api(&app.discord).await;
    let long = |i: usize| format!("utterance {i} {}", "word ".repeat(280));
    for i in 0..5 {
        assert_eq!(app.post_event(&message("call-l", "user", &long(i))).await.status(), 200);
        assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    }
    let slack = calls(&app, &app.slack).await;
    let posted: Vec<&Value> = slack.iter().filter(|(m, _)| m == "chat.postMessage").map(|(_, b)| b).collect();
    assert!(posted.len() >= 2, "4,000 characters hold about two of these: {}", posted.len());
    assert!(posted[1]["text"].as_str().unwrap().contains("(part 2)"), "{}", posted[1]);
    // Across the messages' final states, every utterance once.
    let mut last_state: std::collections::BTreeMap<String, String> = Default::default();
    let mut ts = 0;
    for (m, b) in &slack {
        let key = if m == "chat.postMessage" {
            ts += 1;
            format!("1700000000.{ts:06}")
        } else {
            b["ts"].as_str().unwrap().to_owned()
        };
        last_state.insert(key, said(b));
    }
    let all: String = last_state.values().cloned().collect();
    for i in 0..5 {
        assert_eq!(all.matches(&format!("utterance {i} ")).count(), 1, "utterance {i} once");
    }
}

#[tokio::test]
async fn an_edit_answered_429_is_retried_after_the_wait_and_a_capped_discord_edit_continues_anew() {
    let app = spawn_with(TRANSCRIBED).await;
    slack_api(&app.slack).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.update"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"ok": false, "error": "ratelimited"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.slack)
        .await;
    discord_api(&app.discord).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 30046, "message": "Maximum number of edits to messages older than 1 hour reached."}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.discord)
        .await;
    assert_eq!(app.post_event(&message("call-r", "user", "one")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let started = Instant::now();
    assert_eq!(app.post_event(&message("call-r", "user", "two")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(started.elapsed() >= Duration::from_secs(1), "Slack's wait was honoured");

    let slack = calls(&app, &app.slack).await;
    let updates: Vec<&Value> = slack.iter().filter(|(m, _)| m == "chat.update").map(|(_, b)| b).collect();
    assert_eq!(updates.len(), 2, "the same edit, again after the wait");
    assert!(said(updates[1]).contains("two"));
    let discord = calls(&app, &app.discord).await;
    let posts: Vec<&Value> = discord.iter().filter(|(m, _)| m == "POST").map(|(_, b)| b).collect();
    assert_eq!(posts.len(), 2, "after 30046 the transcript continues in a new message: {discord:#?}");
    assert!(said(posts[1]).contains("two") && said(posts[1]).contains("part 2"));
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_mid_call_goes_on_editing_the_same_transcript_in_the_same_thread() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    slack_api(&slack).await;
    discord_api(&discord).await;
    let toml = TRANSCRIBED
        .replace("live_transcript = true\nrate_limit", "live_transcript = true\nthreads = \"per_call\"\nrate_limit");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let first = Served::config(&file);
    assert_eq!(first.post_event(&message("call-s", "user", "before the restart")).await.status(), 200);
    // The thread's parent, then the transcript message in it.
    wait_until("the transcript's first message", Duration::from_secs(20), async || bodies(&slack).await.len() >= 2)
        .await;
    first.wait_idle().await; // recorded, not just sent: a kill in between may send a post twice
    drop(first);
    let second = Served::config(&file);
    assert_eq!(second.post_event(&message("call-s", "user", "after the restart")).await.status(), 200);
    wait_until("the edit after the restart", Duration::from_secs(20), async || bodies(&slack).await.len() >= 3).await;

    let requests = slack.received_requests().await.unwrap();
    let methods: Vec<&str> = requests.iter().map(|r| r.url.path().rsplit('/').next().unwrap()).collect();
    assert_eq!(methods, ["chat.postMessage", "chat.postMessage", "chat.update"], "parent, transcript, one edit");
    let transcript: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let edit: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(transcript["thread_ts"], "1700000000.000001", "the transcript is in the call's thread");
    assert_eq!(edit["ts"], "1700000000.000002", "the restarted relay edits the same message");
    assert!(
        said(&edit).contains("before the restart") && said(&edit).contains("after the restart"),
        "{edit}\n{transcript}"
    );
}
