use std::path::PathBuf;

use clap::Args;

/// Verify a bundle, then load it into the site's repositories.
///
/// The bundle is verified in the same pass that stages its blobs, and nothing reaches a
/// repository unless every byte verified. What is already there is skipped (`present`).
///
/// The import is one transaction over its targets. Each target is planned first, and
/// planning changes nothing, so a conflict anywhere (a path that holds other content, a
/// git ref that would not fast-forward, a registry that does not answer) stops the import
/// with every target as it was. If a target then fails, or the receipt cannot be written,
/// the import undoes what it changed, newest first: files it placed or uploaded are
/// removed, git refs and HEAD are set back, image tags go back to the manifest they named
/// (or are deleted if it added them), Python index pages and the apt repository are put
/// back. It exits 2 and says on its one error line, and with `--json` in its result on
/// stdout, what it rolled back and exactly what stayed: a `--git-push` or
/// `--python-upload` that a remote accepted (never taken back), or a change whose undo
/// failed (a registry gone away). Blobs, manifests pushed by digest and git objects no ref
/// reaches may stay; no name points at them. A killed import undoes nothing but never
/// leaves a tag or ref naming missing content; running the same import again resumes it,
/// and every run first removes the temporary files a killed one left behind.
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
/// repository is the union of every bundle imported. With `--apt-aptly` they go to an
/// aptly server instead: added to a local repository and published there; a failed
/// import removes what it added and publishes again. With `--apt-nexus` they are
/// uploaded to a Nexus apt-hosted repository.
///
/// With `--env ENV`, the environment of that name in the site file (`--site`, see
/// docs/site.md) names the store and the targets (a flag given here still wins), and its
/// policy is evaluated on the verified bundle before anything is written: a refusal lists
/// every rule that failed and exits 2 with every target as it was. Every import, its
/// policy decision and each artifact's result are recorded in the store's ledger
/// (`<store>/ledger.sqlite`, see `airlock history`).
#[derive(Debug, Clone, Args)]
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

    /// Give the apt Release files a `Valid-Until` DURATION after the import (e.g. `14d`,
    /// `36h`): freeze protection. apt clients refuse the repository once it passes, so a
    /// client that is cut off from new imports, or served an old copy, stops instead of
    /// installing stale packages. Each import re-signs every suite of the bundle with a
    /// new `Valid-Until`: import again before it runs out. Off by default
    #[arg(long, value_name = "DURATION", value_parser = parse_valid_for)]
    pub apt_valid_for: Option<std::time::Duration>,

    /// Publish Debian packages into this aptly server instead of the store's apt
    /// repository: its REST API (`aptly api serve`, e.g. `http://aptly.site.example:8080`).
    /// The .debs are uploaded, added to the local repository `--apt-aptly-repo`, and the
    /// distribution is published (or its publish updated), signed with the aptly server's
    /// gpg key. A package already there with the same SHA-256 is skipped; one with the
    /// same name, version and architecture but other content is refused before anything
    /// is uploaded. Basic auth from AIRLOCK_APT_USERNAME and AIRLOCK_APT_PASSWORD
    #[arg(long, value_name = "URL")]
    pub apt_aptly: Option<String>,

    /// The aptly local repository Debian packages are added to
    #[arg(long, default_value = "airlock", value_name = "NAME")]
    pub apt_aptly_repo: String,

    /// Create the aptly local repository if it does not exist (refused otherwise)
    #[arg(long)]
    pub apt_aptly_create: bool,

    /// The distribution aptly publishes (default: the bundle's suite)
    #[arg(long, value_name = "SUITE")]
    pub apt_aptly_distribution: Option<String>,

    /// The aptly publish prefix (`.` is the root of aptly's public directory)
    #[arg(long, default_value = ".", value_name = "PREFIX")]
    pub apt_aptly_prefix: String,

    /// Publish unsigned (aptly's `Signing.Skip`); apt clients then need `trusted=yes`
    #[arg(long)]
    pub apt_aptly_skip_signing: bool,

    /// Upload Debian packages to this Nexus apt-hosted repository instead (e.g.
    /// `https://nexus.site.example/repository/apt-hosted/`): each new .deb is POSTed to it.
    /// What is there is read from its `dists/<distribution>/main/binary-<arch>/Packages`:
    /// the same SHA-256 is skipped, other content under the same name, version and
    /// architecture is refused before anything is uploaded. Nexus keeps what it accepted,
    /// even if the import fails later. Basic auth from AIRLOCK_APT_USERNAME and
    /// AIRLOCK_APT_PASSWORD
    #[arg(long, value_name = "URL", conflicts_with = "apt_aptly")]
    pub apt_nexus: Option<String>,

    /// The distribution the Nexus apt-hosted repository publishes (default: the bundle's suite)
    #[arg(long, value_name = "SUITE")]
    pub apt_nexus_distribution: Option<String>,

    /// Upload files to this raw repository URL instead (e.g. `https://nexus.site.example/repository/files/`)
    #[arg(long, value_name = "URL")]
    pub raw_url: Option<String>,

    /// Basic-auth user for `--raw-url`; the password is read from AIRLOCK_RAW_PASSWORD
    /// only, so it never shows in the process list
    #[arg(long, env = "AIRLOCK_RAW_USERNAME", value_name = "USER")]
    pub raw_username: Option<String>,

    /// Push images to this registry instead of the store's own, with an optional path
    /// prefix (e.g. `registry.site.example/mirror`): upstream `ns/app` becomes
    /// `mirror/ns/app` there. Carried signatures, SBOMs and attestations go beside their
    /// images: listed by the registry's referrers API, or in the `sha256-<hex>` tag where
    /// it has none
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
    /// `{name}` is the repository's name (e.g. `ssh://gerrit.site.example:29418/{name}`);
    /// pushes come last, and a push the remote accepted stays even if a later one fails
    #[arg(long, value_name = "URL")]
    pub git_push: Option<String>,

    /// Put every Python file into this index of the store, instead of the index each
    /// spec entry named
    #[arg(long, value_name = "NAME")]
    pub python_index: Option<String>,

    /// Upload Python files to this twine-compatible endpoint instead (pypiserver,
    /// Nexus `https://nexus.site.example/repository/pypi-hosted/`, devpi); files it already
    /// has are skipped, and files it accepted stay even if the import fails later
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

    /// Read and hash every byte of the bundle, even when the store's record already
    /// answers it. Without it, a bundle this store imported in full before, into the same
    /// targets, is answered from the record: its signature, `manifest.json` and
    /// `SHA256SUMS` are checked, each file or volume must have the size and keyed sample
    /// check recorded then, and every image must still be at the target (each manifest by
    /// digest, each tag); anything else imports in full, as the first time
    #[arg(long)]
    pub verify_all: bool,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,

    /// Import into this environment of the site file: its store (in place of --store),
    /// its targets and its policy
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// The site file that declares the environments
    #[arg(long, env = "AIRLOCK_SITE", default_value = crate::site::DEFAULT_FILE, value_name = "FILE")]
    pub site: PathBuf,
}

