//! Lane leases: which relay sends for each channel. One keeper task per relay takes and renews
//! its leases in the store (every third of `store.lease`) and tells each lane what it holds; a
//! lane sends only while its lease is valid and writes every outcome with its fence. The keeper
//! also copies the shared broken-channel marks into this relay's view, for `/readyz`, and
//! forgets the console's recent events older than `admin.keep_events`.
//!
//! A channel whose holder died is taken over when its lease expires (on SQLite, at once when the
//! holder was a process on this machine that has ended), and a stopping relay releases its
//! leases first, so its successor (another replica, or the relay an in-place restart started)
//! takes them within a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Broken;
use crate::store::{Fence, Store};
use crate::telemetry;

/// How often a channel this relay does not hold is asked for.
const TAKE_RETRY: Duration = Duration::from_secs(1);

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

/// This relay's name in the store's `lanes` table (see [`crate::store::holder`]): a restarted
/// relay is a new holder, which waits for its old leases to be released or expire, or, on
/// SQLite, takes them at once when the old process has ended.
pub fn owner_name() -> String {
    crate::store::holder::this_relay()
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
    /// Renews until asked to stop (after the lanes stopped), then releases what it holds. A
    /// channel it does not hold is asked for again every [`TAKE_RETRY`], so a lease released by
    /// a stopping relay (its successor's, during an in-place restart) is taken within a second.
    pub async fn run(mut self) {
        let mut next_round = Instant::now();
        while !*self.stop.borrow() {
            if Instant::now() >= next_round {
                self.round().await;
                next_round = Instant::now() + self.ttl / 3;
            } else {
                self.lease_each(true).await;
            }
            let all_held = self.slots.values().all(|s| s.borrow().is_some());
            let until = if all_held { next_round } else { next_round.min(Instant::now() + TAKE_RETRY) };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
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

    /// Renews or takes every lease (`unheld_only`: takes those it does not hold).
    async fn lease_each(&mut self, unheld_only: bool) {
        let ttl_ms = self.ttl.as_millis().min(i64::MAX as u128) as i64;
        for (channel, slot) in &self.slots {
            let held = slot.borrow().as_ref().map(|h| h.fence.token);
            if unheld_only && held.is_some() {
                continue;
            }
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
    }

    /// Every lease, then the housekeeping: old recent events, the shared broken marks.
    async fn round(&mut self) {
        self.lease_each(false).await;
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
