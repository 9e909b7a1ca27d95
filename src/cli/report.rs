use std::path::PathBuf;

use clap::Args;

/// Write an auditor's report of a bundle: one self-contained HTML page (no external
/// assets, no JavaScript), readable on screen and on paper.
///
/// It shows the bundle's summary and signer (and whether the signer is trusted here), the
/// artifacts by kind with their upstream and digest, totals, what changed against the
/// base (every artifact with `--base`, else which ones the base holds), the SBOM's
/// components and licences, the provenance (builder, times, inputs, subjects), and with
/// `--store` the site's import history from the store's receipts.
///
/// Like `airlock inspect`, it reads only the bundle's head (manifest, signature, SBOM,
/// provenance, each checked against the signed manifest): run `airlock verify` to check
/// every byte.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The bundle (file, first volume, or unpacked directory)
    pub bundle: PathBuf,

    /// Where to write the page
    #[arg(long, short = 'o', default_value = "report.html", value_name = "FILE")]
    pub output: PathBuf,

    /// Add the site history: every import recorded in this store's receipts
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Compare with this earlier bundle (or its manifest.json): artifacts added, removed
    /// and changed
    #[arg(long, value_name = "BUNDLE")]
    pub base: Option<PathBuf>,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}
