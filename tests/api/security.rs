//! Only the sender gets in, nothing leaks, nothing crashes: every auth mode, TLS, slow and
//! hostile clients, secrets in output, and duplicate suppression across a restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::*;

const SIGNING_SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItY2FsbHJlbGF5LXRlc3RzIQ==";

fn with_auth(auth: &str) -> String {
    DEFAULT_TOML.replace("[channels.live]", &format!("{auth}\n[channels.live]"))
}

async fn unauthorized(r: reqwest::Response) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"error": "unauthorized"}), "nothing about which check failed");
}

#[tokio::test]
async fn a_secret_path_is_the_only_way_in() {
    std::env::set_var("CALLRELAY_TEST_SECRET_PATH_SEGMENT", "s3cr3t-segment");
    let app = spawn_with(
        &DEFAULT_TOML.replace("path = \"/webhook\"", "path = \"/webhook/${CALLRELAY_TEST_SECRET_PATH_SEGMENT}\""),
    )
    .await;
    assert!(app.webhook.ends_with("/webhook/s3cr3t-segment"));
    let r = app.client.post(format!("{}/webhook", app.address)).json(&message("c", "user", "x")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.post_event(&message("c", "user", "in")).await.status(), 200);
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["in"]);
}

#[tokio::test]
async fn no_part_of_a_secret_path_reaches_logs_readyz_or_the_cli() {
    const SECRET: &str = "Zq7pathSECRETxK4w";
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml = DEFAULT_TOML.replace("path = \"/webhook\"", "path = \"/webhook/${CALLRELAY_TEST_PATH}\"");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("RUST_LOG", "trace").env("CALLRELAY_TEST_PATH", SECRET);
    let served = Served::start(cmd);
    let base = format!("http://127.0.0.1:{}", served.port);
    let client = reqwest::Client::new();
    let url = format!("{base}/webhook/{SECRET}");
    assert_eq!(client.post(&url).json(&message("c", "user", "in")).send().await.unwrap().status(), 200);
    let wrong = client.post(format!("{base}/webhook/{}", &SECRET[..8])).json(&message("c", "user", "x"));
    assert_eq!(wrong.send().await.unwrap().status(), 404);
    let mut output = client.get(format!("{base}/readyz")).send().await.unwrap().text().await.unwrap();
    // A reload, so its messages are in the log too.
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + "\n").unwrap();
    let pid = served.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.log().contains("Reloaded the configuration") {
        assert!(Instant::now() < deadline, "no reload logged:\n{}", served.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for args in [vec!["check"], vec!["render"], vec!["simulate", "--messages", "1"]] {
        let out = bin().args(&args).arg("--config").arg(&file).env("CALLRELAY_TEST_PATH", SECRET).output().unwrap();
        output += &String::from_utf8_lossy(&out.stdout);
        output += &String::from_utf8_lossy(&out.stderr);
    }
    let simulated = bin().args(["simulate", "--messages", "1", "--url", &url]).output().unwrap();
    assert!(simulated.status.success(), "{}", String::from_utf8_lossy(&simulated.stderr));
    output += &String::from_utf8_lossy(&simulated.stdout);
    output += &served.log();
    assert!(output.contains("path=/webhook/…"), "the start-up line shows the path's public part:\n{output}");
    for part in SECRET.as_bytes().windows(5) {
        let part = std::str::from_utf8(part).unwrap();
        assert!(!output.contains(part), "`{part}` of the secret path leaked:\n{output}");
    }
}

#[tokio::test]
async fn tokens_by_header_or_query_with_rotation_and_the_preflight_needs_none() {
    let app = spawn_with(&with_auth("[auth]\ntokens = [\"old-token\", \"new-token\"]")).await;
    let post = |req: reqwest::RequestBuilder, text: &str| req.json(&message("c", "user", text)).send();
    assert_eq!(post(app.client.post(&app.webhook).bearer_auth("new-token"), "a").await.unwrap().status(), 200);
    assert_eq!(post(app.client.post(&app.webhook).bearer_auth("old-token"), "b").await.unwrap().status(), 200);
    assert_eq!(post(app.client.post(format!("{}?token=new-token", app.webhook)), "c").await.unwrap().status(), 200);
    unauthorized(post(app.client.post(&app.webhook).bearer_auth("wrong"), "x").await.unwrap()).await;
    unauthorized(post(app.client.post(&app.webhook), "y").await.unwrap()).await;
    unauthorized(post(app.client.post(format!("{}?token=new", app.webhook)), "z").await.unwrap()).await;
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, &app.webhook)
        .header("Origin", "https://app.bey.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["a", "b", "c"], "refused requests forward nothing");
}

fn signed(body: &Value, id: &str, ts: i64, secret: &str) -> (String, String) {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = standardwebhooks::Webhook::new(secret).unwrap().sign(id, ts, &bytes).unwrap();
    (String::from_utf8(bytes).unwrap(), sig)
}

#[tokio::test]
async fn standard_webhooks_signatures_timestamps_replays_and_rotation() {
    let old =
        "whsec_".to_owned() + &base64::engine::general_purpose::STANDARD.encode(b"the previous signing key, 32 byte");
    let app = spawn_with(&with_auth(&format!("[auth]\nsigning_secrets = [\"{old}\", \"{SIGNING_SECRET}\"]"))).await;
    let now = chrono::Utc::now().timestamp();
    let send = |body: String, id: &str, ts: i64, sig: &str| {
        app.client
            .post(&app.webhook)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
    };
    let (body, sig) = signed(&message("c", "user", "signed"), "msg_1", now, SIGNING_SECRET);
    assert_eq!(send(body.clone(), "msg_1", now, &sig).await.unwrap().status(), 200);
    unauthorized(send(body, "msg_1", now, &sig).await.unwrap()).await; // replayed id

    let (body, sig) = signed(&message("c", "user", "by the old key"), "msg_2", now, &old);
    assert_eq!(send(body, "msg_2", now, &sig).await.unwrap().status(), 200, "rotation: the old secret still works");

    let (body, sig) = signed(&message("c", "user", "stale"), "msg_3", now - 600, SIGNING_SECRET);
    unauthorized(send(body, "msg_3", now - 600, &sig).await.unwrap()).await;
    let (body, sig) = signed(&message("c", "user", "tampered"), "msg_4", now, SIGNING_SECRET);
    unauthorized(send(body.replace("tampered", "tampered!"), "msg_4", now, &sig).await.unwrap()).await;
    unauthorized(app.post_event(&message("c", "user", "unsigned")).await).await;
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["signed", "by the old key"]);
}

