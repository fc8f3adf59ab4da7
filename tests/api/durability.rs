//! Crash and restart with the real binary: what got 200 is delivered, in order, whatever happens
//! to the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const CRASH_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.live]
kind = "slack"
webhook_url = "{slack}"
coalesce = false
rate_limit = ["1000/1s"]
[[routes]]
channels = ["live"]
"#;

fn serve(file: &std::path::Path) -> Served {
    let mut cmd = bin();
    cmd.arg("--config").arg(file).env("RUST_LOG", "info");
    Served::start(cmd)
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_nothing_that_got_200() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(CRASH_TOML, &slack, &discord);
    let mut first = serve(&file);
    let url = format!("http://127.0.0.1:{}/webhook", first.port);

    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..8)
        .map(|k| {
            let (url, accepted) = (url.clone(), accepted.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for seq in 0..63 {
                    let text = format!("k{k}-{seq:03}");
                    match client.post(&url).json(&message("c", "user", &text)).send().await {
                        Ok(r) if r.status() == 200 => accepted.lock().unwrap().push(text),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    wait_until("150 accepted events", Duration::from_secs(30), async || accepted.lock().unwrap().len() >= 150).await;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 150 && accepted.len() < 504, "the kill landed mid-burst ({} accepted)", accepted.len());

    let _second = serve(&file);
    wait_until("every accepted event to arrive", Duration::from_secs(60), async || {
        let got = slack_messages(&bodies(&slack).await);
        accepted.iter().all(|a| got.contains(a))
    })
    .await;

    let got = slack_messages(&bodies(&slack).await);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for g in &got {
        *seen.entry(g).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.len() <= 1, "only the post in flight at the crash may repeat: {repeated:?}");
    for k in 0..8 {
        let prefix = format!("k{k}-");
        let mut order: Vec<&String> = got.iter().filter(|g| g.starts_with(&prefix)).collect();
        order.dedup();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "client {k} out of order: {order:?}");
    }
}

#[tokio::test]
async fn sigterm_keeps_the_queue_and_a_restart_delivers_it_in_order() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    slack.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&slack).await;
    let (_dir, file) = write_config(
        &CRASH_TOML.replace(
            "[channels.live]",
            "[delivery]\nbackoff_base = \"50ms\"\nbackoff_cap = \"200ms\"\n[channels.live]",
        ),
        &slack,
        &discord,
    );
    let mut first = serve(&file);
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client
            .post(format!("http://127.0.0.1:{}/webhook", first.port))
            .json(&message("c", "user", &format!("q{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let pid = first.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || {
        let s = first.child.wait().unwrap();
        (s, first)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "a clean exit on SIGTERM: {:?}\n{}", status.0, status.1.log());
    assert!(status.1.log().contains("queued posts will be sent after the next start"), "{}", status.1.log());

    slack.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&slack).await;
    let _second = serve(&file);
    wait_until("the queue to drain after restart", Duration::from_secs(30), async || {
        slack_messages(&bodies(&slack).await).len() >= 5
    })
    .await;
    assert_eq!(slack_messages(&bodies(&slack).await), ["q0", "q1", "q2", "q3", "q4"]);
}
