//! What is queued is rendered when it is sent: template changes reach posts already waiting, a
//! replayed dead letter uses today's template, an event split into several posts resumes where it
//! stopped, and a store written by the previous release is upgraded with nothing lost.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("ok")
}

/// Every line of the `text` of every body, in order (coalesced posts join their texts by lines).
fn text_lines(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|b| b["text"].as_str().unwrap_or("").lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[tokio::test]
async fn a_template_changed_by_reload_applies_to_posts_queued_before_it() {
    let (app, dir) = spawn_with_own_templates().await;
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&app.slack).await;
    for i in 0..3 {
        assert_eq!(app.post_event(&message("c", "user", &format!("q{i}"))).await.status(), 200);
    }
    wait_until("the lane to try the queue", Duration::from_secs(10), async || {
        !app.slack.received_requests().await.unwrap().is_empty()
    })
    .await;

    std::fs::write(dir.join("slack/message.json.hbs"), r#"{"text": "NEW {{message.message}}"}"#).unwrap();
    wait_for_reloads(&app, "reloads", 1).await;
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&app.slack).await;

    let got = app.received(&app.slack).await;
    assert_eq!(
        text_lines(&got),
        ["NEW q0", "NEW q1", "NEW q2"],
        "queued before the reload, sent with the new template"
    );
}

#[tokio::test]
async fn a_dead_letter_replayed_after_a_template_fix_is_rendered_with_the_fix() {
    let (app, dir) = spawn_with_own_templates().await;
    app.slack.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_blocks"))
        .mount(&app.slack)
        .await;
    assert_eq!(app.post_event(&message("c9", "user", "hello")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "Slack refused it for good");
    assert!(letters[0].reason.contains("invalid_blocks"));

    std::fs::write(dir.join("slack/message.json.hbs"), r#"{"text": "FIXED {{message.message}}"}"#).unwrap();
    wait_for_reloads(&app, "reloads", 1).await;
    app.slack.reset().await;
    Mock::given(method("POST")).respond_with(ok()).mount(&app.slack).await;
    let out = bin().args(["dlq", "replay", "--all", "--config"]).arg(app.config_file()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the replayed post", Duration::from_secs(20), async || !bodies(&app.slack).await.is_empty()).await;
    assert_eq!(text_lines(&app.received(&app.slack).await), ["FIXED hello"]);
}

#[tokio::test]
async fn an_event_split_into_several_posts_resumes_after_a_failure_without_repeating_parts() {
    let toml = DEFAULT_TOML
        .replace("[channels.live]", "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"50ms\"\n[channels.live]");
    let app = spawn_with(&toml).await;
    app.discord_api.answer_at(2, ResponseTemplate::new(500));
    let transcript: Vec<Value> = (0..150)
        .map(|i| json!({"sender": if i % 2 == 0 { "ai" } else { "user" }, "message": format!("line {i:03} {}", "x".repeat(60))}))
        .collect();
    let mut ended = call_ended("long", "neutral");
    ended["messages"] = json!(transcript);
    assert_eq!(app.post_event(&ended).await.status(), 200);

    let got = app.received(&app.discord).await;
    assert!(
        got.len() >= 4,
        "a long transcript is several posts (6,000 characters each at most), plus one retry: {}",
        got.len()
    );
    assert_eq!(got[1], got[2], "the failed second part is sent again");
    let parts: Vec<&Value> = got.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, b)| b).collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(parts[..i].iter().all(|q| q != p), "part {i} was sent twice");
    }
    let said: String = parts.iter().flat_map(|p| strings(p)).collect();
    assert_lines_in_order(&said, 150);
}

/// A relay started on `tests/fixtures/store-v1.db`, a store the previous release (store version 1,
/// bodies rendered at intake) left with four posts queued and one dead letter; see
/// `tests/fixtures/make_store_v1.py`.
#[tokio::test]
async fn upgrading_a_previous_release_store_delivers_everything_queued_in_it() {
    let toml = DEFAULT_TOML
        .replace("[channels.summaries]", "[channels.refusing]\nkind = \"slack\"\nwebhook_url = \"{slack_base}/services/T000/B000/refuse\"\n\n[channels.summaries]")
        .replace("channels = [\"summaries\"]", "channels = [\"summaries\", \"refusing\"]");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1.db");
    let app = spawn_prepared(&toml, |dir| {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::copy(&fixture, dir.join("data/callrelay.db")).unwrap();
    })
    .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path("/services/T000/B000/refuse"))
        .respond_with(ok())
        .mount(&app.slack)
        .await;

    let slack = app.received(&app.slack).await;
    assert_eq!(slack_messages(&slack), ["q0", "q1", "q2"], "the posts version 1 rendered, in order");
    assert!(slack[0]["text"].as_str().unwrap().contains("John Doe: q0"), "sent as version 1 rendered it");
    assert_eq!(slack[0]["blocks"][1]["text"]["verbatim"], true, "and made mention-safe");
    let discord = app.received(&app.discord).await;
    assert_eq!(discord.len(), 1);
    assert_eq!(discord[0]["embeds"][0]["title"], "📞 Upgrade");

    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "the version-1 dead letter is kept");
    assert_eq!((letters[0].channel.as_str(), letters[0].reason.as_str()), ("refusing", "400 invalid_payload"));
    let out = bin().args(["dlq", "replay", "--all", "--config"]).arg(app.config_file()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the replayed version-1 dead letter", Duration::from_secs(20), async || {
        app.slack.received_requests().await.unwrap().len() > slack.len()
    })
    .await;
    let last = bodies(&app.slack).await.pop().unwrap();
    assert!(last["text"].as_str().unwrap().contains("Call ended with John Doe: Upgrade"), "{last}");
    assert_eq!(
        serde_json::to_string(&last["blocks"][0]).unwrap(),
        serde_json::to_string(
            &serde_json::from_str::<Value>(letters[0].body.as_deref().unwrap()).unwrap()["blocks"][0]
        )
        .unwrap(),
        "its body as version 1 rendered it"
    );
}
