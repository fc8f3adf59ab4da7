//! `callrelay dlq`: list, replay and purge dead letters in the store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

use crate::event::EventType;
use crate::setup::Config;
use crate::store::{now_ms, DeadLetter, Store};

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first.
    List,
    /// Queue dead letters again, at the end of their channel's queue. A running relay picks them
    /// up within a second and renders each event with the templates in force then.
    Replay {
        /// The dead letter's id (from `dlq list`).
        id: Option<i64>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete dead letters.
    Purge {
        /// Only those that failed longer ago than this (e.g. `7d`, `12h`).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
    },
}

pub(super) fn run(config: &Config, command: DlqCommand) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts");
    runtime.block_on(async {
        let store = match crate::store::open(&config.store, false).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match command {
            DlqCommand::List => list(&store).await,
            DlqCommand::Replay { id, all } => replay(config, &store, id, all).await,
            DlqCommand::Purge { older_than } => {
                let before = older_than.map(|d| now_ms() - d.as_millis() as i64);
                match store.purge(before).await {
                    Ok(n) => {
                        println!("Purged {n} dead letter{}.", if n == 1 { "" } else { "s" });
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e),
                }
            }
        }
    })
}

async fn list(store: &Arc<dyn Store>) -> ExitCode {
    let letters = match store.dead_letters().await {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    if letters.is_empty() {
        println!("No dead letters.");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:>6}  {:<20}  {:<16}  {:<10}  {:>8}  {:<20}  REASON",
        "ID", "FAILED", "CHANNEL", "EVENT", "ATTEMPTS", "CALL"
    );
    for d in &letters {
        let failed = chrono::DateTime::from_timestamp_millis(d.failed_at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let reason: String = d.reason.replace('\n', " ").chars().take(120).collect();
        println!(
            "{:>6}  {failed:<20}  {:<16}  {:<10}  {:>8}  {:<20}  {reason}",
            d.id, d.channel, d.event_type, d.attempts, d.call_id
        );
    }
    println!("{} dead letter{}.", letters.len(), if letters.len() == 1 { "" } else { "s" });
    ExitCode::SUCCESS
}

async fn replay(config: &Config, store: &Arc<dyn Store>, id: Option<i64>, all: bool) -> ExitCode {
    let letters = match store.dead_letters().await {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let chosen: Vec<&DeadLetter> = match (id, all) {
        (Some(id), _) => match letters.iter().find(|d| d.id == id) {
            Some(d) => vec![d],
            None => return fail(&format!("no dead letter with id {id} (see `callrelay dlq list`)")),
        },
        (None, true) => letters.iter().collect(),
        (None, false) => return fail(&"name a dead letter's id, or --all"),
    };
    let mut failed = false;
    for d in chosen {
        match renders(config, d) {
            Ok(()) => match store.requeue(d.id).await {
                Ok(()) => println!("Queued dead letter {} for channel `{}` again.", d.id, d.channel),
                Err(e) => {
                    eprintln!("error: dead letter {}: {e}", d.id);
                    failed = true;
                }
            },
            Err(why) => {
                eprintln!("error: dead letter {}: {why}", d.id);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks that a dead letter renders with today's templates before queuing it again (a body from
/// before the store's version 2 is sent as it is), so a replay that would fail at once says so now.
fn renders(config: &Config, d: &DeadLetter) -> Result<(), String> {
    if d.body.is_some() {
        return Ok(());
    }
    let event = d.event.as_deref().ok_or("it has neither a body nor an event")?;
    let ctx: Value = serde_json::from_str(event).map_err(|e| format!("its event is not JSON: {e}"))?;
    let channel =
        config.channels.get(&d.channel).ok_or_else(|| format!("channel `{}` is not configured", d.channel))?;
    let event_type =
        EventType::from_name(&d.event_type).ok_or_else(|| format!("unknown event type `{}`", d.event_type))?;
    config.renderer.render(channel, event_type, &ctx).map(|_| ()).map_err(|e| e.to_string())
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
