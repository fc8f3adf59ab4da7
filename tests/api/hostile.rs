//! Hostile text end to end: every body stays valid, within limits, and mention-free.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Every event to a Slack and a Discord channel, without coalescing.
pub const EVERYWHERE: &str = r#"
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
events = ["message", "call_ended", "test"]
channels = ["live", "summaries"]
"#;

fn assert_slack_within_limits(b: &Value) {
    assert!(b["text"].as_str().map_or(0, |t| t.chars().count()) <= 40_000);
    let blocks = b["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for block in blocks {
        let n = |p: &str| block.pointer(p).and_then(Value::as_str).map_or(0, |s| s.chars().count());
        match block["type"].as_str().unwrap() {
            "section" => {
                assert!(n("/text/text") <= 3000);
                let fields = block["fields"].as_array().cloned().unwrap_or_default();
                assert!(fields.len() <= 10);
                assert!(fields.iter().all(|f| f["text"].as_str().unwrap().chars().count() <= 2000));
            }
            "header" => assert!(n("/text/text") <= 150),
            _ => {}
        }
    }
}

#[tokio::test]
async fn hostile_text_in_every_field_yields_valid_mention_free_bodies_within_limits() {
    let app = spawn_with(EVERYWHERE).await;
    let hostile = callrelay::samples::hostile_text();
    assert!(hostile.chars().count() >= 10_000);
    let bodies = [
        json!({"event_type":"message","call_id":hostile,"message":{"sender":hostile,"message":hostile,"sent_at":hostile},
               "call_data":{"userName":hostile,"agentId":hostile},"user_name":hostile}),
        json!({"event_type":"call_ended","call_id":"c-{{x}}","user_name":hostile,
               "evaluation":{"topic":hostile,"user_sentiment":hostile,"duration_minutes":hostile,"messages_count":hostile},
               "messages":[{"sender":"user","message":hostile},{"sender":"ai","message":hostile,"sent_at":"2024-01-15T10:30:00Z"}]}),
        json!({"event_type":"test","message":hostile}),
    ];
    for b in &bodies {
        assert_eq!(app.post_event(b).await.status(), 200);
    }

    let slack = app.received(&app.slack).await;
    assert!(slack.len() >= 3);
    for b in &slack {
        assert_slack_within_limits(b);
        for s in strings(b) {
            for token in
                ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<!subteam^S123>", "<#C123>", "<https://evil"]
            {
                assert!(!s.contains(token), "{token} reached Slack: {s:.100}");
            }
        }
    }
    // The user's text survives, escaped by Slack's rules: nothing is silently dropped.
    let all_slack: String = slack.iter().flat_map(strings).collect();
    assert!(all_slack.contains("\"quotes\" \\backslash\\ \n new line"));
    assert!(all_slack.contains("&lt;!channel&gt;"));
    assert!(all_slack.contains("{{handlebars}}"));
    assert!(all_slack.contains("مرحبا بالعالم"));

    let discord = app.received(&app.discord).await;
    assert!(discord.len() >= 3);
    for b in &discord {
        assert_valid_discord_body(b);
        assert_eq!(b["allowed_mentions"], json!({"parse": []}), "no text may ping anyone");
    }
    let all_discord: String = discord.iter().flat_map(strings).collect();
    assert!(all_discord.contains("@everyone"), "text is shown, just never pinged");
}

/// Every event to a Teams channel, a Google Chat space and a signed HTTP endpoint.
const NEW_DESTINATIONS: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.team]
kind = "teams"
webhook_url = "{slack_base}/workflows/abc123/triggers/manual/paths/invoke?sig=x"
rate_limit = ["1000/1s"]
[channels.space]
kind = "google_chat"
webhook_url = "{slack_base}/v1/spaces/AAAAspace/messages?key=GcKeY&token=GcToKeNsEcReT"
threads = "per_call"
rate_limit = ["1000/1s"]
[channels.crm]
kind = "http"
url = "{slack_base}/crm/hooks/callrelay"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended", "test"]
channels = ["team", "space", "crm"]
"#;

#[tokio::test]
async fn hostile_text_reaches_teams_google_chat_and_endpoints_whole_and_mentions_no_one() {
    let app = spawn_with(NEW_DESTINATIONS).await;
    let teams = crate::standins::teams::Teams::mount(&app.slack).await;
    let chat = crate::standins::google_chat::GoogleChat::mount(&app.slack).await;
    let crm = crate::standins::http::Endpoint::mount(&app.slack, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await;
    let hostile = format!("{} <users/all> <at>Everyone</at> <users/123>", callrelay::samples::hostile_text());
    let hostile = hostile.as_str();
    let bodies = [
        json!({"event_type":"message","call_id":"c-1","message":{"sender":hostile,"message":hostile,"sent_at":hostile},
               "call_data":{"userName":hostile,"agentId":hostile},"user_name":hostile}),
        json!({"event_type":"call_ended","call_id":"c-1","user_name":hostile,
               "evaluation":{"topic":hostile,"user_sentiment":hostile,"duration_minutes":hostile,"messages_count":hostile},
               "messages":[{"sender":"user","message":hostile},{"sender":"ai","message":hostile,"sent_at":"2024-01-15T10:30:00Z"}]}),
        json!({"event_type":"test","message":hostile}),
    ];
    for b in &bodies {
        assert_eq!(app.post_event(b).await.status(), 200);
    }
    assert!(app.dispatcher.idle(Duration::from_secs(30)).await);
    let dead = app.dispatcher.store().dead_letters().await.unwrap();
    assert!(dead.is_empty(), "{:?}", dead.iter().map(|d| &d.reason).collect::<Vec<_>>());

    assert!(teams.accepted().len() >= 3, "every event, within 28 KB (none refused)");
    assert_eq!(teams.requests(), teams.accepted().len());
    assert_eq!(teams.mentions(), 0, "no Teams mention");
    let all_teams: String = teams.accepted().iter().flat_map(strings).collect();
    assert!(all_teams.contains("<at>Everyone</at>"), "shown as text");

    assert_eq!(chat.requests(), chat.messages().len(), "none refused");
    assert!(chat.messages().len() >= 3);
    assert_eq!(chat.mentions(), 0, "no Google Chat mention or link");
    let all_chat: String = chat.messages().iter().flat_map(|(_, b)| strings(b)).collect();
    assert!(all_chat.replace('\u{200B}', "").contains("<users/all>"), "shown as the text it reads");

    let got = crm.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.verified));
    assert_eq!(got[0].body["data"]["message"]["message"], hostile, "the endpoint gets the text exactly");
}
