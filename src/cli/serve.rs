use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Serve the store over HTTP: an OCI registry at `/v2/`, repositories at
/// `/repository/<name>/...` (raw files, Python indexes, the apt repository), git
/// repositories at `/git/<name>.git` (`git clone`, shallow and partial clones, `git push`),
/// and `/healthz`.
///
/// Reads are anonymous unless `--no-anonymous-read`. Every write (image push, raw PUT,
/// Python upload, git push) needs a token whose scope covers it, sent as
/// `Authorization: Bearer <token>` or as the password of Basic auth (`skopeo --dest-creds
/// any:<token>`, `curl -u any:<token>`, `http://any:<token>@HOST/git/<name>.git`). The
/// server keeps only SHA-256 hashes of tokens: `--token-file` lists each hash with its
/// scopes (`sha256:<hex> write:repository/files read:*`, see docs/serve.md);
/// AIRLOCK_SERVE_TOKEN and `--token-hashes` give tokens that may write everything. Without
/// any token the server is read-only.
///
/// Writes take the store's lock (a write made while an import runs waits, then is answered
/// 503), go into raw repositories by PUT and into Python indexes by twine's upload form
/// only, and never replace a file with other bytes (409). Prints the address it listens
/// on, then one access-log line per request on stderr (none with -q).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Tokens and what each may do: per line `sha256:<hex> SCOPE...`, a scope being
    /// `read:*`, `write:*`, `read:PREFIX` or `write:PREFIX` (e.g. `write:repository/files`,
    /// `write:v2/kolla`, `write:git/hello`)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// File of hashes of tokens that may write everything, one `sha256:<hex>` per line
    #[arg(long, value_name = "FILE")]
    pub token_hashes: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key)
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Require a token for reads too
    #[arg(long)]
    pub no_anonymous_read: bool,

    /// Refuse uploads (a blob, all chunks of one upload, a raw PUT) larger than SIZE with 413
    #[arg(long, default_value = "64GiB", value_parser = crate::bundle::split::parse_size, value_name = "SIZE")]
    pub max_upload: u64,

    /// How long a write waits for a running import to release the store before it is
    /// answered 503 with Retry-After
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub write_lock_wait: Duration,

    /// Let `git push` rewrite history and delete refs (by default pushes only fast-forward)
    #[arg(long)]
    pub git_allow_force: bool,
}
