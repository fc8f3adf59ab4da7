//! Table tests for route matching.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::config::{ChannelConfig, RouteConfig};

fn channels(names: &[&str]) -> BTreeMap<String, ChannelConfig> {
    names
        .iter()
        .map(|n| {
            let cfg: ChannelConfig =
                serde_json::from_value(json!({"kind":"slack","webhook_url":"https://x.test/h"})).unwrap();
            (n.to_string(), cfg)
        })
        .collect()
}

fn routes(v: Value) -> Vec<RouteConfig> {
    serde_json::from_value(v).unwrap()
}

fn router(v: Value) -> Router {
    Router::compile(&routes(v), &channels(&["a", "b", "c"])).unwrap()
}

fn problems(v: Value) -> Vec<String> {
    Router::compile(&routes(v), &channels(&["a", "b", "c"])).unwrap_err().into_iter().map(|p| p.message).collect()
}

fn ctx() -> Value {
    json!({
        "event_type": "call_ended", "call_id": "call-9",
        "user_name": "Ann", "agent_id": "agent_456",
        "call_data": {"agentId": "agent_456", "tier": "gold", "priority": "7"},
        "evaluation": {"user_sentiment": "negative", "duration_minutes": 12.5, "messages_count": 40, "topic": null},
        "messages": [{"sender": "user", "message": "hello"}]
    })
}

#[test]
fn each_operator_matches_and_fails_as_documented() {
    let cases: Vec<(&str, Value, bool)> = vec![
        ("call_data.agentId", json!("agent_456"), true),
        ("call_data.agentId", json!("agent_1"), false),
        ("call_data.tier", json!(["silver", "gold"]), true),
        ("call_data.tier", json!(["silver"]), false),
        ("user_name", json!({"regex": "^A"}), true),
        ("user_name", json!({"regex": "^B"}), false),
        ("evaluation.user_sentiment", json!({"not": "positive"}), true),
        ("evaluation.user_sentiment", json!({"not": "negative"}), false),
        ("evaluation.user_sentiment", json!({"not_in": ["positive", "neutral"]}), true),
        ("evaluation.user_sentiment", json!({"not_in": ["negative"]}), false),
        ("evaluation.duration_minutes", json!({"gt": 10}), true),
        ("evaluation.duration_minutes", json!({"gt": 12.5}), false),
        ("evaluation.duration_minutes", json!({"gte": 12.5}), true),
        ("evaluation.messages_count", json!({"lt": 41}), true),
        ("evaluation.messages_count", json!({"lt": 40}), false),
        ("evaluation.messages_count", json!({"lte": 40}), true),
        ("call_data.priority", json!({"gte": 7}), true), // numeric string compares as a number
        ("call_data.priority", json!(7), true),
        ("call_data.priority", json!({"gt": 7}), false),
        ("evaluation.topic", json!({"exists": false}), true), // null counts as absent
        ("evaluation.topic", json!({"exists": true}), false),
        ("call_data.agentId", json!({"exists": true}), true),
        ("call_data.missing", json!({"not": "x"}), true),
        ("call_data.missing", json!("x"), false),
        ("messages.0.sender", json!("user"), true),
        ("evaluation.duration_minutes", json!({"gte": 10, "lt": 13}), true),
        ("evaluation.duration_minutes", json!({"gte": 10, "lt": 12}), false),
    ];
    for (path, spec, want) in cases {
        let r = router(json!([{"name":"r","channels":["a"],"match":{path: spec.clone()}}]));
        let got = !r.route(EventType::CallEnded, &ctx()).is_empty();
        assert_eq!(got, want, "{path} {spec}");
    }
}

#[test]
fn events_default_to_message_and_call_ended_and_test_only_when_listed() {
    let r = router(json!([{"channels":["a"]}, {"channels":["b"], "events":["test"]}]));
    assert_eq!(r.route(EventType::Message, &ctx()), vec!["a"]);
    assert_eq!(r.route(EventType::CallEnded, &ctx()), vec!["a"]);
    assert_eq!(r.route(EventType::Test, &ctx()), vec!["b"]);
}

#[test]
fn fan_out_gives_each_channel_one_copy_and_stop_ends_evaluation() {
    let r = router(json!([
        {"channels":["a","b"]},
        {"channels":["b","c"], "match":{"evaluation.user_sentiment":"negative"}, "stop": true},
        {"channels":["c","a"]},
        {"channels":["b"]}
    ]));
    assert_eq!(r.route(EventType::CallEnded, &ctx()), vec!["a", "b", "c"]);
    let mut calm = ctx();
    calm["evaluation"]["user_sentiment"] = json!("positive");
    // the stop route did not match, so evaluation continued
    assert_eq!(r.route(EventType::CallEnded, &calm), vec!["a", "b", "c"]);
    let r = router(json!([{"channels":["c"], "stop": true}, {"channels":["a"]}]));
    assert_eq!(r.route(EventType::CallEnded, &ctx()), vec!["c"]);
}

#[test]
fn errors_name_the_route_and_the_fault() {
    let p = Router::compile(&routes(json!([{"name":"urgent","channels":["nope"]}])), &channels(&["a"])).unwrap_err();
    assert_eq!(p[0].name, "urgent");
    assert!(p[0].message.contains("unknown channel `nope`"), "{}", p[0].message);
    assert!(problems(json!([{"channels":["a"],"match":{"x":{"regex":"("}}}]))[0].contains("invalid regex"));
    assert!(problems(json!([{"channels":["a"],"match":{"x":{"gt":"ten"}}}]))[0].contains("`gt` needs a number"));
    assert!(problems(json!([{"channels":["a"],"match":{"x":{"exists":"yes"}}}]))[0]
        .contains("`exists` needs true or false"));
    assert!(problems(json!([{"channels":["a"],"match":{"x":{"not_in":"y"}}}]))[0].contains("`not_in` needs an array"));
    assert!(problems(json!([{"channels":["a"],"match":{"x":{"like":"y"}}}]))[0].contains("unknown operator `like`"));
    assert!(problems(json!([{"channels":["a"],"events":["call_end"]}]))[0].contains("unknown event type `call_end`"));
    let unnamed =
        Router::compile(&routes(json!([{"channels":["a"]},{"channels":["z"]}])), &channels(&["a"])).unwrap_err();
    assert_eq!(unnamed[0].name, "route 2");
}
