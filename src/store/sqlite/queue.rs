//! The lanes' queues and the dead letters. (the SQLite store)

use async_trait::async_trait;
use rusqlite::params;

use crate::store::NewEvent;

use super::*;
use crate::store::{now_ms, Content, DeadLetter, Depth, Fence, Queue, Queued, StoreError};

#[async_trait]
impl Queue for SqliteStore {
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT q.id, q.channel, e.call_id, e.event_type, e.event, q.body, q.coalesce, e.accepted_at,
                        q.attempts, q.sent_parts
                 FROM queue q JOIN events e ON e.id = q.event_id WHERE q.channel = ?1 ORDER BY q.id LIMIT ?2",
            )?;
            let rows = q.query_map(params![channel, limit as i64], |r| {
                let content = match r.get::<_, Option<String>>(5)? {
                    Some(body) => Content::Rendered { body, coalesce: r.get(6)? },
                    None => Content::Event(r.get::<_, Option<String>>(4)?.unwrap_or_default()),
                };
                Ok(Queued {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    call_id: r.get(2)?,
                    event_type: r.get(3)?,
                    content,
                    accepted_at_ms: r.get(7)?,
                    attempts: r.get(8)?,
                    sent_parts: r.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delivered(&self, fence: &Fence, ids: Vec<i64>) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            note_outcome(conn, &ids, "delivered", None)?;
            remove_entries(conn, &ids)
        })
        .await
    }

    async fn reroute(&self, fence: &Fence, ids: Vec<i64>, events: Vec<NewEvent>) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            remove_entries(conn, &ids)?;
            let now = now_ms();
            for e in &events {
                if let Some(note) = &e.call {
                    super::intake::remember(conn, &e.call_id, note, now, false)?;
                }
                super::intake::insert_event(conn, e, now)?;
            }
            Ok(())
        })
        .await
    }

    async fn parts_delivered(&self, fence: &Fence, id: i64, parts: u32) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE queue SET sent_parts = ?1, attempts = 0 WHERE id = ?2", params![parts, id]).map(|_| ())
        })
        .await
    }

    async fn failed_attempt(&self, fence: &Fence, ids: Vec<i64>, answer: String) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            let sql =
                format!("UPDATE queue SET attempts = attempts + 1, last_answer = ?1 WHERE id IN ({})", in_list(&ids));
            conn.execute(&sql, params![answer])?;
            note_outcome(conn, &ids, "retrying", Some(&answer))
        })
        .await
    }

    async fn dead_letter(&self, fence: &Fence, ids: Vec<i64>, reason: String) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO dead_letters (channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at)
                     SELECT q.channel, e.call_id, e.event_type, q.body, e.event, ?1, q.attempts, e.accepted_at, ?2
                     FROM queue q JOIN events e ON e.id = q.event_id WHERE q.id IN ({}) ORDER BY q.id",
                    in_list(&ids)
                ),
                params![reason, now_ms()],
            )?;
            note_outcome(conn, &ids, "dead_lettered", Some(&reason))?;
            remove_entries(conn, &ids)
        })
        .await
    }

    async fn depths(&self) -> Result<Vec<Depth>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT q.channel, COUNT(*), MIN(e.accepted_at) FROM queue q JOIN events e ON e.id = q.event_id
                 GROUP BY q.channel ORDER BY q.channel",
            )?;
            let rows = q.query_map([], |r| {
                Ok(Depth { channel: r.get(0)?, pending: r.get::<_, i64>(1)? as u64, oldest_ms: r.get(2)? })
            })?;
            rows.collect()
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT id, channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at FROM dead_letters ORDER BY id",
            )?;
            let rows = q.query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    call_id: r.get(2)?,
                    event_type: r.get(3)?,
                    body: r.get(4)?,
                    event: r.get(5)?,
                    reason: r.get(6)?,
                    attempts: r.get(7)?,
                    accepted_at_ms: r.get(8)?,
                    failed_at_ms: r.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn requeue(&self, dead_letter: i64) -> Result<(), StoreError> {
        let found = self
            .run(move |conn| {
                let moved = conn.execute(
                    "INSERT INTO events (call_id, event_type, event, accepted_at)
                     SELECT call_id, event_type, event, ?2 FROM dead_letters WHERE id = ?1",
                    params![dead_letter, now_ms()],
                )?;
                if moved == 0 {
                    return Ok(false);
                }
                conn.execute(
                    "INSERT INTO queue (channel, event_id, body) SELECT channel, ?2, body FROM dead_letters WHERE id = ?1",
                    params![dead_letter, conn.last_insert_rowid()],
                )?;
                conn.execute("DELETE FROM dead_letters WHERE id = ?1", params![dead_letter])?;
                Ok(true)
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NoSuchDeadLetter(dead_letter))
        }
    }

    async fn purge(&self, before_ms: Option<i64>) -> Result<usize, StoreError> {
        self.run(move |conn| {
            conn.execute("DELETE FROM dead_letters WHERE failed_at < ?1", params![before_ms.unwrap_or(i64::MAX)])
        })
        .await
    }
}
