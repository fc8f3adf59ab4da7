//! Posting to the platforms: URL rules, timeouts and failures that must not stop a lane.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn a_discord_url_behind_a_proxy_keeps_its_prefix_and_query() {
    let slack = mock_slack().await;
    let discord = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/proxy/api/v10/webhooks/42/tok"))
        .and(query_param("thread_id", "9"))
        .and(query_param("wait", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1"})))
        .expect(1)
        .mount(&discord)
        .await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[templates]\ndir = \"{}\"\n[channels.d]\nkind = \"discord\"\nwebhook_url = \"{}/proxy/api/webhooks/42/tok?thread_id=9\"\n[[routes]]\nchannels = [\"d\"]\n",
        templates_dir().display(),
        discord.uri()
    );
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let config = callrelay::config::load(&callrelay::config::ConfigSource::File(file)).unwrap();
    let app = callrelay::server::Application::build(config).await.unwrap();
    let dispatcher = app.dispatcher();
    let url = format!("http://127.0.0.1:{}/webhook", app.port());
    tokio::spawn(app.run_until_stopped());
    let r = reqwest::Client::new()
        .post(url)
        .json(&call_ended("c", "positive"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(dispatcher.drain(Duration::from_secs(10)).await, 0);
    discord.verify().await;
}

#[tokio::test]
async fn a_failed_or_hung_post_does_not_stop_the_next_one() {
    let toml = DEFAULT_TOML.replace(
        "[channels.live]",
        "[delivery]\nrequest_timeout = \"300ms\"\n\n[channels.live]",
    );
    let app = spawn_with(&toml).await;
    app.slack.reset().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("hang"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(Duration::from_secs(120)),
        )
        .mount(&app.slack)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("fail"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal_error"))
        .mount(&app.slack)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&app.slack)
        .await;
    for text in ["hang", "fail", "after"] {
        assert_eq!(
            app.post_event(&message("c", "user", text)).await.status(),
            200
        );
    }
    // Without request_timeout the hung post would hold the lane past the drain limit.
    let bodies = app.received(&app.slack).await;
    let texts: Vec<&str> = bodies
        .iter()
        .map(|b| b["blocks"][1]["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hang", "fail", "after"]);
}
