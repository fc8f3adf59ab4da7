//! The console's recent events, post statuses and per-minute activity. (the SQLite store)

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::store::{Activity, RecentEvent, Stats, StoreError};

#[async_trait]
impl Stats for SqliteStore {
    async fn recent(&self, call: Option<&str>, limit: usize) -> Result<Vec<RecentEvent>, StoreError> {
        let call = call.map(str::to_owned);
        self.run(move |conn| {
            let row = |r: &rusqlite::Row| -> rusqlite::Result<(RecentEvent, String)> {
                let routes: String = r.get(3)?;
                Ok((
                    RecentEvent {
                        id: r.get(0)?,
                        call_id: r.get(1)?,
                        event_type: r.get(2)?,
                        routes: serde_json::from_str(&routes).unwrap_or_default(),
                        accepted_at_ms: r.get(5)?,
                        posts: Vec::new(),
                        shown: r.get(6)?,
                    },
                    r.get(4)?,
                ))
            };
            const COLUMNS: &str = "SELECT id, call_id, event_type, routes, channels, accepted_at, shown FROM recent";
            let found: Vec<(RecentEvent, String)> = match &call {
                Some(call) => conn
                    .prepare_cached(&format!("{COLUMNS} WHERE call_id = ?1 ORDER BY id LIMIT ?2"))?
                    .query_map(params![call, limit as i64], row)?
                    .collect::<rusqlite::Result<_>>()?,
                None => conn
                    .prepare_cached(&format!("{COLUMNS} ORDER BY id DESC LIMIT ?1"))?
                    .query_map(params![limit as i64], row)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            let ids: Vec<i64> = found.iter().map(|(e, _)| e.id).collect();
            let mut outcomes = std::collections::HashMap::new();
            let sql = format!(
                "SELECT recent_id, channel, status, attempts, answer, at FROM outcomes WHERE recent_id IN ({})",
                in_list(&ids)
            );
            for o in conn.prepare(&sql)?.query_map([], |r| {
                Ok(((r.get::<_, i64>(0)?, r.get::<_, String>(1)?), (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            })? {
                let (key, value) = o?;
                outcomes.insert(key, value);
            }
            Ok(found.into_iter().map(|(e, channels)| crate::store::with_posts(e, &channels, &mut outcomes)).collect())
        })
        .await
    }

    async fn activity(&self, since_ms: i64) -> Result<Vec<Activity>, StoreError> {
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT channel, (at / 60000) * 60000 AS minute, SUM(status = 'delivered'), SUM(status <> 'delivered')
                 FROM outcomes WHERE at >= ?1 GROUP BY channel, minute ORDER BY channel, minute",
            )?;
            let rows = q.query_map(params![since_ms], |r| {
                Ok(Activity {
                    channel: r.get(0)?,
                    minute_ms: r.get(1)?,
                    delivered: r.get::<_, i64>(2)? as u64,
                    failed: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn forget_recent(&self, before_ms: i64) -> Result<(), StoreError> {
        self.run(move |conn| {
            // Rows are written in id order with non-decreasing times: the old ones are a prefix,
            // less those of calls still remembered (kept for their call's page).
            conn.prepare_cached(
                "DELETE FROM recent WHERE id < COALESCE(
                     (SELECT id FROM recent WHERE accepted_at >= ?1 ORDER BY id LIMIT 1),
                     (SELECT MAX(id) + 1 FROM recent), 0)
                 AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.call_id = recent.call_id)",
            )?
            .execute(params![before_ms])?;
            conn.prepare_cached(
                "DELETE FROM outcomes WHERE at < ?1 AND NOT EXISTS (SELECT 1 FROM recent WHERE recent.id = outcomes.recent_id)",
            )?
            .execute(params![before_ms])
            .map(|_| ())
        })
        .await
    }
}
