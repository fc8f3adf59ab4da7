//! Signed HTTP endpoints (CRMs, workflow tools): every request signed per Standard Webhooks and
//! verified by the reference implementation, the same `webhook-id` on every attempt of a post,
//! the user's headers, and the answers read as a careful sender would.

use std::time::Duration;

use wiremock::ResponseTemplate;

use crate::helpers::*;
use crate::standins::http::Endpoint;

/// Two signing secrets while rotating: the endpoint knows the new one.
const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_c2VjcmV0LW51bWJlci10d28tcm90YXRlZA==";

fn toml() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[delivery]
backoff_base = "20ms"
backoff_cap = "50ms"
[channels.crm]
kind = "http"
url = "{{slack_base}}/crm/hooks/callrelay"
signing_secret = ["{OLD}", "{NEW}"]
headers = {{ "Authorization" = "Bearer CrMtOkEn" }}
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended"]
channels = ["crm"]
"#
    )
}

async fn crm() -> (TestApp, Endpoint) {
    let app = spawn_with(&toml()).await;
    let endpoint = Endpoint::mount(&app.slack, NEW).await;
    (app, endpoint)
}

#[tokio::test]
async fn every_event_arrives_signed_as_the_reference_verifies_with_the_users_headers() {
    let (app, endpoint) = crm().await;
    assert_eq!(app.post_event(&message("call-h", "user", "hello crm")).await.status(), 200);
    assert_eq!(app.post_event(&call_ended("call-h", "positive")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let got = endpoint.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.verified), "verified with the rotated-in secret: {got:?}");
    assert!(got.iter().all(|r| r.authorization.as_deref() == Some("Bearer CrMtOkEn")));
    assert_ne!(got[0].id, got[1].id, "each post its own id");
    assert_eq!(got[0].body["type"], "message");
    assert_eq!(got[0].body["data"]["message"]["message"], "hello crm");
    assert_eq!(got[1].body["type"], "call_ended");
    assert_eq!(got[1].body["data"]["evaluation"]["topic"], "Account Support");
    assert!(got[0].body["timestamp"].as_str().unwrap().ends_with('Z'), "RFC 3339");
}

#[tokio::test]
async fn a_retried_post_keeps_its_webhook_id_and_is_signed_afresh() {
    let (app, endpoint) = crm().await;
    endpoint.answer_first([ResponseTemplate::new(503), ResponseTemplate::new(502)]);
    assert_eq!(app.post_event(&message("call-r", "user", "again")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let got = endpoint.received();
    assert_eq!(got.len(), 3, "two failures, then delivered");
    assert!(got.iter().all(|r| r.id == got[0].id && r.id.starts_with("msg_")), "{got:?}");
    assert!(got.iter().all(|r| r.verified));
    assert!(app.dispatcher.store().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn gone_breaks_the_channel_and_a_redirect_is_not_followed() {
    let (app, endpoint) = crm().await;
    endpoint.answer_first([ResponseTemplate::new(307).insert_header("location", "https://elsewhere.example/")]);
    assert_eq!(app.post_event(&message("call-g", "user", "one")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let letters = app.dispatcher.store().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("redirect is not followed"), "{}", letters[0].reason);

    endpoint.answer_first([ResponseTemplate::new(410)]);
    assert_eq!(app.post_event(&message("call-g", "user", "two")).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let ready = readyz(&app).await;
    assert!(ready["broken_channels"]["crm"].as_str().unwrap().contains("410"), "{ready}");
}

#[test]
fn check_explains_endpoint_mistakes_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let check = |keys: &str| {
        std::fs::write(&file, format!("[channels.crm]\nkind = \"http\"\n{keys}\n[[routes]]\nchannels = [\"crm\"]\n"))
            .unwrap();
        let out = bin().arg("check").arg("--config").arg(&file).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, said) = check("url = \"https://crm.example/hook?token=CrMsEcReT\"");
    assert!(ok, "{said}");
    for (keys, expected) in [
        ("url = \"http://crm.example/hook?token=CrMsEcReT\"", "key `channels.crm.url`: `url` must be https"),
        (
            "url = \"https://crm.example/hook\"\nsigning_secret = \"not-a-whsec-CrMsEcReT\"",
            "key `channels.crm.signing_secret`: `signing_secret` must start with `whsec_`",
        ),
        (
            "url = \"https://crm.example/hook\"\nheaders = { \"webhook-id\" = \"CrMsEcReT\" }",
            "key `channels.crm.headers`: `webhook-id` is set by the relay",
        ),
    ] {
        let (ok, said) = check(keys);
        assert!(!ok && said.contains(expected), "{keys}: {said}");
        assert!(!said.contains("CrMsEcReT"), "{said}");
    }
}

#[tokio::test]
async fn a_restart_mid_delivery_loses_and_repeats_nothing() {
    let server = wiremock::MockServer::start().await;
    let endpoint = Endpoint::mount(&server, NEW).await;
    // The first request is answered slowly: the relay is stopped while it is in flight.
    endpoint.answer_first([ResponseTemplate::new(204).set_delay(Duration::from_millis(1500))]);
    let discord = mock_discord().await;
    let (_dir, file) = write_config(&toml(), &server, &discord);
    let mut first = Served::config(&file);
    for i in 0..5 {
        assert_eq!(first.post_event(&message("call-s", "user", &format!("m{i}"))).await.status(), 200);
    }
    wait_until("the first request", Duration::from_secs(20), async || !endpoint.received().is_empty()).await;
    // SIGTERM, as systemd or Kubernetes stop it: the post in flight finishes and is recorded.
    let status = std::process::Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let stopped = first.child.wait().unwrap();
    assert!(stopped.success(), "a clean stop: {stopped:?}\n{}", first.log());
    drop(first);
    let second = Served::config(&file);
    wait_until("every event", Duration::from_secs(20), async || endpoint.received().len() >= 5).await;
    second.wait_idle().await;
    let got = endpoint.received();
    let texts: Vec<String> =
        got.iter().map(|r| r.body["data"]["message"]["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"], "each once, in order");
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

#[tokio::test]
async fn after_a_kill_mid_delivery_a_repeated_post_carries_the_same_webhook_id() {
    let server = wiremock::MockServer::start().await;
    let endpoint = Endpoint::mount(&server, NEW).await;
    endpoint.answer_first([ResponseTemplate::new(204).set_delay(Duration::from_millis(1500))]);
    let discord = mock_discord().await;
    let (_dir, file) = write_config(&toml(), &server, &discord);
    let first = Served::config(&file);
    for i in 0..3 {
        assert_eq!(first.post_event(&message("call-k", "user", &format!("k{i}"))).await.status(), 200);
    }
    wait_until("the first request", Duration::from_secs(20), async || !endpoint.received().is_empty()).await;
    drop(first); // kill -9 while the first post is in flight: the documented at-least-once window
    let second = Served::config(&file);
    wait_until("every event", Duration::from_secs(20), async || endpoint.received().len() >= 4).await;
    second.wait_idle().await;
    let got = endpoint.received();
    assert_eq!(got.len(), 4, "the unrecorded post once more, nothing else: {got:?}");
    assert_eq!(got[0].id, got[1].id, "the repeat is recognisable by its webhook-id");
    assert_eq!(got[0].body["data"], got[1].body["data"]);
    let texts: Vec<&str> = got[1..].iter().map(|r| r.body["data"]["message"]["message"].as_str().unwrap()).collect();
    assert_eq!(texts, ["k0", "k1", "k2"], "nothing lost, in order");
}
