//! What each channel holds of a call: its thread and its live transcript. (the SQLite store)

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::store::{now_ms, Calls, Fence, MakeTimedOut, NewEvent, Remembered, StoreError, Transcript};

/// The columns of a remembered call, in [`remembered`]'s order.
const CALL: &str = "call_id, agent_id, user_name, call_data, first_at, last_at, utterances, ended_at, timed_out_at";

fn remembered(r: &rusqlite::Row) -> rusqlite::Result<Remembered> {
    Ok(Remembered {
        call_id: r.get(0)?,
        agent_id: r.get(1)?,
        user_name: r.get(2)?,
        call_data: r.get(3)?,
        first_at_ms: r.get(4)?,
        last_at_ms: r.get(5)?,
        utterances: r.get(6)?,
        ended_at_ms: r.get(7)?,
        timed_out_at_ms: r.get(8)?,
    })
}

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

    async fn call(&self, call_id: &str) -> Result<Option<Remembered>, StoreError> {
        let call_id = call_id.to_owned();
        self.run(move |conn| {
            conn.prepare_cached(&format!("SELECT {CALL} FROM calls WHERE call_id = ?1"))?
                .query_row(params![call_id], remembered)
                .optional()
        })
        .await
    }

    async fn time_out_calls(&self, idle_before_ms: i64, make: MakeTimedOut) -> Result<Vec<NewEvent>, StoreError> {
        self.run(move |conn| {
            let now = now_ms();
            let due: Vec<Remembered> = conn
                .prepare_cached(&format!(
                    "SELECT {CALL} FROM calls WHERE ended_at IS NULL AND timed_out_at IS NULL AND last_at < ?1
                     ORDER BY last_at LIMIT 100"
                ))?
                .query_map(params![idle_before_ms], remembered)?
                .collect::<rusqlite::Result<_>>()?;
            let mut made = Vec::with_capacity(due.len());
            for call in due {
                let holding: Vec<String> = conn
                    .prepare_cached(
                        "SELECT channel FROM threads WHERE call_id = ?1
                         UNION SELECT channel FROM transcripts WHERE call_id = ?1 ORDER BY 1",
                    )?
                    .query_map(params![call.call_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                conn.prepare_cached("UPDATE calls SET timed_out_at = ?2 WHERE call_id = ?1")?
                    .execute(params![call.call_id, now])?;
                let event = make(&Remembered { timed_out_at_ms: Some(now), ..call }, &holding);
                super::intake::insert_event(conn, &event, now)?;
                made.push(event);
            }
            Ok(made)
        })
        .await
    }

    async fn forget_calls(&self, before_ms: i64) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.prepare_cached("DELETE FROM calls WHERE last_at < ?1")?.execute(params![before_ms]).map(|_| ())
        })
        .await
    }
}
