//! Intake: committing accepted events and their once-keys, and whether a write would succeed now. (the PostgreSQL store)

use async_trait::async_trait;

use super::*;
use crate::store::{Accepted, Intake, NewEvent, OnceKey, StoreError};

#[async_trait]
impl Intake for PgStore {
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.accepts
            .send(AcceptJob { event, once, reply })
            .await
            .map_err(|_| StoreError::Failed("the store's writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Failed("the store's writer has stopped".into()))?
    }

    async fn ping(&self, bytes: usize) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| classify(&e))?;
        tx.execute("INSERT INTO readiness VALUES (repeat('x', $1))", &[&(bytes.min(i32::MAX as usize) as i32)])
            .await
            .map_err(|e| classify(&e))?;
        tx.rollback().await.map_err(|e| classify(&e))
    }
}
