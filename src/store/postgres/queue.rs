//! The lanes' queues and the dead letters. (the PostgreSQL store)

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::*;
use crate::store::{now_ms, Content, DeadLetter, Depth, Fence, Queue, Queued, StoreError};

#[async_trait]
impl Queue for PgStore {
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT q.id, q.channel, e.call_id, e.event_type, e.event, e.accepted_at, q.attempts, q.sent_parts
                 FROM queue q JOIN events e ON e.id = q.event_id WHERE q.channel = $1 ORDER BY q.id LIMIT $2",
                &[&channel, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(|e| classify(&e))?;
        Ok(rows
            .iter()
            .map(|r| Queued {
                id: r.get(0),
                channel: r.get(1),
                call_id: r.get(2),
                event_type: r.get(3),
                // PostgreSQL stores began at version 2: every entry has its event.
                content: Content::Event(r.get::<_, Option<String>>(4).unwrap_or_default()),
                accepted_at_ms: r.get(5),
                attempts: r.get::<_, i32>(6) as u32,
                sent_parts: r.get::<_, i32>(7) as u32,
            })
            .collect())
    }

    async fn delivered(&self, fence: &Fence, ids: Vec<i64>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        note_outcome(&tx, &ids, "delivered", None).await.map_err(|e| classify(&e))?;
        remove_entries(&tx, &ids).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn reroute(&self, fence: &Fence, ids: Vec<i64>, events: Vec<NewEvent>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        let now = now_ms();
        remove_entries(&tx, &ids).await.map_err(|e| classify(&e))?;
        let events: Vec<&NewEvent> = events.iter().collect();
        remember(&tx, &events, now).await.map_err(|e| classify(&e))?;
        insert_events(&tx, &events, now).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn parts_delivered(&self, fence: &Fence, id: i64, parts: u32) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        tx.execute("UPDATE queue SET sent_parts = $1, attempts = 0 WHERE id = $2", &[&(parts as i32), &id])
            .await
            .map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn failed_attempt(&self, fence: &Fence, ids: Vec<i64>, answer: String) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        tx.execute("UPDATE queue SET attempts = attempts + 1, last_answer = $1 WHERE id = ANY($2)", &[&answer, &ids])
            .await
            .map_err(|e| classify(&e))?;
        note_outcome(&tx, &ids, "retrying", Some(&answer)).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn dead_letter(&self, fence: &Fence, ids: Vec<i64>, reason: String) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = fenced(&mut client, fence).await?;
        tx.execute(
            "INSERT INTO dead_letters (channel, call_id, event_type, event, reason, attempts, accepted_at, failed_at)
             SELECT q.channel, e.call_id, e.event_type, e.event, $1, q.attempts, e.accepted_at, $2
             FROM queue q JOIN events e ON e.id = q.event_id WHERE q.id = ANY($3) ORDER BY q.id",
            &[&reason, &now_ms(), &ids],
        )
        .await
        .map_err(|e| classify(&e))?;
        note_outcome(&tx, &ids, "dead_lettered", Some(&reason)).await.map_err(|e| classify(&e))?;
        remove_entries(&tx, &ids).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn depths(&self) -> Result<Vec<Depth>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT q.channel, COUNT(*), MIN(e.accepted_at) FROM queue q JOIN events e ON e.id = q.event_id
                 GROUP BY q.channel ORDER BY q.channel",
                &[],
            )
            .await
            .map_err(|e| classify(&e))?;
        Ok(rows
            .iter()
            .map(|r| Depth { channel: r.get(0), pending: r.get::<_, i64>(1) as u64, oldest_ms: r.get(2) })
            .collect())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, channel, call_id, event_type, event, reason, attempts, accepted_at, failed_at
                 FROM dead_letters ORDER BY id",
                &[],
            )
            .await
            .map_err(|e| classify(&e))?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                channel: r.get(1),
                call_id: r.get(2),
                event_type: r.get(3),
                body: None,
                event: r.get(4),
                reason: r.get(5),
                attempts: r.get::<_, i32>(6) as u32,
                accepted_at_ms: r.get(7),
                failed_at_ms: r.get(8),
            })
            .collect())
    }

    async fn requeue(&self, dead_letter: i64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| classify(&e))?;
        let event: Option<i64> = tx
            .query_opt(
                "INSERT INTO events (call_id, event_type, event, accepted_at)
                 SELECT call_id, event_type, event, $2 FROM dead_letters WHERE id = $1 RETURNING id",
                &[&dead_letter, &now_ms()],
            )
            .await
            .map_err(|e| classify(&e))?
            .map(|r| r.get(0));
        let Some(event) = event else { return Err(StoreError::NoSuchDeadLetter(dead_letter)) };
        tx.execute(
            "INSERT INTO queue (channel, event_id) SELECT channel, $2 FROM dead_letters WHERE id = $1",
            &[&dead_letter, &event],
        )
        .await
        .map_err(|e| classify(&e))?;
        let channel: String = tx
            .query_one("DELETE FROM dead_letters WHERE id = $1 RETURNING channel", &[&dead_letter])
            .await
            .map_err(|e| classify(&e))?
            .get(0);
        wake(&tx, &[&channel]).await.map_err(|e| classify(&e))?;
        tx.commit().await.map_err(|e| classify(&e))
    }

    async fn purge(&self, before_ms: Option<i64>) -> Result<usize, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM dead_letters WHERE failed_at < $1", &[&before_ms.unwrap_or(i64::MAX)])
            .await
            .map(|n| n as usize)
            .map_err(|e| classify(&e))
    }

    fn wakeups(&self) -> Option<broadcast::Receiver<String>> {
        self.wakes.as_ref().map(broadcast::Sender::subscribe)
    }
}
