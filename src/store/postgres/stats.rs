//! The console's recent events, post statuses and per-minute activity. (the PostgreSQL store)

use async_trait::async_trait;

use super::*;
use crate::store::{Activity, RecentEvent, Stats, StoreError};

#[async_trait]
impl Stats for PgStore {
    async fn recent(&self, call: Option<&str>, limit: usize) -> Result<Vec<RecentEvent>, StoreError> {
        let client = self.client().await?;
        const COLUMNS: &str = "SELECT event_id, call_id, event_type, routes, channels, accepted_at, shown FROM recent";
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match call {
            Some(call) => {
                let sql = format!("{COLUMNS} WHERE call_id = $1 ORDER BY event_id LIMIT $2");
                client.query(&sql, &[&call, &limit]).await
            }
            None => client.query(&format!("{COLUMNS} ORDER BY event_id DESC LIMIT $1"), &[&limit]).await,
        }
        .map_err(|e| classify(&e))?;
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let mut outcomes: crate::store::Outcomes = client
            .query(
                "SELECT event_id, channel, status, attempts, answer, at FROM outcomes WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(|e| classify(&e))?
            .iter()
            .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get::<_, i32>(3) as u32, r.get(4), r.get(5))))
            .collect();
        Ok(rows
            .iter()
            .map(|r| {
                let event = RecentEvent {
                    id: r.get(0),
                    call_id: r.get(1),
                    event_type: r.get(2),
                    routes: serde_json::from_str(r.get(3)).unwrap_or_default(),
                    accepted_at_ms: r.get(5),
                    posts: Vec::new(),
                    shown: r.get(6),
                };
                crate::store::with_posts(event, r.get(4), &mut outcomes)
            })
            .collect())
    }

    async fn activity(&self, since_ms: i64) -> Result<Vec<Activity>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT channel, (at / 60000) * 60000 AS minute, COUNT(*) FILTER (WHERE status = 'delivered'),
                        COUNT(*) FILTER (WHERE status <> 'delivered')
                 FROM outcomes WHERE at >= $1 GROUP BY channel, minute ORDER BY channel, minute",
                &[&since_ms],
            )
            .await
            .map_err(|e| classify(&e))?;
        Ok(rows
            .iter()
            .map(|r| Activity {
                channel: r.get(0),
                minute_ms: r.get(1),
                delivered: r.get::<_, i64>(2) as u64,
                failed: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    async fn forget_recent(&self, before_ms: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        // Old rows are (nearly) a prefix in id order: no index on the time is written per accept.
        // Those of calls still remembered stay, for their call's page.
        client
            .execute(
                "DELETE FROM recent WHERE event_id < COALESCE(
                     (SELECT event_id FROM recent WHERE accepted_at >= $1 ORDER BY event_id LIMIT 1),
                     (SELECT MAX(event_id) + 1 FROM recent), 0)
                 AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.call_id = recent.call_id)",
                &[&before_ms],
            )
            .await
            .map_err(|e| classify(&e))?;
        client
            .execute(
                "DELETE FROM outcomes WHERE at < $1
                 AND NOT EXISTS (SELECT 1 FROM recent WHERE recent.event_id = outcomes.event_id)",
                &[&before_ms],
            )
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}
