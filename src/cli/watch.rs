use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::bundle::writer::Compression;

/// Watch the upstreams of a spec and turn each change into a signed delta bundle.
///
/// One long-running process for the mirror factory. A change upstream triggers a
/// refresh: the entries it concerns are mirrored again (a failing upstream is reported and
/// retried on the next trigger, and never holds back the others), the lock is updated, and
/// a differential bundle against the last bundle made (or the site's receipt) is
/// exported, signed, into `--out`. Each bundle is built in a temporary directory inside
/// `--out` and renamed into place, so it appears complete or not at all; what a killed run
/// left is removed at start. A burst of triggers makes one bundle (`--debounce`), and one
/// refresh runs at a time. When there is no earlier bundle, the first refresh writes a
/// full one. A refresh that changes nothing makes no bundle.
///
/// Triggers:
///
/// - `POST /hooks/github`: push and tag events, signed `X-Hub-Signature-256` (HMAC-SHA256)
///
/// - `POST /hooks/gitlab`: push and tag push events, `X-Gitlab-Token`
///
/// - `POST /hooks/bitbucket`: push events, signed `X-Hub-Signature` (HMAC-SHA256)
///
/// - `POST /hooks/registry`: distribution registry notifications, `Authorization: Bearer`
///
/// - `POST /sync`: refresh now (bearer AIRLOCK_WATCH_TOKEN); a body `{"entries": ["git:nova"]}`
///   names entries, none means all
///
/// - polling (`--poll`, `--poll-kind`, the spec's `watch:` section), for upstreams that
///   cannot call back
///
/// Each event is matched to the spec entries it concerns: a git entry by repository URL
/// and its selected refs, an image by repository and tag. A delivery ID seen before
/// (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`, `X-Request-UUID`, a notification's event
/// ids) is refused with 401 and triggers nothing; the last 10000 are remembered across
/// restarts. A body larger than `--max-body` gets 413, a bad signature or token 401.
///
/// Reading: `GET /healthz`, `GET /status` (the refresh in flight, what is pending,
/// unreachable upstreams by name) and `GET /history` (each refresh: its triggers, what
/// changed, which bundle, the result and its duration), in JSON. The history is kept in
/// `<out>/.watch/history.jsonl`.
///
/// Secrets come from the environment or from `--secrets-file`, never from flags:
/// AIRLOCK_WATCH_GITHUB_SECRET, AIRLOCK_WATCH_GITLAB_TOKEN, AIRLOCK_WATCH_BITBUCKET_SECRET,
/// AIRLOCK_WATCH_REGISTRY_TOKEN and AIRLOCK_WATCH_TOKEN. An endpoint whose secret is not
/// set refuses every request with 401.
///
/// SIGTERM or SIGINT stops it: the server stops taking requests and a refresh in flight
/// finishes first. Logs go to stderr, one `key=value` line per event.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The spec to watch; it is read again at each refresh
    #[arg(long, short = 'f', default_value = "airlock.yaml", value_name = "FILE")]
    pub spec: PathBuf,

    /// The lock to keep current (default: the spec's name with `.lock`)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// The cache to mirror into
    #[arg(long, env = "AIRLOCK_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Where to listen for webhooks and control requests
    #[arg(long, default_value = "127.0.0.1:8480", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Where bundles are written, and watch's own state (`.watch/`)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The base of the first differential bundle, when watch has made none yet in `--out`
    #[arg(long, value_name = "BUNDLE")]
    pub since: Option<PathBuf>,

    /// Make every bundle against the newest receipt the cache keeps from this site (a
    /// site name or key id, as `airlock export --since-receipt`)
    #[arg(long, value_name = "SITE", conflicts_with = "since")]
    pub since_receipt: Option<String>,

    /// The minisign secret key to sign with (default: `<config-dir>/keys/airlock.key`);
    /// a passphrase comes from AIRLOCK_KEY_PASSWORD
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// A file of `NAME=value` lines holding the secrets (the AIRLOCK_WATCH_* names); the
    /// environment wins over it
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,

    /// Ask every upstream whether it changed this often (with up to 10% random jitter);
    /// overrides the spec's `watch:` section; without either, no polling
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub poll: Option<Duration>,

    /// The polling interval of one kind, as `KIND=DURATION` (`git=5m`, `images=1h`; kinds
    /// `files`, `git`, `images`, `python`, `debian`); repeatable, overrides `--poll`
    #[arg(long, value_parser = parse_kind_interval, value_name = "KIND=DURATION")]
    pub poll_kind: Vec<(String, Duration)>,

    /// Wait this long after the last trigger before refreshing, so a burst makes one bundle
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub debounce: Duration,

    /// The largest webhook or request body accepted (larger gets 413)
    #[arg(long, default_value = "1MiB", value_parser = crate::bundle::split::parse_size, value_name = "SIZE")]
    pub max_body: u64,

    /// `none`, `zstd` (level 3) or `zstd:LEVEL` (1-19)
    #[arg(long, default_value = "zstd", value_name = "ALGO")]
    pub compression: Compression,

    /// Cut each bundle into volumes of at most SIZE (as `airlock export --split`); each
    /// volume set is written into its own directory `<out>/<name>-<version>/`, renamed
    /// into place whole
    #[arg(long, value_parser = crate::bundle::split::parse_size, value_name = "SIZE")]
    pub split: Option<u64>,

    /// Retries after a transient network failure, per request (as `airlock mirror`)
    #[arg(long, env = "AIRLOCK_RETRIES", default_value_t = 4, value_name = "N")]
    pub retries: u32,

    /// Idle timeout of a network request (as `airlock mirror`)
    #[arg(long, env = "AIRLOCK_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// How long connecting to a server may take
    #[arg(long, env = "AIRLOCK_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
}

fn parse_kind_interval(s: &str) -> Result<(String, Duration), String> {
    let (kind, d) = s.split_once('=').ok_or_else(|| format!("`{s}` is not KIND=DURATION"))?;
    if !["files", "git", "images", "python", "debian"].contains(&kind) {
        return Err(format!("`{kind}` is not a kind: files, git, images, python or debian"));
    }
    let d = humantime::parse_duration(d).map_err(|e| format!("`{d}`: {e}"))?;
    Ok((kind.to_string(), d))
}
