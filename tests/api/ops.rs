//! Operations: live reload (file change and SIGHUP), /metrics, send-test.

use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn a_template_change_is_used_by_the_next_event_and_a_broken_one_is_refused() {
    let (app, dir) = spawn_with_own_templates().await;
    app.post_event(&message("c", "user", "before")).await;
    assert_eq!(slack_messages(&app.received(&app.slack).await), ["before"]);

    std::fs::write(dir.join("slack/message.json.hbs"), r#"{"text": "NEW {{message.message}}"}"#).unwrap();
    wait_for_reloads(&app, "reloads", 1).await;
    app.post_event(&message("c", "user", "after")).await;
    let bodies = app.received(&app.slack).await;
    assert_eq!(bodies.last().unwrap()["text"], "NEW after");

    std::fs::write(dir.join("slack/message.json.hbs"), r#"{"text": "{{#if}}"#).unwrap();
    wait_for_reloads(&app, "failed_reloads", 1).await;
    app.post_event(&message("c", "user", "still")).await;
    let bodies = app.received(&app.slack).await;
    assert_eq!(bodies.last().unwrap()["text"], "NEW still", "the running configuration stayed");
    // (`callrelay_config_last_reload_successful` is the process's, shared with the other tests'
    // relays: the real binary's is checked in `sighup_reloads_routes_in_the_real_binary`.)
}

#[tokio::test]
async fn nothing_is_lost_across_reloads() {
    let app = spawn_app().await;
    let file = app.config_file();
    let posting = async {
        for i in 0..60 {
            assert_eq!(app.post_event(&message("c", "user", &format!("m{i:02}"))).await.status(), 200);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let reloading = async {
        for n in 1..=3 {
            std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + &format!("\n# edit {n}\n")).unwrap();
            wait_for_reloads(&app, "reloads", n).await;
        }
    };
    tokio::join!(posting, reloading);
    let got = slack_messages(&app.received(&app.slack).await);
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, (0..60).map(|i| format!("m{i:02}")).collect::<Vec<_>>(), "all delivered, in order");
}

#[tokio::test]
async fn sighup_reloads_routes_in_the_real_binary() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("RUST_LOG", "info");
    let served = Served::start(cmd);
    let url = format!("http://127.0.0.1:{}/webhook", served.port);
    let client = reqwest::Client::new();
    // Route live messages to Discord too; the watcher is not what we test here, so also signal.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            "events = [\"message\"]\nchannels = [\"live\"]",
            "events = [\"message\"]\nchannels = [\"live\", \"summaries\"]",
        )
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    std::fs::write(&file, text).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !served.log().contains("Reloaded the configuration") {
        assert!(Instant::now() < deadline, "{}", served.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served.log().contains("take effect after a restart"), "a listen change is reported: {}", served.log());
    client.post(&url).json(&message("c", "user", "to both")).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while bodies(&discord).await.is_empty() {
        assert!(Instant::now() < deadline, "the new route was not used: {}", served.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A broken file is refused, and /metrics says the last reload failed.
    let gauge = async || {
        let metrics = client.get(format!("http://127.0.0.1:{}/metrics", served.port)).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        text.lines().find(|l| l.starts_with("callrelay_config_last_reload_successful")).map(str::to_owned)
    };
    assert_eq!(gauge().await.as_deref(), Some("callrelay_config_last_reload_successful 1"));
    std::fs::write(&file, "[server\nbroken").unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    wait_until("the failed reload's gauge", Duration::from_secs(20), async || {
        gauge().await.as_deref() == Some("callrelay_config_last_reload_successful 0")
    })
    .await;
}

#[tokio::test]
async fn metrics_cover_every_family_after_a_scripted_run() {
    let toml =
        with_fast_retries(&DEFAULT_TOML.replace("[channels.live]", "[auth]\ntokens = [\"t\"]\n\n[channels.live]"))
            .replace("[server]", "[templates]\ndir = \"templates\"\n\n[server]");
    // A template that fails only for the text "boom", which no built-in sample says.
    let app = spawn_prepared(&toml, |dir| {
        copy_dir(&templates_dir(), &dir.join("templates"));
        let t = dir.join("templates/slack/message.json.hbs");
        let text = std::fs::read_to_string(&t).unwrap();
        std::fs::write(&t, format!("{{{{#if (eq message.message \"boom\")}}}}{{{{no.such.field}}}}{{{{/if}}}}{text}"))
            .unwrap();
    })
    .await;
    let post = |body: Value| app.client.post(&app.webhook).bearer_auth("t").json(&body).send();
    post(message("c", "user", "one")).await.unwrap();
    post(message("c", "user", "one")).await.unwrap(); // duplicate
    app.client.post(&app.webhook).json(&message("c", "user", "no token")).send().await.unwrap(); // 401
    post(serde_json::json!({"event_type": "call_started", "call_id": "c"})).await.unwrap(); // unknown
    post(message("c", "user", "boom")).await.unwrap(); // render error
    app.discord.reset().await;
    let limited = ResponseTemplate::new(429).set_body_json(serde_json::json!({"retry_after": 0.2}));
    Mock::given(method("POST")).respond_with(limited).up_to_n_times(1).mount(&app.discord).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad"))
        .mount(&app.discord)
        .await;
    post(call_ended("c", "positive")).await.unwrap(); // 429, then dead letter
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);

    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let names: std::collections::BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for family in [
        "callrelay_events_received_total",
        "callrelay_deliveries_total",
        "callrelay_posts_total",
        "callrelay_delivery_latency_seconds_count",
        "callrelay_queue_depth",
        "callrelay_queue_oldest_age_seconds",
        "callrelay_dead_letters_total",
        "callrelay_rate_limit_wait_seconds_sum",
        "callrelay_duplicates_dropped_total",
        "callrelay_render_errors_total",
        "callrelay_auth_failures_total",
        "callrelay_config_last_reload_successful",
        "callrelay_config_last_reload_success_timestamp_seconds",
    ] {
        assert!(names.contains(family), "{family} missing from /metrics:\n{text}");
    }
    let channels: Vec<&str> = scrape.samples.iter().filter_map(|s| s.labels.get("channel")).collect();
    assert!(channels.contains(&"live") && channels.contains(&"summaries"));
    assert!(!text.contains("secrettoken") && !text.contains("127.0.0.1"), "channels are labelled by name, never URL");
    let outcome = |o: &str| {
        scrape.samples.iter().any(|s| s.metric == "callrelay_posts_total" && s.labels.get("outcome") == Some(o))
    };
    assert!(outcome("delivered") && outcome("rate_limited"));
}

#[tokio::test]
async fn a_fresh_relay_lists_every_family_at_zero_for_each_channel_and_reason() {
    // The real binary: in this test process other relays have counted things already.
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let served = Served::start({
        let mut cmd = bin();
        cmd.arg("--config").arg(&file);
        cmd
    });
    let url = format!("http://127.0.0.1:{}/metrics", served.port);
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |metric: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .unwrap_or_else(|| panic!("{metric} {labels:?} missing from a fresh relay's /metrics:\n{text}"))
    };
    for channel in ["live", "summaries"] {
        let ch = ("channel", channel);
        for outcome in ["delivered", "failed", "rate_limited"] {
            assert_eq!(value("callrelay_posts_total", &[ch, ("outcome", outcome)]), 0.0);
        }
        for outcome in ["delivered", "channel_disabled"] {
            assert_eq!(value("callrelay_deliveries_total", &[ch, ("outcome", outcome)]), 0.0);
        }
        for family in [
            "callrelay_render_errors_total",
            "callrelay_dead_letters_total",
            "callrelay_queue_depth",
            "callrelay_queue_oldest_age_seconds",
            "callrelay_channel_broken",
            "callrelay_delivery_latency_seconds_count",
            "callrelay_rate_limit_wait_seconds_count",
            "callrelay_pacing_wait_seconds_count",
        ] {
            assert_eq!(value(family, &[ch]), 0.0, "{family} for {channel}");
        }
    }
    for reason in ["network", "token", "signature_headers", "stale_timestamp", "bad_signature", "replay"] {
        assert_eq!(value("callrelay_auth_failures_total", &[("reason", reason)]), 0.0);
    }
    for t in ["message", "call_ended", "test"] {
        assert_eq!(value("callrelay_events_received_total", &[("type", t), ("outcome", "accepted")]), 0.0);
        assert_eq!(value("callrelay_duplicates_dropped_total", &[("type", t)]), 0.0);
    }
    assert_eq!(value("callrelay_events_received_total", &[("outcome", "rejected")]), 0.0);
    assert_eq!(value("callrelay_store_errors_total", &[]), 0.0);
    assert_eq!(value("callrelay_config_last_reload_successful", &[]), 1.0);
}

/// Fast retries, for tests that go through failures.
fn with_fast_retries(toml: &str) -> String {
    toml.replace("[channels.live]", "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"50ms\"\n\n[channels.live]")
}

#[tokio::test]
async fn a_template_failing_the_built_in_samples_is_refused_on_reload() {
    let (app, dir) = spawn_with_own_templates().await;
    std::fs::write(dir.join("slack/message.json.hbs"), r#"{"text": "{{call_data.missing}}"}"#).unwrap();
    let file = app.config_file();
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + "\n# reload\n").unwrap();
    // The sample events have no `call_data.missing` either, so `check` refuses this template:
    wait_for_reloads(&app, "failed_reloads", 1).await;
    assert!(readyz(&app).await["config"]["reloads"].as_u64().unwrap() == 0);
}

#[tokio::test]
async fn send_test_posts_a_sample_and_prints_the_answer() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let out = bin().args(["send-test", "--channel", "live", "--config"]).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("200 ok"), "{stdout}");
    assert!(!stdout.contains("slacksecrettoken"), "{stdout}");
    assert!(bodies(&slack).await[0]["text"].as_str().unwrap().contains("connected"));

    slack.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_blocks"))
        .mount(&slack)
        .await;
    let out = bin().args(["send-test", "--channel", "live", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("400 invalid_blocks"));
    let out = bin().args(["send-test", "--channel", "nope", "--config"]).arg(&file).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no channel `nope`"));
}

