//! Discord URL rewriting, limits and answers.

use serde_json::json;

use std::time::Duration;

use super::fit::*;
use super::webhook::*;
use crate::config::WebhookUrl;
use crate::platforms::{Answer, Misplaced, Outcome, NO_TEXT};
use crate::text;

fn rewrite(raw: &str) -> Result<String, String> {
    execute_url(&WebhookUrl::parse(raw).unwrap()).map(|u| u.expose().to_string())
}

#[test]
fn urls_move_to_v10_with_wait_true_keeping_host_prefix_and_query() {
    assert_eq!(
        rewrite("https://discord.com/api/webhooks/123/tok").unwrap(),
        "https://discord.com/api/v10/webhooks/123/tok?wait=true"
    );
    assert_eq!(
        rewrite("https://discord.com/api/v9/webhooks/123/tok?wait=false").unwrap(),
        "https://discord.com/api/v10/webhooks/123/tok?wait=true"
    );
    assert_eq!(
        rewrite("http://127.0.0.1:9000/proxy/api/webhooks/1/t?thread_id=5").unwrap(),
        "http://127.0.0.1:9000/proxy/api/v10/webhooks/1/t?thread_id=5&wait=true"
    );
    assert!(rewrite("https://discord.com/channels/1/2").is_err());
    assert!(rewrite("https://discord.com/api/webhooks/123").is_err());
}

#[test]
fn usernames_follow_discords_rules() {
    assert!(check_username("Call Bot").is_ok());
    assert!(check_username("").is_err());
    assert!(check_username(&"x".repeat(81)).is_err());
    assert!(check_username("My Discord Bot").unwrap_err().contains("discord"));
    assert!(check_username("clyde").is_err());
}

#[test]
fn mentions_are_never_parsed_only_listed_ids_may_ping() {
    let mut body = json!({"content": "@everyone"});
    apply_defaults(&mut body, Some("Bot"), None);
    assert_eq!(body["username"], "Bot");
    assert_eq!(fit(body).unwrap().posts[0]["allowed_mentions"], json!({"parse": []}));
    let mut body = json!({"content": "x", "username": "Mine"});
    apply_defaults(&mut body, Some("Bot"), None);
    assert_eq!(body["username"], "Mine", "the template's choice wins");
    let listed = json!({"content": "<@&42> x", "allowed_mentions": {"roles": ["42"]}});
    assert_eq!(fit(listed).unwrap().posts[0]["allowed_mentions"], json!({"roles": ["42"], "parse": []}));
    for parse in [json!(["users"]), json!(["everyone"]), json!("everyone")] {
        let refused = fit(json!({"content": "x", "allowed_mentions": {"parse": parse}})).unwrap_err();
        assert_eq!(refused.key, Some("allowed_mentions"), "{parse}");
    }
}

#[test]
fn blank_text_never_reaches_discord() {
    for content in ["", "  \n\t"] {
        assert_eq!(fit(json!({"content": content})).unwrap().posts[0]["content"], NO_TEXT);
    }
    let body = json!({"content": " ", "embeds": [
        {"title": " ", "description": "", "footer": {"text": ""}, "author": {"name": "\n"}, "color": 1},
        {"color": 2},
        {"title": "kept", "description": "\t"}
    ]});
    let post = &fit(body).unwrap().posts[0];
    assert!(post.get("content").is_none());
    let e = post["embeds"].as_array().unwrap();
    assert_eq!(e[0], json!({"description": NO_TEXT, "color": 1}));
    assert_eq!(e[1], json!({"color": 2, "description": NO_TEXT}));
    assert_eq!(e[2], json!({"title": "kept", "description": NO_TEXT}));
}

#[test]
fn embeds_over_the_totals_split_into_ordered_posts() {
    let embeds: Vec<_> = (0..14).map(|i| json!({"title": format!("e{i}"), "description": "d".repeat(1500)})).collect();
    let fitted = fit(json!({"content": "head", "embeds": embeds, "allowed_mentions": {"parse": []}})).unwrap();
    let mut titles = Vec::new();
    for (i, post) in fitted.posts.iter().enumerate() {
        let es = post["embeds"].as_array().unwrap();
        assert!(es.len() <= MAX_EMBEDS);
        assert!(es.iter().map(embed_chars).sum::<usize>() <= MAX_EMBED_TOTAL_CHARS);
        assert_eq!(post["allowed_mentions"], json!({"parse": []}));
        assert_eq!(post.get("content").is_some(), i == 0);
        titles.extend(es.iter().map(|e| e["title"].as_str().unwrap().to_owned()));
    }
    assert_eq!(titles, (0..14).map(|i| format!("e{i}")).collect::<Vec<_>>());
}

