//! End-to-end tests: the real server on port 0, wiremock servers standing in for Slack and Discord,
//! real configuration files, and the real binary for the command line.

mod browser;
mod calls;
mod cli;
mod config;
mod console;
mod delivery;
mod deploy;
mod durability;
mod google_chat;
mod helpers;
mod hostile;
mod http;
mod lookup;
mod mentions;
mod ops;
mod platform_rules;
mod postgres;
mod properties;
mod queued;
mod receive;
mod replicas;
mod restart;
mod routes;
mod security;
mod slack_app;
mod standins;
mod teams;
mod threads;
mod transcript;
