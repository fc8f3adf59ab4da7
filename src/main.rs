//! The `callrelay` binary: parses the command line and hands over to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: a request is parsed on a web worker and its event
/// freed on the store's writer thread, and glibc's per-thread arenas made that hand-over a
/// measurable share of ingest (consolidating and trimming): 12% more requests a second in the
/// default configuration (`benches/ab.py`, five paired rounds). Built without transparent huge
/// pages (`no_thp`): with them, the idle relay's resident memory went from 16 to 31 MB; without,
/// 18 MB (`benches/ANALYSIS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    callrelay::cli::run(callrelay::cli::Cli::parse())
}
