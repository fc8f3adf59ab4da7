//! The SQLite store on real files: the shared contract, plus what only this backend does
//! (reopening the file, collecting events, the size cap, versions).

use std::sync::Arc;

use super::*;
use crate::store::contract::{self, accept, event, hold, texts};
use crate::store::*;

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
    (dir, store)
}

async fn count(store: &SqliteStore, table: &'static str) -> i64 {
    store.run(move |c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))).await.unwrap()
}

/// A fresh store for the contract: its directory is the guard.
async fn fresh_contract() -> Option<(tempfile::TempDir, Arc<dyn crate::store::Store>)> {
    let (dir, store) = fresh();
    Some((dir, Arc::new(store)))
}

contract::contract_tests!(fresh_contract);

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
        let fence = hold(&store, "a").await;
        store.delivered(&fence, vec![a[0].id]).await.unwrap();
        store.release(&fence).await.unwrap();
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
    // An accepted event is written twice (the event, and its recent row for the console).
    assert_eq!(store.ping(2 * big.len()).await, Err(StoreError::Full), "readiness sees what accepting saw");
    let queued = store.pending("a", 1000).await.unwrap();
    assert_eq!(queued.len(), accepted, "a refused accept left nothing behind");
    store.delivered(&hold(&store, "a").await, queued.iter().map(|q| q.id).collect()).await.unwrap();
    accept(&store, event(&["a"], &big)).await.unwrap();
    store.ping(2 * big.len()).await.unwrap();
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

/// A store version 2 left (the release before call memory): its queue, dead letters and recent
/// events and once-keys are kept; it gains `calls`, `recent` the call page's view (none for old
/// rows), and `seen` loses its rowid.
#[tokio::test]
async fn a_version_2_store_is_upgraded_keeping_its_queue_and_recent_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("v2_tables.sql")).unwrap();
        conn.execute_batch(
            r#"INSERT INTO events (id, call_id, event_type, event, accepted_at) VALUES (1, 'c', 'message', '{"text":"old"}', 1);
               INSERT INTO queue (channel, event_id) VALUES ('a', 1);
               INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at)
                   VALUES (1, 'c', 'message', '["r"]', '["a"]', 1);
               INSERT INTO seen (key, expires_at) VALUES ('kept', 9999999999999);
               PRAGMA user_version = 2;"#,
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, None).unwrap();
    let version: i64 = store.run(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0))).await.unwrap();
    assert_eq!(version, schema::VERSION);
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["old"], "the queue is kept");
    let kept = store.recent(Some("c"), 10).await.unwrap();
    assert_eq!((kept.len(), kept[0].shown.clone()), (1, None), "old recent rows have no view");
    let again = OnceKey { key: "kept".into(), expires_at_ms: now_ms() + 60_000 };
    assert_eq!(store.accept(None, vec![again]).await.unwrap(), Accepted::Seen("kept".into()), "once-keys are kept");
    let note = CallNote { agent_id: Some("agent_1".into()), utterance: true, ..CallNote::default() };
    accept(&store, NewEvent { call_id: "c".into(), call: Some(note), ..event(&["a"], "new") }).await.unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["old", "new"]);
    assert_eq!(store.call("c").await.unwrap().unwrap().agent_id.as_deref(), Some("agent_1"));
}

/// Two processes share the file during an in-place restart: a lease held by a living relay is
/// refused to the other; one whose process ended (a crash) is taken at once, not after expiry.
#[tokio::test]
async fn a_lease_of_a_living_relay_is_refused_and_one_of_an_ended_relay_is_taken_at_once() {
    let (_dir, store) = fresh();
    let living = holder::this_relay();
    let held = store.lease("a", &living, 60_000, None).await.unwrap().expect("free");
    assert_eq!(store.lease("a", "another", 60_000, None).await.unwrap(), None, "held by a living relay");

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().to_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let crashed = format!("{}/{pid}/{start}/0", host.trim());
    store.lease("b", &crashed, 60_000, None).await.unwrap().expect("free");
    child.wait().unwrap();

    let taken = store.lease("b", &living, 60_000, None).await.unwrap().expect("its holder ended: taken at once");
    assert_eq!(store.lease("a", &living, 60_000, Some(held.token)).await.unwrap().map(|l| l.token), Some(held.token));
    assert!(taken.token > 1, "a new holder, a new token");
}
