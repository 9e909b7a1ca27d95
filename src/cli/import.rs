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
/// Git repositories go to bare repositories in the store (`<store>/git/<name>.git`):
/// branches only fast-forward and tags never move unless `--git-allow-force`; with
/// `--git-push` they are then pushed to the site's git remotes. Images go to the store's
/// registry (`<store>/oci/`), or with `--oci-registry` to any OCI registry: blobs first,
/// then manifests, tags last. Python files go to a static package index in the store
/// (`<store>/repository/<index>/simple/`, PEP 503 HTML and PEP 691 JSON), or with
/// `--python-upload` to any server that takes twine uploads. Debian packages go to a signed apt repository in the store
/// (`<store>/repository/<apt-repo>/`, with `dists/` and `pool/`), signed with the site's
/// apt key (`airlock key apt generate`); packages already there are kept, so the
/// repository is the union of every bundle imported.
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

    /// The apt repository in the store that Debian packages go to
    #[arg(long, default_value = "apt", value_name = "NAME")]
    pub apt_repo: String,

    /// The OpenPGP secret key that signs the apt repository (default:
    /// `<config-dir>/keys/apt.key`); its passphrase, if any, is read from
    /// AIRLOCK_APT_KEY_PASSWORD
    #[arg(long, value_name = "FILE")]
    pub apt_key: Option<PathBuf>,

    /// Upload files to this raw repository URL instead (e.g. `https://nexus.site.example/repository/files/`)
    #[arg(long, value_name = "URL")]
    pub raw_url: Option<String>,

    /// Basic-auth user for `--raw-url`; the password is read from AIRLOCK_RAW_PASSWORD
    /// only, so it never shows in the process list
    #[arg(long, env = "AIRLOCK_RAW_USERNAME", value_name = "USER")]
    pub raw_username: Option<String>,

    /// Push images to this registry instead of the store's own, with an optional path
    /// prefix (e.g. `registry.site.example/mirror`): upstream `ns/app` becomes
    /// `mirror/ns/app` there
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub oci_registry: Option<String>,

    /// Speak plain HTTP to --oci-registry (loopback or lab registries)
    #[arg(long)]
    pub oci_insecure: bool,

    /// At most N path components in target repository names (Quay: 2); the tail is joined with `-`
    #[arg(long, value_name = "N")]
    pub oci_max_components: Option<usize>,

    /// Upload blobs larger than SIZE in chunks of SIZE (for proxies that limit request bodies)
    #[arg(long, default_value = "1GiB", value_parser = crate::bundle::split::parse_size, value_name = "SIZE")]
    pub oci_chunk_size: u64,

    /// Blob uploads in flight at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub oci_jobs: usize,

    /// Accept git history rewritten upstream: let branches move other than forward, and
    /// tags move at all (both are refused by default)
    #[arg(long)]
    pub git_allow_force: bool,

    /// After importing into the store, push each git repository to this URL template, where
    /// `{name}` is the repository's name (e.g. `ssh://gerrit.site.example:29418/{name}`)
    #[arg(long, value_name = "URL")]
    pub git_push: Option<String>,

    /// Put every Python file into this index of the store, instead of the index each
    /// spec entry named
    #[arg(long, value_name = "NAME")]
    pub python_index: Option<String>,

    /// Upload Python files to this twine-compatible endpoint instead (pypiserver,
    /// Nexus `https://nexus.site.example/repository/pypi-hosted/`, devpi); files it already
    /// has are skipped
    #[arg(long, value_name = "URL", conflicts_with = "python_index")]
    pub python_upload: Option<String>,

    /// Basic-auth user for `--python-upload` (`__token__` for token auth); the password
    /// is read from AIRLOCK_PYTHON_PASSWORD only
    #[arg(long, env = "AIRLOCK_PYTHON_USERNAME", value_name = "USER")]
    pub python_username: Option<String>,

    /// Import a bundle older than one already imported under its name (a lower
    /// version, or the same version created earlier); refused by default, as replaying
    /// an old signed bundle would roll the site back
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}
