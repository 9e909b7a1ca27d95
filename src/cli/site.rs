use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where a site-state command reads: a store, or an environment of the site file.
#[derive(Debug, Clone, Args)]
pub struct WhereArgs {
    /// The store whose ledger to use (a factory's cache directory shows its exports)
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Use this environment of the site file (its store, and only its runs)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// The site file that declares the environments
    #[arg(long, env = "AIRLOCK_SITE", default_value = crate::site::DEFAULT_FILE, value_name = "FILE")]
    pub site: PathBuf,
}

/// Show what came into a store: when, from which bundle, signed by whom, into which
/// repositories, and what each artifact's import did.
///
/// Reads the store's ledger (`<store>/ledger.sqlite`), which every `import`, `promote`,
/// `verify`, `policy check` and `annotate` writes: who ran it (user, host), when (UTC),
/// the bundle's name, version and manifest digest, the signer's key id, the targets, and
/// per artifact `added`, `present`, `updated` or `refused` with the reason. An import
/// still `started` whose process is gone (killed, or the machine lost power) shows as
/// `interrupted`; the next import into the store writes it down as such. A store
/// imported into before it had a ledger shows those imports, from `imported.json` and the
/// import receipts. On the connected side, `--store <cache>` shows the exports.
///
/// Filters combine: `--bundle NAME` (a bundle name, or `<name>-<version>`), `--artifact`
/// (a purl, or an artifact's name; only runs that touched it, and only its lines),
/// `--env ENV`, `--since DATE` (`2026-12-01` or RFC 3339), `--watch` (the refreshes of
/// `airlock watch`, from the factory cache's ledger). `--json` prints
/// `{"store", "entries": [...]}` (bundle-schema/history.schema.json).
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub at: WhereArgs,

    /// Only runs of this bundle (`NAME` or `NAME-VERSION`)
    #[arg(long, value_name = "NAME")]
    pub bundle: Option<String>,

    /// Only runs that touched this artifact (a purl, or its name)
    #[arg(long, value_name = "PURL|NAME")]
    pub artifact: Option<String>,

    /// Only runs that started at or after DATE (`2026-12-01`, `2026-12-01T08:00:00Z`)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only the refreshes `airlock watch` made: what triggered each, what changed, what
    /// failed upstream and which bundle it wrote, from the factory cache's ledger
    /// (`--cache-dir`) instead of a store's
    #[arg(long, conflicts_with = "env")]
    pub watch: bool,

    /// With `--watch`: the cache `airlock watch` mirrors into
    #[arg(long, env = "AIRLOCK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Annotate a bundle in the ledger: `staged=true`, `approved-by=alice`, `ticket=OPS-12`.
///
/// The bundle's signed manifest is its immutable attributes; annotations are what the
/// site learns about it afterwards, and a policy can require them before import into an
/// environment (`require-annotations` in site.yaml). They are kept in the store's ledger
/// with who set them and when, and never change the bundle. BUNDLE is a bundle name with
/// its version (`site-inputs-2026.12`), a manifest digest (`sha256:…`), or a bundle file
/// (verified first). With `--env ENV` the annotation is made in that environment (in its
/// store's ledger): the environment a rule's `env:` names. `--remove KEY` removes one.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The bundle: `NAME-VERSION`, a manifest digest, or a bundle file
    pub bundle: String,

    /// Annotations to set
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,

    /// Remove this annotation (repeatable)
    #[arg(long, value_name = "KEY")]
    pub remove: Vec<String>,

    #[command(flatten)]
    pub at: WhereArgs,

    /// Also trust this public key (minisign format) to verify a bundle file
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// List a bundle's current annotations, with the environment, who set each and when.
///
/// BUNDLE is `NAME-VERSION` or a manifest digest, as the ledger knows it. Without
/// `--env`, every environment of the store's ledger is shown; with `--env`, that
/// environment's store.
#[derive(Debug, Args)]
pub struct AnnotationsArgs {
    /// The bundle: `NAME-VERSION` or a manifest digest
    pub bundle: String,

    #[command(flatten)]
    pub at: WhereArgs,
}

