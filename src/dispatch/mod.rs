//! Dispatch: one ordered lane per channel, each a task that hands its posts to the channel's sink
//! one at a time, so a slow or broken channel never delays another.
//!
//! This version keeps the queue in memory and makes one attempt per post; the durable store and
//! retries replace the queue behind the same `enqueue` call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use crate::sinks::{Outcome, Sink};
use crate::telemetry;

/// One post to make.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The channel's name.
    pub channel: String,
    /// The event's call id, for logs.
    pub call_id: String,
    /// The exact JSON body.
    pub body: String,
}

/// Hands deliveries to per-channel lanes.
#[derive(Clone)]
pub struct Dispatcher {
    lanes: Arc<BTreeMap<String, mpsc::UnboundedSender<Delivery>>>,
    pending: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Dispatcher {
    /// Starts one lane per sink. Must be called inside a Tokio runtime.
    pub fn start(sinks: BTreeMap<String, Arc<dyn Sink>>) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let idle = Arc::new(Notify::new());
        let mut lanes = BTreeMap::new();
        for (name, sink) in sinks {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane(name.clone(), sink, rx, pending.clone(), idle.clone()));
            lanes.insert(name, tx);
        }
        Self {
            lanes: Arc::new(lanes),
            pending,
            idle,
        }
    }

    /// Queues deliveries; each lane keeps the order given. Deliveries to a channel without a lane
    /// are returned.
    pub fn enqueue(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        let mut refused = Vec::new();
        for d in deliveries {
            match self.lanes.get(&d.channel) {
                Some(tx) => {
                    self.pending.fetch_add(1, Ordering::SeqCst);
                    if let Err(mpsc::error::SendError(d)) = tx.send(d) {
                        self.done();
                        refused.push(d);
                    }
                }
                None => refused.push(d),
            }
        }
        refused
    }

    /// Posts queued or in flight.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Waits until nothing is queued or in flight, or `limit` passes; returns what is left.
    pub async fn drain(&self, limit: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.pending() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.pending()
    }

    fn done(&self) {
        finish(&self.pending, &self.idle);
    }
}

fn finish(pending: &AtomicUsize, idle: &Notify) {
    if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
        idle.notify_waiters();
    }
}

async fn lane(
    channel: String,
    sink: Arc<dyn Sink>,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    pending: Arc<AtomicUsize>,
    idle: Arc<Notify>,
) {
    while let Some(d) = rx.recv().await {
        match sink.post(&d.body).await {
            Outcome::Delivered => telemetry::delivered(&channel, &d.call_id),
            Outcome::Retry { reason, .. } => {
                telemetry::delivery_failed(&channel, &d.call_id, &reason, false)
            }
            Outcome::Permanent { reason } => {
                telemetry::delivery_failed(&channel, &d.call_id, &reason, true)
            }
        }
        finish(&pending, &idle);
    }
}
