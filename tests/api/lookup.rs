//! Beyond Presence API lookups (`[beyond_presence]`), through the real binary against a stand-in
//! of the API: a summary of a call no message named the agent of is routed on the call's tags
//! from the API; the key is sent and never logged; an API that is down or slow delays the event by
//! at most `lookup_timeout`, and it is delivered without the answer.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::MockServer;

use crate::helpers::*;
use crate::standins::beyond_presence::{BeyondPresence, API_KEY};

/// The README's lookup example as written (gold customers' summaries to `escalations`, here
/// Discord), on the API stand-in with a 1 s lookup timeout; every summary and message to Slack.
fn config(bey: &MockServer, slack: &MockServer, discord: &MockServer) -> (tempfile::TempDir, std::path::PathBuf) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|b| b.contains("gold customers"))
        .expect("the README's lookup example");
    let key = "api_key = \"${BEY_API_KEY}\"";
    assert!(example.contains(key), "{example}");
    let example = example.replace(key, &format!("{key}\napi_url = \"{}/v1\"\nlookup_timeout = \"1s\"", bey.uri()));
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[channels.escalations]
kind = "discord"
webhook_url = "{{discord}}"
rate_limit = ["1000/1s"]
[channels.live]
kind = "slack"
webhook_url = "{{slack}}"
rate_limit = ["1000/1s"]
coalesce = false
{example}
[[routes]]
name = "everything"
channels = ["live"]
"#
    );
    write_config(&toml, slack, discord)
}

fn relay(file: &std::path::Path) -> Served {
    let mut cmd = bin();
    cmd.arg("--config").arg(file).env("BEY_API_KEY", API_KEY).env("RUST_LOG", "debug,hyper=info,reqwest=info,h2=info");
    Served::start(cmd)
}

/// Every string Slack was sent, per post.
async fn slack_posts(slack: &MockServer) -> Vec<String> {
    bodies(slack).await.iter().map(|b| strings(b).join("\n")).collect()
}

#[tokio::test]
async fn a_summary_is_routed_on_the_calls_tags_from_the_api_and_the_key_is_never_logged() {
    let (bey_server, slack, discord) = (MockServer::start().await, mock_slack().await, mock_discord().await);
    let bey = BeyondPresence::mount(&bey_server).await;
    bey.call("c-gold", "agent_gold", json!({"tier": "gold"})).call("c-basic", "agent_basic", json!({"tier": "basic"}));
    let (_dir, file) = config(&bey_server, &slack, &discord);
    let served = relay(&file);
    for call in ["c-gold", "c-basic", "c-unknown"] {
        let answer: Value = served.post_event(&call_ended(call, "positive")).await.json().await.unwrap();
        assert_eq!(answer["status"], "accepted", "answered at once, routed after the lookup: {answer}");
    }
    // A call whose messages named the agent is not looked up.
    assert_eq!(served.post_event(&message("c-known", "user", "hi")).await.status(), 200);
    assert_eq!(served.post_event(&call_ended("c-known", "positive")).await.status(), 200);
    wait_until("the summaries", Duration::from_secs(20), async || slack_posts(&slack).await.len() >= 5).await;
    served.wait_idle().await;

    let gold: Vec<String> = bodies(&discord).await.iter().map(|b| strings(b).join("\n")).collect();
    assert_eq!(gold.len(), 1, "{gold:#?}");
    assert!(gold[0].contains("call c-gold") && gold[0].contains("agent_gold"), "the API's agent too: {}", gold[0]);
    let posts = slack_posts(&slack).await;
    assert!(posts.iter().any(|p| p.contains("`c-basic`") && p.contains("agent_basic")), "{posts:#?}");
    assert!(posts.iter().any(|p| p.contains("`c-unknown`")), "an unknown call goes on without: {posts:#?}");
    let asked: Vec<String> = bey.requests().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(asked.iter().filter(|p| p.ends_with("/c-gold")).count(), 1, "cached per call: {asked:?}");
    assert!(!asked.iter().any(|p| p.ends_with("/c-known")), "{asked:?}");
    assert!(bey.requests().iter().all(|(_, key)| key.as_deref() == Some(API_KEY)), "the key is sent");
    let log = served.log();
    assert!(log.contains("c-unknown") && !log.contains(API_KEY), "the key never shows:\n{log}");
}

#[tokio::test]
async fn an_api_that_is_down_or_slow_delays_an_event_by_the_lookup_timeout_at_most() {
    for (case, broken) in [("down", true), ("slow", false)] {
        let (bey_server, slack, discord) = (MockServer::start().await, mock_slack().await, mock_discord().await);
        let bey = BeyondPresence::mount(&bey_server).await;
        bey.call("c-1", "agent_gold", json!({"tier": "gold"}));
        if broken {
            bey.down();
        } else {
            bey.slow(Duration::from_secs(30));
        }
        let (_dir, file) = config(&bey_server, &slack, &discord);
        let served = relay(&file);
        assert_eq!(served.post_event(&call_ended("c-1", "negative")).await.status(), 200, "{case}");
        // Within the 1 s lookup timeout and a delivery: not after the slow API's 30 s.
        wait_until("the summary without the lookup", Duration::from_secs(10), async || {
            slack_posts(&slack).await.iter().any(|p| p.contains("`c-1`"))
        })
        .await;
        assert!(bodies(&discord).await.is_empty(), "{case}: routed without the answer");
        if broken {
            assert!(bey.requests().len() >= 2, "retried with backoff: {:?}", bey.requests());
        }
        assert!(served.log().contains("No answer from the Beyond Presence API"), "{case}: {}", served.log());
    }
}
