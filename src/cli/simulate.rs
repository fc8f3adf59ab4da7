//! `callrelay simulate`: plays a realistic call against a running relay, as Beyond Presence would.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::samples;

pub(super) fn run(url: &str, messages: usize) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts");
    runtime.block_on(play(url, messages))
}

/// `url` with everything after its first path segment hidden (`http://host:8080/webhook/…`): a
/// secret path is a credential, and terminal output ends up in CI logs and tickets.
fn shown(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return "the given URL".into() };
    let segments: Vec<String> = parsed.path_segments().map(|s| s.map(str::to_owned).collect()).unwrap_or_default();
    parsed.set_query(None);
    if segments.len() > 1 {
        parsed.set_path(&format!("/{}/…", segments[0]));
    }
    parsed.as_str().replace("%E2%80%A6", "…")
}

async fn play(url: &str, messages: usize) -> ExitCode {
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client settings are valid");
    let mut ok = true;
    let call_id = format!("sim_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    println!("Simulating call {call_id} against {}", shown(url));

    ok &= post(&client, url, "test event", json!({"event_type": "test", "message": "Webhook test"})).await;

    let preflight = client
        .request(reqwest::Method::OPTIONS, url)
        .header("Origin", "https://app.bey.dev")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await;
    match preflight {
        Ok(r) => {
            let allow = r
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
                .to_owned();
            let good = r.status().as_u16() == 204 && allow == "*";
            ok &= good;
            println!("{} CORS preflight → {} (Access-Control-Allow-Origin: {allow})", mark(good), r.status().as_u16());
        }
        Err(e) => {
            ok = false;
            println!("✗ CORS preflight → {}", e.without_url());
        }
    }

    let conversation = samples::conversation(messages);
    for (i, m) in conversation.iter().enumerate() {
        let body = json!({"event_type": "message", "call_id": call_id, "message": m,
                          "call_data": {"userName": "Sam Sample", "agentId": "agent_sim"}});
        ok &= post(&client, url, &format!("message {}/{messages}", i + 1), body).await;
    }
    let ended = json!({"event_type": "call_ended", "call_id": call_id, "user_name": "Sam Sample",
        "evaluation": {"topic": "Billing question", "user_sentiment": "positive", "duration_minutes": 3.5, "messages_count": messages},
        "messages": conversation, "call_data": {"userName": "Sam Sample", "agentId": "agent_sim"}});
    ok &= post(&client, url, "call_ended", ended).await;

    if ok {
        println!("All requests were accepted.");
        ExitCode::SUCCESS
    } else {
        println!("Some requests were not accepted; see above.");
        ExitCode::FAILURE
    }
}

async fn post(client: &reqwest::Client, url: &str, what: &str, body: Value) -> bool {
    match client.post(url).json(&body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            println!("{} {what} → {status} {text}", mark(status == 200));
            status == 200
        }
        Err(e) => {
            println!("✗ {what} → {}", e.without_url());
            false
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_path_is_hidden_from_the_output() {
        assert_eq!(super::shown("http://127.0.0.1:8080/webhook/s3cret?token=x"), "http://127.0.0.1:8080/webhook/…");
        assert_eq!(super::shown("https://relay.example/webhook"), "https://relay.example/webhook");
    }
}
