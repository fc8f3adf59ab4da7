//! What each channel holds of a call: its thread and its live transcript. (the PostgreSQL store)

use async_trait::async_trait;

use super::*;
use crate::store::{now_ms, Calls, Fence, MakeTimedOut, NewEvent, Remembered, StoreError, Transcript};

/// The columns of a remembered call, in [`remembered`]'s order.
const CALL: &str = "call_id, agent_id, user_name, call_data, first_at, last_at, utterances, ended_at, timed_out_at";

fn remembered(r: &tokio_postgres::Row) -> Remembered {
    Remembered {
        call_id: r.get(0),
        agent_id: r.get(1),
        user_name: r.get(2),
        call_data: r.get(3),
        first_at_ms: r.get(4),
        last_at_ms: r.get(5),
        utterances: r.get(6),
        ended_at_ms: r.get(7),
        timed_out_at_ms: r.get(8),
    }
}

#[async_trait]
impl Calls for PgStore {
    async fn thread(&self, channel: &str, call_id: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt("SELECT thread FROM threads WHERE channel = $1 AND call_id = $2", &[&channel, &call_id])
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(|e| classify(&e))
    }

    async fn set_thread(&self, fence: &Fence, call_id: &str, thread: String) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        tx.execute(
            "INSERT INTO threads (channel, call_id, thread) VALUES ($1, $2, $3)
             ON CONFLICT (channel, call_id) DO UPDATE SET thread = excluded.thread",
            &[&fence.channel, &call_id, &thread],
        )
        .await
        .map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn forget_call_at(&self, fence: &Fence, call_id: &str, forget_at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        for table in ["threads", "transcripts"] {
            tx.execute(
                &format!("UPDATE {table} SET forget_at = $3 WHERE channel = $1 AND call_id = $2"),
                &[&fence.channel, &call_id, &forget_at_ms],
            )
            .await
            .map_err(|e| classify(&e))?;
            tx.execute(&format!("DELETE FROM {table} WHERE forget_at < $1"), &[&now_ms()])
                .await
                .map_err(|e| classify(&e))?;
        }
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn transcript(&self, channel: &str, call_id: &str) -> Result<Option<Transcript>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT message_id, thread, part, lines FROM transcripts WHERE channel = $1 AND call_id = $2",
                &[&channel, &call_id],
            )
            .await
            .map(|r| {
                r.map(|r| Transcript {
                    message_id: r.get(0),
                    thread: r.get(1),
                    part: r.get::<_, i32>(2) as u32,
                    lines: r.get(3),
                })
            })
            .map_err(|e| classify(&e))
    }

    async fn set_transcript(&self, fence: &Fence, call_id: &str, t: Transcript) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        tx.execute(
            "INSERT INTO transcripts (channel, call_id, message_id, thread, part, lines) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (channel, call_id) DO UPDATE SET message_id = excluded.message_id,
                 thread = excluded.thread, part = excluded.part, lines = excluded.lines",
            &[&fence.channel, &call_id, &t.message_id, &t.thread, &(t.part as i32), &t.lines],
        )
        .await
        .map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn call(&self, call_id: &str) -> Result<Option<Remembered>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(&format!("SELECT {CALL} FROM calls WHERE call_id = $1"), &[&call_id])
            .await
            .map(|r| r.as_ref().map(remembered))
            .map_err(|e| classify(&e))
    }

    async fn time_out_calls(&self, idle_before_ms: i64, make: MakeTimedOut) -> Result<Vec<NewEvent>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| classify(&e))?;
        let now = now_ms();
        // Locked while this relay times them out; another relay's sweep skips them.
        let due: Vec<Remembered> = tx
            .query(
                &format!(
                    "WITH due AS (SELECT call_id FROM calls
                         WHERE ended_at IS NULL AND timed_out_at IS NULL AND last_at < $1
                         ORDER BY last_at LIMIT 100 FOR UPDATE SKIP LOCKED)
                     UPDATE calls SET timed_out_at = $2 FROM due WHERE calls.call_id = due.call_id
                     RETURNING {}",
                    CALL.split(", ").map(|c| format!("calls.{c}")).collect::<Vec<_>>().join(", ")
                ),
                &[&idle_before_ms, &now],
            )
            .await
            .map_err(|e| classify(&e))?
            .iter()
            .map(remembered)
            .collect();
        let mut made = Vec::with_capacity(due.len());
        for call in &due {
            let holding: Vec<String> = tx
                .query(
                    "SELECT channel FROM threads WHERE call_id = $1
                     UNION SELECT channel FROM transcripts WHERE call_id = $1 ORDER BY 1",
                    &[&call.call_id],
                )
                .await
                .map_err(|e| classify(&e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            made.push(make(call, &holding));
        }
        let events: Vec<&NewEvent> = made.iter().collect();
        insert_events(&tx, &events, now).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))?;
        Ok(made)
    }

    async fn forget_calls(&self, before_ms: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM calls WHERE last_at < $1", &[&before_ms])
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}
