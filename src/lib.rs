//! callrelay relays Beyond Presence call events to Slack, Discord, Microsoft Teams, Google Chat
//! and signed HTTP endpoints.
//!
//! Data flows one way: [`server`] receives and parses ([`event`]), fills in what the call told
//! earlier ([`calls`]), [`intake`] routes ([`routing`]) into what [`store`] commits once with an
//! entry per channel, and [`dispatch`]
//! runs one ordered lane per channel that follows the delivery [`plan`], renders ([`render`]) and
//! posts through the channel's platform ([`platforms`]). [`config`] reads the file; [`setup`]
//! compiles it into the immutable snapshot they all read; [`app`] is the running application
//! that the receiver and the [`console`] (the web console, on its own listener) both serve.

pub mod app;
pub mod auth;
pub mod calls;
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
