//! Command-line arguments. Only clap structs live here; their doc comments are `--help`.

mod export;
mod import;
mod key;
mod mirror;
mod report;
mod serve;
mod verify;
// Receipts and diff.
mod diff;
mod receipt;
// Client configuration.
mod env;
// Site state: the ledger, annotations, policy, promotion.
mod site;
// Watching upstreams.
mod watch;
// OCI artifacts.
mod oci;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use export::ExportArgs;
pub use import::ImportArgs;
pub use key::{AptKeyCommand, KeyArgs, KeyCommand, TrustArgs, TrustCommand};
pub use mirror::MirrorArgs;
pub use report::ReportArgs;
pub use serve::ServeArgs;
pub use verify::{InspectArgs, VerifyArgs};
// Receipts and diff.
pub use diff::DiffArgs;
pub use receipt::ReceiptArgs;
// Client configuration.
pub use env::{DEFAULT_APT_REPO, DEFAULT_RAW_REPO, EnvArgs};
// Site state.
pub use site::{
    AnnotateArgs, AnnotationsArgs, GcArgs, HistoryArgs, PolicyArgs, PolicyCheckArgs, PolicyCommand, PromoteArgs,
    StatusArgs, WhereArgs,
};
// Watching upstreams.
pub use watch::WatchArgs;
// OCI artifacts.
pub use oci::{
    OciArgs, OciCommand, OciConn, OciCopyArgs, OciListArgs, OciLoginArgs, OciPullArgs, OciPushArgs, OciRefArgs,
    OciTagsArgs,
};

/// Move software across an air gap.
///
/// On the connected side, `airlock mirror` resolves `airlock.yaml` into `airlock.lock` and
/// fetches everything into a local cache; `airlock export` packs a signed, checksummed
/// bundle for removable media. On the disconnected side, `airlock verify` checks a bundle
/// without importing it and `airlock import` loads it into the site's repositories.
///
/// Exit status: 0 success, 1 bundle corrupt, 2 error, 3 bundle not authentic,
/// 4 not a bundle or unreadable (see docs/exit-codes.md).
#[derive(Debug, Parser)]
#[command(name = "airlock", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print no progress or messages on stderr (errors still are)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print results on stdout as JSON, for machines (Zuul jobs, auditors)
    #[arg(long, global = true)]
    pub json: bool,

    /// Where keys and trusted keys are kept
    #[arg(long, global = true, env = "AIRLOCK_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
// Parsed once per run: the size of the largest variant (import's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
// A variant's doc comment would replace its Args struct's whole --help (clap resets the
// long help to it), so a variant whose Args struct is documented names only its one-line
// summary, with `about`, and the struct's doc comment is its `--help`. Key and Trust
// keep theirs: their Args structs carry none.
pub enum Command {
    #[command(about = "Resolve the spec into the lock and fetch everything into the cache (network)")]
    Mirror(MirrorArgs),
    #[command(about = "Pack a signed bundle from the lock and the cache (offline)")]
    Export(ExportArgs),
    #[command(about = "Check a bundle's signature and every byte, without importing it")]
    Verify(VerifyArgs),
    #[command(about = "Show what a bundle holds: name, version, signer, artifacts, SBOM, provenance")]
    Inspect(InspectArgs),
    #[command(about = "Write an HTML report of a bundle for auditors (summary, artifacts, SBOM, provenance)")]
    Report(ReportArgs),
    #[command(about = "Verify a bundle, then load it into the site's repositories")]
    Import(ImportArgs),
    /// Create and show signing keys
    Key(KeyArgs),
    /// Manage the public keys whose bundles verify and import accept
    Trust(TrustArgs),
    #[command(about = "Serve the store: OCI registry, raw files, git (what import loaded)")]
    Serve(ServeArgs),
    Receipt(ReceiptArgs),
    Diff(DiffArgs),
    #[command(about = "Print ready configuration for the site's clients (pip, apt, registries, git, Zuul)")]
    Env(EnvArgs),
    #[command(about = "Show what came into a store: when, from which bundle, into which repositories")]
    History(HistoryArgs),
    #[command(about = "Annotate a bundle in the ledger (staged=true); the bundle never changes")]
    Annotate(AnnotateArgs),
    #[command(about = "List a bundle's annotations, with who set each and when")]
    Annotations(AnnotationsArgs),
    #[command(about = "Evaluate an environment's policy on a bundle without importing")]
    Policy(PolicyArgs),
    #[command(about = "Import a bundle imported into one environment into the next, under its policy")]
    Promote(PromoteArgs),
    #[command(about = "Show each environment's state: bundles imported, what they set, what is pending")]
    Status(StatusArgs),
    #[command(about = "Free unreferenced blobs and leftovers, under the store's lock (--dry-run lists them)")]
    Gc(GcArgs),
    #[command(about = "Watch upstreams (webhooks, polling) and write a signed delta bundle for each change")]
    Watch(WatchArgs),
    #[command(about = "Push, pull, copy and inspect OCI artifacts in registries (ORAS-compatible)")]
    Oci(OciArgs),
}
