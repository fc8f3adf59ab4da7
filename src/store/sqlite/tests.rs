//! The SQLite store on real files: the shared contract, plus what only this backend does
//! (reopening the file, collecting events, the size cap, versions).

use std::sync::Arc;

use super::*;
use crate::store::contract::{self, accept, event, hold, texts};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
    (dir, store)
}

async fn count(store: &SqliteStore, table: &'static str) -> i64 {
    store.run(move |c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))).await.unwrap()
}

#[tokio::test]
async fn contract_queues_per_channel_in_order() {
    contract::queues_per_channel_in_order(&fresh().1).await;
}

#[tokio::test]
async fn contract_parts_attempts_dead_letters_and_replays() {
    contract::parts_attempts_dead_letters_and_replays(&fresh().1).await;
}

#[tokio::test]
async fn contract_concurrent_accepts_all_commit() {
    let (_dir, store) = fresh();
    contract::concurrent_accepts_all_commit(Arc::new(store)).await;
}

#[tokio::test]
async fn contract_once_keys_refuse_repeats_until_they_expire() {
    contract::once_keys_refuse_repeats_until_they_expire(&fresh().1).await;
}

#[tokio::test]
async fn contract_threads_are_remembered_per_channel_until_forgotten() {
    contract::threads_are_remembered_per_channel_until_forgotten(&fresh().1).await;
}

#[tokio::test]
async fn contract_transcripts_are_saved_and_forgotten_with_the_call() {
    contract::transcripts_are_saved_and_forgotten_with_the_call(&fresh().1).await;
}

#[tokio::test]
async fn contract_recent_events_show_each_posts_status_until_forgotten() {
    contract::recent_events_show_each_posts_status_until_forgotten(&fresh().1).await;
}

#[tokio::test]
async fn contract_leases_fence_off_the_previous_holder() {
    contract::leases_fence_off_the_previous_holder(&fresh().1, false).await;
}

#[tokio::test]
async fn each_event_is_stored_once_collected_in_order_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/relay.db");
    {
        let store = SqliteStore::open(&path, None).unwrap();
        accept(&store, event(&["a", "b"], "1")).await.unwrap();
        accept(&store, event(&["a"], "2")).await.unwrap();
        assert_eq!(count(&store, "events").await, 2, "one row per event, whatever the channels");
        let a = store.pending("a", 10).await.unwrap();
        store.delivered(&hold(&store, "a").await, vec![a[0].id]).await.unwrap();
        assert_eq!(count(&store, "events").await, 2, "event 1 is still queued for b");
        let key = OnceKey { key: "kept".into(), expires_at_ms: now_ms() + 60_000 };
        assert_eq!(store.accept(None, vec![key]).await.unwrap(), Accepted::New);
    }
    let store = SqliteStore::open(&path, None).unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2"]);
    let b = store.pending("b", 10).await.unwrap();
    assert_eq!(texts(&b), ["1"]);
    store.delivered(&hold(&store, "b").await, vec![b[0].id]).await.unwrap();
    assert_eq!(count(&store, "events").await, 1, "an event no entry points at is gone");
    assert_eq!(
        store.accept(None, vec![OnceKey { key: "kept".into(), expires_at_ms: now_ms() + 60_000 }]).await.unwrap(),
        Accepted::Seen("kept".into()),
        "once-keys survive reopening"
    );
    let a = store.pending("a", 10).await.unwrap();
    store.dead_letter(&hold(&store, "a").await, vec![a[0].id], "gone".into()).await.unwrap();
    assert_eq!(count(&store, "events").await, 0, "a dead letter holds its own copy of the event");
}

#[tokio::test]
async fn a_full_store_refuses_then_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), Some(256 * 1024)).unwrap();
    let big = "x".repeat(16 * 1024);
    let mut accepted = 0;
    let err = loop {
        match accept(&store, event(&["a"], &big)).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "max_bytes was not enforced");
    };
    assert_eq!(err, StoreError::Full);
    assert_eq!(store.ping(big.len()).await, Err(StoreError::Full), "readiness sees what accepting saw");
    let queued = store.pending("a", 1000).await.unwrap();
    assert_eq!(queued.len(), accepted, "a refused accept left nothing behind");
    store.delivered(&hold(&store, "a").await, queued.iter().map(|q| q.id).collect()).await.unwrap();
    accept(&store, event(&["a"], &big)).await.unwrap();
    store.ping(big.len()).await.unwrap();
}

#[test]
fn an_unusable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteStore::open(&file.join("relay.db"), None).err().unwrap().to_string();
    assert!(err.contains("plain-file") && err.contains("store.path"), "{err}");
}

#[tokio::test]
async fn a_store_from_a_newer_release_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 9;").unwrap();
    let err = SqliteStore::open(&path, None).err().unwrap().to_string();
    assert!(err.contains("newer callrelay") && err.contains("version 9"), "{err}");
}