#[test]
fn each_field_is_cut_to_its_limit_and_empty_values_filled() {
    let body = json!({"embeds": [{
        "title": "t".repeat(300), "description": "d".repeat(5000),
        "fields": (0..30).map(|_| json!({"name": "n".repeat(300), "value": ""})).collect::<Vec<_>>(),
        "footer": {"text": "f".repeat(3000)}, "author": {"name": "a".repeat(300)}
    }]});
    let fitted = fit(body).unwrap();
    let e = &fitted.posts[0]["embeds"][0];
    assert_eq!(text::chars(e["title"].as_str().unwrap()), MAX_TITLE_CHARS);
    assert!(text::chars(e["description"].as_str().unwrap()) <= MAX_DESCRIPTION_CHARS);
    assert!(e["fields"].as_array().unwrap().len() <= MAX_FIELDS);
    assert_eq!(e["fields"][0]["value"], "—");
    assert!(embed_chars(e) <= MAX_EMBED_TOTAL_CHARS);
    assert!(fit(json!({"content": "x", "username": "discord"})).is_err());
}

#[test]
fn answers_are_classified_and_rate_headers_read() {
    let answer = |status, body: &str| Answer::new(status, Default::default(), body);
    assert_eq!(
        classify(&answer(429, r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#)),
        Outcome::RateLimited {
            after: Some(Duration::from_millis(1500)),
            reason: r#"429 {"message":"You are being rate limited.","retry_after":1.5,"global":false}"#.into()
        }
    );
    let mut a = answer(200, "{}");
    a.headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    a.headers.insert("x-ratelimit-reset-after", "0.75".parse().unwrap());
    assert_eq!(pause(&a), Some(Duration::from_millis(750)));
    a.headers.insert("x-ratelimit-remaining", "3".parse().unwrap());
    assert_eq!(pause(&a), None);
}

/// Discord's error bodies as it sends them (`{"message": "…", "code": N}`, with spaces), read by
/// their code: what the place was wrong about, or the webhook gone.
#[test]
fn error_codes_say_what_was_wrong_with_the_place() {
    let answer = |status, body: &str| Answer::new(status, Default::default(), body);
    let why = |status, message: &str, code: u64| match classify(&answer(
        status,
        &json!({"message": message, "code": code}).to_string(),
    )) {
        Outcome::Misplaced { why, .. } => Some(why),
        _ => None,
    };
    assert_eq!(why(400, "Thread is archived", 50083), Some(Misplaced::ThreadArchived));
    assert_eq!(why(400, "Unknown Channel", 10003), Some(Misplaced::ThreadGone));
    assert_eq!(why(404, "Unknown Channel", 10003), Some(Misplaced::ThreadGone));
    assert_eq!(why(404, "Unknown Message", 10008), Some(Misplaced::NotEditable), "not the webhook gone");
    assert_eq!(
        why(400, "Maximum number of edits to messages older than 1 hour reached.", 30046),
        Some(Misplaced::NotEditable)
    );
    assert_eq!(why(400, "Webhooks can only create threads in forum channels", 220003), Some(Misplaced::NotAForum));
    assert_eq!(why(400, "Invalid Form Body", 50035), None);
    let gone = classify(&answer(404, r#"{"message": "Unknown Webhook", "code": 10015}"#));
    assert!(matches!(gone, Outcome::Permanent { broken: true, .. }), "{gone:?}");
    // A message that merely mentions a code is not that code.
    let text = classify(&answer(400, r#"{"message": "Invalid Form Body: 50083 characters", "code": 50035}"#));
    assert!(matches!(text, Outcome::Permanent { broken: false, .. }), "{text:?}");
}

#[test]
fn merging_keeps_order_and_limits() {
    let post = |i: usize| json!({"allowed_mentions": {"parse": []}, "embeds": [{"description": format!("m{i}")}]});
    let mut merged = post(0);
    let mut n = 1;
    while merge(&mut merged, &post(n)) {
        n += 1;
    }
    assert_eq!(n, MAX_EMBEDS, "stops at 10 embeds");
    let order: Vec<&str> =
        merged["embeds"].as_array().unwrap().iter().map(|e| e["description"].as_str().unwrap()).collect();
    assert_eq!(order, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let mut big = json!({"embeds": [{"description": "x".repeat(4000)}]});
    assert!(!merge(&mut big, &json!({"embeds": [{"description": "y".repeat(2500)}]})), "6,000 across embeds");
    assert!(!merge(&mut post(0), &json!({"username": "other", "embeds": []})), "different senders never merge");
}
