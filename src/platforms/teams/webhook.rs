//! A Teams Workflows webhook: its budget, and reading its answers (202 Accepted on success; the
//! posting is [`crate::platforms::FlatWebhook`]'s).
//!
//! References: <https://learn.microsoft.com/en-us/power-automate/teams/teams-app-create#webhook-requests>,
//! <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors>.

use std::time::Duration;

use crate::platforms::{Answer, Outcome};

/// Posting budget: Teams' webhooks take about 4 requests a second; beyond, 429.
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(4, Duration::from_secs(1))];

/// Reads a Workflows answer: any 2xx (202 Accepted, as Workflows answer) is delivered; 429 waits
/// as `Retry-After` says; 5xx is retried; 401, 403, 404 and 410 mean the flow or its URL is gone
/// (the channel is broken); any other 4xx is refused for good.
pub fn classify(answer: &Answer) -> Outcome {
    let reason = answer.summary();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        401 | 403 | 404 | 410 => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}
