//! One thread per call (`threads = "per_call"`): Slack app channels (a parent, then replies with
//! `thread_ts`) and Discord forum channels (`thread_name`, then `?thread_id=`), against stand-ins
//! that answer as the platforms do, across a restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;
use crate::platform_rules::SlackWebApi;

/// A Discord forum webhook with `wait=true`: a post with `thread_name` creates a thread (its id is
/// the message's `channel_id`); a post with `?thread_id=` goes into it; anything else is refused
/// as Discord refuses it in a forum (220001).
#[derive(Clone, Default)]
struct DiscordForum(Arc<AtomicU64>);

impl Respond for DiscordForum {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let thread = request.url.query_pairs().find(|(k, _)| k == "thread_id").map(|(_, v)| v.into_owned());
        match (thread, body.get("thread_name")) {
            (Some(t), None) => ResponseTemplate::new(200).set_body_json(json!({"id": format!("m{n}"), "channel_id": t})),
            (None, Some(_)) => ResponseTemplate::new(200).set_body_json(json!({"id": format!("m{n}"), "channel_id": format!("thread{n}")})),
            _ => ResponseTemplate::new(400).set_body_json(json!({"code": 220001, "message": "Webhooks posted to forum channels must have a thread_name or thread_id"})),
        }
    }
}

const THREADED: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.live]
kind = "slack"
bot_token = "xoxb-test"
channel = "C0123ABCD"
api_url = "{slack_base}/api"
threads = "per_call"
broadcast_summary = true
rate_limit = ["1000/1s"]
[channels.forum]
kind = "discord"
webhook_url = "{discord}"
threads = "per_call"
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended"]
channels = ["live", "forum"]
"#;

async fn stand_ins(slack: &MockServer, discord: &MockServer) {
    slack.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(SlackWebApi::default())
        .mount(slack)
        .await;
    let updated = json!({"ok": true, "channel": "C0123ABCD", "ts": "edited"});
    Mock::given(method("POST"))
        .and(path("/api/chat.update"))
        .respond_with(ResponseTemplate::new(200).set_body_json(updated))
        .mount(slack)
        .await;
    discord.reset().await;
    Mock::given(method("POST")).and(path(DISCORD_PATH)).respond_with(DiscordForum::default()).mount(discord).await;
}

/// Slack posts grouped by thread: (parent text, the utterances replied in it, in order; the
/// summary apart).
fn slack_threads(bodies: &[Value], parents_ts: &[String]) -> Vec<(String, Vec<String>)> {
    let parents: Vec<&Value> = bodies.iter().filter(|b| b.get("thread_ts").is_none()).collect();
    parents
        .iter()
        .zip(parents_ts)
        .map(|(p, ts)| {
            let replies = bodies
                .iter()
                .filter(|b| b["thread_ts"] == json!(ts) && !b["text"].as_str().unwrap_or("").contains("Call ended"))
                .cloned()
                .collect::<Vec<_>>();
            (p["text"].as_str().unwrap_or("").to_owned(), slack_messages(&replies))
        })
        .collect()
}

