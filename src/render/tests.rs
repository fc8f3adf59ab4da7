//! Shipped templates against every sample, escaping, limits and error reporting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::config::{TemplateOverrides, WebhookUrl};
use crate::event::{self, Incoming};
use crate::platforms::discord::DISCORD;
use crate::platforms::slack::SLACK;
use crate::platforms::{Channel, Platform, Target};
use crate::{intake, samples, text};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn channel(name: &str, platform: Platform) -> Channel {
    Channel {
        name: name.into(),
        platform,
        target: Ok(Target::webhook(WebhookUrl::parse("https://example.test/hook").unwrap())),
        username: Some("Relay".into()),
        avatar_url: None,
        coalesce: true,
        rate_limit: vec![],
        threads: Default::default(),
        broadcast_summary: false,
        live_transcript: false,
    }
}

fn renderer(dir: &Path, overrides: TemplateOverrides) -> Result<Renderer, Vec<Problem>> {
    let mut map = BTreeMap::new();
    map.insert("s".to_owned(), (SLACK, overrides.clone()));
    map.insert("d".to_owned(), (DISCORD, overrides));
    Renderer::load(dir, &map)
}

fn render(r: &Renderer, platform: Platform, body: &Value) -> Result<Rendered, RenderError> {
    let Incoming::Event(e) = event::from_value(body, chrono::Utc::now()).unwrap() else { panic!() };
    let name = if platform == SLACK { "s" } else { "d" };
    r.render(&channel(name, platform), e.event_type, &intake::context(&e))
}

#[test]
fn every_shipped_template_renders_every_sample_safely_within_limits() {
    let r = renderer(&shipped(), TemplateOverrides::default()).unwrap();
    for sample in samples::all() {
        for platform in [SLACK, DISCORD] {
            let out = render(&r, platform, &sample.body).unwrap_or_else(|e| panic!("{}: {e}", sample.name));
            assert!(!out.posts.is_empty());
            for post in &out.posts {
                let v: Value = serde_json::from_str(post).unwrap();
                // already within limits: fitting again changes nothing
                let again = rules(platform).fit(&channel("x", platform), v.clone()).unwrap();
                assert_eq!(again.posts, vec![v.clone()], "{}: {platform:?} post not within limits", sample.name);
                assert!(again.notes.is_empty(), "{}: {:?}", sample.name, again.notes);
                let all = crate::text::strings(&v);
                for s in &all {
                    if platform == SLACK {
                        for token in
                            ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<!subteam^S123>", "<https://evil"]
                        {
                            assert!(!s.contains(token), "{}: {token} reached Slack in {s:.80}", sample.name);
                        }
                    }
                    assert!(
                        !s.contains("\u{0}") || sample.name.contains("hostile"),
                        "control characters survive only as JSON escapes"
                    );
                }
                if platform == DISCORD {
                    assert_eq!(v["allowed_mentions"], json!({"parse": []}));
                }
            }
        }
    }
}

#[test]
fn a_long_transcript_is_split_across_posts_in_order_not_dropped() {
    let r = renderer(&shipped(), TemplateOverrides::default()).unwrap();
    let mut body = samples::all().into_iter().find(|s| s.name.contains("300-message")).unwrap().body;
    // Long utterances, so the transcript needs more than Slack's 50 blocks as well.
    for m in body["messages"].as_array_mut().unwrap() {
        m["message"] = json!(format!("{} {}", m["message"].as_str().unwrap(), "and so on ".repeat(50)));
    }
    for platform in [SLACK, DISCORD] {
        let out = render(&r, platform, &body).unwrap();
        let mut texts: Vec<String> = Vec::new();
        for post in &out.posts {
            let v: Value = serde_json::from_str(post).unwrap();
            texts.extend(crate::text::strings(&v).into_iter().map(str::to_owned));
        }
        let joined = texts.join("\n");
        let stamps: Vec<usize> = (0..300)
            .map(|i| {
                let stamp = format!("10:{:02}:{:02}", 30 + i / 60, i % 60);
                joined.find(&stamp).unwrap_or_else(|| panic!("{platform:?}: message {i} ({stamp}) missing"))
            })
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{platform:?}: transcript out of order");
        assert!(out.posts.len() > 1, "{platform:?}: expected several posts");
    }
}

#[test]
fn a_ten_thousand_character_message_arrives_whole_in_pieces() {
    let r = renderer(&shipped(), TemplateOverrides::default()).unwrap();
    let long: String = (0..2000).map(|i| format!("w{i:03} ")).collect::<String>();
    assert!(text::chars(&long) >= 10_000);
    let body = json!({"event_type":"message","call_id":"c","message":{"sender":"user","message":long}});
    let slack_out = render(&r, SLACK, &body).unwrap();
    let v: Value = serde_json::from_str(&slack_out.posts[0]).unwrap();
    let sections: String = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(sections, long);
    let discord_out = render(&r, DISCORD, &body).unwrap();
    let mut described = String::new();
    for post in &discord_out.posts {
        let v: Value = serde_json::from_str(post).unwrap();
        for e in v["embeds"].as_array().unwrap() {
            described.push_str(e["description"].as_str().unwrap());
        }
    }
    assert_eq!(described, long);
}

