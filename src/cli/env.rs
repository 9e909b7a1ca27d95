use std::path::PathBuf;

use clap::Args;

use crate::env::{Client, Format};

/// The repository names import writes to unless told otherwise.
pub const DEFAULT_RAW_REPO: &str = "raw";
pub const DEFAULT_APT_REPO: &str = "apt";

/// Print ready configuration for the site's clients: where pip, uv, apt, podman/skopeo,
/// Docker, git, kolla-build and Zuul jobs find what the site holds, at the URL where
/// `airlock serve` answers.
///
/// It reads the manifests of the bundles the store imported (the newest of each name;
/// `airlock import` keeps them in `<store>/manifests/`), or the manifest of `--bundle`
/// (its signature checked against the trusted keys) instead. From them
/// come the bundle names, versions and manifest digests, the upstream registries and git
/// URLs, the Python versions and the Debian suites; the store adds the indexes and git
/// repositories it holds besides, and the apt key. With `--env ENV`, the store and the
/// repository names are the ones `site.yaml` declares for that environment.
///
/// One `--for` per client, each written for that client's own parser:
///
///   pip          pip.conf (`PIP_CONFIG_FILE`): index-url, trusted-host for http
///   uv           uv.toml (`UV_CONFIG_FILE`): `[[index]]` with `default = true`
///   apt          deb822 `.sources` with `Signed-By`; `--key-out` writes the key
///   containers   registries.conf(5): a `[[registry]]` per upstream registry, so
///                `skopeo inspect docker://<upstream>/<name>:<tag>` reaches the site
///   docker       daemon.json: registry-mirrors (Docker Hub only) and insecure-registries
///   git          gitconfig: `url.<site>/git/<name>.git.insteadOf <upstream URL>`
///   kolla-build  kolla-build.conf: base image, registry, namespace, one `[<source>]`
///                (`type = url`) per carried tarball
///   zuul         YAML site variables: bundles, manifest digests, every URL
///   constraints  a pip constraints file: `name==version` for each carried project
///
/// The output goes to stdout, or to `-o FILE` (written whole, then renamed into place);
/// notes about what a configuration cannot do go to stderr.
///
/// Examples:
///
///   airlock env --for pip --url http://airlock.site.example:8080 -o /etc/pip.conf
///   airlock env --for apt --url http://airlock.site.example:8080 \
///     -o /etc/apt/sources.list.d/airlock.sources \
///     --key-out /etc/apt/keyrings/airlock-archive-keyring.asc
///   airlock env --for containers --url http://airlock.site.example:8080 \
///     -o /etc/containers/registries.conf.d/airlock.conf
///   airlock env --for git --url http://airlock.site.example:8080 -o site.gitconfig
///   GIT_CONFIG_GLOBAL=site.gitconfig git clone https://git.mirror.example/openstack/kolla
#[derive(Debug, Clone, Args)]
#[command(verbatim_doc_comment)]
pub struct EnvArgs {
    /// The client to configure
    #[arg(long = "for", value_enum, value_name = "CLIENT", hide_possible_values = true)]
    pub client: Client,

    /// Where clients reach `airlock serve` (`http://airlock.site.example:8080`)
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// The store whose imported bundles to describe (default: airlock's store)
    #[arg(long, env = "AIRLOCK_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Describe this environment of the site file: its store (instead of `--store`), and
    /// the raw and apt repository names its targets give (unless given here)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// The site file that declares the environments (with `--env`)
    #[arg(long, env = "AIRLOCK_SITE", default_value = crate::site::DEFAULT_FILE, value_name = "FILE")]
    pub site: PathBuf,

    /// Describe this bundle (file, first volume, or unpacked directory) instead of the
    /// store's imports
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,

    /// Output format: ini, toml, yaml, json, shell, deb822 or text, where it fits the
    /// client (default: the client's own format; `--json` is `--format json`)
    #[arg(long, value_enum, value_name = "FORMAT", hide_possible_values = true)]
    pub format: Option<Format>,

    /// Write the configuration to FILE instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The raw repository files were imported into (`airlock import --raw-repo`)
    #[arg(long, default_value = DEFAULT_RAW_REPO, value_name = "NAME")]
    pub raw_repo: String,

    /// The apt repository Debian packages were imported into (`airlock import --apt-repo`)
    #[arg(long, default_value = DEFAULT_APT_REPO, value_name = "NAME")]
    pub apt_repo: String,

    /// apt: the path the sources' `Signed-By` names
    #[arg(long, default_value = "/etc/apt/keyrings/airlock-archive-keyring.asc", value_name = "PATH")]
    pub signed_by: String,

    /// apt: also write the site's public key (armored) to FILE: the store's published
    /// key, or without a store the one of `<config-dir>/keys/apt.key`
    #[arg(long, value_name = "FILE")]
    pub key_out: Option<PathBuf>,

    /// kolla-build: the base image, as the bundle names it (`registry.example/ns/debian`,
    /// with or without its tag); needed when the bundle carries several images
    #[arg(long, value_name = "IMAGE")]
    pub kolla_base: Option<String>,

    /// kolla-build: the base image's distribution (`base`), when its name does not say
    #[arg(long, value_name = "DISTRO")]
    pub kolla_distro: Option<String>,

    /// kolla-build: the namespace of the images kolla-build makes
    #[arg(long, default_value = "kolla", value_name = "NAME")]
    pub kolla_namespace: String,

    /// kolla-build: use the carried file PATH as the source SECTION
    /// (`keystone-base=src/keystone-25.0.0.tar.gz`); otherwise each tarball
    /// `<project>-<version>.tar.gz` is the source `<project>-base`
    #[arg(long, value_name = "SECTION=PATH")]
    pub kolla_source: Vec<String>,

    /// Also trust this public key (minisign format) for this run
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}
