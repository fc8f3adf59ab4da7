//! What each channel holds of a call: its thread and its live transcript. (the SQLite store)

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::store::{now_ms, Calls, Fence, StoreError, Transcript};

#[async_trait]
impl Calls for SqliteStore {
    async fn thread(&self, channel: &str, call_id: &str) -> Result<Option<String>, StoreError> {
        let (channel, call_id) = (channel.to_owned(), call_id.to_owned());
        self.run(move |conn| {
            conn.prepare_cached("SELECT thread FROM threads WHERE channel = ?1 AND call_id = ?2")?
                .query_row(params![channel, call_id], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn set_thread(&self, fence: &Fence, call_id: &str, thread: String) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            conn.prepare_cached(
                "INSERT INTO threads (channel, call_id, thread) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel, call_id) DO UPDATE SET thread = excluded.thread",
            )?
            .execute(params![channel, call_id, thread])
            .map(|_| ())
        })
        .await
    }

    async fn forget_call_at(&self, fence: &Fence, call_id: &str, forget_at_ms: i64) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            for table in ["threads", "transcripts"] {
                conn.prepare_cached(&format!("UPDATE {table} SET forget_at = ?3 WHERE channel = ?1 AND call_id = ?2"))?
                    .execute(params![channel, call_id, forget_at_ms])?;
                conn.prepare_cached(&format!("DELETE FROM {table} WHERE forget_at < ?1"))?
                    .execute(params![now_ms()])?;
            }
            Ok(())
        })
        .await
    }

    async fn transcript(&self, channel: &str, call_id: &str) -> Result<Option<Transcript>, StoreError> {
        let (channel, call_id) = (channel.to_owned(), call_id.to_owned());
        self.run(move |conn| {
            conn.prepare_cached(
                "SELECT message_id, thread, part, lines FROM transcripts WHERE channel = ?1 AND call_id = ?2",
            )?
            .query_row(params![channel, call_id], |r| {
                Ok(Transcript { message_id: r.get(0)?, thread: r.get(1)?, part: r.get(2)?, lines: r.get(3)? })
            })
            .optional()
        })
        .await
    }

    async fn set_transcript(&self, fence: &Fence, call_id: &str, t: Transcript) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            conn.prepare_cached(
                "INSERT INTO transcripts (channel, call_id, message_id, thread, part, lines) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (channel, call_id) DO UPDATE SET message_id = excluded.message_id,
                     thread = excluded.thread, part = excluded.part, lines = excluded.lines",
            )?
            .execute(params![channel, call_id, t.message_id, t.thread, t.part, t.lines])
            .map(|_| ())
        })
        .await
    }
}
