//! Live transcripts (`live_transcript = true`): one message per call, edited as utterances
//! arrive, continued in a new message when full, on stand-ins for Slack's Web API and Discord.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::standins::Discord;

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
    assert_eq!(app.post_event(&message("call-r", "user", "one")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    // The next edit on each platform is refused: Slack's is rate limited, Discord's capped.
    app.slack_api.answer_first([ResponseTemplate::new(429)
        .insert_header("retry-after", "1")
        .set_body_json(json!({"ok": false, "error": "ratelimited"}))]);
    app.discord_api.answer_first([ResponseTemplate::new(400).set_body_json(
        json!({"message": "Maximum number of edits to messages older than 1 hour reached.", "code": 30046}),
    )]);
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

/// Every utterance of `texts` in the messages' final states, once each and in order; `None`
/// when one is missing or repeated.
fn in_order(finals: &[String], count: usize) -> Result<(), String> {
    let all = finals.join("\n");
    let mut last = 0;
    for i in 0..count {
        let tag = format!("utterance {i:02} ");
        match all.matches(&tag).count() {
            1 => {}
            n => return Err(format!("{tag}shown {n} times")),
        }
        let at = all.find(&tag).unwrap();
        if at < last {
            return Err(format!("{tag}out of order"));
        }
        last = at;
    }
    Ok(())
}

#[tokio::test]
async fn sixty_long_utterances_make_a_complete_transcript_on_slack_and_on_a_discord_text_channel() {
    let app = spawn_with(TRANSCRIBED).await;
    let long = |i: usize| format!("utterance {i:02} {}", "many words said ".repeat(12));
    // As a call goes: utterances a few at a time, the relay keeping up in between.
    for burst in (0..60).collect::<Vec<_>>().chunks(4) {
        for &i in burst {
            let sender = if i % 2 == 0 { "user" } else { "ai" };
            assert_eq!(app.post_event(&message("call-60", sender, &long(i))).await.status(), 200);
        }
        assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    }
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty(), "nothing refused or given up");

    let slack = app.slack_api.messages();
    assert!(slack.len() >= 3, "60 long utterances roll over Slack's 4,000 characters: {}", slack.len());
    let finals: Vec<String> = slack.iter().map(|m| m.text()).collect();
    in_order(&finals, 60).unwrap();
    let posts = app.slack_api.requests().iter().filter(|(m, _)| m == "chat.postMessage").count();
    assert_eq!(posts, slack.len(), "no message posted twice");
    assert!(slack.iter().all(|m| m.thread_ts.is_none()));

    let discord = app.discord_api.messages();
    assert!(discord.len() >= 2, "rolled over Discord's 4,096-character description: {}", discord.len());
    let finals: Vec<String> = discord.iter().map(|m| m.text()).collect();
    in_order(&finals, 60).unwrap();
    assert!(discord.iter().map(|m| m.edits).sum::<u32>() > 0, "edited, not reposted");
    let requests = app.discord_api.requests();
    assert_eq!(requests.iter().filter(|(m, _, _)| m == "POST").count(), discord.len(), "no message posted twice");
    assert!(requests.iter().all(|(_, thread, _)| thread.is_none()), "no thread_id on a text channel's edits");
}

/// A Discord forum whose calls each get a thread holding their live transcript.
const FORUM_TRANSCRIPT: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.calls]
kind = "discord"
webhook_url = "{discord}"
live_transcript = true
threads = "per_call"
rate_limit = ["1000/1s"]
[[routes]]
events = ["message"]
channels = ["calls"]
"#;

async fn transcript_across(archive: impl Fn(&Discord, &str)) -> Discord {
    let app = spawn_with(FORUM_TRANSCRIPT).await;
    app.discord_api.forum();
    let say = async |i: usize| {
        let text = format!("utterance {i:02} said");
        assert_eq!(app.post_event(&message("call-a", "user", &text)).await.status(), 200);
        assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    };
    for i in 0..3 {
        say(i).await;
    }
    archive(&app.discord_api, &app.discord_api.threads()[0].0);
    for i in 3..6 {
        say(i).await;
    }
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty(), "nothing lost");
    for (_, _, body) in app.discord_api.requests() {
        assert_valid_discord_body(&body);
    }
    app.discord_api.clone()
}

#[tokio::test]
async fn an_archived_forum_thread_takes_the_rest_of_the_transcript_in_a_new_message() {
    let discord = transcript_across(Discord::archive).await;
    let threads = discord.threads();
    assert_eq!(threads.len(), 1, "a post unarchives the thread: the call keeps it");
    let messages = discord.messages();
    assert!(messages.iter().all(|m| m.channel_id == threads[0].0));
    let finals: Vec<String> = messages.iter().map(|m| m.text()).collect();
    in_order(&finals, 6).unwrap();
    assert_eq!(messages.len(), 2, "the archived message is left as it was; a new one continues");
}

#[tokio::test]
async fn a_locked_forum_thread_moves_the_rest_of_the_transcript_to_a_new_thread() {
    let discord = transcript_across(Discord::lock).await;
    let threads = discord.threads();
    assert_eq!(threads.len(), 2, "the call goes on in a new thread: {threads:?}");
    let finals: Vec<String> = discord.messages().iter().map(|m| m.text()).collect();
    in_order(&finals, 6).unwrap();
}
