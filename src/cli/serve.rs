use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Serve the store over HTTP: an OCI registry at `/v2/`, raw files at
/// `/repository/<name>/...`, git repositories at `/git/<name>.git` (for `git clone`), and
/// `/healthz`.
///
/// Reads are anonymous unless `--no-anonymous-read`. Every write (image push, raw PUT)
/// needs a token, sent as `Authorization: Bearer <token>` or as the password of Basic
/// auth (`skopeo --dest-creds any:<token>`, `curl -u any:<token>`). Tokens are given as
/// SHA-256 hashes, one `sha256:<hex>` per line (`printf %s "$TOKEN" | sha256sum`), or in
/// AIRLOCK_SERVE_TOKEN. Without any token the server is read-only. Prints the address it
/// listens on, then one access-log line per request on stderr (none with -q).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// File of token hashes allowed to write, one `sha256:<hex>` per line
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
}
