//! airlock moves software across an air gap: mirror and lock on the connected side,
//! pack a signed bundle, verify and import it on the disconnected side.
//!
//! Data flow: `Spec` → resolve → `Lock` → fetch → `Store` (cache) → `bundle::writer` →
//! media → `bundle::verify` → `VerifiedBundle` → `Target::plan`/`load` → receipt.

pub mod artifact;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod debian;
pub mod diff;
pub mod digest;
pub mod dirs;
pub mod env;
pub mod exit;
pub mod extensions;
pub mod git;
pub mod ledger;
pub mod lock;
pub mod names;
pub mod net;
pub mod oci;
pub mod printer;
pub mod progress;
pub mod pypi;
pub mod receipt;
pub mod registry;
pub mod relpath;
pub mod serve;
pub mod sigstore;
pub mod site;
pub mod source;
pub mod spec;
pub mod store;
pub mod target;
pub mod trust;
pub mod watch;

use cli::{Cli, Command};
use commands::Ctx;
use exit::ExitStatus;
use printer::Printer;
use progress::Reporter;

/// Run one command; errors are printed on one line and mapped to an exit status.
pub fn run(cli: Cli) -> ExitStatus {
    let printer = Printer { quiet: cli.global.quiet, json: cli.global.json };
    let cx = Ctx {
        printer,
        reporter: Reporter::new(cli.global.quiet),
        config_dir: cli.global.config_dir.clone().unwrap_or_else(dirs::config_dir),
    };
    let result = match &cli.command {
        Command::Mirror(a) => commands::mirror(a, &cx),
        Command::Export(a) => commands::export(a, &cx),
        Command::Verify(a) => commands::verify(a, &cx),
        Command::Inspect(a) => commands::inspect(a, &cx),
        Command::Report(a) => commands::report(a, &cx),
        Command::Import(a) => commands::import(a, &cx),
        Command::Key(a) => commands::key(a, &cx),
        Command::Trust(a) => commands::trust(a, &cx),
        Command::Serve(a) => commands::serve(a, &cx),
        Command::Receipt(a) => commands::receipt(a, &cx),
        Command::Diff(a) => commands::diff(a, &cx),
        Command::Env(a) => commands::env(a, &cx),
        Command::History(a) => commands::history(a, &cx),
        Command::Annotate(a) => commands::annotate(a, &cx),
        Command::Annotations(a) => commands::annotations(a, &cx),
        Command::Policy(a) => commands::policy(a, &cx),
        Command::Promote(a) => commands::promote(a, &cx),
        Command::Status(a) => commands::status(a, &cx),
        Command::Gc(a) => commands::gc(a, &cx),
        Command::Watch(a) => commands::watch(a, &cx),
        Command::Oci(a) => commands::oci(a, &cx),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            printer.error(&err);
            err.chain()
                .find_map(|e| e.downcast_ref::<bundle::BundleError>())
                .map_or(ExitStatus::Error, bundle::BundleError::exit_status)
        }
    }
}