#[tokio::test]
async fn client_networks_and_forwarded_for_from_trusted_proxies_only() {
    let app =
        spawn_with(&with_auth("[auth]\nallow_networks = [\"203.0.113.0/24\"]\ntrusted_proxies = [\"127.0.0.1/32\"]"))
            .await;
    let post = |xff: Option<&str>, text: &str| {
        let mut r = app.client.post(&app.webhook).json(&message("c", "user", text));
        if let Some(x) = xff {
            r = r.header("X-Forwarded-For", x);
        }
        r.send()
    };
    assert_eq!(post(Some("203.0.113.9"), "via proxy").await.unwrap().status(), 200);
    unauthorized(post(None, "the proxy itself is not allowed").await.unwrap()).await;
    unauthorized(post(Some("203.0.113.9, 198.51.100.7"), "spoofed first hop").await.unwrap()).await;

    let app2 = spawn_with(&with_auth("[auth]\nallow_networks = [\"203.0.113.0/24\"]")).await;
    let r = app2
        .client
        .post(&app2.webhook)
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&message("c", "user", "x"))
        .send()
        .await
        .unwrap();
    unauthorized(r).await; // an untrusted peer cannot claim an address
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["via proxy"]);
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_not_a_crash() {
    let app = spawn_app().await;
    let deep =
        format!("{{\"event_type\":\"message\",\"call_id\":\"c\",\"x\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let r = app.post_raw(deep).await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.client.get(format!("{}/healthz", app.address)).send().await.unwrap().status(), 200, "still alive");
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let app =
        spawn_with(&DEFAULT_TOML.replace("path = \"/webhook\"", "path = \"/webhook\"\nread_timeout = \"500ms\"")).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        // Half a request head, then silence.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let head_cut = String::from_utf8_lossy(&buf).to_string();
        // A complete head promising a body that never comes.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event").unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (head_cut, String::from_utf8_lossy(&buf).to_string())
    })
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(9), "the server, not the client's 10 s timeout, ended both");
    assert!(closed.0.is_empty() || closed.0.contains("408"), "{:?}", closed.0);
    assert!(closed.1.contains("408"), "{:?}", closed.1);
}

