use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = airlock::cli::Cli::parse();
    airlock::run(cli).into()
}
