//! The relay on a PostgreSQL store (`store.url`), through the real binary: events are accepted
//! and delivered, the password never shows, the CLI reads the same store. Several relays on one
//! database are tested in `replicas`. Skipped with a note without a server, except under CI
//! (`CI=true`).

use std::time::Duration;

use crate::helpers::*;

/// A fresh schema on the test server (`CALLRELAY_TEST_POSTGRES`, else the local one), as a URL
/// whose connections use it; `None` (with a note) when there is no server and this is not CI.
pub async fn fresh_schema() -> Option<String> {
    let base =
        std::env::var("CALLRELAY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (client, connection) = match tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no PostgreSQL at {base} ({e}); CI runs this");
            return None;
        }
        Err(e) => panic!("no PostgreSQL at {base} under CI: {e}"),
    };
    tokio::spawn(connection);
    let schema = format!("t_{}", fastrand::u64(..));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

#[tokio::test]
async fn a_relay_on_postgresql_accepts_and_delivers_and_the_cli_reads_its_store() {
    let Some(url) = fresh_schema().await else { return };
    let url = url.replace("postgres://postgres@", "postgres://postgres:pw-S3CRET@"); // trust auth ignores it
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml =
        DEFAULT_TOML.replace("[channels.live]", "[store]\nurl = \"${CALLRELAY_TEST_DATABASE_URL}\"\n\n[channels.live]");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let mut cmd = bin();
    cmd.arg("--config").arg(&file).env("CALLRELAY_TEST_DATABASE_URL", &url).env("RUST_LOG", "debug,handlebars=info,tokio_postgres=info,h2=info,hyper=info,reqwest=info,hyper_util=info,actix_server=info,actix_http=info");
    let served = Served::start(cmd);
    for text in ["one", "two", "three"] {
        assert_eq!(served.post_event(&message("c", "user", text)).await.status(), 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while slack_messages(&bodies(&slack).await).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "the posts never arrived; the relay said:\n{}", served.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slack_messages(&bodies(&slack).await), ["one", "two", "three"]);
    served.wait_idle().await;

    let out =
        bin().args(["dlq", "list", "--config"]).arg(&file).env("CALLRELAY_TEST_DATABASE_URL", &url).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No dead letters"), "the CLI reads the same store");
    let all = served.log() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains("pw-S3CRET"), "{all}");
}
