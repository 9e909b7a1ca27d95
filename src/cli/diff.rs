use std::path::PathBuf;

use clap::Args;

/// Compare two bundles, manifests or site receipts, in any combination.
///
/// Lists the artifacts added, removed and changed from A to B, with their versions
/// (files and images by digest, Python files and Debian packages by version, git
/// repositories ref by ref: added, deleted, moved as a fast-forward, or forced), and the
/// blobs and bytes only A or only B names. Against a receipt, B's added blobs are what a
/// bundle made with `export --since-receipt` would carry.
///
/// A and B are each a bundle (file, first volume, `.volumes` list, or unpacked
/// directory), a `manifest.json`, or a `.receipt` file. Only heads are read, except that
/// a bundle's git bundles are read when no local repository (the cache, the store) has
/// the commits that tell a fast-forward from a forced move. Signatures are checked and
/// reported, but an untrusted one does not stop the comparison; nothing is written.
/// Exit status: 0 whether or not they differ, 2 if either cannot be read.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older side
    pub a: PathBuf,

    /// The newer side
    pub b: PathBuf,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,

    /// The mirror cache, whose git repositories can tell a fast-forward from a forced move
    #[arg(long, env = "AIRLOCK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The store, whose git repositories can tell a fast-forward from a forced move
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}
