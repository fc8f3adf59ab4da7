//! What each channel holds of a call: its thread and its live transcript. (the PostgreSQL store)

use async_trait::async_trait;

use super::*;
use crate::store::{now_ms, Calls, Fence, StoreError, Transcript};

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
}