#[tokio::test]
async fn https_with_http2_and_certificates_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join(format!("{name}.crt")), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), cert.key_pair.serialize_pem()).unwrap();
        cert.cert
    };
    let first = make("first");
    let second = make("second");
    std::fs::copy(dir.path().join("first.crt"), dir.path().join("live.crt")).unwrap();
    std::fs::copy(dir.path().join("first.key"), dir.path().join("live.key")).unwrap();
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml = DEFAULT_TOML.replace(
        "path = \"/webhook\"",
        &format!(
            "path = \"/webhook\"\n[server.tls]\ncert = \"{0}/live.crt\"\nkey = \"{0}/live.key\"",
            dir.path().display()
        ),
    );
    let (_cfg_dir, file) = write_config(&toml, &slack, &discord);
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("RUST_LOG", "info");
    let served = Served::start(cmd);

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(first.der()).unwrap())
        .add_root_certificate(reqwest::Certificate::from_der(second.der()).unwrap())
        .tls_info(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}", served.port);
    let peer_cert = |r: &reqwest::Response| {
        r.extensions().get::<reqwest::tls::TlsInfo>().unwrap().peer_certificate().unwrap().to_vec()
    };

    let r = client.post(format!("{url}/webhook")).json(&message("c", "user", "over tls")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(peer_cert(&r), first.der().to_vec());

    std::fs::copy(dir.path().join("second.crt"), dir.path().join("live.crt")).unwrap();
    std::fs::copy(dir.path().join("second.key"), dir.path().join("live.key")).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A new client: a fresh TLS handshake.
        let fresh = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(second.der()).unwrap())
            .tls_info(true)
            .build()
            .unwrap();
        if let Ok(r) = fresh.get(format!("{url}/healthz")).send().await {
            assert_eq!(peer_cert(&r), second.der().to_vec());
            break;
        }
        assert!(Instant::now() < deadline, "the renewed certificate was never served: {}", served.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = slack_messages(&wait_bodies(&slack, 1).await);
    assert_eq!(got, ["over tls"]);
}

