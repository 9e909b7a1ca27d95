//! `airlock env`: read what the site holds (the store's imported manifests, or a bundle's
//! manifest), then write one client's configuration ([`crate::env`] renders it). Reads
//! only: the store is never opened for writing, so a store path that does not exist is
//! reported, not created.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use crate::bundle::manifest;
use crate::bundle::verify::{check_head, read_head};
use crate::cli::EnvArgs;
use crate::env::{BundleId, Client, Options, Site, SiteUrl};
use crate::exit::ExitStatus;
use crate::store::Layout;

use super::{CmdResult, Ctx};

pub fn env(args: &EnvArgs, cx: &Ctx) -> CmdResult {
    // An environment of the site file names the store and, unless flags say otherwise,
    // the repositories its imports wrote.
    let site_env = match &args.env {
        Some(name) => {
            let site = crate::site::Site::load(&args.site)?;
            Some(site.env(name)?.clone())
        }
        None => None,
    };
    let mut args = args.clone();
    if let Some(e) = &site_env {
        args.store = Some(e.store.clone());
        if args.raw_repo == crate::cli::DEFAULT_RAW_REPO {
            args.raw_repo = e.targets.raw_repo.clone().unwrap_or(args.raw_repo);
        }
        if args.apt_repo == crate::cli::DEFAULT_APT_REPO {
            args.apt_repo = e.targets.apt_repo.clone().unwrap_or(args.apt_repo);
        }
    }
    let args = &args;
    let url = SiteUrl::parse(&args.url)?;
    crate::names::repository(&args.raw_repo).map_err(|e| anyhow!("--raw-repo {e}"))?;
    crate::names::repository(&args.apt_repo).map_err(|e| anyhow!("--apt-repo {e}"))?;
    let format = match (cx.printer.json, args.format) {
        (true, _) => crate::env::Format::Json,
        (false, Some(f)) => f,
        (false, None) => args.client.formats()[0],
    };
    let kolla_sources = args
        .kolla_source
        .iter()
        .map(|s| {
            let (section, path) =
                s.split_once('=').ok_or_else(|| anyhow!("--kolla-source `{s}` is not SECTION=PATH"))?;
            Ok((section.to_string(), path.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;

    let root = match &args.store {
        Some(r) => r.clone(),
        None => crate::dirs::store_dir(),
    };
    let layout = Layout::new(&root);
    let store_exists = root.is_dir();
    let (bundles, artifacts) = match &args.bundle {
        Some(b) => {
            let trusted = cx.trust().keys_with(&args.trusted_keys)?;
            let head = read_head(b)?;
            let (m, digest, _) = check_head(&head, &trusted)?;
            (vec![BundleId { name: m.name.clone(), version: m.version.clone(), manifest: digest }], m.artifacts)
        }
        None => {
            if !store_exists {
                bail!("the store {} does not exist: pass --store DIR, or --bundle B", root.display());
            }
            from_store(&layout)?
        }
    };
    let (store_indexes, extra_git) = if store_exists {
        let (i, g) = store_extras(&layout)?;
        (Some(i), g)
    } else {
        (None, BTreeSet::new())
    };
    let site = Site {
        url,
        bundles,
        artifacts,
        store_indexes,
        extra_git,
        raw_repo: args.raw_repo.clone(),
        apt_repo: args.apt_repo.clone(),
    };
    let opts = Options {
        signed_by: args.signed_by.clone(),
        kolla_base: args.kolla_base.clone(),
        kolla_distro: args.kolla_distro.clone(),
        kolla_namespace: args.kolla_namespace.clone(),
        kolla_sources,
    };
    let rendered = site.render(args.client, format, &opts)?;

    // The key first: a sources file whose key is missing breaks `apt-get update`.
    if let Some(out) = &args.key_out {
        if args.client != Client::Apt {
            bail!("--key-out is for --for apt");
        }
        let key = apt_public_key(&layout, &args.apt_repo, store_exists, cx)?;
        crate::store::atomic::write(out, key.as_bytes()).with_context(|| format!("writing {}", out.display()))?;
        cx.printer.info(format!("wrote {}: the site's apt key", out.display()));
    }
    if args.client == Client::Apt && store_exists && !layout.apt_dists(&args.apt_repo).is_dir() {
        cx.printer.warn(format!(
            "the store {} has no apt repository `{}`: pass the --apt-repo that import was given",
            root.display(),
            args.apt_repo
        ));
    }
    for n in &rendered.notes {
        cx.printer.info(n);
    }
    match &args.output {
        Some(out) => {
            crate::store::atomic::write(out, rendered.text.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            cx.printer.info(format!(
                "wrote {}: {} configuration for {} ({})",
                out.display(),
                args.client.name(),
                site.url.base,
                format.name()
            ));
        }
        None => {
            // The text is the data, in every format (`--json` selects the JSON form).
            let printer = crate::printer::Printer { json: false, ..cx.printer };
            printer.data(&json!(null), || rendered.text.clone());
        }
    }
    Ok(ExitStatus::Success)
}

/// The newest imported bundle of each name, with its manifest's artifacts.
fn from_store(layout: &Layout) -> Result<(Vec<BundleId>, Vec<manifest::Artifact>)> {
    let newest = crate::commands::import_guard::newest(layout)?;
    if newest.is_empty() {
        bail!("the store {} has imported no bundle: import one, or pass --bundle B", layout.root().display());
    }
    let mut bundles = Vec::new();
    let mut artifacts = Vec::new();
    for (name, version, digest) in newest {
        let path = layout.imported_manifest(&digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the store {} keeps no manifest of {name}-{version} ({}, imported by an older airlock): \
                 import it again, or pass --bundle with that bundle",
                layout.root().display(),
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let m = manifest::parse(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        bundles.push(BundleId { name, version, manifest: digest });
        artifacts.extend(m.artifacts);
    }
    Ok((bundles, artifacts))
}

/// Python indexes (`repository/<name>/simple/`) and git repositories (`git/<name>.git`)
/// the store holds, whichever bundle or upload put them there.
fn store_extras(layout: &Layout) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let names = |dir: &Path| -> Result<Vec<String>> {
        match std::fs::read_dir(dir) {
            Ok(rd) => Ok(rd.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().map(String::from)).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
        }
    };
    let indexes = names(&layout.repositories_dir())?
        .into_iter()
        .filter(|n| crate::names::repository(n).is_ok() && layout.python_simple(n).is_dir())
        .collect();
    let git = names(&layout.git_dir())?
        .into_iter()
        .filter_map(|n| n.strip_suffix(".git").map(String::from))
        .filter(|n| crate::names::git_repository(n).is_ok())
        .collect();
    Ok((indexes, git))
}

/// The site's apt key, armored: the one the store publishes beside `dists/`, or without a
/// store, the public half of `<config-dir>/keys/apt.key`.
fn apt_public_key(layout: &Layout, repo: &str, store_exists: bool, cx: &Ctx) -> Result<String> {
    let published = layout.apt_keyring(repo, "asc");
    if store_exists && published.is_file() {
        return std::fs::read_to_string(&published).with_context(|| format!("reading {}", published.display()));
    }
    let sk = cx.config_dir.join("keys").join("apt.key");
    if !sk.is_file() {
        bail!(
            "--key-out: no apt key: {} is missing and {} is not there (`airlock key apt export` writes one)",
            published.display(),
            sk.display()
        );
    }
    let pk = crate::debian::openpgp::SiteKey::load_public(&sk)?;
    Ok(crate::debian::openpgp::public_key_files(&pk)?.0)
}
