//! One function per verb: the only orchestration in airlock. Each takes its arguments and
//! a [`Ctx`], and returns the exit status.

mod export;
mod import;
mod import_guard;
mod inspect;
mod key;
mod mirror;
mod report;
mod serve;
mod site_state;
mod trust;
mod verify;
// Receipts and diff.
mod diff;
mod receipt;
// Client configuration.
mod env;
// Site state.
mod annotate;
mod gc;
mod history;
mod promote;
// Watching upstreams.
mod watch;
// OCI artifacts.
mod oci;

use std::path::PathBuf;

use anyhow::Result;

pub use export::export;
pub use import::import;
pub use inspect::inspect;
pub use key::key;
pub use mirror::{mirror, mirror_spec};
pub use report::report;
pub use serve::serve;
pub use trust::trust;
pub use verify::verify;
// Receipts and diff.
pub use diff::diff;
pub use receipt::receipt;
// Client configuration.
pub use env::env;
// Site state.
pub use annotate::{annotate, annotations};
pub use gc::gc;
pub use history::{history, status};
pub use promote::{policy, promote};
// Watching upstreams.
pub use watch::watch;
// OCI artifacts.
pub use oci::oci;

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::progress::Reporter;
use crate::trust::TrustStore;

pub struct Ctx {
    pub printer: Printer,
    pub reporter: Reporter,
    pub config_dir: PathBuf,
}

impl Ctx {
    pub fn trust(&self) -> TrustStore {
        TrustStore::new(&self.config_dir)
    }
    pub fn default_secret_key(&self) -> PathBuf {
        self.config_dir.join("keys").join("airlock.key")
    }
}

pub type CmdResult = Result<ExitStatus>;

/// Human-friendly byte count.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Throughput, in MB/s, for reports.
pub fn rate(n: u64, secs: f64) -> String {
    if secs <= 0.0 || n < (1 << 20) { "-".into() } else { format!("{:.0} MB/s", n as f64 / secs / 1e6) }
}
