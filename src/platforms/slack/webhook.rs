//! Slack incoming webhooks: their budget, and reading Slack's plain-text answers (the posting is
//! [`crate::platforms::FlatWebhook`]'s).
//!
//! Reference: <https://api.slack.com/messaging/webhooks>.

use std::time::Duration;

use crate::platforms::{Answer, Outcome};

/// Posting budget: about one message per second per webhook.
/// <https://api.slack.com/apis/rate-limits#incoming-webhooks>
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(1, Duration::from_secs(1))];

/// Reads Slack's answer. Success is 200 with body `ok`; errors are plain strings such as
/// `invalid_payload` or `channel_not_found`. A webhook that is gone (404/410: `no_service`,
/// `channel_not_found`, `channel_is_archived`; 401/403 `invalid_token`) marks the channel broken.
/// <https://api.slack.com/messaging/webhooks#handling_errors>
pub fn classify(answer: &Answer) -> Outcome {
    let body = answer.body.trim();
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        404 | 410 => Outcome::Permanent { reason, broken: true },
        _ if BROKEN_ANSWERS.contains(&body) => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}

/// Slack error strings meaning the webhook itself no longer works.
const BROKEN_ANSWERS: [&str; 5] =
    ["no_service", "channel_not_found", "channel_is_archived", "invalid_token", "no_team"];
