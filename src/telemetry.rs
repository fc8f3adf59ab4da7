//! Logs and counters. Each happening has one function here that writes the log line and updates the
//! metric together, so the two never disagree. Channel labels are names, never URLs.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;
use crate::event::EventType;
use crate::render::RenderError;

/// Installs the global log subscriber: `RUST_LOG` filtering (default `info`), pretty or JSON lines,
/// on standard error. Safe to call twice (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// An event was accepted and handed to delivery.
pub fn event_accepted(event_type: EventType, call_id: &str, deliveries: usize) {
    counter!("callrelay_events_received_total", "type" => event_type.as_str(), "outcome" => "accepted").increment(1);
    tracing::debug!(event_type = event_type.as_str(), call_id, deliveries, "Accepted an event.");
}

/// An event of a type this version does not know was answered 200 and not routed.
pub fn event_unknown(event_type: &str) {
    counter!("callrelay_events_received_total", "type" => "unknown", "outcome" => "ignored").increment(1);
    tracing::info!(event_type, "Ignored an event of unknown type (answered 200 for forward compatibility).");
}

/// A request was refused (400, 413, …).
pub fn event_rejected(status: u16, reason: &str) {
    counter!("callrelay_events_received_total", "type" => "invalid", "outcome" => "rejected").increment(1);
    tracing::warn!(status, reason, "Rejected a request.");
}

/// An event matched no route.
pub fn event_unrouted(event_type: EventType, call_id: &str) {
    tracing::debug!(event_type = event_type.as_str(), call_id, "No route matched the event.");
}

/// A route sent an event to a channel that is disabled.
pub fn channel_skipped(channel: &str, why: &str, call_id: &str) {
    counter!("callrelay_deliveries_total", "channel" => channel.to_owned(), "outcome" => "channel_disabled")
        .increment(1);
    tracing::warn!(channel, call_id, why, "Skipped a delivery because the channel is disabled.");
}

/// A channel is disabled at start.
pub fn channel_disabled(channel: &str, why: &str) {
    tracing::warn!(channel, why, "Channel is disabled; events routed to it will not be sent.");
}

/// A template failed for an event.
pub fn render_failed(e: &RenderError) {
    counter!("callrelay_render_errors_total", "channel" => e.channel.clone()).increment(1);
    tracing::error!(
        channel = %e.channel, call_id = %e.call_id, template = %e.template, line = e.line,
        error = %e.message, "A template failed; the event was not sent to this channel."
    );
}

/// Limit enforcement changed a rendered body.
pub fn render_adjusted(channel: &str, call_id: &str, notes: &[String]) {
    tracing::info!(channel, call_id, changes = %notes.join("; "), "Fitted a message to the platform's limits.");
}

/// A post (covering `events` queued posts, when coalesced) was accepted by the platform.
pub fn delivered(channel: &str, call_id: &str, events: usize, attempt: u32, latencies: impl Iterator<Item = Duration>) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "delivered").increment(1);
    counter!("callrelay_deliveries_total", "channel" => channel.to_owned(), "outcome" => "delivered")
        .increment(events as u64);
    for l in latencies {
        histogram!("callrelay_delivery_latency_seconds", "channel" => channel.to_owned()).record(l.as_secs_f64());
    }
    tracing::debug!(channel, call_id, events, attempt, "Delivered a post.");
}

/// The platform answered 429; the lane waits `wait` (this never counts as a failed attempt).
pub fn rate_limited(channel: &str, wait: Duration, answer: &str) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "rate_limited").increment(1);
    counter!("callrelay_rate_limit_wait_seconds_total", "channel" => channel.to_owned())
        .increment(wait.as_millis() as u64 / 1000);
    tracing::warn!(
        channel,
        wait_ms = wait.as_millis() as u64,
        answer,
        "The platform rate-limited a post; waiting as asked."
    );
}

/// The lane holds a post to stay within the channel's budget.
pub fn pacing_wait(channel: &str, wait: Duration) {
    histogram!("callrelay_pacing_wait_seconds", "channel" => channel.to_owned()).record(wait.as_secs_f64());
    tracing::trace!(channel, wait_ms = wait.as_millis() as u64, "Pacing the next post.");
}

/// A post failed in a way worth retrying.
pub fn attempt_failed(channel: &str, call_id: &str, attempt: u32, reason: &str) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "failed").increment(1);
    tracing::warn!(channel, call_id, attempt, reason, "A post failed; it will be retried.");
}

/// Posts went to the dead letters.
pub fn dead_lettered(channel: &str, count: usize, reason: &str) {
    counter!("callrelay_dead_letters_total", "channel" => channel.to_owned()).increment(count as u64);
    tracing::error!(channel, count, reason, "Moved posts to the dead letters (see `callrelay dlq list`).");
}

/// A channel's webhook is gone; the lane stops posting to it until a reload or restart.
pub fn channel_broken(channel: &str, answer: &str) {
    gauge!("callrelay_channel_broken", "channel" => channel.to_owned()).set(1.0);
    tracing::error!(channel, answer, "The channel's webhook no longer works; not sending to it until the configuration is reloaded or the relay restarts.");
}

/// The store could not be read or written.
pub fn store_failed(doing: &str, error: &str) {
    counter!("callrelay_store_errors_total").increment(1);
    tracing::error!(doing, error, "The store failed.");
}

/// An identical event arrived again within `dedup.window`; answered 200, not forwarded.
pub fn duplicate_dropped(event_type: EventType, call_id: &str) {
    counter!("callrelay_duplicates_dropped_total", "type" => event_type.as_str()).increment(1);
    tracing::info!(event_type = event_type.as_str(), call_id, "Dropped a duplicate event.");
}

/// A request failed authentication. Counted every time; logged at most once per
/// [`AUTH_LOG_EVERY`] with the number of failures since, so an attack cannot flood the log.
pub fn auth_failed(reason: &'static str) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static LAST_LOG_MS: AtomicI64 = AtomicI64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    counter!("callrelay_auth_failures_total", "reason" => reason).increment(1);
    let since = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    let now = crate::store::now_ms();
    let last = LAST_LOG_MS.load(Ordering::Relaxed);
    if now - last >= AUTH_LOG_EVERY.as_millis() as i64
        && LAST_LOG_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        SINCE.store(0, Ordering::Relaxed);
        tracing::warn!(reason, failures = since, "Refused unauthenticated requests (401).");
    }
}

/// How often authentication failures are logged at most.
pub const AUTH_LOG_EVERY: Duration = Duration::from_secs(10);