#[tokio::test]
async fn a_kubernetes_style_configmap_swap_is_reloaded() {
    // The kubelet mounts `relay.toml -> ..data/relay.toml` and `..data -> ..<timestamp>/`, and
    // updates by writing a new timestamped directory and renaming a new `..data` over the old one.
    let app = spawn_prepared(DEFAULT_TOML, |dir| {
        std::fs::create_dir(dir.join("..v1")).unwrap();
        std::fs::rename(dir.join("relay.toml"), dir.join("..v1/relay.toml")).unwrap();
        std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/relay.toml", dir.join("relay.toml")).unwrap();
    })
    .await;
    let dir = app.config_file().parent().unwrap().to_path_buf();
    app.post_event(&message("c", "user", "before")).await;
    assert!(app.received(&app.discord).await.is_empty(), "messages go to Slack only");

    let text = std::fs::read_to_string(dir.join("..v1/relay.toml")).unwrap().replace(
        "events = [\"message\"]\nchannels = [\"live\"]",
        "events = [\"message\"]\nchannels = [\"live\", \"summaries\"]",
    );
    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::write(dir.join("..v2/relay.toml"), text).unwrap();
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    wait_for_reloads(&app, "reloads", 1).await;
    app.post_event(&message("c", "user", "after")).await;
    assert_eq!(app.received(&app.discord).await.len(), 1, "the swapped-in route is used");
}
