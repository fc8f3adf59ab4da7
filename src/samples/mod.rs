//! Built-in sample events, as Beyond Presence sends them (and the relay's own `call_started` and
//! `call_timed_out`, as the relay makes them): what `check` renders every template against, what
//! `render` shows without `--event`, and what the console offers.

mod check;

use serde_json::{json, Value};

pub use check::{check, Report};

/// A named sample request body.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What it exercises.
    pub name: &'static str,
    /// The JSON body as Beyond Presence would post it.
    pub body: Value,
}

/// Text built to break naive relays: JSON and Handlebars syntax, control characters, Slack and
/// Discord mention syntax, emoji, right-to-left text, and length.
pub fn hostile_text() -> String {
    let mut s = String::from(
        "\"quotes\" \\backslash\\ \n new line \r\n tab\t nul\u{0} bell\u{7} {{handlebars}} {{{triple}}} \
         <!channel> <!here> <!everyone> <@U123> <!subteam^S123> <#C123> <https://evil.example|click> \
         @everyone @here <@&123> & &amp; </script> 😀👍🏽 مرحبا بالعالم \u{202E}reversed\u{202C} ",
    );
    while s.chars().count() < 10_000 {
        s.push_str("long text ");
    }
    s
}

/// An alternating conversation of `n` utterances, starting with the agent.
pub fn conversation(n: usize) -> Vec<Value> {
    const LINES: [&str; 6] = [
        "Hi, thanks for calling Acme support. How can I help today?",
        "Hi, my invoice for March shows a charge I don't recognise.",
        "I can help with that. Could you tell me the amount and the date of the charge?",
        "It's $49.99 on the 3rd, labelled \"Pro plan\".",
        "Thanks. That is the annual Pro upgrade made on your account. Would you like a refund?",
        "Yes please, I never meant to upgrade.",
    ];
    (0..n)
        .map(|i| {
            json!({
                "sender": if i % 2 == 0 { "ai" } else { "user" },
                "message": LINES[i % LINES.len()],
                "sent_at": format!("2025-10-28T10:{:02}:{:02}.159564", 30 + i / 60 % 30, i % 60),
            })
        })
        .collect()
}

/// Every built-in sample.
pub fn all() -> Vec<Sample> {
    let hostile = hostile_text();
    vec![
        Sample {
            name: "message from the user",
            body: json!({"event_type":"message","call_id":"call_0001","message":{"sender":"user","message":"Hi, I need help with my order.","sent_at":"2024-01-15T10:30:00Z"},"call_data":{"userName":"John Doe","agentId":"agent_456"}}),
        },
        Sample {
            name: "message from the agent (ai sender, naive timestamp, no call_data)",
            body: json!({"event_type":"message","call_id":"call_0001","message":{"sender":"ai","message":"Of course. Could you give me the order number?","sent_at":"2025-10-28T10:31:25.159564"}}),
        },
        Sample {
            name: "call_ended with user_name",
            body: json!({"event_type":"call_ended","call_id":"call_0001","evaluation":{"topic":"Account Support","user_sentiment":"positive","duration_minutes":5.5,"messages_count":12},"messages":conversation(12),"user_name":"John Doe","call_data":{"userName":"John Doe","agentId":"agent_456"}}),
        },
        Sample {
            name: "call_ended without user_name, numeric strings, no evaluation topic",
            body: json!({"event_type":"call_ended","call_id":"call_0002","evaluation":{"user_sentiment":"negative","duration_minutes":"2.25","messages_count":"4","topic":null},"messages":conversation(4),"user_name":null}),
        },
        Sample {
            name: "call_ended with a 300-message transcript",
            body: json!({"event_type":"call_ended","call_id":"call_0003","evaluation":{"topic":"Billing","user_sentiment":"neutral","duration_minutes":42,"messages_count":300},"messages":conversation(300),"user_name":"Ana María"}),
        },
        Sample {
            name: "message with hostile text",
            body: json!({"event_type":"message","call_id":"call_\"<!channel>","message":{"sender":"user","message":hostile,"sent_at":"2024-01-15T10:30:00Z"},"call_data":{"userName":hostile,"agentId":"<@U123>"}}),
        },
        Sample {
            name: "call_ended with hostile text",
            body: json!({"event_type":"call_ended","call_id":"call_{{x}}","evaluation":{"topic":hostile,"user_sentiment":hostile,"duration_minutes":"1e3","messages_count":"many"},"messages":[{"sender":"user","message":hostile},{"sender":"ai","message":hostile}],"user_name":hostile}),
        },
        Sample {
            name: "call_started (made by the relay from a call's first event)",
            body: json!({"event_type":"call_started","call_id":"call_0001","user_name":"John Doe","call_data":{"userName":"John Doe","agentId":"agent_456"}}),
        },
        Sample {
            name: "call_started with hostile text",
            body: json!({"event_type":"call_started","call_id":"call_\"<!channel>","user_name":hostile,"call_data":{"userName":hostile,"agentId":hostile}}),
        },
        Sample {
            name: "call_timed_out (made by the relay for a call that went quiet)",
            body: json!({"event_type":"call_timed_out","call_id":"call_0004","user_name":"Ana María","call_data":{"agentId":"agent_456"},
                         "call":{"started_at":"2024-01-15T10:30:00+00:00","last_event_at":"2024-01-15T10:34:10+00:00","utterances":7,"silent_minutes":30.0}}),
        },
        Sample {
            name: "test event",
            body: json!({"event_type":"test","message":"Webhook test","timestamp":"2025-10-28T10:31:25Z"}),
        },
    ]
}