#[tokio::test]
async fn two_interleaved_calls_end_in_two_threads_with_every_utterance_in_order() {
    let app = spawn_with(THREADED).await;
    stand_ins(&app.slack, &app.discord).await;
    for (call, text) in [("call-a", "a1"), ("call-b", "b1"), ("call-a", "a2"), ("call-b", "b2"), ("call-a", "a3")] {
        let mut m = message(call, "user", text);
        m["call_data"]["userName"] = json!(if call == "call-a" { "Alice" } else { "Bob" });
        assert_eq!(app.post_event(&m).await.status(), 200);
    }
    assert_eq!(app.post_event(&call_ended("call-a", "positive")).await.status(), 200);

    // Slack: a parent per call, then replies with its ts; the summary is a broadcast reply.
    let requests = app.requests(&app.slack).await;
    let of = |method: &str| -> Vec<Value> {
        requests
            .iter()
            .filter(|r| r.url.path().ends_with(method))
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    let slack = of("chat.postMessage");
    let ts: Vec<String> = (1..=slack.len()).map(|n| format!("1700000000.{n:06}")).collect();
    let parent_ts: Vec<String> =
        slack.iter().zip(&ts).filter(|(b, _)| b.get("thread_ts").is_none()).map(|(_, t)| t.clone()).collect();
    assert_eq!(parent_ts.len(), 2, "one parent per call: {slack:#?}");
    let threads = slack_threads(&slack, &parent_ts);
    assert!(threads[0].0.contains("Live call with Alice"), "{threads:?}");
    assert_eq!(threads[0].1, ["a1", "a2", "a3"]);
    assert!(threads[1].0.contains("Live call with Bob"));
    assert_eq!(threads[1].1, ["b1", "b2"]);
    let summary = slack.iter().find(|b| b["text"].as_str().unwrap_or("").contains("Call ended")).unwrap();
    assert_eq!(summary["thread_ts"], json!(parent_ts[0]), "the summary goes into call A's thread");
    assert_eq!(summary["reply_broadcast"], true);
    assert!(slack.iter().all(|b| b["channel"] == "C0123ABCD"));
    // Then call A's parent shows the outcome; call B has not ended.
    let edits = of("chat.update");
    assert_eq!(edits.len(), 1, "{edits:#?}");
    assert_eq!(edits[0]["ts"], json!(parent_ts[0]));
    assert!(
        edits[0]["text"].as_str().unwrap().contains("Call with John Doe ended: Account Support (5m 30s)"),
        "{}",
        edits[0]
    );
    let last_update = requests.iter().position(|r| r.url.path().ends_with("chat.update")).unwrap();
    let summary_at = requests.iter().position(|r| String::from_utf8_lossy(&r.body).contains("Call ended")).unwrap();
    assert!(summary_at < last_update, "the parent is edited after the summary is in the thread");

    // Discord: each call's first post names its thread; the rest go into it.
    let requests = app.requests(&app.discord).await;
    let mut by_thread: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut created = Vec::new();
    for (n, r) in requests.iter().enumerate() {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let thread = match r.url.query_pairs().find(|(k, _)| k == "thread_id") {
            Some((_, t)) => t.into_owned(),
            None => {
                created.push(body["thread_name"].as_str().unwrap().to_owned());
                format!("thread{}", n + 1)
            }
        };
        let said = strings(&body).into_iter().filter(|s| s.starts_with('a') || s.starts_with('b')).collect::<Vec<_>>();
        by_thread.entry(thread).or_default().extend(said.into_iter().filter(|s| s.len() == 2));
    }
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created[0].contains("Alice") && created[1].contains("Bob"), "{created:?}");
    let threads: Vec<&Vec<String>> = by_thread.values().collect();
    assert_eq!(threads, [&vec!["a1".to_owned(), "a2".into(), "a3".into()], &vec!["b1".to_owned(), "b2".into()]]);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_mid_call_continues_the_same_thread() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    stand_ins(&slack, &discord).await;
    let (_dir, file) = write_config(THREADED, &slack, &discord);
    let first = Served::config(&file);
    assert_eq!(first.post_event(&message("call-r", "user", "before")).await.status(), 200);
    wait_until("the first reply", Duration::from_secs(20), async || bodies(&slack).await.len() >= 2).await;
    first.wait_idle().await; // recorded, not just sent: a kill in between may send a post twice
    drop(first);
    let second = Served::config(&file);
    assert_eq!(second.post_event(&message("call-r", "user", "after")).await.status(), 200);
    wait_until("the reply after the restart", Duration::from_secs(20), async || bodies(&slack).await.len() >= 3).await;
    wait_until("Discord's two posts", Duration::from_secs(20), async || {
        discord.received_requests().await.unwrap().len() >= 2
    })
    .await;

    let got = bodies(&slack).await;
    assert_eq!(got.len(), 3, "one parent, two replies: {got:#?}");
    assert!(got[0].get("thread_ts").is_none());
    assert_eq!(got[1]["thread_ts"], "1700000000.000001");
    assert_eq!(got[2]["thread_ts"], "1700000000.000001", "the restarted relay replied into the same thread");
    let requests = discord.received_requests().await.unwrap();
    assert_eq!(
        requests[1].url.query_pairs().find(|(k, _)| k == "thread_id").map(|(_, v)| v.into_owned()).as_deref(),
        Some("thread1")
    );
}

