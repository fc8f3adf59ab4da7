//! Microsoft Teams channels: Adaptive Cards to a Workflows webhook, against a stand-in that
//! answers as Microsoft documents it (202, 28 KB, mentions only through entities).

use std::time::Duration;

use serde_json::Value;
use wiremock::ResponseTemplate;

use crate::helpers::*;
use crate::standins::teams::Teams;

const TEAMS_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
[delivery]
backoff_base = "20ms"
backoff_cap = "50ms"
[channels.team]
kind = "teams"
webhook_url = "{slack_base}/workflows/abc123/triggers/manual/paths/invoke?api-version=1&sig=TeAmSsEcReT"
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended", "test"]
channels = ["team"]
"#;

/// Every text block of the accepted cards, in order.
fn texts(cards: &[Value]) -> Vec<String> {
    cards
        .iter()
        .flat_map(|c| c["attachments"][0]["content"]["body"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect()
}

async fn teams_app() -> (TestApp, Teams) {
    let app = spawn_with(TEAMS_TOML).await;
    let teams = Teams::mount(&app.slack).await;
    (app, teams)
}

#[tokio::test]
async fn utterances_and_summaries_arrive_as_adaptive_cards_and_callers_mention_no_one() {
    let (app, teams) = teams_app().await;
    let hostile = "<at>Everyone</at> @everyone <users/all> **bold** [x](https://evil.example)";
    assert_eq!(app.post_event(&message("call-t", "user", hostile)).await.status(), 200);
    assert_eq!(app.post_event(&call_ended("call-t", "negative")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());

    let cards = teams.accepted();
    assert_eq!(cards.len(), 2, "one card per event");
    assert_eq!(teams.requests(), 2, "202 is delivered: nothing sent again");
    let said = texts(&cards).join("\n");
    assert!(said.contains(hostile), "the caller's text arrives whole, as text: {said}");
    assert!(said.contains("Call ended with John Doe: Account Support"), "{said}");
    assert!(said.contains("My card was declined."), "the transcript: {said}");
    assert_eq!(teams.mentions(), 0, "no entity turned any text into a mention");
    assert_eq!(cards[1]["attachments"][0]["content"]["body"][1]["type"], "FactSet");
}

#[tokio::test]
async fn a_summary_over_28_kb_arrives_as_several_cards_in_order() {
    let (app, teams) = teams_app().await;
    assert_eq!(app.post_event(&long_call_ended("call-long", 150)).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
    let cards = teams.accepted();
    assert!(cards.len() >= 2, "{} cards", cards.len());
    assert_eq!(teams.requests(), cards.len(), "no part was refused (413) or sent twice");
    let said = texts(&cards).join("\n");
    assert_lines_in_order(&said, 150);
}

#[tokio::test]
async fn a_429_is_waited_out_as_teams_asks() {
    let (app, teams) = teams_app().await;
    teams.answer_first([ResponseTemplate::new(429).insert_header("retry-after", "1")]);
    let started = std::time::Instant::now();
    assert_eq!(app.post_event(&message("call-r", "user", "patience")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as asked");
    assert_eq!((teams.requests(), teams.accepted().len()), (2, 1));
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[test]
fn check_refuses_threads_transcripts_and_retired_connector_urls_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let check = |channel: &str| {
        std::fs::write(
            &file,
            format!("[channels.team]\nkind = \"teams\"\n{channel}\n[[routes]]\nchannels = [\"team\"]\n"),
        )
        .unwrap();
        let out = bin().arg("check").arg("--config").arg(&file).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let url = "webhook_url = \"https://prod-00.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=x\"";
    let (ok, said) = check(url);
    assert!(ok, "{said}");
    for (extra, expected) in [
        (
            "threads = \"per_call\"",
            "relay.toml:4: key `channels.team.threads`: `threads = \"per_call\"` is not possible",
        ),
        (
            "live_transcript = true",
            "relay.toml:4: key `channels.team.live_transcript`: `live_transcript = true` is not possible",
        ),
    ] {
        let (ok, said) = check(&format!("{url}\n{extra}"));
        assert!(!ok && said.contains(expected), "{extra}: {said}");
    }
    let (ok, said) =
        check("webhook_url = \"https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def/ghi\"");
    assert!(!ok, "{said}");
    assert!(said.contains("key `channels.team.webhook_url`") && said.contains("Office 365 connector URL"), "{said}");
    assert!(said.contains("README, \"Microsoft Teams\""), "{said}");
    assert!(!said.contains("IncomingWebhook/def"), "the URL is a secret: {said}");
}
