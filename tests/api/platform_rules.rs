//! The platforms' own rules for what notifies people, written down from their documentation so
//! tests can ask "would this body ping anyone?" the way Slack and Discord would answer it.
//!
//! Slack: <https://docs.slack.dev/messaging/formatting-message-text#automatic-parsing> and the
//! text object's `verbatim` field. Discord:
//! <https://discord.com/developers/docs/resources/message#allowed-mentions-object>.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// Bare names Slack links when it parses text itself: `@here`, `@channel`, `@everyone`, `@user`,
/// `#channel`.
fn bare_names(text: &str) -> Vec<String> {
    static BARE: OnceLock<Regex> = OnceLock::new();
    let re = BARE.get_or_init(|| Regex::new(r"(?:^|[^\w&])([@#][\w.-]+)").unwrap());
    re.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

/// Everything in a Slack body that would notify someone or link a channel: manual mention syntax
/// anywhere; bare names in a `mrkdwn` text object that is not `verbatim`; bare names in top-level
/// and attachment text when the body sets `link_names` or `parse: "full"`.
pub fn slack_notifications(body: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for s in callrelay::text::strings(body) {
        for t in ["<!channel", "<!here", "<!everyone", "<@", "<!subteam^", "<#"] {
            if s.contains(t) {
                found.push(format!("{t} in {s:.60}"));
            }
        }
    }
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                let verbatim = m.get("verbatim").and_then(Value::as_bool) == Some(true);
                if m.get("type").and_then(Value::as_str) == Some("mrkdwn") && !verbatim {
                    let text = m.get("text").and_then(Value::as_str).unwrap_or("");
                    found.extend(bare_names(text).into_iter().map(|n| format!("bare {n} in non-verbatim mrkdwn")));
                }
                if m.get("type").and_then(Value::as_str) == Some("markdown") {
                    found.push("a markdown block, parsed without a verbatim switch".into());
                }
                m.values().for_each(|c| walk(c, found));
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, found)),
            _ => {}
        }
    }
    walk(body, &mut found);
    let links_names = body.get("link_names").is_some_and(|v| v != &Value::Bool(false) && v != &Value::from(0))
        || body.get("parse").and_then(Value::as_str) == Some("full");
    if links_names {
        let mut texts: Vec<&str> = body.get("text").and_then(Value::as_str).into_iter().collect();
        for a in body.get("attachments").and_then(Value::as_array).into_iter().flatten() {
            texts.extend(["text", "pretext"].iter().filter_map(|k| a.get(*k).and_then(Value::as_str)));
        }
        for t in texts {
            found.extend(bare_names(t).into_iter().map(|n| format!("bare {n} with link_names/parse=full")));
        }
    }
    found
}

/// Everything in a Discord body's `content` that would ping someone under its `allowed_mentions`
/// (embeds never ping). Without `allowed_mentions`, Discord parses every kind.
pub fn discord_notifications(body: &Value) -> Vec<String> {
    static MENTION: OnceLock<Regex> = OnceLock::new();
    let re = MENTION.get_or_init(|| Regex::new(r"@everyone|@here|<@!?(\d+)>|<@&(\d+)>").unwrap());
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    let allowed = body.get("allowed_mentions");
    let parses = |kind: &str| match allowed {
        None => true,
        Some(a) => a.get("parse").and_then(Value::as_array).is_some_and(|p| p.iter().any(|x| x.as_str() == Some(kind))),
    };
    let listed = |list: &str, id: &str| {
        allowed.and_then(|a| a.get(list)).and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x == id))
    };
    re.captures_iter(content)
        .filter(|c| match (c.get(1), c.get(2)) {
            (Some(user), _) => parses("users") || listed("users", user.as_str()),
            (_, Some(role)) => parses("roles") || listed("roles", role.as_str()),
            _ => parses("everyone"),
        })
        .map(|c| c[0].to_owned())
        .collect()
}

#[test]
fn the_rules_flag_what_the_platforms_would_notify() {
    use serde_json::json;
    let section = |verbatim: bool| json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi @here", "verbatim": verbatim}}]});
    assert_eq!(slack_notifications(&section(false)).len(), 1);
    assert!(slack_notifications(&section(true)).is_empty());
    assert_eq!(slack_notifications(&json!({"text": "<!channel>"})).len(), 1);
    assert!(slack_notifications(&json!({"text": "@channel"})).is_empty());
    assert_eq!(slack_notifications(&json!({"text": "@channel", "link_names": 1})).len(), 1);
    assert!(slack_notifications(&json!({"text": "a&#64;here"})).is_empty());
    assert_eq!(discord_notifications(&json!({"content": "@everyone"})), ["@everyone"]);
    assert!(discord_notifications(&json!({"content": "@everyone <@1>", "allowed_mentions": {"parse": []}})).is_empty());
    assert_eq!(
        discord_notifications(&json!({"content": "<@&7> <@&8>", "allowed_mentions": {"parse": [], "roles": ["7"]}})),
        ["<@&7>"]
    );
}
