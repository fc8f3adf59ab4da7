//! The receiver: what Beyond Presence sends, what it gets back, and what reaches Slack and Discord.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn a_live_message_reaches_slack_styled_by_the_shipped_template() {
    let app = spawn_app().await;
    let r = app.post_event(&message("call_1", "user", "Hi, I need help with my order.")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "accepted");

    let bodies = app.received(&app.slack).await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["text"], "👤 John Doe: Hi, I need help with my order.");
    assert_eq!(b["blocks"][0]["elements"][0]["text"], "👤 *John Doe* · 10:30:00 UTC · call `call_1`");
    assert_eq!(b["blocks"][1]["text"]["text"], "Hi, I need help with my order.");
    assert!(app.received(&app.discord).await.is_empty(), "messages are not routed to Discord");
}

#[tokio::test]
async fn a_call_summary_reaches_discord_on_v10_with_wait_true() {
    let app = spawn_app().await;
    assert_eq!(app.post_event(&call_ended("call_2", "negative")).await.status(), 200);

    let requests = app.requests(&app.discord).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), DISCORD_PATH);
    assert_eq!(requests[0].url.query(), Some("wait=true"));
    let b: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_valid_discord_body(&b);
    assert_eq!(b["allowed_mentions"], json!({"parse": []}));
    assert_eq!(b["username"], "Call Relay");
    let summary = &b["embeds"][0];
    assert_eq!(summary["title"], "📞 Account Support");
    assert_eq!(summary["color"], 0xE74C3C, "red for negative sentiment");
    let fields: Vec<(String, String)> = summary["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_owned(), f["value"].as_str().unwrap().to_owned()))
        .collect();
    for want in [
        ("Caller", "John Doe"),
        ("Sentiment", "😟 negative"),
        ("Duration", "5m 30s"),
        ("Messages", "2"),
        ("Topic", "Account Support"),
    ] {
        assert!(fields.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} not in {fields:?}");
    }
    let transcript = b["embeds"][1]["description"].as_str().unwrap();
    assert_eq!(
        transcript,
        "🤖 **Agent** · 10:30:00\nHello, how can I help?\n👤 **John Doe** · 10:30:05\nMy card was declined."
    );
}

#[tokio::test]
async fn the_dashboard_test_event_gets_200_and_is_routed_only_where_listed() {
    let app = spawn_app().await;
    for body in [
        json!({"event_type": "test"}),
        json!({"event_type": "test", "message": "Webhook test", "timestamp": "2025-01-01T00:00:00Z"}),
    ] {
        let r = app.post_event(&body).await;
        assert_eq!(r.status(), 200);
    }
    let slack = app.received(&app.slack).await;
    assert_eq!(slack.len(), 2);
    assert!(slack[1]["text"].as_str().unwrap().contains("connected"));
    assert!(slack[1]["text"].as_str().unwrap().contains("Webhook test"));
    assert!(app.received(&app.discord).await.is_empty());
}

#[tokio::test]
async fn real_payload_variants_are_accepted_and_normalised() {
    let app = spawn_app().await;
    // ai sender, naive timestamp with microseconds, no call_data, unknown fields
    let r = app
        .post_event(&json!({"event_type":"message","call_id":"c3","extra":{"x":1},
            "message":{"sender":"ai","message":"Hello","sent_at":"2025-10-28T10:31:25.159564","confidence":0.9}}))
        .await;
    assert_eq!(r.status(), 200);
    // numeric strings, null user_name, no evaluation topic, call_data null
    let r = app
        .post_event(&json!({"event_type":"call_ended","call_id":"c3","user_name":null,"call_data":null,
            "evaluation":{"user_sentiment":"neutral","duration_minutes":"2.25","messages_count":"4"},"messages":[]}))
        .await;
    assert_eq!(r.status(), 200);
    // user name only in call_data, no evaluation at all
    let r = app
        .post_event(&json!({"event_type":"call_ended","call_id":"c4","call_data":{"userName":"Ann","agentId":"a1"}}))
        .await;
    assert_eq!(r.status(), 200);

    let slack = app.received(&app.slack).await;
    assert_eq!(slack[0]["blocks"][0]["elements"][0]["text"], "🤖 *Agent* · 10:31:25 UTC · call `c3`");
    let discord = app.received(&app.discord).await;
    assert_eq!(discord.len(), 2);
    let fields = |b: &Value| -> Vec<String> {
        b["embeds"][0]["fields"].as_array().unwrap().iter().map(|f| f["value"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(fields(&discord[0])[..5], ["Unknown", "😐 neutral", "2m 15s", "4", "–"]);
    assert_eq!(discord[0]["embeds"].as_array().unwrap().len(), 1, "an empty transcript adds no embed");
    assert_eq!(fields(&discord[1])[..5], ["Ann", "❔ not rated", "–", "–", "–"]);
    for b in &discord {
        assert_valid_discord_body(b);
    }
}

#[tokio::test]
async fn unknown_event_types_get_200_and_are_not_forwarded() {
    let app = spawn_app().await;
    let r = app.post_event(&json!({"event_type":"call_started","call_id":"c"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ignored");
    assert!(app.received(&app.slack).await.is_empty());
    assert!(app.received(&app.discord).await.is_empty());
}

#[tokio::test]
async fn the_cors_preflight_is_answered_for_the_dashboards_browser_check() {
    let app = spawn_app().await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, &app.webhook)
        .header("Origin", "https://app.bey.dev")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
    let allowed = r.headers()["access-control-allow-headers"].to_str().unwrap().to_owned();
    for h in ["Content-Type", "Authorization", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(allowed.contains(h), "{h} missing from {allowed}");
    }
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_json_error_naming_the_problem_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[1,2]".to_vec(), "event_type"),
        (br#"{"call_id":"c"}"#.to_vec(), "event_type"),
        (br#"{"event_type":"message","message":{"sender":"user","message":"x"}}"#.to_vec(), "`call_id`"),
        (br#"{"event_type":"message","call_id":"c","message":{"sender":"user"}}"#.to_vec(), "`message.message`"),
        (br#"{"event_type":"call_ended"}"#.to_vec(), "`call_id`"),
        (b"{\"event_type\":\"message\",\"call_id\":\"\xff\xfe\"}".to_vec(), "not valid JSON"),
    ];
    for (body, want) in cases {
        let r = app.post_raw(body.clone()).await;
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(&body));
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let err = r.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(err.contains(want), "{err:?} should mention {want:?}");
    }
    assert!(app.received(&app.slack).await.is_empty());
    assert!(app.received(&app.discord).await.is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_nothing_is_forwarded() {
    let app =
        spawn_with(&DEFAULT_TOML.replace("path = \"/webhook\"", "path = \"/webhook\"\nmax_body_bytes = 4096")).await;
    let big = message("c", "user", &"x".repeat(5000));
    let r = app.post_event(&big).await;
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("4096"));
    let r = app.post_event(&message("c", "user", &"x".repeat(3000))).await;
    assert_eq!(r.status(), 200, "a body under the limit is still fine");
    assert_eq!(app.received(&app.slack).await.len(), 1);
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let app = spawn_app().await;
    let r = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.post(format!("{}/other", app.address)).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn one_channel_keeps_the_order_events_arrived_in() {
    let app = spawn_app().await;
    for i in 0..30 {
        assert_eq!(app.post_event(&message("c", "user", &format!("utterance {i}"))).await.status(), 200);
    }
    // However many were coalesced into one post, they arrive in order.
    let texts = slack_messages(&app.received(&app.slack).await);
    assert_eq!(texts, (0..30).map(|i| format!("utterance {i}")).collect::<Vec<_>>());
}
