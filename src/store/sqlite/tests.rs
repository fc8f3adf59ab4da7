//! The SQLite store on real files.

use std::sync::Arc;

use super::*;

fn event(channels: &[&str], text: &str) -> NewEvent {
    NewEvent {
        call_id: "c".into(),
        event_type: "message".into(),
        event: format!("{{\"text\":\"{text}\"}}"),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
}

trait AcceptAll {
    async fn accept_all(&self, e: NewEvent) -> Result<(), StoreError>;
}

impl AcceptAll for SqliteStore {
    async fn accept_all(&self, e: NewEvent) -> Result<(), StoreError> {
        assert_eq!(self.accept(Some(e), vec![]).await?, Accepted::New);
        Ok(())
    }
}

/// The `text` of each entry's event (or its pre-version-2 body).
fn texts(q: &[Queued]) -> Vec<String> {
    q.iter()
        .map(|d| match &d.content {
            Content::Event(e) => {
                serde_json::from_str::<serde_json::Value>(e).unwrap()["text"].as_str().unwrap().to_owned()
            }
            Content::Rendered { body, .. } => body.clone(),
        })
        .collect()
}

async fn count(store: &SqliteStore, table: &'static str) -> i64 {
    store.run(move |c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))).await.unwrap()
}

#[tokio::test]
async fn each_event_is_stored_once_and_queued_per_channel_in_order_surviving_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/relay.db");
    {
        let store = SqliteStore::open(&path, None).unwrap();
        store.accept_all(event(&["a", "b"], "1")).await.unwrap();
        store.accept_all(event(&["a"], "2")).await.unwrap();
        store.accept_all(event(&["a"], "3")).await.unwrap();
        assert_eq!(count(&store, "events").await, 3, "one row per event, whatever the channels");
        let a = store.pending("a", 10).await.unwrap();
        assert_eq!(texts(&a), ["1", "2", "3"]);
        store.delivered(vec![a[0].id]).await.unwrap();
        assert_eq!(count(&store, "events").await, 3, "event 1 is still queued for b");
    }
    let store = SqliteStore::open(&path, None).unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2", "3"]);
    let b = store.pending("b", 10).await.unwrap();
    assert_eq!(texts(&b), ["1"]);
    assert_eq!((b[0].call_id.as_str(), b[0].event_type.as_str()), ("c", "message"));
    assert_eq!(texts(&store.pending("a", 1).await.unwrap()), ["2"]);
    let depths = store.depths().await.unwrap();
    assert_eq!(depths.iter().map(|d| (d.channel.as_str(), d.pending)).collect::<Vec<_>>(), [("a", 2), ("b", 1)]);
    store.delivered(vec![b[0].id]).await.unwrap();
    assert_eq!(count(&store, "events").await, 2, "an event no entry points at is gone");
    assert_eq!(store.accept(None, vec![]).await.unwrap(), Accepted::New);
    assert_eq!(store.accept(Some(event(&[], "unrouted")), vec![]).await.unwrap(), Accepted::New);
    assert_eq!(count(&store, "events").await, 2, "an event with no channel is not kept");
}

#[tokio::test]
async fn parts_failed_attempts_dead_letters_requeue_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
    store.accept_all(event(&["a"], "1")).await.unwrap();
    store.accept_all(event(&["a"], "2")).await.unwrap();
    let q = store.pending("a", 10).await.unwrap();
    store.failed_attempt(vec![q[0].id], "500 boom".into()).await.unwrap();
    store.failed_attempt(vec![q[0].id], "502 bad gateway".into()).await.unwrap();
    assert_eq!(store.pending("a", 1).await.unwrap()[0].attempts, 2);
    store.parts_delivered(q[0].id, 1).await.unwrap();
    let head = &store.pending("a", 1).await.unwrap()[0];
    assert_eq!((head.sent_parts, head.attempts), (1, 0), "the next part starts with a clean slate");
    store.failed_attempt(vec![q[0].id], "500 again".into()).await.unwrap();
    store.dead_letter(vec![q[0].id], "400 invalid_payload".into()).await.unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2"]);
    let dl = store.dead_letters().await.unwrap();
    assert_eq!((dl[0].reason.as_str(), dl[0].attempts, dl[0].body.as_deref()), ("400 invalid_payload", 1, None));
    assert_eq!(dl[0].event.as_deref(), Some("{\"text\":\"1\"}"), "the dead letter keeps its event for a replay");
    assert_eq!(count(&store, "events").await, 1, "the dead letter holds its own copy");

    store.requeue(dl[0].id).await.unwrap();
    let again = store.pending("a", 10).await.unwrap();
    assert_eq!(texts(&again), ["2", "1"], "a replay joins the end of the queue");
    assert_eq!((again[1].attempts, again[1].sent_parts), (0, 0));
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.requeue(dl[0].id).await, Err(StoreError::NoSuchDeadLetter(dl[0].id)));

    let ids = again.iter().map(|q| q.id).collect();
    store.dead_letter(ids, "gone".into()).await.unwrap();
    assert_eq!(count(&store, "events").await, 0);
    assert_eq!(store.purge(Some(0)).await.unwrap(), 0, "none failed before the epoch");
    assert_eq!(store.purge(None).await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_accepts_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db"), None).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.accept_all(event(&["a", "b"], &i.to_string())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.pending("a", 1000).await.unwrap().len(), 200);
    assert_eq!(store.pending("b", 1000).await.unwrap().len(), 200);
}

#[tokio::test]
async fn a_full_store_refuses_then_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), Some(256 * 1024)).unwrap();
    let big = "x".repeat(16 * 1024);
    let mut accepted = 0;
    let err = loop {
        match store.accept_all(event(&["a"], &big)).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "max_bytes was not enforced");
    };
    assert_eq!(err, StoreError::Full);
    assert_eq!(store.ping(big.len()).await, Err(StoreError::Full), "readiness sees what accepting saw");
    let queued = store.pending("a", 1000).await.unwrap();
    assert_eq!(queued.len(), accepted, "a refused accept left nothing behind");
    store.delivered(queued.iter().map(|q| q.id).collect()).await.unwrap();
    store.accept_all(event(&["a"], &big)).await.unwrap();
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
async fn once_keys_refuse_a_second_event_until_they_expire_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = |k: &str, ms: i64| OnceKey { key: k.into(), expires_at_ms: now_ms() + ms };
    {
        let store = SqliteStore::open(&path, None).unwrap();
        assert_eq!(store.accept(Some(event(&["a"], "1")), vec![key("e1", 60_000)]).await.unwrap(), Accepted::New);
        assert_eq!(
            store.accept(Some(event(&["a"], "1 again")), vec![key("e1", 60_000)]).await.unwrap(),
            Accepted::Seen("e1".into())
        );
        assert_eq!(store.accept(None, vec![key("short", 1)]).await.unwrap(), Accepted::New);
    }
    let store = SqliteStore::open(&path, None).unwrap();
    assert_eq!(
        store.accept(Some(event(&["a"], "x")), vec![key("e2", 60_000), key("e1", 60_000)]).await.unwrap(),
        Accepted::Seen("e1".into())
    );
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["1"], "a duplicate writes nothing");
    assert_eq!(count(&store, "events").await, 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(store.accept(None, vec![key("short", 1)]).await.unwrap(), Accepted::New, "expired keys are forgotten");
}

#[tokio::test]
async fn a_store_from_a_newer_release_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 9;").unwrap();
    let err = SqliteStore::open(&path, None).err().unwrap().to_string();
    assert!(err.contains("newer callrelay") && err.contains("version 9"), "{err}");
}
