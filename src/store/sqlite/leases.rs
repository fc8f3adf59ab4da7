//! Lane leases with fencing tokens, the pacing and broken marks kept with them. (the SQLite store)

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::*;
use crate::store::{now_ms, Fence, LaneState, Lease, Leases, StoreError};

#[async_trait]
impl Leases for SqliteStore {
    async fn lease(
        &self,
        channel: &str,
        owner: &str,
        ttl_ms: i64,
        held: Option<i64>,
    ) -> Result<Option<Lease>, StoreError> {
        let (channel, owner) = (channel.to_owned(), owner.to_owned());
        self.run(move |conn| {
            // Granted as on PostgreSQL (free, expired, or renewed with the current token), and
            // also when the holder is a relay process on this machine that has ended (a crash
            // before this start): two relays share this file only during an in-place restart.
            let holder: Option<String> = conn
                .prepare_cached("SELECT owner FROM lanes WHERE channel = ?1")?
                .query_row(params![channel], |r| r.get(0))
                .optional()?;
            let gone = holder.is_some_and(|h| h != owner && crate::store::holder::gone(&h));
            let now = now_ms();
            conn.prepare_cached(
                "INSERT INTO lanes (channel, owner, token, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (channel) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                     token = CASE WHEN lanes.owner = excluded.owner AND lanes.token = ?4
                                  THEN lanes.token ELSE lanes.token + 1 END
                 WHERE (lanes.owner = excluded.owner AND lanes.token = ?4) OR lanes.expires_at < ?5 OR ?6
                 RETURNING token, pacing",
            )?
            .query_row(params![channel, owner, now + ttl_ms, held.unwrap_or(-1), now, gone], |r| {
                Ok(Lease { token: r.get(0)?, pacing: r.get(1)? })
            })
            .optional()
        })
        .await
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE lanes SET expires_at = 0, owner = '' WHERE channel = ?1", params![channel]).map(|_| ())
        })
        .await
    }

    async fn save_pacing(&self, fence: &Fence, pacing: String) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.prepare_cached("UPDATE lanes SET pacing = ?2 WHERE channel = ?1")?
                .execute(params![channel, pacing])
                .map(|_| ())
        })
        .await
    }

    async fn set_broken(&self, fence: &Fence, why: String) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE lanes SET broken = ?2 WHERE channel = ?1", params![channel, why]).map(|_| ())
        })
        .await
    }

    async fn clear_broken(&self) -> Result<(), StoreError> {
        self.run(|conn| conn.execute("UPDATE lanes SET broken = NULL", []).map(|_| ())).await
    }

    async fn lanes(&self) -> Result<Vec<LaneState>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached("SELECT channel, owner, broken FROM lanes ORDER BY channel")?;
            let rows =
                q.query_map([], |r| Ok(LaneState { channel: r.get(0)?, owner: r.get(1)?, broken: r.get(2)? }))?;
            rows.collect()
        })
        .await
    }
}
