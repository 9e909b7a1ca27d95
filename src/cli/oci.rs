use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Push, pull, copy and inspect OCI artifacts in any OCI 1.1 registry.
///
/// An artifact is a directory packed as one layer: a tar with sorted entries, zeroed
/// times, owners and fixed modes, compressed with gzip (no timestamp), under an OCI 1.1
/// image manifest with an `artifactType` and the empty config. The same directory always
/// gives the same manifest digest. A `manifest.yaml` at the top of the directory gives the
/// annotations `org.opencontainers.image.title` (its `name`), `.version`, `.created` and
/// `.source`; the clock is never read.
///
/// References name their registry: `registry.example:5000/extensions/nginx:1.2.0`.
/// Credentials come from the Docker auth files (`airlock oci login`) or
/// AIRLOCK_REGISTRY_USERNAME/PASSWORD. See docs/oci.md.
#[derive(Debug, Args)]
pub struct OciArgs {
    #[command(subcommand)]
    pub command: OciCommand,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct OciConn {
    /// Speak plain HTTP to the registry (loopback and lab registries), as `import --oci-insecure`
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Pack DIR as an artifact and push it to REF; prints the manifest digest
    Push(OciPushArgs),
    /// Pull an artifact and extract it into DIR, checking every digest
    Pull(OciPullArgs),
    /// List a repository's tags: versions first, in version order, then the others
    Tags(OciTagsArgs),
    /// Show an artifact's manifest, annotations and referrers
    Inspect(OciRefArgs),
    /// Print the dependency tree an artifact's manifest.yaml ranges resolve to, as `mirror` resolves it
    Tree(OciRefArgs),
    /// List the registry's repositories (`_catalog`)
    List(OciListArgs),
    /// Copy an artifact or image, with its referrers, to another registry or repository
    Copy(OciCopyArgs),
    /// Delete a manifest (by digest; a tag is resolved first)
    Delete(OciRefArgs),
    /// Store credentials for a registry in a Docker-format auth file
    Login(OciLoginArgs),
}

#[derive(Debug, Args)]
pub struct OciPushArgs {
    /// The directory to pack
    pub dir: PathBuf,
    /// Where to push: `host[:port]/repository:tag`
    pub reference: String,
    /// The manifest's `artifactType`
    #[arg(long, default_value = "application/vnd.airlock.artifact.v1", value_name = "TYPE")]
    pub artifact_type: String,
    /// A manifest annotation, KEY=VALUE (repeatable); overrides manifest.yaml's
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciPullArgs {
    /// The artifact: `host[:port]/repository:tag` or `...@sha256:<hex>`
    pub reference: String,
    /// The directory to extract into; made whole or not at all
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Replace DIR when it exists and is not empty
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciTagsArgs {
    /// The repository: `host[:port]/repository`
    pub repository: String,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciRefArgs {
    /// The artifact: `host[:port]/repository:tag` or `...@sha256:<hex>`
    pub reference: String,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciListArgs {
    /// The registry: `host[:port]`
    pub registry: String,
    /// Only repositories under this namespace (`extensions` lists `extensions/...`)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciCopyArgs {
    /// The source: `host[:port]/repository:tag` or `...@sha256:<hex>`
    pub source: String,
    /// The destination: `host[:port]/repository[:tag]` (the source's tag when none)
    pub destination: String,
    #[command(flatten)]
    pub conn: OciConn,
}

#[derive(Debug, Args)]
pub struct OciLoginArgs {
    /// The registry: `host[:port]`
    pub host: String,
    /// The user name
    #[arg(short, long)]
    pub username: String,
    /// Read the password from stdin (required: passwords never go on the command line)
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// The auth file to write (default: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    #[command(flatten)]
    pub conn: OciConn,
}
