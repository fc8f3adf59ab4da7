//! Google Chat channels: messages and cards to a space's webhook, one thread per call by key,
//! against a stand-in that answers as Google documents it.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::helpers::*;
use crate::standins::google_chat::GoogleChat;

const CHAT_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.space]
kind = "google_chat"
webhook_url = "{slack_base}/v1/spaces/AAAAspace/messages?key=GcKeY&token=GcToKeNsEcReT"
threads = "per_call"
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended"]
channels = ["space"]
"#;

async fn chat_app() -> (TestApp, GoogleChat) {
    let app = spawn_with(CHAT_TOML).await;
    let chat = GoogleChat::mount(&app.slack).await;
    (app, chat)
}

fn said(body: &Value) -> String {
    strings(body).join("\n")
}

#[tokio::test]
async fn each_call_gets_a_thread_by_key_and_callers_mention_no_one() {
    let (app, chat) = chat_app().await;
    let hostile = "<users/all> please help <users/123> <https://evil.example|click>";
    for (call, text) in [("call-a", hostile), ("call-b", "b1"), ("call-a", "a2")] {
        assert_eq!(app.post_event(&message(call, "user", text)).await.status(), 200);
    }
    assert_eq!(app.post_event(&call_ended("call-a", "positive")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());

    let messages = chat.messages();
    assert_eq!(messages.len(), 4);
    assert_eq!(chat.requests(), 4, "nothing sent twice");
    let threads: Vec<&str> = messages.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(threads[0], threads[2], "call A's utterances share its thread");
    assert_eq!(threads[0], threads[3], "and so does its summary");
    assert_ne!(threads[0], threads[1], "call B has its own");
    assert_eq!(chat.mentions(), 0, "no caller text mentioned anyone");
    let first = said(&messages[0].1);
    assert!(first.replace('\u{200B}', "").contains(hostile), "the text reads the same: {first}");
    assert!(said(&messages[3].1).contains("My card was declined."), "the summary's transcript");
    assert_eq!(messages[3].1["cardsV2"][0]["card"]["header"]["title"], "Account Support");
}

#[tokio::test]
async fn a_summary_over_32000_bytes_arrives_as_several_messages_in_order_in_its_thread() {
    let (app, chat) = chat_app().await;
    assert_eq!(app.post_event(&long_call_ended("call-long", 150)).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
    let messages = chat.messages();
    assert!(messages.len() >= 2, "{}", messages.len());
    assert_eq!(chat.requests(), messages.len(), "no part refused or sent twice");
    assert!(messages.iter().all(|(t, _)| *t == messages[0].0), "all in the call's thread");
    let all: String = messages.iter().map(|(_, b)| said(b)).collect::<Vec<_>>().join("\n");
    assert_lines_in_order(&all, 150);
}

#[tokio::test]
async fn resource_exhausted_is_waited_out_and_a_removed_webhook_breaks_the_channel() {
    let (app, chat) = chat_app().await;
    let exhausted =
        json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}});
    chat.answer_first([ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(exhausted)]);
    let started = std::time::Instant::now();
    assert_eq!(app.post_event(&message("call-r", "user", "patience")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as asked");
    assert_eq!((chat.requests(), chat.messages().len()), (2, 1));

    let denied = json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}});
    chat.answer_first([ResponseTemplate::new(403).set_body_json(denied)]);
    assert_eq!(app.post_event(&message("call-r", "user", "after removal")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let ready = readyz(&app).await;
    assert!(ready["broken_channels"]["space"].as_str().unwrap().contains("PERMISSION_DENIED"), "{ready}");
    assert_eq!(app.dispatcher.store().dead_letters().await.unwrap().len(), 1, "kept for a replay");
}

#[test]
fn check_refuses_a_live_transcript_and_never_shows_the_key_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "[channels.space]\nkind = \"google_chat\"\nwebhook_url = \"https://chat.googleapis.com/v1/spaces/A/messages?key=GcKeY&token=GcToKeNsEcReT\"\nlive_transcript = true\n[[routes]]\nchannels = [\"space\"]\n",
    )
    .unwrap();
    let out = bin().arg("check").arg("--config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("relay.toml:4: key `channels.space.live_transcript`") && said.contains("cannot edit"),
        "{said}"
    );
    assert!(!said.contains("GcKeY") && !said.contains("GcToKeNsEcReT"), "{said}");
}
