use std::path::PathBuf;

use clap::Args;

/// Verify a bundle, then load it into the site's repositories.
///
/// The bundle is verified in the same pass that stages its blobs, and nothing reaches a
/// repository unless every byte verified. Files that are already present are skipped; a
/// path that holds other content is refused before anything changes; a failed import
/// removes what it added. Running the same import again resumes it.
///
/// Files go to the store's raw repository (`<store>/repository/<raw-repo>/`), or with
/// `--raw-url` to a remote raw repository that accepts HTTP PUT (Nexus raw-hosted).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle (file, first volume, or unpacked directory)
    pub bundle: PathBuf,

    /// The store to import into
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// The raw repository in the store that files go to
    #[arg(long, default_value = "raw", value_name = "NAME")]
    pub raw_repo: String,

    /// Upload files to this raw repository URL instead (e.g. `https://nexus.site.example/repository/files/`)
    #[arg(long, value_name = "URL")]
    pub raw_url: Option<String>,

    /// Basic-auth user for `--raw-url`
    #[arg(long, env = "AIRLOCK_RAW_USERNAME", value_name = "USER")]
    pub raw_username: Option<String>,

    /// Basic-auth password for `--raw-url` (from the environment only)
    #[arg(long, env = "AIRLOCK_RAW_PASSWORD", hide_env_values = true, value_name = "PASSWORD", hide = true)]
    pub raw_password: Option<String>,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}