async fn wait_bodies(mock: &wiremock::MockServer, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let b = bodies(mock).await;
        if b.len() >= n {
            return b;
        }
        assert!(Instant::now() < deadline, "only {} of {n} posts arrived", b.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_errors_or_cli_output() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    // Slack answers one post with an error, so failure paths are logged too.
    slack.reset().await;
    wiremock::Mock::given(wiremock::matchers::body_string_contains("fail me"))
        .respond_with(wiremock::ResponseTemplate::new(500).set_body_string("internal_error"))
        .up_to_n_times(1)
        .mount(&slack)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let token = "tok-SECRET-7f3a9";
    let toml = DEFAULT_TOML
        .replace("[channels.live]", "[delivery]\nbackoff_base = \"20ms\"\n[auth]\ntokens = [\"${CALLRELAY_TEST_TOKEN}\"]\nsigning_secrets = [\"${CALLRELAY_TEST_SIGNING}\"]\n\n[channels.live]");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let env = [("CALLRELAY_TEST_TOKEN", token), ("CALLRELAY_TEST_SIGNING", SIGNING_SECRET)];
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("RUST_LOG", "trace").envs(env);
    let served = Served::start(cmd);
    let url = format!("http://127.0.0.1:{}/webhook", served.port);
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    for (i, text) in ["fine", "fail me", "fine again"].iter().enumerate() {
        let id = format!("msg_{i}");
        let (body, sig) = signed(&message("c", "user", text), &id, now, SIGNING_SECRET);
        let r = client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client.post(&url).bearer_auth("wrong-token").json(&message("c", "user", "x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !slack_messages(&bodies(&slack).await).contains(&"fine again".to_owned()) {
        assert!(Instant::now() < deadline, "the posts never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The log is read from the child's pipe by another thread: give it time to catch up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.log().contains("internal_error") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut output = served.log();
    for args in [vec!["check"], vec!["render"], vec!["dlq", "list"]] {
        let out = bin().args(&args).arg("--config").arg(&file).envs(env).output().unwrap();
        output += &String::from_utf8_lossy(&out.stdout);
        output += &String::from_utf8_lossy(&out.stderr);
    }
    // A configuration error about a secret-bearing value.
    let bad = std::fs::read_to_string(&file).unwrap().replace(SLACK_PATH, "/services/T0/B0/slacksecrettoken\" \"oops");
    std::fs::write(&file, bad).unwrap();
    let out = bin().arg("check").arg("--config").arg(&file).envs(env).output().unwrap();
    output += &String::from_utf8_lossy(&out.stderr);

    assert!(output.contains("internal_error"), "the failure path was exercised and logged:\n{output}");
    for secret in
        [token, SIGNING_SECRET, "c2VjcmV0LWtleS1mb3ItY2FsbHJlbGF5LXRlc3RzIQ", "slacksecrettoken", "discordsecrettoken"]
    {
        assert!(!output.contains(secret), "`{secret}` leaked:\n{output}");
    }
}

#[tokio::test]
async fn an_identical_event_is_forwarded_once_also_across_a_restart() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let event = json!({"event_type":"message","call_id":"dup","message":{"sender":"user","message":"once","sent_at":"2024-01-15T10:30:00Z"}});
    let client = reqwest::Client::new();
    let mut first = Served::start({
        let mut c = bin();
        c.arg("--config").arg(&file).env("RUST_LOG", "info");
        c
    });
    for expected in ["accepted", "duplicate"] {
        let r = client.post(format!("http://127.0.0.1:{}/webhook", first.port)).json(&event).send().await.unwrap();
        assert_eq!(r.status(), 200, "a duplicate still gets 200");
        assert_eq!(r.json::<Value>().await.unwrap()["status"], expected);
    }
    let test = json!({"event_type": "test"});
    for expected in ["accepted", "duplicate"] {
        let r = client.post(format!("http://127.0.0.1:{}/webhook", first.port)).json(&test).send().await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["status"], expected, "a double-click on test");
    }
    let _ = wait_bodies(&slack, 2).await;
    // A clean stop (a kill -9 could repeat the post in flight, which is another test's subject).
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    first.child.wait().unwrap();
    let second = Served::start({
        let mut c = bin();
        c.arg("--config").arg(&file).env("RUST_LOG", "info");
        c
    });
    let r = client.post(format!("http://127.0.0.1:{}/webhook", second.port)).json(&event).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate", "remembered across the restart");
    let mut other = event.clone();
    other["message"]["sent_at"] = json!("2024-01-15T10:30:01Z");
    let r = client.post(format!("http://127.0.0.1:{}/webhook", second.port)).json(&other).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "accepted",
        "the same words said again later are not a duplicate"
    );
    let got = slack_messages(&wait_bodies(&slack, 3).await);
    assert_eq!(got.iter().filter(|m| *m == "once").count(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bodies(&slack).await.len(), 3, "message, test, and the later message; no duplicate");
}
