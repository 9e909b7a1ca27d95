use std::time::Instant;

use anyhow::{Result, bail};
use rayon::prelude::*;
use serde_json::json;

use crate::cli::MirrorArgs;
use crate::exit::ExitStatus;
use crate::lock::{LOCK_MEDIA_TYPE, Lock, LockedArtifact, LockedImage};
use crate::source::Source;
use crate::source::debian::DebianSource;
use crate::source::file::FileSource;
use crate::source::git::{GitLocked, GitSource};
use crate::source::oci::ImageSource;
use crate::source::python::{NoSolution, PythonSource};
use crate::spec::Spec;
use crate::store::Store;

use super::{CmdResult, Ctx, bytes};

pub fn mirror(args: &MirrorArgs, cx: &Ctx) -> CmdResult {
    let spec = Spec::load(&args.spec)?;
    mirror_spec(&spec, args, cx)
}

/// [`mirror`] of a spec already loaded (`airlock watch` mirrors a spec narrowed to the
/// entries an upstream change concerns); `args.spec` only names it in messages.
pub fn mirror_spec(spec: &Spec, args: &MirrorArgs, cx: &Ctx) -> CmdResult {
    let started = Instant::now();
    let lock_path = args.lock.clone().unwrap_or_else(|| args.spec.with_extension("lock"));
    let previous = if lock_path.exists() { Some(Lock::load(&lock_path)?) } else { None };
    let cache = args.cache_dir.clone().unwrap_or_else(crate::dirs::cache_dir);
    let store = Store::open(&cache)?;
    // What a killed mirror left: temporary files in `tmp/`, download slots' lock files.
    if let Err(e) = store.remove_litter() {
        cx.printer.warn(format!("{e:#}"));
    }

    let net = args.net();
    let source = FileSource::new(spec, &net)?;
    let bar = cx.reporter.items("mirror", spec.files.len() as u64);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.max(1)).build()?;
    let results: Vec<Result<LockedArtifact>> = pool.install(|| {
        spec.files
            .par_iter()
            .map(|entry| {
                let prev = previous.as_ref().and_then(|l| l.artifacts.iter().find(|a| a.name == entry.path));
                bar.set_message(entry.path.to_string());
                let r = source.lock(entry, prev, &store);
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut artifacts = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(a) => artifacts.push(a),
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.into_iter().next() {
        // The first failure in spec order; the others are usually the same cause.
        return Err(first);
    }
    artifacts.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));

    let git_source = GitSource { root: store.layout().git_dir(), spec_dir: spec.dir.clone(), net: net.clone() };
    let git_bar = cx.reporter.items("git", spec.git.len() as u64);
    let git_results: Vec<Result<GitLocked>> = pool.install(|| {
        spec.git
            .par_iter()
            .map(|entry| {
                let prev = previous.as_ref().and_then(|l| l.git.iter().find(|g| g.upstream == entry.url));
                let r = git_source.lock(entry, prev);
                git_bar.inc(1);
                r
            })
            .collect()
    });
    git_bar.finish_and_clear();
    let mut git = Vec::with_capacity(git_results.len());
    for r in git_results {
        let r = r?;
        for w in &r.warnings {
            cx.printer.warn(w);
        }
        git.push(r.locked);
    }
    git.sort_by(|a, b| a.name.cmp(&b.name));

    let image_source = ImageSource::new(&spec.registries, &spec.dir, &net);
    let image_bar = cx.reporter.items("images", spec.images.len() as u64);
    let images: Vec<Result<LockedImage>> = pool.install(|| {
        spec.images
            .par_iter()
            .map(|entry| {
                let r = image_source.lock(entry, &store);
                image_bar.inc(1);
                r
            })
            .collect()
    });
    image_bar.finish_and_clear();
    let mut images = images.into_iter().collect::<Result<Vec<_>>>()?;
    images.sort_by(|a, b| a.name.cmp(&b.name));
    for i in &images {
        if let Some(old) = previous.as_ref().and_then(|l| l.images.iter().find(|o| o.name == i.name))
            && old.upstream_digest != i.upstream_digest
        {
            cx.printer.warn(format!(
                "image {}: the tag moved upstream from {} to {}",
                i.name, old.upstream_digest, i.upstream_digest
            ));
        }
    }

    let mut oci_artifacts = Vec::new();
    if !spec.artifacts.is_empty() {
        let index = crate::source::artifacts::RegistryIndex::new(&store, |host: &str| {
            let insecure = spec.registries.get(host).is_some_and(|s| s.insecure);
            crate::registry::Registry::with_options(host, insecure, &net)
        });
        let (res, locked) = crate::source::artifacts::lock(spec, &image_source, &index, &store)?;
        for a in &locked {
            let path = a.repository.split_once('/').map(|(_, p)| p);
            if let Some(i) = images
                .iter()
                .find(|i| i.repository.split_once('/').map(|(_, p)| p) == path && i.tag.as_deref() == Some(&a.tag))
            {
                bail!(
                    "artifact {}:{}: the image `{}` has the same repository and tag; at the site they would collide",
                    a.repository,
                    a.tag,
                    i.name
                );
            }
        }
        let chosen: Vec<String> = res
            .artifacts
            .values()
            .map(|a| format!("{} {}", crate::extensions::short(&a.repository), a.version))
            .collect();
        cx.printer.info(format!("resolved {} OCI artifacts: {}", chosen.len(), chosen.join(", ")));
        oci_artifacts = locked;
    }

    let python_source = PythonSource::new(&source, &store)?;
    let python_bar = cx.reporter.items("python", spec.python.len() as u64);
    let mut python = Vec::new();
    let mut warned = std::collections::BTreeSet::new();
    for entry in &spec.python {
        let mut entry = entry.clone();
        entry.allow_missing |= args.allow_missing;
        let r = match pool.install(|| python_source.lock(&entry, &spec.dir)) {
            Ok(r) => r,
            Err(e) => {
                // With --json, a resolution conflict is data too: its derivation, step by step.
                if let Some(ns) = e.chain().find_map(|c| c.downcast_ref::<NoSolution>()) {
                    cx.printer.data(
                        &json!({
                            "error": format!("{e:#}"),
                            "python": {"entry": entry.name, "environment": ns.environment, "derivation": ns.derivation},
                        }),
                        String::new,
                    );
                }
                return Err(e);
            }
        };
        python_bar.inc(1);
        for w in r.warnings {
            if warned.insert(w.clone()) {
                cx.printer.warn(w);
            }
        }
        python.extend(r.locked);
    }
    python_bar.finish_and_clear();
    let deb_source = DebianSource { files: &source, spec };
    let deb_bar = cx.reporter.items("debian", spec.debian.len() as u64);
    let mut debian = Vec::with_capacity(spec.debian.len());
    for entry in &spec.debian {
        deb_bar.set_message(entry.name.clone());
        let r = pool.install(|| deb_source.lock(entry, &store))?;
        for w in &r.warnings {
            cx.printer.warn(format!("debian `{}`: {w}", entry.name));
        }
        debian.push(r.locked);
        deb_bar.inc(1);
    }
    deb_bar.finish_and_clear();
    let deb_count: usize = debian.iter().map(|d| d.packages.len()).sum();
    let deb_bytes: u64 = debian.iter().flat_map(|d| &d.packages).fold(0u64, |n, p| n.saturating_add(p.size));

    let unchanged = previous.as_ref().is_some_and(|l| {
        l.artifacts == artifacts
            && l.git == git
            && l.images == images
            && l.python == python
            && l.debian == debian
            && l.oci_artifacts == oci_artifacts
            && l.name == spec.name
            && l.version == spec.version
    });
    let lock = match (&previous, unchanged) {
        (Some(l), true) => l.clone(),
        _ => {
            if args.locked {
                bail!(
                    "{} is not current with {} (run `airlock mirror` without --locked)",
                    lock_path.display(),
                    args.spec.display()
                );
            }
            let lock = Lock {
                media_type: LOCK_MEDIA_TYPE.into(),
                schema_version: 1,
                name: spec.name.clone(),
                version: spec.version.clone(),
                resolved: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                artifacts,
                git,
                images,
                python,
                debian,
                oci_artifacts,
            };
            lock.save(&lock_path)?;
            lock
        }
    };
    let total: u64 = lock.artifacts.iter().fold(0u64, |n, a| n.saturating_add(a.size));
    let secs = started.elapsed().as_secs_f64();
    cx.printer.data(
        &json!({
            "lock": lock_path,
            "lockChanged": !unchanged,
            "cache": cache,
            "artifacts": lock.artifacts,
            "git": lock.git,
            "images": lock.images,
            "ociArtifacts": lock.oci_artifacts.iter().map(|a| json!({"repository": a.repository, "version": a.version, "tag": a.tag, "digest": a.digest})).collect::<Vec<_>>(),
            "python": lock.python,
            "debian": lock.debian.iter().map(|d| json!({"name": d.name, "packages": d.packages.len()})).collect::<Vec<_>>(),
            "bytes": total.saturating_add(deb_bytes).saturating_add(lock.python.iter().fold(0u64, |n, p| n.saturating_add(p.size))),
            "seconds": secs,
        }),
        || {
            format!(
                "locked {} files ({}), {} git repositories, {} images{}, {} Python files and {deb_count} Debian packages ({}) in {} ({}); cache {}",
                lock.artifacts.len(),
                bytes(total),
                lock.git.len(),
                lock.images.len(),
                match lock.images.iter().map(|i| i.referrers.len()).sum::<usize>() {
                    0 => String::new(),
                    1 => " (and 1 referrer)".to_string(),
                    n => format!(" (and {n} referrers)"),
                },
                lock.python.len(),
                bytes(deb_bytes),
                lock_path.display(),
                if unchanged { "unchanged" } else { "updated" },
                cache.display()
            )
        },
    );
    Ok(ExitStatus::Success)
}
