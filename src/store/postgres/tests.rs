//! The PostgreSQL store against a real server: the shared contract, plus what only a shared
//! database brings (two relays racing for one once-key, schema set-up racing, the serving lock).
//! Each test gets a schema of its own. Without a server the tests are skipped with a note,
//! except under CI (`CI=true`), where a missing server fails them.

use std::sync::Arc;

use super::*;
use crate::store::contract;

/// The server tests use: `CALLRELAY_TEST_POSTGRES`, else the local one.
fn server_url() -> String {
    std::env::var("CALLRELAY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema on the test server, as a URL whose connections use it; `None` (with a note)
/// when there is no server and this is not CI.
async fn fresh_schema() -> Option<String> {
    let base = server_url();
    let connected = tokio_postgres::connect(&base, NoTls).await;
    let (client, connection) = match connected {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no PostgreSQL at {} ({e}); CI runs this", shown_url(&base));
            return None;
        }
        Err(e) => panic!("no PostgreSQL at {} under CI: {e}", shown_url(&base)),
    };
    tokio::spawn(connection);
    let schema = format!("t_{}", fastrand::u64(..));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

async fn fresh() -> Option<PgStore> {
    let url = fresh_schema().await?;
    Some(PgStore::connect(&url, false).await.unwrap())
}

#[tokio::test]
async fn contract_queues_per_channel_in_order() {
    let Some(store) = fresh().await else { return };
    contract::queues_per_channel_in_order(&store).await;
}

#[tokio::test]
async fn contract_parts_attempts_dead_letters_and_replays() {
    let Some(store) = fresh().await else { return };
    contract::parts_attempts_dead_letters_and_replays(&store).await;
}

#[tokio::test]
async fn contract_concurrent_accepts_all_commit() {
    let Some(store) = fresh().await else { return };
    contract::concurrent_accepts_all_commit(Arc::new(store)).await;
}

#[tokio::test]
async fn contract_once_keys_refuse_repeats_until_they_expire() {
    let Some(store) = fresh().await else { return };
    contract::once_keys_refuse_repeats_until_they_expire(&store).await;
}

#[tokio::test]
async fn contract_threads_are_remembered_per_channel_until_forgotten() {
    let Some(store) = fresh().await else { return };
    contract::threads_are_remembered_per_channel_until_forgotten(&store).await;
}

#[tokio::test]
async fn contract_transcripts_are_saved_and_forgotten_with_the_call() {
    let Some(store) = fresh().await else { return };
    contract::transcripts_are_saved_and_forgotten_with_the_call(&store).await;
}

#[tokio::test]
async fn two_relays_starting_together_and_racing_for_one_event_accept_it_once() {
    let Some(url) = fresh_schema().await else { return };
    // Both set up the schema at once: the advisory lock makes them take turns.
    let (a, b) = tokio::join!(PgStore::connect(&url, false), PgStore::connect(&url, false));
    let (a, b) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    for round in 0..20 {
        let key = || vec![OnceKey { key: format!("event:{round}"), expires_at_ms: now_ms() + 60_000 }];
        let (x, y) = tokio::join!(
            a.accept(Some(contract::event(&["a"], &round.to_string())), key()),
            b.accept(Some(contract::event(&["a"], &round.to_string())), key())
        );
        let new = [x.unwrap(), y.unwrap()].iter().filter(|o| **o == Accepted::New).count();
        assert_eq!(new, 1, "round {round}: the unique key decides, exactly one is new");
    }
    assert_eq!(a.pending("a", 100).await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_second_serving_relay_is_refused_until_the_first_stops() {
    let Some(url) = fresh_schema().await else { return };
    let first = PgStore::connect(&url, true).await.unwrap();
    let second = PgStore::connect(&url, true).await.err().unwrap().to_string();
    assert!(second.contains("another relay is serving from this database"), "{second}");
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while PgStore::connect(&url, true).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the lock was not released");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn the_password_never_shows() {
    assert_eq!(shown_url("postgres://relay:s3cret@db:5432/calls"), "postgres://relay:***@db:5432/calls");
}
