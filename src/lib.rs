//! callrelay relays Beyond Presence call events to Slack and Discord.
//!
//! Data flows one way: [`server`] receives and parses ([`event`]), [`routing`] picks channels,
//! [`store`] commits the event once with an entry per channel, [`dispatch`] runs one ordered lane
//! per channel that renders each event ([`render`]) and posts it ([`sinks`]) to Slack and Discord.
//! [`config`] reads the file; [`setup`] compiles it into the immutable snapshot they all read.
//! [`console`] is the web console on its own listener: it reads the same snapshot and store, and
//! previews through the same render path.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod event;
pub mod intake;
pub mod plan;
pub mod platforms;
pub mod render;
pub mod routing;
pub mod samples;
pub mod server;
pub mod setup;
pub mod store;
pub mod telemetry;
pub mod text;
