//! Lane leases with fencing tokens, the pacing and broken marks kept with them. (the PostgreSQL store)

use async_trait::async_trait;

use super::*;
use crate::store::{Fence, LaneState, Lease, Leases, StoreError};

#[async_trait]
impl Leases for PgStore {
    async fn lease(
        &self,
        channel: &str,
        owner: &str,
        ttl_ms: i64,
        held: Option<i64>,
    ) -> Result<Option<Lease>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO lanes (channel, owner, token, expires_at) VALUES ($1, $2, 1, {DB_NOW_MS} + $3)
             ON CONFLICT (channel) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                 token = CASE WHEN lanes.owner = excluded.owner AND lanes.token = $4
                              THEN lanes.token ELSE lanes.token + 1 END
             WHERE (lanes.owner = excluded.owner AND lanes.token = $4) OR lanes.expires_at < {DB_NOW_MS}
             RETURNING token, pacing"
        );
        client
            .query_opt(&sql, &[&channel, &owner, &ttl_ms, &held.unwrap_or(-1)])
            .await
            .map(|r| r.map(|r| Lease { token: r.get(0), pacing: r.get(1) }))
            .map_err(|e| classify(&e))
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        self.lane_update(fence, "expires_at = 0", None).await
    }

    async fn save_pacing(&self, fence: &Fence, pacing: String) -> Result<(), StoreError> {
        self.lane_update(fence, "pacing = $3", Some(pacing)).await
    }

    async fn set_broken(&self, fence: &Fence, why: String) -> Result<(), StoreError> {
        self.lane_update(fence, "broken = $3", Some(why)).await
    }

    async fn clear_broken(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE lanes SET broken = NULL", &[]).await.map(|_| ()).map_err(|e| classify(&e))
    }

    async fn lanes(&self) -> Result<Vec<LaneState>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT channel, owner, broken FROM lanes ORDER BY channel", &[])
            .await
            .map_err(|e| classify(&e))?;
        Ok(rows.iter().map(|r| LaneState { channel: r.get(0), owner: r.get(1), broken: r.get(2) }).collect())
    }
}
