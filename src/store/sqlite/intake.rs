//! Intake: committing accepted events and their once-keys, and whether a write would succeed now. (the SQLite store)

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::store::{now_ms, Accepted, Intake, NewEvent, OnceKey, StoreError};

#[async_trait]
impl Intake for SqliteStore {
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError> {
        self.run(move |conn| {
            let now = now_ms();
            if !once.is_empty() {
                conn.prepare_cached("DELETE FROM seen WHERE expires_at < ?1")?.execute(params![now])?;
                let mut known = conn.prepare_cached("SELECT 1 FROM seen WHERE key = ?1")?;
                for k in &once {
                    if known.exists(params![k.key])? {
                        return Ok(Accepted::Seen(k.key.clone()));
                    }
                }
                let mut remember = conn.prepare_cached("INSERT INTO seen (key, expires_at) VALUES (?1, ?2)")?;
                for k in &once {
                    remember.execute(params![k.key, k.expires_at_ms])?;
                }
            }
            if let Some(e) = event.filter(|e| !e.channels.is_empty()) {
                conn.prepare_cached(
                    "INSERT INTO events (call_id, event_type, event, accepted_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![e.call_id, e.event_type, e.event, now])?;
                let event_id = conn.last_insert_rowid();
                let mut entry = conn.prepare_cached("INSERT INTO queue (channel, event_id) VALUES (?1, ?2)")?;
                for channel in &e.channels {
                    entry.execute(params![channel, event_id])?;
                }
                if e.recent {
                    conn.prepare_cached(
                        "INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        event_id,
                        e.call_id,
                        e.event_type,
                        json_list(&e.routes),
                        json_list(&e.channels),
                        now
                    ])?;
                }
            }
            Ok(Accepted::New)
        })
        .await
    }

    async fn ping(&self, bytes: usize) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute("INSERT INTO readiness VALUES (zeroblob(?1))", params![bytes as i64])?;
            conn.execute("DELETE FROM readiness", []).map(|_| ())
        })
        .await
    }
}
