use std::path::PathBuf;

use clap::Args;

/// Write this site's signed receipt: what its store holds, for the mirror factory.
///
/// The receipt lists the bundles imported, every blob in the store by kind, the refs of
/// every git repository, every image tag and the manifest it names, every file of every
/// Python index and the packages of every apt suite, read from the store itself. Carry it
/// (both files: `site.receipt` and `site.receipt.minisig`) to the factory, which trusts
/// the site key once (`airlock trust add --site site.pub`) and then makes a bundle of
/// exactly what this site lacks: `airlock export --since-receipt site.receipt`.
///
/// It is signed with the site key `<config-dir>/keys/site.key` (minisign format:
/// `minisign -Vm site.receipt -p site.pub` checks it). If there is none yet, the first
/// receipt makes one, protected by the passphrase in AIRLOCK_KEY_PASSWORD if that is set,
/// else unencrypted (mode 0600); `airlock key generate --site` makes one beforehand.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// Where to write the receipt; its signature goes beside it as `<FILE>.minisig`
    #[arg(long, short = 'o', default_value = "site.receipt", value_name = "FILE")]
    pub output: PathBuf,

    /// The store to describe
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// The site's name in the receipt, by which the factory can name it
    /// (`export --since-receipt NAME`) (default: this machine's host name)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The site's secret key (default: `<config-dir>/keys/site.key`)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}