/// Evaluate an environment's policy without importing.
///
/// Each environment in the site file (docs/site.md) has a policy: trusted signers
/// (optionally per kind), required annotations (such as `staged=true` set in staging),
/// a maximum bundle age, allowed and denied purl globs, a required SBOM and allowed
/// upstream URL prefixes. `airlock import --env` and `airlock promote` evaluate it before
/// anything is written; `airlock policy check BUNDLE --env ENV` asks the same question
/// and imports nothing.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    #[command(about = "Dry run: would `import --env ENV` accept this bundle?")]
    Check(PolicyCheckArgs),
}

/// Verify a bundle and evaluate the policy of environment ENV on it, exactly as
/// `airlock import --env ENV` would before writing anything, and import nothing.
///
/// Prints every rule checked and each that failed (signers, required annotations, maximum
/// age, allowed and denied purls, SBOM, upstream URL prefixes; docs/site.md) and records
/// the decision in the environment's ledger. Exit status: 0 allowed, 2 refused (with one
/// error line naming each failed rule) or any other error; a bundle that does not verify
/// exits 1, 3 or 4 as `airlock verify` does.
#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The bundle (file, first volume, or unpacked directory)
    pub bundle: PathBuf,

    /// The environment whose policy to evaluate
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// The site file that declares the environments
    #[arg(long, env = "AIRLOCK_SITE", default_value = crate::site::DEFAULT_FILE, value_name = "FILE")]
    pub site: PathBuf,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// Promote a bundle from one environment to the next: import it into the targets of
/// `--to`, under the policy of `--to`.
///
/// The bundle must have been imported into `--from` (its ledger says so, by manifest
/// digest); it is verified again from the media, then imported exactly as
/// `airlock import BUNDLE --env TO` does: the policy first, and nothing written to the
/// environment's targets when it refuses. A typical policy for production requires an
/// annotation made in staging (`airlock annotate site-inputs-2026.12 staged=true --env
/// staging`). The promotion is recorded in the ledger of `--to`'s store as a `promote` run.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The bundle (file, first volume, or unpacked directory)
    pub bundle: PathBuf,

    /// The environment the bundle was imported into
    #[arg(long, value_name = "ENV")]
    pub from: String,

    /// The environment to import it into
    #[arg(long, value_name = "ENV")]
    pub to: String,

    /// The site file that declares the environments
    #[arg(long, env = "AIRLOCK_SITE", default_value = crate::site::DEFAULT_FILE, value_name = "FILE")]
    pub site: PathBuf,

    /// Import a bundle older than one already imported under its name
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// Show each environment's state: the bundles imported, what they set, what is pending.
///
/// For each environment of the site file (or only `--env`), or for the store alone when
/// there is no site file: every bundle imported (or promoted) into it, when, by whom and
/// signed by which key, with the image tags, git refs, Python index entries, files and
/// packages it set; and what is pending: bundles verified there (`airlock verify --env`)
/// but not imported, and bundles the policy refused and that were not imported since.
/// `--json` prints `{"environments": [...]}` (bundle-schema/status.schema.json).
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: WhereArgs,
}

/// Free what nothing in the store needs any more: unreferenced blobs, stale staging,
/// interrupted uploads and downloads.
///
/// A blob is kept when an image tag, index or referrer of the store's registry reaches it,
/// when a repository file (raw, Python, apt) is a hard link to it, when one of the newest
/// `--keep` bundles of each name imported into the store names it (the ledger records
/// each bundle's blobs when it is imported), or when it is younger than `--grace`. So
/// after a newer bundle moved an image tag, the older image's manifests and layers go;
/// files in repositories never do. `airlock gc` runs under the store's lock: no import
/// and no `airlock serve` write happens meanwhile, and a client of `airlock serve` never
/// gets a 404 for content a tag still names; the grace window covers clients that
/// resolved a tag just before it moved, and uploads not yet tagged. Upload sessions and
/// resumable downloads untouched for longer than `--grace` are removed too.
///
/// `--dry-run` lists what would go and changes nothing. What is freed is recorded in the
/// ledger (`airlock history` shows a `gc` run). When a retained bundle was imported
/// before the ledger recorded blob lists, no blob is freed, and the output says which.
#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub at: WhereArgs,

    /// List what would be freed; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Keep what is younger than this (`1h`, `30m`, `0s`)
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace: std::time::Duration,

    /// Keep the blobs of the newest N bundles of each name imported into the store
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub keep: usize,
}
