//! Calls that never end: Beyond Presence never retries, so a `call_ended` that failed to arrive
//! would leave a thread's parent saying "live" and a live transcript open for good. Every second
//! each relay asks the store for calls quiet for `calls.end_after` with no `call_ended`; the store
//! marks each timed out and commits its `call_timed_out` together (once per call, whichever relay
//! gets there first, across restarts). Once a minute, calls quiet for `calls.forget_after` are
//! forgotten.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::State;
use crate::intake;
use crate::store::{now_ms, MakeTimedOut};
use crate::telemetry;

/// How often quiet calls are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often forgotten calls are deleted, in sweeps.
const FORGET_EVERY: u32 = 60;

/// Sweeps while the application lives.
pub fn spawn(state: Weak<State>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u32.. {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            sweep(&state).await;
            if round % FORGET_EVERY == 0 {
                let keep = state.snapshot.load().config.calls.forget_after;
                let before = now_ms().saturating_sub(keep.as_millis().min(i64::MAX as u128) as i64);
                if let Err(e) = state.store.forget_calls(before).await {
                    telemetry::store_failed("forget old calls", &e.to_string());
                }
            }
        }
    });
}

/// Times out every call that went quiet, queueing its `call_timed_out`.
async fn sweep(state: &State) {
    let config = state.snapshot.load().config.clone();
    let end_after = config.calls.end_after;
    if end_after.is_zero() {
        return;
    }
    let idle_before = now_ms().saturating_sub(end_after.as_millis().min(i64::MAX as u128) as i64);
    let routing = config.clone();
    let make: MakeTimedOut =
        Arc::new(move |call, holding| intake::timed_out(&routing, call, holding, chrono::Utc::now()));
    match state.store.time_out_calls(idle_before, make).await {
        Ok(made) => {
            for event in made {
                for channel in &event.channels {
                    state.dispatcher.wake(channel);
                }
                telemetry::call_timed_out(&event.call_id, end_after, event.channels.len());
            }
        }
        Err(e) => telemetry::store_failed("time out quiet calls", &e.to_string()),
    }
}