#[tokio::test]
async fn a_text_channel_without_threads_and_a_refused_parent_fall_back_to_flat_posts() {
    let app = spawn_with(THREADED).await;
    app.slack.reset().await;
    // Slack refuses the parent (and only the parent) for good.
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("Live call"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_blocks"})))
        .mount(&app.slack)
        .await;
    Mock::given(method("POST")).respond_with(SlackWebApi::default()).mount(&app.slack).await;
    // A Discord text channel: threads are refused with 220003; plain posts are fine.
    app.discord.reset().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("thread_name"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 220003, "message": "This channel does not allow threads"})),
        )
        .mount(&app.discord)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "m"})))
        .mount(&app.discord)
        .await;
    for text in ["one", "two"] {
        assert_eq!(app.post_event(&message("call-f", "user", text)).await.status(), 200);
    }
    let slack = app.received(&app.slack).await;
    let flat: Vec<&Value> = slack.iter().filter(|b| !b["text"].as_str().unwrap_or("").contains("Live call")).collect();
    assert_eq!(slack_messages(&flat.into_iter().cloned().collect::<Vec<_>>()), ["one", "two"]);
    assert!(slack.iter().all(|b| b.get("thread_ts").is_none()), "posted flat, never lost");
    let discord = app.received(&app.discord).await;
    let delivered: String = discord.iter().filter(|b| b.get("thread_name").is_none()).flat_map(strings).collect();
    assert!(delivered.contains("one") && delivered.contains("two"), "both posted flat: {delivered}");
    assert_eq!(discord.iter().filter(|b| b.get("thread_name").is_some()).count(), 1, "tried once, then flat");
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[test]
fn threads_on_a_slack_incoming_webhook_are_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "[channels.live]\nkind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/x\"\nthreads = \"per_call\"\n[[routes]]\nchannels = [\"live\"]\n").unwrap();
    let out = bin().arg("check").arg("--config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("relay.toml:1: channel `live`: `threads = \"per_call\"` needs a Slack app"), "{said}");
}

#[tokio::test]
async fn a_call_whose_forum_thread_was_archived_continues_in_a_new_thread() {
    let app = spawn_with(THREADED).await;
    stand_ins(&app.slack, &app.discord).await;
    assert_eq!(app.post_event(&message("call-z", "user", "before")).await.status(), 200);
    assert_eq!(app.received(&app.discord).await.len(), 1);
    // A moderator archives the thread: Discord refuses posts into it with 50083.
    Mock::given(method("POST"))
        .and(wiremock::matchers::query_param("thread_id", "thread1"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 50083, "message": "Thread is archived"})))
        .with_priority(1)
        .mount(&app.discord)
        .await;
    assert_eq!(app.post_event(&message("call-z", "user", "after")).await.status(), 200);
    let requests = app.requests(&app.discord).await;
    let last: Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    assert!(last["thread_name"].as_str().is_some(), "a new thread for the rest of the call: {last}");
    assert!(strings(&last).iter().any(|s| s == "after"));
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty(), "nothing lost");
    for r in &requests {
        assert_valid_discord_body(&serde_json::from_slice(&r.body).unwrap());
    }
}

#[tokio::test]
async fn a_summary_only_slack_channel_makes_the_summary_the_parent_and_puts_the_transcript_in_its_thread() {
    let toml = THREADED.replace("events = [\"message\", \"call_ended\"]", "events = [\"call_ended\"]");
    let app = spawn_with(&toml).await;
    stand_ins(&app.slack, &app.discord).await;
    assert_eq!(app.post_event(&call_ended("call-s", "negative")).await.status(), 200);
    let requests = app.requests(&app.slack).await;
    let methods: Vec<&str> = requests.iter().map(|r| r.url.path().rsplit('/').next().unwrap()).collect();
    assert_eq!(methods, ["chat.postMessage", "chat.postMessage"], "no separate parent, no edit");
    let parent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let reply: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert!(parent.get("thread_ts").is_none());
    assert!(parent["text"].as_str().unwrap().contains("Call ended with John Doe"), "{parent}");
    assert!(!strings(&parent).concat().contains("My card was declined."), "the transcript is not in the channel");
    assert_eq!(reply["thread_ts"], "1700000000.000001");
    assert!(strings(&reply).concat().contains("My card was declined."), "the transcript is in the thread: {reply}");
    // Discord: the summary opens the forum thread.
    let discord = app.received(&app.discord).await;
    assert!(discord[0]["thread_name"].as_str().is_some());
}

#[test]
fn render_shows_how_each_post_lands_in_the_calls_thread() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let toml = THREADED
        .replace("{slack_base}", "https://slack.test")
        .replace("{discord}", "https://discord.test/api/webhooks/1/x");
    std::fs::write(&file, toml).unwrap();
    let out = bin().arg("render").arg("--config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("→ channel `live`, thread per call: parent post (call_started)"), "{said}");
    assert!(said.contains("→ channel `forum`, thread per call: the first post creates the forum thread \"📞 John Doe"));
    assert!(said.contains("then the thread's parent is edited (chat.update) to:"));
}
