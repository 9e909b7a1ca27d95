use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a minisign-compatible key pair for signing bundles
    ///
    /// Writes `<dir>/<name>.key` (mode 0600) and `<dir>/<name>.pub`. The public key works
    /// with `minisign -V -p <name>.pub`. The secret key is passphrase-protected as minisign
    /// does it (scrypt), with the passphrase from AIRLOCK_KEY_PASSWORD or a prompt, unless
    /// `--no-password`.
    ///
    /// With `--site`, the site key instead (`<dir>/site.key`, `<dir>/site.pub`): the key a
    /// site signs its receipts with (`airlock receipt`). Give `site.pub` to the mirror
    /// factory, which trusts it with `airlock trust add --site site.pub`.
    Generate {
        /// Directory to write the keys in (default: `<config-dir>/keys`)
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// File name stem of the key pair
        #[arg(long, default_value = "airlock", conflicts_with = "site")]
        name: String,
        /// Make the site key that signs this site's receipts (`site.key`, `site.pub`)
        #[arg(long, conflicts_with = "trust")]
        site: bool,
        /// Do not protect the secret key with a passphrase (for unattended signing)
        #[arg(long, short = 'W')]
        no_password: bool,
        /// Replace an existing key pair
        #[arg(long)]
        force: bool,
        /// Also add the public key to this machine's trusted keys
        #[arg(long)]
        trust: bool,
    },
    /// Show a public key and its key id
    Show {
        /// The public key file (default: `<config-dir>/keys/airlock.pub`)
        #[arg(conflicts_with = "site")]
        key: Option<PathBuf>,
        /// Show the site key (`<config-dir>/keys/site.pub`)
        #[arg(long)]
        site: bool,
    },
    /// The site's OpenPGP key that signs its apt repository (InRelease, Release.gpg)
    Apt {
        #[command(subcommand)]
        command: AptKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AptKeyCommand {
    /// Generate the site's apt signing key: OpenPGP v4 Ed25519 (what apt's gpgv accepts)
    ///
    /// Writes `<dir>/<name>.key` (armored secret key, mode 0600), and the public key as
    /// `<dir>/<name>.asc` (armored) and `<dir>/<name>.gpg` (binary), either of which apt
    /// takes as `Signed-By`. The secret key is protected with the passphrase in
    /// AIRLOCK_APT_KEY_PASSWORD, or a prompt, unless `--no-password`; import then reads the
    /// passphrase from AIRLOCK_APT_KEY_PASSWORD.
    Generate {
        /// Directory to write the keys in (default: `<config-dir>/keys`)
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// File name stem of the key files
        #[arg(long, default_value = "apt")]
        name: String,
        /// The key's user id
        #[arg(long, default_value = "airlock apt repository signing key", value_name = "UID")]
        user_id: String,
        /// Do not protect the secret key with a passphrase (for unattended imports)
        #[arg(long, short = 'W')]
        no_password: bool,
        /// Replace an existing key (clients must then be given the new public key)
        #[arg(long)]
        force: bool,
    },
    /// Write the apt key's public half as `.asc` and `.gpg` for clients' `Signed-By`, and
    /// print its fingerprint
    Export {
        /// The secret key (default: `<config-dir>/keys/apt.key`)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Directory to write `<name>.asc` and `<name>.gpg` in
        #[arg(long, short = 'o', default_value = ".", value_name = "DIR")]
        output_dir: PathBuf,
        /// File name stem
        #[arg(long, default_value = "airlock-archive-keyring")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: TrustCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a public key (a minisign `.pub` file) for verify and import, or with
    /// `--site` a site key for the receipts `export --since-receipt` reads
    Add {
        /// The public key file
        key: PathBuf,
        /// Trust it as a site key: its receipts are accepted, its bundles are not. The
        /// two lists are separate (`<config-dir>/trusted-sites/` and `<config-dir>/trusted/`)
        #[arg(long)]
        site: bool,
    },
    /// List trusted keys (with `--site`, the trusted site keys)
    List {
        /// List the trusted site keys instead of the bundle signers
        #[arg(long)]
        site: bool,
    },
    /// Stop trusting a key
    Remove {
        /// The key id (16 hex digits, as `airlock trust list` shows)
        key_id: String,
        /// Remove it from the trusted site keys
        #[arg(long)]
        site: bool,
    },
}
