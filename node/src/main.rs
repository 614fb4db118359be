//! The `banyan` command. All logic lives in the `banyan_node` library.

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = banyan_node::cli::Cli::parse();
    match banyan_node::cli::run(cli, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if banyan_node::service::json_logs() => {
            // Standard error carries JSON lines only: the failure is one more of them.
            tracing::error!(error = %format!("{e:#}"), "exiting");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
