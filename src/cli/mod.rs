//! The command line: `serve` (the default), `check`, `render`, `dlq`, `send-test`, `healthcheck`
//! and `simulate`.

mod check;
mod dlq;
mod render;
mod send_test;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ConfigSource, LogFormat};
use crate::server::Application;
use crate::setup::{self, Config};
use crate::telemetry;

/// Relays Beyond Presence call events to Slack and Discord.
#[derive(Debug, Parser)]
#[command(name = "callrelay", version, about)]
pub struct Cli {
    /// The configuration file. Default `./relay.toml`, or the built-in example when that is missing.
    #[arg(long, global = true, env = "CALLRELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (the default).
    Serve,
    /// Validate the configuration and every template against built-in samples; exit 1 on problems.
    Check,
    /// Print the exact bodies an event would be posted as, per channel.
    Render {
        /// A JSON event file, or `-` for standard input. Default: the built-in samples.
        #[arg(long)]
        event: Option<PathBuf>,
        /// Only this channel (rendered even if no route sends the event there).
        #[arg(long)]
        channel: Option<String>,
        /// Pretty-print the JSON (the posted body is compact).
        #[arg(long)]
        pretty: bool,
    },
    /// List, replay or purge dead letters.
    Dlq {
        /// What to do.
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Post a rendered sample (or `--event`) to a real channel and print the platform's answer.
    SendTest {
        /// The channel to post to.
        #[arg(long)]
        channel: String,
        /// A JSON event file to render instead of the built-in test event.
        #[arg(long)]
        event: Option<PathBuf>,
    },
    /// Exit 0 when the relay at URL answers /healthz with 200 (for container health checks).
    Healthcheck {
        /// Default: `http://127.0.0.1:<port of server.listen>/healthz`.
        #[arg(long)]
        url: Option<String>,
    },
    /// Play a realistic call against a running relay and print its answers.
    Simulate {
        /// The relay's webhook URL. Default: from `server.listen` and `server.path`.
        #[arg(long)]
        url: Option<String>,
        /// Live messages to send before `call_ended`.
        #[arg(long, default_value_t = 6)]
        messages: usize,
    },
}

/// Runs the command line; the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let source = ConfigSource::resolve(cli.config.as_deref());
    let loaded = setup::load(&source);
    let format = cli.log_format.or_else(|| loaded.as_ref().ok().map(|c| c.log.format)).unwrap_or_default();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init(format);
            match loaded {
                Ok(config) => serve(config),
                Err(e) => fail(&e),
            }
        }
        Command::Check => check::run(&source, loaded),
        Command::Render { event, channel, pretty } => match loaded {
            Ok(config) => render::run(&config, event.as_deref(), channel.as_deref(), pretty),
            Err(e) => fail(&e),
        },
        Command::Dlq { command } => match loaded {
            Ok(config) => dlq::run(&config, command),
            Err(e) => fail(&e),
        },
        Command::SendTest { channel, event } => match loaded {
            Ok(config) => send_test::run(&config, &channel, event.as_deref()),
            Err(e) => fail(&e),
        },
        Command::Healthcheck { url } => {
            let url = url
                .or_else(|| loaded.ok().map(|c| health_url(&c)))
                .unwrap_or_else(|| "http://127.0.0.1:8080/healthz".into());
            healthcheck(&url)
        }
        Command::Simulate { url, messages } => {
            let url = url.or_else(|| loaded.ok().map(|c| default_url(&c)));
            match url {
                Some(url) => simulate::run(&url, messages),
                None => fail(&"no --url given and no valid configuration to derive it from"),
            }
        }
    }
}

fn serve(config: Config) -> ExitCode {
    // The same validation as `check` and live reload (unset webhook variables only disable their
    // channels, so a first run still starts).
    let report = crate::samples::check(&config);
    if !report.problems.is_empty() {
        return fail(&format!(
            "the templates fail on built-in samples (run `callrelay check`):\n  - {}",
            report.problems.join("\n  - ")
        ));
    }
    // A successor must not change the store under the relay that still serves on it.
    if crate::server::handover::succeeding() && config.store.url.is_none() {
        match crate::store::sqlite::SqliteStore::upgrade_pending(&config.store.path) {
            Ok(None) => {}
            Ok(Some((found, to))) => {
                return fail(&format!(
                    "this release upgrades the store `{}` (key `store.path`) from version {found} to {to}, which \
                     the running relay still uses: back the file up, then stop the relay and start this release \
                     (`systemctl restart callrelay`) instead of restarting in place",
                    config.store.path.display()
                ))
            }
            Err(e) => return fail(&e),
        }
    }
    // Sockets handed over by systemd (socket activation) or by the relay this one succeeds (an
    // in-place restart), taken once, at start.
    let sockets = match crate::server::activation::take() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a Tokio runtime starts");
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let source = config.source.display_name();
        let path = config.server.shown_path.clone();
        let app = Application::build_on(config, sockets.webhook).await?;
        let console = crate::console::start_on(app.state(), sockets.console).map(|(_, socket)| socket);
        app.restart_in_place_on_signal(console)?;
        tracing::info!(config = %source, port = app.port(), path = %path, "callrelay is listening.");
        crate::server::handover::announce_ready();
        app.run_until_stopped().await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn default_url(config: &Config) -> String {
    let listen = config.server.listen.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]");
    format!("http://{listen}{}", config.server.path)
}

fn health_url(config: &Config) -> String {
    let port = config.server.listen.rsplit(':').next().unwrap_or("8080");
    let scheme = if config.server.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}/healthz")
}

fn healthcheck(url: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts");
    let answer = runtime.block_on(async {
        // A health check on loopback trusts the relay's own certificate, whoever signed it.
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client settings are valid");
        client.get(url).send().await
    });
    match answer {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => fail(&format!("{url} answered {}", r.status())),
        Err(e) => fail(&format!("{url}: {}", e.without_url())),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