#[test]
fn template_errors_name_the_file_and_line() {
    let dir = tempdir("bad-template");
    std::fs::create_dir_all(dir.join("slack")).unwrap();
    std::fs::write(dir.join("slack/broken.json.hbs"), "{\n  \"text\": \"{{#if x}}\"\n}\n").unwrap();
    let overrides = TemplateOverrides { message: Some("slack/broken.json.hbs".into()), ..Default::default() };
    let mut map = BTreeMap::new();
    map.insert("live".to_owned(), (SLACK, overrides));
    let problems = Renderer::load(&dir, &map).unwrap_err();
    let shown = problems[0].to_string();
    assert!(shown.contains("broken.json.hbs"), "{shown}");
    assert!(shown.contains("channel `live`"), "{shown}");
    assert!(problems[0].line.is_some(), "{shown}");

    let overrides = TemplateOverrides { message: Some("slack/missing.json.hbs".into()), ..Default::default() };
    map.insert("live".to_owned(), (SLACK, overrides));
    let problems = Renderer::load(&dir, &map).unwrap_err();
    assert!(
        problems[0].to_string().contains("missing.json.hbs: template for channel `live`: template file not found"),
        "{}",
        problems[0]
    );
}

#[test]
fn render_errors_name_template_line_and_call_id() {
    let dir = tempdir("render-errors");
    std::fs::create_dir_all(dir.join("slack")).unwrap();
    std::fs::write(dir.join("slack/notjson.json.hbs"), "{\"text\": {{message.message}} }").unwrap();
    std::fs::write(dir.join("slack/strict.json.hbs"), "{\n\"text\": \"{{message.nope}}\"\n}").unwrap();
    let body = json!({"event_type":"message","call_id":"call-42","message":{"sender":"user","message":"hello"}});
    for (file, want) in [("slack/notjson.json.hbs", "not valid JSON"), ("slack/strict.json.hbs", "line 2")] {
        let overrides = TemplateOverrides { message: Some(file.into()), ..Default::default() };
        let r = renderer(&dir, overrides).unwrap();
        let e = render(&r, SLACK, &body).unwrap_err().to_string();
        assert!(
            e.contains(file) && e.contains(want) && e.contains("call `call-42`") && e.contains("channel `s`"),
            "{e}"
        );
    }
}

#[test]
fn helpers_format_values_for_people() {
    let dir = tempdir("helpers");
    std::fs::create_dir_all(dir.join("slack")).unwrap();
    std::fs::write(
        dir.join("slack/h.json.hbs"),
        r#"{"text": "{{duration evaluation.duration_minutes}}|{{sentiment_emoji evaluation.user_sentiment}}|{{sentiment_color evaluation.user_sentiment}}|{{truncate user_name 4}}|{{default evaluation.topic "none"}}|{{#if (gt evaluation.messages_count 10)}}busy{{/if}}|{{time received_at "%Y"}}", "n": {{json evaluation.messages_count}}, "u": {{json user_name}} }"#,
    )
    .unwrap();
    let overrides = TemplateOverrides { call_ended: Some("slack/h.json.hbs".into()), ..Default::default() };
    let r = renderer(&dir, overrides).unwrap();
    let body = json!({"event_type":"call_ended","call_id":"c","user_name":"Ana <María>","evaluation":{"duration_minutes":"75.5","user_sentiment":"negative","messages_count":"12"}});
    let out = render(&r, SLACK, &body).unwrap();
    let v: Value = serde_json::from_str(&out.posts[0]).unwrap();
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(v["text"], format!("1h 15m|😟|15158332|Ana…|none|busy|{year}"));
    assert_eq!(v["n"], 12);
    assert_eq!(v["u"], "Ana &lt;María&gt;");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callrelay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_thread_parent_customised_under_its_old_name_is_still_used() {
    let ctx = json!({"call_id": "c1", "user_name": "Ann", "event_type": "call_started"});
    // A templates directory from when the parent was `slack/thread_parent.json.hbs`, customised.
    let dir = tempdir("old-parent-name");
    std::fs::create_dir_all(dir.join("slack")).unwrap();
    std::fs::write(dir.join("slack/thread_parent.json.hbs"), r#"{"text": "OLD NAME {{user_name}}"}"#).unwrap();
    let r = renderer(&dir, TemplateOverrides::default()).unwrap();
    assert_eq!(r.template_for("s", "call_started"), Some("slack/thread_parent.json.hbs"));
    let out = r.render_kind(&channel("s", SLACK), "call_started", &ctx).unwrap();
    assert!(out.posts[0].contains("OLD NAME Ann"), "{:?}", out.posts);
    // The old key in `[channels.NAME.templates]` names it too; the new file wins over the old.
    std::fs::write(dir.join("slack/call_started.json.hbs"), r#"{"text": "NEW NAME"}"#).unwrap();
    let r = renderer(&dir, TemplateOverrides::default()).unwrap();
    assert_eq!(r.template_for("s", "call_started"), Some("slack/call_started.json.hbs"));
    let old_key =
        TemplateOverrides { thread_parent: Some("slack/thread_parent.json.hbs".into()), ..Default::default() };
    let r = renderer(&dir, old_key).unwrap();
    assert_eq!(r.template_for("s", "call_started"), Some("slack/thread_parent.json.hbs"));
}
