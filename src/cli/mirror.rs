use std::path::PathBuf;

use clap::Args;

/// Resolve every entry of the spec to an immutable identity, write it to the lock and
/// fetch the bytes into the cache. This is the only command that uses the network.
///
/// URLs are fetched in parallel, with retries and jittered exponential backoff for
/// transient failures only; a broken transfer resumes where it stopped (`Range` with
/// `If-Range`), and a stalled server fails the attempt after `--timeout`. A file whose SHA-256 differs from the spec's `sha256` (or
/// from the lock's pin) is refused. The lock is rewritten only when something changed.
///
/// An image entry with `referrers: true` brings its signatures, SBOMs and attestations
/// (the OCI referrers API, its `sha256-<hex>` tag fallback, cosign's `.sig`/`.att`/`.sbom`
/// tags); one with `verify: {key: cosign.pub}` is refused, before anything of it is
/// cached, unless a sigstore signature over its digest verifies with that key.
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

    /// Retries after a transient failure (a network error, a timeout, 408, 425, 429 or
    /// 5xx), per download, request or git command. Permanent failures (404, refused
    /// credentials, a repository that is not there, a host name that does not resolve) are
    /// never retried
    #[arg(long, env = "AIRLOCK_RETRIES", default_value_t = 4, value_name = "N")]
    pub retries: u32,

    /// Wait before the first retry; doubled for each further one (at most 32 times), with
    /// random jitter of up to as much again. A server's `Retry-After` lengthens the wait
    #[arg(long, env = "AIRLOCK_BACKOFF", default_value = "500ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub backoff: std::time::Duration,

    /// Idle timeout: how long a server may take to answer a request, and to send the next
    /// bytes of a transfer, before the attempt fails (and is retried). A stalled server
    /// never hangs the mirror for longer
    #[arg(long, env = "AIRLOCK_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,

    /// How long connecting to a server (TCP and TLS) may take
    #[arg(long, env = "AIRLOCK_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: std::time::Duration,
}

impl MirrorArgs {
    /// The network settings these flags give.
    pub fn net(&self) -> crate::net::NetOptions {
        crate::net::NetOptions {
            retries: self.retries,
            backoff: self.backoff,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
        }
    }
}
