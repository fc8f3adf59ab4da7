//! `callrelay check`: everything `serve` would refuse or fail on, found before deploying.

use std::process::ExitCode;

use crate::config::{ConfigError, ConfigSource};
use crate::samples;
use crate::setup::Config;

pub(super) fn run(source: &ConfigSource, loaded: Result<Config, ConfigError>) -> ExitCode {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = source.display_name();
    let mut problems: Vec<String> =
        config.disabled_channels().map(|(name, why)| format!("{file}: channel `{name}`: disabled: {why}")).collect();

    println!("Configuration: {file}\n");
    let channel_rows = config
        .channels
        .values()
        .map(|c| {
            let target = match &c.target {
                Ok(target) => target.shown(),
                Err(why) => format!("DISABLED: {why}"),
            };
            vec![c.name.clone(), c.platform.as_str().to_owned(), target]
        })
        .collect();
    print!("{}", table(&["CHANNEL", "KIND", "DESTINATION"], channel_rows));
    println!();
    let route_rows = config
        .router
        .routes()
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
                r.channels.join(", "),
                r.describe_conditions(),
                if r.stop { "yes".into() } else { String::new() },
            ]
        })
        .collect();
    print!("{}", table(&["ROUTE", "EVENTS", "CHANNELS", "MATCH", "STOP"], route_rows));
    println!();

    let report = samples::check(&config);
    problems.extend(report.problems);
    println!(
        "Rendered {} samples for {} channel/event pairs into {} posts.",
        report.rendered, report.pairs, report.posts
    );
    if problems.is_empty() {
        println!("OK: the configuration and templates are valid.");
        ExitCode::SUCCESS
    } else {
        eprintln!("\n{} problem{}:", problems.len(), if problems.len() == 1 { "" } else { "s" });
        for p in &problems {
            eprintln!("  - {p}");
        }
        ExitCode::FAILURE
    }
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
