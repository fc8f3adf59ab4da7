//! Routing from a real `relay.toml`: operators, `stop`, fan-out, one copy per channel.

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const ROUTES_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"

[channels.live]
kind = "slack"
webhook_url = "{slack}"
rate_limit = ["1000/1s"]
coalesce = false

[channels.summaries]
kind = "discord"
webhook_url = "{discord}"
rate_limit = ["1000/1s"]
coalesce = false

[channels.escalations]
kind = "slack"
webhook_url = "{slack_base}/services/T000/B000/escalations"
rate_limit = ["1000/1s"]
coalesce = false

[channels.archive]
kind = "slack"
webhook_url = "{slack_base}/services/T000/B000/archive"
rate_limit = ["1000/1s"]
coalesce = false

[[routes]]
name = "live"
events = ["message"]
channels = ["live"]

[[routes]]
name = "vip agents"
channels = ["escalations"]
[routes.match]
"call_data.agentId" = { regex = "^vip_" }

[[routes]]
name = "unhappy callers"
events = ["call_ended"]
channels = ["escalations", "summaries"]
stop = true
[routes.match]
"evaluation.user_sentiment" = { not_in = ["positive", "neutral"] }
"evaluation.duration_minutes" = { gte = 1 }

[[routes]]
name = "summaries"
events = ["call_ended"]
channels = ["summaries"]

[[routes]]
name = "long or gold"
events = ["call_ended"]
channels = ["archive"]
[routes.match]
"call_data.tier" = ["gold", "platinum"]
"evaluation.messages_count" = { lt = 100 }
"user_name" = { exists = true }
"#;

fn ended(call_id: &str, sentiment: &str, agent: &str, tier: &str) -> serde_json::Value {
    let mut e = call_ended(call_id, sentiment);
    e["call_data"] = json!({"agentId": agent, "tier": tier});
    e
}

async fn count(app: &TestApp, path: &str) -> Vec<String> {
    let mut calls = Vec::new();
    for mock in [&app.slack, &app.discord] {
        for r in app.requests(mock).await {
            if r.url.path().ends_with(path) {
                let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                let text = serde_json::to_string(&b).unwrap();
                let id = ["c-neg-vip", "c-pos-vip", "c-msg-vip", "c-neg", "c-gold", "c-msg"]
                    .into_iter()
                    .find(|id| text.contains(id))
                    .unwrap_or("?");
                calls.push(id.to_owned());
            }
        }
    }
    calls
}

#[tokio::test]
async fn routes_fan_out_stop_and_deliver_one_copy_per_channel() {
    let app = spawn_with(ROUTES_TOML).await;
    // `escalations` and `archive` are further webhooks on the same mock Slack.
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&app.slack).await;
    let mut vip_message = message("c-msg-vip", "ai", "c-msg-vip");
    vip_message["call_data"]["agentId"] = json!("vip_7");
    for body in [
        ended("c-neg", "negative", "agent_1", "gold"), // unhappy (stop) → escalations, summaries; not archive
        ended("c-pos-vip", "positive", "vip_2", "gold"), // vip → escalations; summaries; gold → archive
        ended("c-neg-vip", "negative", "vip_3", "none"), // vip and unhappy both → escalations once; summaries
        ended("c-gold", "neutral", "agent_1", "platinum"), // summaries, archive
        vip_message,                                   // live, escalations
        message("c-msg", "user", "c-msg"),             // live only
    ] {
        assert_eq!(app.post_event(&body).await.status(), 200);
    }
    assert_eq!(count(&app, "/escalations").await, ["c-neg", "c-pos-vip", "c-neg-vip", "c-msg-vip"]);
    assert_eq!(count(&app, "/discordsecrettoken").await, ["c-neg", "c-pos-vip", "c-neg-vip", "c-gold"]);
    assert_eq!(count(&app, "/archive").await, ["c-pos-vip", "c-gold"]);
    assert_eq!(count(&app, "/slacksecrettoken").await, ["c-msg-vip", "c-msg"]);
}

#[tokio::test]
async fn a_channel_named_by_several_routes_gets_one_copy() {
    let toml = r#"
[server]
listen = "127.0.0.1:0"
[channels.live]
kind = "slack"
webhook_url = "{slack}"
rate_limit = ["1000/1s"]
coalesce = false
[channels.summaries]
kind = "discord"
webhook_url = "{discord}"
rate_limit = ["1000/1s"]
coalesce = false
[[routes]]
channels = ["live", "summaries"]
[[routes]]
channels = ["live"]
[[routes]]
events = ["message"]
channels = ["summaries", "live"]
"#;
    let app = spawn_with(toml).await;
    app.post_event(&message("c", "user", "once")).await;
    assert_eq!(app.received(&app.slack).await.len(), 1);
    assert_eq!(app.received(&app.discord).await.len(), 1);
}

/// The README's routing examples, read from the README itself, against real Beyond Presence
/// payloads: summaries carry no agent, so "long vip calls" works only because the relay
/// remembers the agent the call's messages named.
#[tokio::test]
async fn the_readmes_routing_examples_work_as_written_on_real_payloads() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = readme.split("Examples:\n\n```toml\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(examples.contains("long vip calls") && examples.contains("\"agent_id\""), "{examples}");
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[channels.sales-live]
kind = "slack"
webhook_url = "{{slack}}"
rate_limit = ["1000/1s"]
coalesce = false
[channels.escalations]
kind = "slack"
webhook_url = "{{slack_base}}/services/T000/B000/escalations"
rate_limit = ["1000/1s"]
coalesce = false
{examples}"#
    );
    let app = spawn_with(&toml).await;
    // `escalations` is a further incoming webhook on the same Slack stand-in.
    Mock::given(method("POST"))
        .and(wiremock::matchers::path("/services/T000/B000/escalations"))
        .respond_with(crate::standins::slack::SlackWebhook)
        .mount(&app.slack)
        .await;
    let said = |call: &str, agent: &str, text: &str| {
        let mut m = message(call, "user", text);
        m["call_data"]["agentId"] = json!(agent);
        m
    };
    let ended = |call: &str, sentiment: &str, minutes: f64| {
        let mut e = call_ended(call, sentiment);
        e["evaluation"]["duration_minutes"] = json!(minutes);
        e
    };
    for event in [
        said("c-sales", "agent_456", "sales hello"),
        said("c-other", "agent_1", "other hello"),
        said("c-vip-long", "vip_7", "vip hello"),
        said("c-vip-short", "vip_7", "vip short hello"),
        ended("c-vip-long", "positive", 45.0),
        ended("c-vip-short", "positive", 3.0),
        ended("c-other", "negative", 2.0),
        ended("c-sales", "positive", 40.0),
    ] {
        assert_eq!(app.post_event(&event).await.status(), 200);
    }
    let requests = app.requests(&app.slack).await;
    let to = |path: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.url.path() == path)
            .map(|r| strings(&serde_json::from_slice(&r.body).unwrap()).join(" "))
            .collect()
    };
    let sales = to(SLACK_PATH);
    assert_eq!(sales.len(), 1, "agent_456's live message only: {sales:#?}");
    assert!(sales[0].contains("sales hello"));
    let escalated = to("/services/T000/B000/escalations");
    assert_eq!(escalated.len(), 2, "{escalated:#?}");
    assert!(escalated.iter().any(|e| e.contains("`c-vip-long`")), "the long vip call, by its messages' agent");
    assert!(escalated.iter().any(|e| e.contains("`c-other`") && e.contains("negative")), "the unhappy caller");
}
