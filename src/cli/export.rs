use std::path::PathBuf;

use clap::Args;

use crate::bundle::writer::Compression;

/// Pack a bundle from the lock and the cache, offline, and sign it.
///
/// Writes `<name>-<version>.airlock` into the output directory, or with `--split` the
/// volumes `<name>-<version>.airlock.001`, `.002`, ... and their signed list
/// `<name>-<version>.airlock.volumes`. The same lock and cache give a byte-identical bundle.
///
/// An export never replaces a bundle of the same name and version already in the output
/// directory unless `--force`, and never replaces its own `--since` base, even with
/// `--force`: bump the version for a differential bundle.
///
/// A differential bundle builds on an earlier bundle (`--since`), which the site must have
/// imported, or on a site's receipt (`--since-receipt`), which needs only that the site
/// still holds what it reported: a bundle lost on the way does not stop the next one.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The lock to export
    #[arg(long, default_value = "airlock.lock", value_name = "FILE")]
    pub lock: PathBuf,

    /// The cache `airlock mirror` filled
    #[arg(long, env = "AIRLOCK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Where to write the bundle
    #[arg(long, short = 'o', default_value = ".", value_name = "DIR")]
    pub output: PathBuf,

    /// The bundle's version (default: the spec's `version`, else the lock's date and time)
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    /// `none`, `zstd` (level 3) or `zstd:LEVEL` (1-19)
    #[arg(long, default_value = "zstd", value_name = "ALGO")]
    pub compression: Compression,

    /// Cut the bundle into volumes of at most SIZE (e.g. `700MB`, `25GB`) for removable
    /// media; FAT32 holds files up to 4 GiB minus one byte, so use `4095MiB` there
    #[arg(long, value_parser = crate::bundle::split::parse_size, value_name = "SIZE")]
    pub split: Option<u64>,

    /// Make a differential bundle: leave out blobs the given earlier bundle (or its
    /// manifest.json) already carried
    #[arg(long, value_name = "BUNDLE")]
    pub since: Option<PathBuf>,

    /// Make a differential bundle of exactly what a site lacks, from its signed receipt
    /// (`airlock receipt` there): blobs its store does not hold, git bundles built on its
    /// own tips. SITE is a receipt file (its `.minisig` beside it), which the cache then
    /// keeps as that site's newest, or a site name or site key id, for the newest receipt
    /// the cache keeps. The receipt must be signed by a trusted site key
    /// (`airlock trust add --site`); exit status 3 otherwise
    #[arg(long, value_name = "SITE", conflicts_with = "since")]
    pub since_receipt: Option<String>,

    /// The minisign secret key to sign with (default: `<config-dir>/keys/airlock.key`);
    /// a passphrase comes from AIRLOCK_KEY_PASSWORD or a prompt
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// zstd worker threads (default: the number of cores); the output does not depend on it
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,

    /// Replace a bundle of the same name and version already in the output directory
    /// (its file or volumes); the `--since` base is never replaced
    #[arg(long)]
    pub force: bool,
}
