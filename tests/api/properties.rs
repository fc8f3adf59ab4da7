//! Property tests: for any input, parsing and routing never panic, and every shipped template
//! yields valid JSON within the platform's limits, with no blank text the platform would refuse,
//! and nothing that would notify anyone by the platform's own parsing rules.
//! `PROPTEST_CASES=100000 cargo test --release --test api properties` runs a longer fuzzing pass.

use std::path::Path;
use std::sync::OnceLock;

use callrelay::config::ConfigSource;
use callrelay::event::{self, Incoming};
use callrelay::intake;
use callrelay::setup::{self, Config};
use proptest::prelude::*;

use crate::platform_rules::{discord_notifications, slack_notifications};
use serde_json::{json, Value};

fn shipped() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        setup::load(&ConfigSource::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml"))).unwrap()
    })
}

/// Any text, weighted toward what breaks payloads and pings people.
fn text() -> impl Strategy<Value = String> {
    let fragments = prop::sample::select(vec![
        "\"",
        "\\",
        "\n",
        "\r",
        "\t",
        "\u{0}",
        "\u{1b}",
        "\u{2028}",
        "{{",
        "}}",
        "{{{x}}}",
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<@U123>",
        "<!subteam^S1>",
        "<#C1>",
        "<https://evil.example|x>",
        "@everyone",
        "@here",
        "@channel",
        "#general",
        " @here can someone help",
        "<@&1>",
        "&",
        "&amp;",
        "<",
        ">",
        "😀",
        "👍🏽",
        "مرحبا",
        "\u{202E}",
        "*",
        "_",
        "`",
        "```",
        "~",
        " ",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(fragments, 0..40).prop_map(|v| v.concat()),
        (any::<String>(), 0usize..6000).prop_map(|(s, n)| s.repeat(n / s.len().max(1) + 1).chars().take(n).collect()),
    ]
}

/// A value of any JSON type, for fields Beyond Presence types loosely.
fn loose() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!({})),
        Just(json!([1, "x"])),
    ]
}

fn utterance() -> impl Strategy<Value = Value> {
    (loose(), text(), loose())
        .prop_map(|(sender, message, sent_at)| json!({"sender": sender, "message": message, "sent_at": sent_at}))
}

fn event() -> impl Strategy<Value = Value> {
    let call_data = || (loose(), loose()).prop_map(|(u, a)| json!({"userName": u, "agentId": a}));
    prop_oneof![
        (text(), utterance(), call_data())
            .prop_map(|(id, m, cd)| json!({"event_type": "message", "call_id": id, "message": m, "call_data": cd})),
        (text(), loose(), loose(), loose(), loose(), prop::collection::vec(utterance(), 0..30), loose(), call_data())
            .prop_map(|(id, topic, s, d, n, msgs, user, cd)| json!({"event_type": "call_ended", "call_id": id,
                "evaluation": {"topic": topic, "user_sentiment": s, "duration_minutes": d, "messages_count": n},
                "messages": msgs, "user_name": user, "call_data": cd})),
        loose().prop_map(|m| json!({"event_type": "test", "message": m})),
    ]
}

proptest! {
    // 256 cases by default; PROPTEST_CASES overrides.

    #[test]
    fn parsing_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = event::parse(&bytes, chrono::Utc::now());
    }

    #[test]
    fn routing_any_event_never_panics_and_names_each_channel_once(body in event()) {
        if let Ok(Incoming::Event(e)) = event::from_value(&body, chrono::Utc::now()) {
            let channels = shipped().router.route(e.event_type, &intake::context(&e));
            let unique: std::collections::BTreeSet<&String> = channels.iter().collect();
            prop_assert_eq!(unique.len(), channels.len(), "a channel named twice: {:?}", channels);
            prop_assert!(channels.iter().all(|c| shipped().channels.contains_key(c)));
        }
    }

    #[test]
    fn every_shipped_template_stays_valid_within_limits_and_mention_free(body in event()) {
        let Ok(Incoming::Event(e)) = event::from_value(&body, chrono::Utc::now()) else { return Ok(()) };
        let ctx = intake::context(&e);
        for channel in shipped().channels.values() {
            let rendered = shipped().renderer.render(channel, e.event_type, &ctx);
            let rendered = rendered.map_err(|err| TestCaseError::fail(err.to_string()))?;
            prop_assert!(!rendered.posts.is_empty());
            for post in &rendered.posts {
                let v: Value = serde_json::from_str(post).map_err(|err| TestCaseError::fail(format!("not JSON: {err}")))?;
                let refit = callrelay::platforms::rules(channel.platform).fit(channel, v.clone())
                    .map_err(|r| TestCaseError::fail(r.message))?;
                prop_assert_eq!(&refit.posts, &vec![v.clone()], "over a limit");
                let all = callrelay::text::strings(&v);
                // No text the platform requires to be non-empty is blank.
                prop_assert!(all.iter().all(|s| !s.trim().is_empty()), "a blank text in {}", v);
                let notifies = match channel.platform.as_str() {
                    "slack" => slack_notifications(&v),
                    _ => discord_notifications(&v),
                };
                prop_assert!(notifies.is_empty(), "{:?} would notify in {}", notifies, v);
            }
        }
    }
}
