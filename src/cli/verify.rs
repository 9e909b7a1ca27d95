use std::path::PathBuf;

use clap::Args;

/// Check a bundle without importing it: the signature against the trusted keys, the
/// manifest against its schema, every member path, and every blob's size and SHA-256;
/// nothing missing, nothing extra. One streaming pass over the media.
///
/// BUNDLE is a bundle file, its first volume (or its `.volumes` list), or a directory it
/// was unpacked into. Exit status: 0 verified, 1 corrupt, 3 not authentic,
/// 4 not a bundle or unreadable, 2 other errors.
///
/// The result is recorded in the ledger of the store (`--store`, when it exists) or of the
/// environment `--env` names in the site file: `airlock status` then lists a verified
/// bundle as pending until it is imported.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle
    pub bundle: PathBuf,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,

    #[command(flatten)]
    pub at: super::WhereArgs,
}

/// Show what a bundle holds, reading only its head: name, version, manifest digest,
/// signer key id (and whether it is trusted), creation time, totals per kind and the
/// artifact table. Use `airlock verify` to check the bytes.
///
/// `--sbom` shows the bundle's CycloneDX SBOM instead (`--json`: the document exactly as
/// carried, `airlock --json inspect --sbom B > sbom.cdx.json`), and `--provenance` its
/// SLSA provenance (`--json`: the DSSE envelope as carried). Both are checked against the
/// digests the signed manifest lists.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle (file, first volume, or unpacked directory)
    pub bundle: PathBuf,

    /// Show the SBOM (`sbom.cdx.json`): its components, licences and dependencies
    #[arg(long, conflicts_with = "provenance")]
    pub sbom: bool,

    /// Show the provenance (`provenance.intoto.json`): builder, times, inputs, subjects
    #[arg(long)]
    pub provenance: bool,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}