/// The import flags, filled in from an environment's targets where not given.
impl ImportArgs {
    pub fn with_env(&self, env: &crate::site::Environment) -> Self {
        let mut a = self.clone();
        let t = &env.targets;
        a.store = Some(env.store.clone());
        // A flag left at its default takes the environment's value.
        if a.raw_repo == "raw"
            && let Some(r) = &t.raw_repo
        {
            a.raw_repo.clone_from(r);
        }
        if a.apt_repo == "apt"
            && let Some(r) = &t.apt_repo
        {
            a.apt_repo.clone_from(r);
        }
        a.apt_key = a.apt_key.or_else(|| t.apt_key.clone());
        a.raw_url = a.raw_url.or_else(|| t.raw_url.clone());
        a.apt_aptly = a.apt_aptly.or_else(|| t.apt_aptly.clone());
        if a.apt_aptly_repo == "airlock"
            && let Some(r) = &t.apt_aptly_repo
        {
            a.apt_aptly_repo.clone_from(r);
        }
        a.apt_aptly_create |= t.apt_aptly_create;
        a.apt_aptly_distribution = a.apt_aptly_distribution.or_else(|| t.apt_aptly_distribution.clone());
        if a.apt_aptly_prefix == "."
            && let Some(r) = &t.apt_aptly_prefix
        {
            a.apt_aptly_prefix.clone_from(r);
        }
        a.apt_aptly_skip_signing |= t.apt_aptly_skip_signing;
        if a.apt_aptly.is_none() {
            a.apt_nexus = a.apt_nexus.or_else(|| t.apt_nexus.clone());
        }
        a.apt_nexus_distribution = a.apt_nexus_distribution.or_else(|| t.apt_nexus_distribution.clone());
        a.raw_username = a.raw_username.or_else(|| t.raw_username.clone());
        a.oci_registry = a.oci_registry.or_else(|| t.oci_registry.clone());
        a.oci_insecure |= t.oci_insecure;
        a.oci_max_components = a.oci_max_components.or(t.oci_max_components);
        a.git_push = a.git_push.or_else(|| t.git_push.clone());
        if a.python_upload.is_none() {
            a.python_index = a.python_index.or_else(|| t.python_index.clone());
        }
        if a.python_index.is_none() {
            a.python_upload = a.python_upload.or_else(|| t.python_upload.clone());
        }
        a.python_username = a.python_username.or_else(|| t.python_username.clone());
        a
    }
}

fn parse_valid_for(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.as_secs() == 0 => Err("must be at least one second".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (e.g. `14d`, `36h`)")),
    }
}
