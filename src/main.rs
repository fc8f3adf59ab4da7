//! The `callrelay` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    callrelay::cli::run(callrelay::cli::Cli::parse())
}
