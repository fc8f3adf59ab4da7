//! Lane leases: which relay sends for each channel. One keeper task per relay takes and renews
//! its leases in the store (every third of `store.lease`) and tells each lane what it holds; a
//! lane sends only while its lease is valid and writes every outcome with its fence. The keeper
//! also copies the shared broken-channel marks into this relay's view, for `/readyz`, and
//! forgets the console's recent events older than `admin.keep_events`.
//!
//! On SQLite (one relay) every lease is granted at once; on PostgreSQL a channel whose holder died
//! is taken over when its lease expires, and a stopping relay releases its leases first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Broken;
use crate::store::{Fence, Store};
use crate::telemetry;

/// What a lane holds: its fence, until when (by this relay's clock, counted from before the
/// store was asked, so never later than the store's), and the pacing the previous holder saved.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub fence: Fence,
    pub valid_until: Instant,
    pub pacing: Option<String>,
}

/// A lane's view of its lease.
pub(super) type Slot = watch::Receiver<Option<Held>>;

/// This relay's name in the store's `lanes` table: host, process and a random part, so a
/// restarted relay is a new holder (it waits for its old leases to expire, or be released).
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "relay".into());
    format!("{}/{}/{:08x}", host.trim(), std::process::id(), fastrand::u32(..))
}

pub(super) struct Keeper {
    pub store: Arc<dyn Store>,
    pub owner: String,
    pub ttl: Duration,
    pub slots: BTreeMap<String, watch::Sender<Option<Held>>>,
    pub broken: Broken,
    pub stop: watch::Receiver<bool>,
    /// How long the console's recent events are kept (forgotten here, once per round).
    pub keep_recent: Duration,
}

impl Keeper {
    /// Renews until asked to stop (after the lanes stopped), then releases what it holds.
    pub async fn run(mut self) {
        while !*self.stop.borrow() {
            self.round().await;
            tokio::select! {
                _ = tokio::time::sleep(self.ttl / 3) => {}
                _ = self.stop.changed() => {}
            }
        }
        for slot in self.slots.values() {
            let held = slot.send_replace(None);
            if let Some(held) = held {
                if let Err(e) = self.store.release(&held.fence).await {
                    tracing::debug!(channel = %held.fence.channel, error = %e, "Could not release a lane lease; it expires by itself.");
                }
            }
        }
    }

    async fn round(&mut self) {
        let ttl_ms = self.ttl.as_millis().min(i64::MAX as u128) as i64;
        for (channel, slot) in &self.slots {
            let held = slot.borrow().as_ref().map(|h| h.fence.token);
            let asked = Instant::now();
            match self.store.lease(channel, &self.owner, ttl_ms, held).await {
                Ok(Some(lease)) => {
                    if held != Some(lease.token) {
                        telemetry::lane_taken(channel, lease.token);
                    }
                    let fence = Fence { channel: channel.clone(), token: lease.token };
                    slot.send_replace(Some(Held { fence, valid_until: asked + self.ttl, pacing: lease.pacing }));
                }
                Ok(None) => {
                    if held.is_some() {
                        telemetry::lane_lost(channel);
                        slot.send_replace(None);
                    }
                }
                // The lease lapses by itself (lanes check `valid_until`) if this goes on.
                Err(e) => telemetry::store_failed("renew a lane lease", &e.to_string()),
            }
        }
        let keep = self.keep_recent.as_millis().min(i64::MAX as u128) as i64;
        if let Err(e) = self.store.forget_recent(crate::store::now_ms().saturating_sub(keep)).await {
            telemetry::store_failed("forget old recent events", &e.to_string());
        }
        match self.store.lanes().await {
            Ok(lanes) => self.broken.sync(
                lanes
                    .into_iter()
                    .filter(|l| self.slots.contains_key(&l.channel))
                    .filter_map(|l| Some((l.channel, l.broken?)))
                    .collect(),
            ),
            Err(e) => telemetry::store_failed("read the lanes' state", &e.to_string()),
        }
    }
}

/// Takes `channel`'s lease once (for a one-off job such as dead-lettering an orphaned queue);
/// `None` when another relay holds it.
pub(super) async fn take_once(store: &Arc<dyn Store>, channel: &str, owner: &str, ttl: Duration) -> Option<Fence> {
    let ttl_ms = ttl.as_millis().min(i64::MAX as u128) as i64;
    match store.lease(channel, owner, ttl_ms, None).await {
        Ok(Some(lease)) => Some(Fence { channel: channel.to_owned(), token: lease.token }),
        _ => None,
    }
}
