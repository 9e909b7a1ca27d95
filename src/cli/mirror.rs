use std::path::PathBuf;

use clap::Args;

/// Resolve every entry of the spec to an immutable identity, write it to the lock and
/// fetch the bytes into the cache. This is the only command that uses the network.
///
/// URLs are fetched in parallel with retries and exponential backoff; a broken transfer
/// resumes where it stopped. A file whose SHA-256 differs from the spec's `sha256` (or
/// from the lock's pin) is refused. The lock is rewritten only when something changed.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The spec to read
    #[arg(long, short = 'f', default_value = "airlock.yaml", value_name = "FILE")]
    pub spec: PathBuf,

    /// The lock to write (default: the spec's name with `.lock`, e.g. `airlock.lock`)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// The cache to fetch into
    #[arg(long, env = "AIRLOCK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Fail instead of changing the lock (for CI: the lock must already be current)
    #[arg(long)]
    pub locked: bool,

    /// Warn about Python requirements that no file satisfies for some environment, and
    /// carry the rest, instead of failing (the spec's `allow-missing`, for every entry)
    #[arg(long)]
    pub allow_missing: bool,

    /// Downloads in flight at once
    #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
    pub jobs: usize,

    /// Retries after a network error or a 5xx answer, per download or git fetch
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,

    /// Wait before the first retry; doubled for each further one
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub backoff: std::time::Duration,
}
