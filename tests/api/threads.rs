//! One thread per call (`threads = "per_call"`): Slack app channels (a parent, then replies with
//! `thread_ts`) and Discord forum channels (`thread_name`, then `?thread_id=`), against stand-ins
//! that answer as the platforms do, across a restart.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::standins::{Discord, SlackApi};

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

/// The relay's stand-ins, with Discord's webhook in a forum channel.
fn forum(app: &TestApp) -> &Discord {
    app.discord_api.forum();
    &app.discord_api
}

/// Stand-ins on fresh servers for a relay run as a process: Slack, and a Discord forum.
async fn served_stand_ins() -> (MockServer, SlackApi, MockServer, Discord) {
    let slack = MockServer::start().await;
    let slack_api = crate::standins::slack::mount(&slack).await;
    let discord = MockServer::start().await;
    let forum = Discord::mount(&discord).await;
    forum.forum();
    (slack, slack_api, discord, forum)
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
    forum(&app);
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
    assert!(threads[0].0.contains("Call started with Alice"), "{threads:?}");
    assert_eq!(threads[0].1, ["a1", "a2", "a3"]);
    assert!(threads[1].0.contains("Call started with Bob"));
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
    let created = app.discord_api.threads();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created[0].1.contains("Alice") && created[1].1.contains("Bob"), "{created:?}");
    let said_in = |thread: &str| -> Vec<String> {
        let messages = app.discord_api.messages();
        let texts = messages.iter().filter(|m| m.channel_id == thread).flat_map(|m| strings(&m.body));
        texts.filter(|s| s.len() == 2 && (s.starts_with('a') || s.starts_with('b'))).collect()
    };
    assert_eq!(said_in(&created[0].0), ["a1", "a2", "a3"]);
    assert_eq!(said_in(&created[1].0), ["b1", "b2"]);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_mid_call_continues_the_same_thread() {
    let (slack, _, discord, forum) = served_stand_ins().await;
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
        requests[1].url.query_pairs().find(|(k, _)| k == "thread_id").map(|(_, v)| v.into_owned()),
        Some(forum.threads()[0].0.clone())
    );
}

#[tokio::test]
async fn a_text_channel_without_threads_and_a_refused_parent_fall_back_to_flat_posts() {
    let app = spawn_with(THREADED).await;
    // Slack refuses the parent (and only the parent) for good.
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("Call started"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_blocks"})))
        .with_priority(1)
        .mount(&app.slack)
        .await;
    // The Discord stand-in is a text channel: it refuses threads with 220003, as Discord does.
    for text in ["one", "two"] {
        assert_eq!(app.post_event(&message("call-f", "user", text)).await.status(), 200);
    }
    let slack = app.received(&app.slack).await;
    let flat: Vec<&Value> =
        slack.iter().filter(|b| !b["text"].as_str().unwrap_or("").contains("Call started")).collect();
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
async fn a_call_whose_forum_thread_was_locked_continues_in_a_new_thread() {
    let app = spawn_with(THREADED).await;
    forum(&app);
    assert_eq!(app.post_event(&message("call-z", "user", "before")).await.status(), 200);
    assert_eq!(app.received(&app.discord).await.len(), 1);
    // A moderator archives and locks the thread: Discord refuses posts into it with 50083.
    app.discord_api.lock(&app.discord_api.threads()[0].0);
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
    forum(&app);
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
    assert!(said.contains("→ channel `forum`, thread per call: the first post creates the thread \"📞 John Doe"));
    assert!(said.contains("then the thread's parent is edited to:"));
}

#[tokio::test]
async fn a_long_summary_is_replied_once_in_its_slack_thread_and_the_parent_then_shows_the_outcome() {
    let app = spawn_with(THREADED).await;
    forum(&app);
    assert_eq!(app.post_event(&message("call-long", "user", "hello")).await.status(), 200);
    let mut ended = call_ended("call-long", "negative");
    let lines: Vec<Value> = (0..30)
        .map(|i| json!({"sender": if i % 2 == 0 { "user" } else { "ai" }, "message": format!("line {i}: {}", "words ".repeat(30))}))
        .collect();
    ended["messages"] = json!(lines);
    assert_eq!(app.post_event(&ended).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());

    let messages = app.slack_api.messages();
    let parents: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(parents.len(), 1, "one thread for the call");
    let summaries: Vec<_> =
        messages.iter().filter(|m| m.body["text"].as_str().unwrap_or("").contains("Call ended")).collect();
    assert_eq!(summaries.len(), 1, "the summary is replied exactly once");
    assert_eq!(summaries[0].thread_ts.as_deref(), Some(parents[0].ts.as_str()));
    assert!(summaries[0].text().contains("line 29"), "the whole transcript");
    let requests = app.slack_api.requests();
    let posts = requests.iter().filter(|(m, _)| m == "chat.postMessage").count();
    assert_eq!(posts, messages.len(), "nothing Slack accepted was sent again");
    assert_eq!(parents[0].updates, 1, "then the parent shows the outcome");
    assert!(parents[0].body["text"].as_str().unwrap().contains("ended"), "{}", parents[0].body);
}
