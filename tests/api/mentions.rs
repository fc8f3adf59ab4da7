//! Callers can't notify anyone and blank text never costs a post: the relay's guarantees on each
//! platform, whatever the template, through the real server and stand-ins that apply the
//! platforms' own rules.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::hostile::EVERYWHERE;
use crate::platform_rules::*;
use crate::standins::{discord_refusal, slack_refusal};

/// What callers say to try to notify a whole channel.
const PINGS: [&str; 6] = ["@here can someone help", "@channel", "@everyone", "#general", "<!channel>", "<@&123> <@42>"];

/// The relay's mocks are the platform stand-ins already (they refuse what the platforms refuse).
async fn with_stand_ins(_app: &TestApp) {}

async fn assert_nothing_dead(app: &TestApp) {
    let dead = app.dispatcher.store().dead_letters().await.unwrap();
    assert!(dead.is_empty(), "dead letters: {:?}", dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
}

fn assert_no_notifications(slack: &[Value], discord: &[Value]) {
    for b in slack {
        assert_eq!(slack_notifications(b), Vec::<String>::new(), "Slack would notify: {b}");
    }
    for b in discord {
        assert_eq!(discord_notifications(b), Vec::<String>::new(), "Discord would ping: {b}");
    }
}

#[tokio::test]
async fn callers_mentions_in_messages_and_transcripts_notify_no_one_and_stay_readable() {
    let app = spawn_with(EVERYWHERE).await;
    with_stand_ins(&app).await;
    for (i, ping) in PINGS.iter().enumerate() {
        assert_eq!(app.post_event(&message(&format!("c{i}"), "user", ping)).await.status(), 200);
    }
    let mut ended = call_ended("c-end", "negative");
    ended["messages"] = PINGS.iter().map(|p| json!({"sender": "user", "message": p})).collect();
    ended["user_name"] = json!("@everyone");
    assert_eq!(app.post_event(&ended).await.status(), 200);

    let slack = app.received(&app.slack).await;
    let discord = app.received(&app.discord).await;
    assert_nothing_dead(&app).await;
    assert_eq!((slack.len(), discord.len()), (PINGS.len() + 1, PINGS.len() + 1));
    assert_no_notifications(&slack, &discord);
    let slack_text: String = slack.iter().flat_map(strings).collect();
    for shown in ["@here can someone help", "@channel", "@everyone", "#general", "&lt;!channel&gt;"] {
        assert!(slack_text.contains(shown), "the caller's words are shown, not dropped: {shown}");
    }
    let discord_text: String = discord.iter().flat_map(strings).collect();
    assert!(discord_text.contains("@here can someone help") && discord_text.contains("<@&123>"));
}

#[tokio::test]
async fn a_custom_template_without_verbatim_or_allowed_mentions_is_still_safe() {
    let toml = EVERYWHERE.replace("[channels.live]", "[templates]\ndir = \"templates\"\n[channels.live]");
    let app = spawn_prepared(&toml, |dir| {
        for platform in ["slack", "discord"] {
            std::fs::create_dir_all(dir.join("templates").join(platform)).unwrap();
        }
        // Non-verbatim mrkdwn everywhere, and a Discord body that puts the caller in `content`.
        std::fs::write(
            dir.join("templates/slack/message.json.hbs"),
            r#"{"text": "{{message.message}}", "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "{{message.message}}", "verbatim": false},
                 "fields": [{"type": "mrkdwn", "text": "{{user_name}}"}]},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "{{message.message}}"}]}],
              "attachments": [{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "{{message.message}}"}}]}]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("templates/discord/message.json.hbs"), r#"{"content": "{{user_name}} said: {{message.message}}"}"#)
            .unwrap();
    })
    .await;
    with_stand_ins(&app).await;
    for ping in PINGS {
        let mut m = message("c", "user", ping);
        m["call_data"]["userName"] = json!("@here");
        assert_eq!(app.post_event(&m).await.status(), 200);
    }
    let slack = app.received(&app.slack).await;
    let discord = app.received(&app.discord).await;
    assert_nothing_dead(&app).await;
    assert_eq!((slack.len(), discord.len()), (PINGS.len(), PINGS.len()));
    assert_no_notifications(&slack, &discord);
    assert_eq!(slack[0]["blocks"][0]["text"]["verbatim"], true, "the relay set it, not the template");
    assert!(discord[0]["content"].as_str().unwrap().starts_with("@here said: @here"));
}

#[tokio::test]
async fn empty_and_blank_utterances_are_delivered_on_both_platforms_never_dead_lettered() {
    let app = spawn_with(EVERYWHERE).await;
    with_stand_ins(&app).await;
    for text in ["", "   ", "\n\t "] {
        assert_eq!(app.post_event(&message("c", "user", text)).await.status(), 200);
    }
    let mut ended = call_ended("c", "neutral");
    ended["messages"] = json!([{"sender": "user", "message": ""}, {"sender": "ai", "message": "  "}]);
    ended["evaluation"]["topic"] = json!(" ");
    assert_eq!(app.post_event(&ended).await.status(), 200);

    let slack = app.received(&app.slack).await;
    let discord = app.received(&app.discord).await;
    assert_nothing_dead(&app).await;
    assert_eq!((slack.len(), discord.len()), (4, 4), "every event became a post on each platform");
    for b in &slack {
        assert_eq!(slack_refusal(b), None, "{b}");
    }
    for b in &discord {
        assert_eq!(discord_refusal(b), None, "{b}");
        assert_valid_discord_body(b);
    }
    assert!(
        slack_messages(&slack[..3]).iter().all(|m| m == callrelay::platforms::NO_TEXT),
        "a visible mark, not a gap"
    );
    assert_eq!(discord[0]["embeds"][0]["description"], callrelay::platforms::NO_TEXT);
}

#[test]
fn check_refuses_link_names_and_parsed_mentions_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates/slack")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates/discord")).unwrap();
    std::fs::write(
        dir.path().join("templates/slack/message.json.hbs"),
        "{\n  \"text\": \"{{message.message}}\",\n  \"link_names\": 1\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("templates/discord/call_ended.json.hbs"),
        "{\n  \"content\": \"{{user_name}}\",\n\n  \"allowed_mentions\": {\"parse\": [\"everyone\"]}\n}\n",
    )
    .unwrap();
    let toml = r#"
[channels.live]
kind = "slack"
webhook_url = "https://hooks.slack.com/services/T0/B0/x"
[channels.summaries]
kind = "discord"
webhook_url = "https://discord.com/api/webhooks/1/x"
[[routes]]
events = ["message"]
channels = ["live"]
[[routes]]
events = ["call_ended"]
channels = ["summaries"]
"#;
    std::fs::write(dir.path().join("relay.toml"), toml).unwrap();
    let out = bin().arg("check").arg("--config").arg(dir.path().join("relay.toml")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("template `slack/message.json.hbs` line 3: `link_names`"), "{stderr}");
    assert!(stderr.contains("template `discord/call_ended.json.hbs` line 4: `allowed_mentions.parse`"), "{stderr}");
    assert!(stderr.contains("channel `live`") && stderr.contains("channel `summaries`"), "{stderr}");
}
