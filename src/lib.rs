//! callrelay relays Beyond Presence call events to Slack and Discord.
//!
//! Data flows one way: [`server`] receives and parses ([`event`]), [`routing`] picks channels,
//! [`render`] builds each platform's body, [`dispatch`] queues one ordered lane per channel, and
//! [`sinks`] post to Slack and Discord. [`config`] loads the immutable snapshot they all read.

pub mod cli;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod pipeline;
pub mod render;
pub mod routing;
pub mod samples;
pub mod server;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod validate;
