//! The console in a real headless Chromium driven over WebDriver (fantoccini, with Debian's
//! `chromium` and `chromium-driver`; nothing is downloaded). Skipped with a note where chromedriver
//! is missing, except under CI (`CI=true`), where it must run. With `CALLRELAY_SCREENSHOTS=DIR`
//! the tests also save the README's screenshots there (`docs/` in the README's command).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use wiremock::ResponseTemplate;

use crate::helpers::*;

struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find(program: &str, candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
        })
    })
}

/// A headless Chromium session, or `None` (with a note) where there is none and this is not CI.
async fn browser() -> Option<Browser> {
    let (driver, chromium) = match (
        find("chromedriver", &["/usr/bin/chromedriver"]),
        find("chromium", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
    ) {
        (Some(d), Some(c)) => (d, c),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI needs chromium and chromedriver (.ci/run installs them)")
        }
        _ => {
            eprintln!(
                "skipped: no chromium/chromedriver here (apt-get install chromium chromium-driver); CI runs this"
            );
            return None;
        }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver =
        Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]
        },
        "unhandledPromptBehavior": "ignore"
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver did not start: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Some(Browser { client, driver })
}

/// Waits until the page's `css` element's text holds `want`.
async fn wait_for_text(c: &Client, css: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(want) {
            return text;
        }
        assert!(Instant::now() < deadline, "`{css}` never showed {want:?}; it shows {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces a textarea's text, then types `typed` at its end as a person would (so the page's
/// own input handler runs).
async fn type_into(c: &Client, name: &str, text: &str, typed: &str) {
    let area = c.find(Locator::Css(&format!("textarea[name={name}]"))).await.unwrap();
    c.execute("arguments[0].value = arguments[1];", vec![serde_json::to_value(&area).unwrap(), text.into()])
        .await
        .unwrap();
    area.send_keys(typed).await.unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("CALLRELAY_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), c.screenshot().await.unwrap()).unwrap();
    }
}

fn no_dialog(result: Result<String, fantoccini::error::CmdError>) {
    assert!(result.is_err(), "a dialog opened: {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_playground_previews_as_you_type_sends_a_test_and_shows_errors_with_their_line() {
    let Some(b) = browser().await else { return };
    let app = spawn_app().await;
    let c = &b.client;
    c.goto(&format!("{}/playground", app.console.as_ref().unwrap())).await.unwrap();
    wait_for_text(c, "#preview", "Post 1 of 1 to live").await;
    screenshot(c, "console-playground.png").await;
    type_into(c, "template", "{\"text\": \"Restyled: {{message.message}}\"}", " ").await;
    let shown = wait_for_text(c, "#preview .slack", "Restyled: Hi, I need help").await;
    assert!(shown.contains("callrelay"), "drawn as a Slack message: {shown}");
    c.find(Locator::Css("[formaction='/playground/send']")).await.unwrap().click().await.unwrap();
    wait_for_text(c, "#sent", "Post 1 to live: 200").await;
    assert_eq!(bodies(&app.slack).await[0]["text"], "Restyled: Hi, I need help with my order.", "sent as previewed");
    type_into(c, "template", "{\n\"text\": \"{{no_such_field}}\"", "\n}").await;
    wait_for_text(c, "#preview .error", "Template error on line 2").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_hostile_text_stays_text_with_no_dialog_and_no_injected_element() {
    let Some(b) = browser().await else { return };
    let app = spawn_app().await;
    let c = &b.client;
    let hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script>";
    c.goto(&format!("{}/playground", app.console.as_ref().unwrap())).await.unwrap();
    wait_for_text(c, "#preview", "Post 1 of 1").await;
    type_into(c, "event", &message("call-x", "user", hostile).to_string(), " ").await;
    wait_for_text(c, "#preview .slack", "<img src=x onerror=alert(1)>").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    no_dialog(c.get_alert_text().await);
    assert!(c.find_all(Locator::Css("#preview img, #preview script")).await.unwrap().is_empty(), "no element injected");

    // The same text as a dead letter's event, on the dead letters page.
    slack_answers(&app, ResponseTemplate::new(400).set_body_string("<b>invalid</b>"), None).await;
    assert_eq!(app.post_event(&message("call-x", "user", hostile)).await.status(), 200);
    c.goto(&format!("{}/dead-letters", app.console.as_ref().unwrap())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !c.source().await.unwrap().contains("call-x") {
        assert!(Instant::now() < deadline, "no dead letter shown");
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.refresh().await.unwrap();
    }
    no_dialog(c.get_alert_text().await);
    assert!(c.find_all(Locator::Css("main img, main script, main b")).await.unwrap().is_empty());
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_overview_shows_the_channels_and_a_replayed_dead_letter_is_delivered() {
    let Some(b) = browser().await else { return };
    let app = spawn_app().await;
    slack_answers(&app, ResponseTemplate::new(400).set_body_string("invalid_blocks"), Some(1)).await;
    assert_eq!(app.post_event(&message("call-r", "user", "second chance")).await.status(), 200);
    let c = &b.client;
    let base = app.console.clone().unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    let table = wait_for_text(c, "#channels", "sending (this relay)").await;
    assert!(table.contains("live") && table.contains("summaries"), "{table}");
    wait_for_text(c, "main", "1 dead letter").await;
    wait_for_text(c, "table.events", "dead lettered").await;

    c.goto(&format!("{base}/dead-letters")).await.unwrap();
    wait_for_text(c, "main", "invalid_blocks").await;
    c.find(Locator::Css("input[name=id]")).await.unwrap().click().await.unwrap();
    c.find(Locator::Css("button[value=selected]")).await.unwrap().click().await.unwrap();
    wait_for_text(c, "main", "No dead letters").await;
    wait_until("the replayed post", Duration::from_secs(10), async || {
        slack_messages(&bodies(&app.slack).await).contains(&"second chance".to_owned())
    })
    .await;
    // The overview, left open, shows the replayed event delivered without a reload.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(app.post_event(&message("call-live", "user", "watch me")).await.status(), 200);
    wait_for_text(c, "table.events", "call-live").await;
    let row = wait_for_text(c, "table.events tbody tr:first-child", "live: delivered").await;
    assert!(row.contains("call-live"), "{row}");
    c.find(Locator::LinkText("call-live")).await.unwrap().click().await.unwrap();
    wait_for_text(c, "h1", "Call call-live").await;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for_text(c, "table.events", "call-live").await;
    screenshot(c, "console-overview.png").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_playground_draws_a_teams_card_and_a_google_chat_card() {
    let Some(b) = browser().await else { return };
    let toml = r#"
[server]
listen = "127.0.0.1:0"
[channels.team]
kind = "teams"
webhook_url = "https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=x"
[channels.space]
kind = "google_chat"
webhook_url = "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t"
[[routes]]
channels = ["team", "space"]
"#;
    let app = spawn_with(toml).await;
    let c = &b.client;
    let ended = call_ended("call-b", "negative").to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(ended.as_bytes()).collect();
    for (channel, css, file) in [
        ("team", "#preview .teams .card", "teams-card.png"),
        ("space", "#preview .gchat .card", "google-chat-card.png"),
    ] {
        c.goto(&format!("{}/playground?channel={channel}&event={encoded}", app.console.as_ref().unwrap()))
            .await
            .unwrap();
        let shown = wait_for_text(c, css, "Account Support").await;
        assert!(shown.contains("John Doe") && shown.contains("My card was declined."), "{channel}: {shown}");
        // The platform's own styles are served with the console's: the card is drawn, not bare.
        let background = c.find(Locator::Css(css)).await.unwrap().css_value("background-color").await.unwrap();
        assert_eq!(background, "rgba(255, 255, 255, 1)", "{channel}: {background}");
        screenshot(c, file).await;
    }
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_calls_page_shows_the_conversation_with_hostile_text_inert() {
    let Some(b) = browser().await else { return };
    let app = spawn_app().await;
    let hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script> @everyone";
    let mut agent = message("call-page", "ai", "Hello! How can I help you today?");
    agent["message"]["sent_at"] = serde_json::json!("2024-01-15T10:30:00Z");
    let mut caller = message("call-page", "user", &format!("My card was declined: {hostile}"));
    caller["message"]["sent_at"] = serde_json::json!("2024-01-15T10:30:06Z");
    for event in [agent, caller, call_ended("call-page", "negative")] {
        assert_eq!(app.post_event(&event).await.status(), 200);
    }
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let c = &b.client;
    c.goto(&format!("{}/calls/call-page", app.console.as_ref().unwrap())).await.unwrap();
    let said = wait_for_text(c, "ol.conversation", "Summary").await;
    let at = |what: &str| said.find(what).unwrap_or_else(|| panic!("no {what:?} in {said}"));
    assert!(
        at("Call started") < at("How can I help")
            && at("How can I help") < at(hostile)
            && at(hostile) < at("Account Support"),
        "{said}"
    );
    assert!(said.contains("🤖 Agent") && said.contains("👤 John Doe") && said.contains("said 10:30:06"), "{said}");
    assert!(said.contains("live: delivered") && said.contains("summaries: delivered"), "where each went: {said}");
    let facts = wait_for_text(c, "dl.call-facts", "agent_456").await;
    assert!(facts.contains("Utterances\n2") || facts.contains("Utterances 2"), "{facts}");
    no_dialog(c.get_alert_text().await);
    assert!(c.find_all(Locator::Css("main img, main script")).await.unwrap().is_empty(), "no element injected");
    screenshot(c, "console-call.png").await;
    b.client.clone().close().await.unwrap();
}
