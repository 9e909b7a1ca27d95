use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bundle::manifest::{
    self, Artifact, Base, BlobDescriptor, BundleBase, GIT_BUNDLE_MEDIA_TYPE, Kind, MANIFEST_MEDIA_TYPE, Manifest,
    ReceiptBase,
};
use crate::bundle::sign::SecretKey;
use crate::bundle::verify::{MAX_MANIFEST, read_head};
use crate::bundle::writer::{WriteOptions, bundle_files, write_bundle};
use crate::bundle::{provenance, sbom};
use crate::cli::ExportArgs;
use crate::digest::Digest;
use crate::exit::ExitStatus;
use crate::lock::Lock;
use crate::pypi;
use crate::store::Store;

use super::{CmdResult, Ctx, bytes, rate};

pub fn export(args: &ExportArgs, cx: &Ctx) -> CmdResult {
    let started = Instant::now();
    let lock = Lock::load(&args.lock)?;
    let cache = args.cache_dir.clone().unwrap_or_else(crate::dirs::cache_dir);
    let store = Store::open(&cache)?;
    let key_path = args.key.clone().unwrap_or_else(|| cx.default_secret_key());
    let key = SecretKey::load(&key_path)?;

    let version = match (&args.version, &lock.version) {
        (Some(v), _) | (None, Some(v)) => v.clone(),
        (None, None) => lock.resolved.replace(['-', ':'], "").replace('T', ".").trim_end_matches('Z').to_string(),
    };
    crate::names::bundle_version(&version)?;
    let base = match (&args.since, &args.since_receipt) {
        (Some(p), _) => Some(load_base(p)?),
        (None, Some(site)) => Some(receipt_base(site, &store, cx)?),
        (None, None) => None,
    };
    // A site refuses a bundle older than one it imported: say so here, not there.
    for (v, created) in base
        .iter()
        .flat_map(|b| &b.site_imports)
        .filter(|i| i.name == lock.name)
        .filter_map(|i| Some((i.version.as_deref()?, i.created.as_deref()?)))
    {
        if super::import_guard::is_older(&version, &lock.resolved, (v, created)) {
            bail!(
                "the site already imported {}-{v} (created {created}), so it would refuse {}-{version} (created {}) \
                 as a rollback: give this bundle a later version (`version:` in the spec, or --version)",
                lock.name,
                lock.name,
                lock.resolved
            );
        }
    }
    check_outputs(args, &format!("{}-{version}", lock.name))?;
    let git = git_artifacts(&lock, base.as_ref(), &store)?;
    let mut manifest = build_manifest(&lock, &version, base.as_ref(), git)?;
    for b in &manifest.blobs {
        if !store.contains(&b.digest) {
            bail!("blob {} is not in the cache {}: run `airlock mirror` first", b.digest, cache.display());
        }
    }
    let evidence = evidence(&mut manifest, &lock, args, &store, &key)?;
    let manifest_bytes = manifest.to_bytes();
    let epoch = humantime::parse_rfc3339(&lock.resolved)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let comment = |file: &str| format!("timestamp:{epoch}\tfile:{file}\thashed");
    let signature = key.sign(&manifest_bytes, &comment("manifest.json"));

    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
    let opts = WriteOptions { out_dir: &args.output, compression: args.compression, split: args.split, threads };
    let bar = cx.reporter.bytes("export", Some(manifest.total_blob_bytes()));
    let stem = manifest.id();
    let sign_volumes = |b: &[u8]| key.sign(b, &comment(&format!("{stem}.airlock.volumes")));
    let written = write_bundle(&manifest, &manifest_bytes, &signature, &evidence, &store, &opts, &sign_volumes, &bar)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let digest = Digest::of(&manifest_bytes);
    if let Err(e) = record_export(&store, &manifest, &digest, &key.id().to_string(), &args.output) {
        cx.printer.warn(format!("the export is not in the cache's ledger: {e:#}"));
    }
    cx.printer.data(
        &json!({
            "bundle": stem,
            "manifest": digest,
            "signer": key.id().to_string(),
            "files": written.files,
            "bytes": written.bytes,
            "artifacts": manifest.artifacts.len(),
            "blobs": manifest.blobs.len(),
            "blobBytes": manifest.total_blob_bytes(),
            "base": manifest.base,
            "volumes": written.volumes,
            "seconds": secs,
        }),
        || {
            let mut s = format!(
                "exported {stem}: {} artifacts, {} blobs, {} -> {} in {:.1}s ({})\n  manifest {digest}, signed by {}\n",
                manifest.artifacts.len(),
                manifest.blobs.len(),
                bytes(manifest.total_blob_bytes()),
                bytes(written.bytes),
                secs,
                rate(manifest.total_blob_bytes(), secs),
                key.id()
            );
            if let Some(b) = &manifest.base {
                s.push_str(&format!("  differential on {} ({})\n", b.label(), b.digest()));
            }
            for f in &written.files {
                s.push_str(&format!("  {}\n", f.display()));
            }
            s
        },
    );
    Ok(ExitStatus::Success)
}

/// The SBOM and the provenance of `manifest`, whose digests it then lists: the members
/// `sbom.cdx.json` and `provenance.intoto.json`, in bundle order. The provenance records
/// the lock's digest and the spec beside the lock (`<lock>.yaml` or `.yml`), if there is one.
fn evidence(
    manifest: &mut Manifest,
    lock: &Lock,
    args: &ExportArgs,
    store: &Store,
    key: &SecretKey,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let (sbom_bytes, sbom) = sbom::build(manifest, lock, store).context("making the SBOM")?;
    manifest.sbom = Some(sbom);
    let file_name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_bytes = std::fs::read(&args.lock).with_context(|| format!("reading {}", args.lock.display()))?;
    let spec = ["yaml", "yml"].iter().map(|e| args.lock.with_extension(e)).find(|p| p.is_file());
    let spec = match spec {
        Some(p) => Some((file_name(&p), std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)),
        None => None,
    };
    let mut git_types = BTreeMap::new();
    let root = store.layout().git_dir();
    for g in &lock.git {
        let repo = crate::source::git::GitSource::repo_for(&root, &g.upstream);
        let oids: Vec<&String> = g.refs.values().collect();
        let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
        let out =
            crate::git::run(Some(&repo), &["cat-file", "--batch-check=%(objectname) %(objecttype)"], Some(&input))
                .with_context(|| format!("git repository `{}`: reading the cache's objects", g.name))?;
        for line in out.lines() {
            if let Some((oid, kind)) = line.split_once(' ') {
                git_types.insert(oid.to_string(), kind.to_string());
            }
        }
    }
    let inputs = provenance::Inputs {
        manifest,
        lock: (file_name(&args.lock), Digest::of(&lock_bytes)),
        spec,
        factory: provenance::factory_id(),
        git_types: &git_types,
    };
    let envelope = provenance::envelope(&provenance::statement(&inputs), key);
    manifest.provenance = Some(provenance::descriptor(&envelope));
    Ok(vec![(manifest::MEMBER_SBOM, sbom_bytes), (manifest::MEMBER_PROVENANCE, envelope)])
}

/// Refuse to replace a bundle already in the output directory (unless `--force`), and
/// ever to replace the `--since` base: a differential bundle whose version was not bumped
/// has the base's file name, and writing it would destroy the base.
fn check_outputs(args: &ExportArgs, stem: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let existing = bundle_files(&args.output, stem)?;
    if let Some(since) = &args.since {
        let name = since.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let base_stem = name.rsplit_once(".airlock").map_or(name.as_str(), |(stem, _)| stem);
        let dir = since.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let mut base_files = bundle_files(dir, base_stem)?;
        base_files.push(since.clone());
        let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let base_ids: BTreeSet<_> = base_files.iter().filter_map(|p| id(p)).collect();
        if let Some(clash) = existing.iter().find(|p| id(p).is_some_and(|i| base_ids.contains(&i))) {
            bail!(
                "exporting {stem} would replace {}, which is its own --since base: give the new bundle \
                 another version (`version:` in the spec, or --version) or another output directory (-o)",
                clash.display()
            );
        }
    }
    if !args.force
        && let Some(first) = existing.first()
    {
        bail!(
            "{} already exists: pass --force to replace it, or choose another output directory (-o)",
            first.display()
        );
    }
    Ok(())
}

/// The base of a differential bundle: its identity, and every blob it carried or named.
struct BaseInfo {
    base: Base,
    blobs: BTreeSet<Digest>,
    /// Each git repository's refs as the base carried them.
    git: BTreeMap<String, BTreeMap<String, String>>,
    /// For a receipt: the bundles the site imported.
    site_imports: Vec<crate::receipt::ImportedBundle>,
}

fn load_base(path: &std::path::Path) -> Result<BaseInfo> {
    let bytes = if path.is_file() && path.file_name().is_some_and(|n| n == "manifest.json") {
        let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
        if len > MAX_MANIFEST {
            bail!("{} is {len} bytes, more than the {MAX_MANIFEST} a manifest may have", path.display());
        }
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        read_head(path).map_err(|e| anyhow::anyhow!("reading the base bundle {}: {e}", path.display()))?.manifest_bytes
    };
    let m = manifest::parse(&bytes).map_err(anyhow::Error::msg).with_context(|| format!("base {}", path.display()))?;
    let mut blobs: BTreeSet<Digest> = m.blobs.iter().map(|b| b.digest).collect();
    blobs.extend(m.artifacts.iter().flat_map(|a| a.blobs.iter().copied()));
    let git = m
        .artifacts
        .iter()
        .filter(|a| a.kind == Kind::Git)
        .filter_map(|a| Some((a.name.clone(), a.refs.clone()?)))
        .collect();
    let base = Base::Bundle(BundleBase { name: m.name, version: m.version, manifest: Digest::of(&bytes) });
    Ok(BaseInfo { base, blobs, git, site_imports: Vec::new() })
}

/// The base of a bundle made from a site's receipt: every blob the site's store holds, and
/// its git tips. `site` is a receipt file, or a site name or key id whose newest receipt
/// the cache keeps; a file is kept as its site's newest.
fn receipt_base(site: &str, cache: &Store, cx: &Ctx) -> Result<BaseInfo> {
    let given = std::path::Path::new(site);
    let from_file = given.is_file();
    let path = if from_file { given.to_path_buf() } else { crate::receipt::cached(cache, site)? };
    let trusted = crate::trust::TrustStore::sites(&cx.config_dir).keys()?;
    let checked = crate::receipt::open(&path, &trusted)?;
    let r = &checked.receipt;
    if from_file {
        match crate::receipt::keep(cache, &checked)? {
            crate::receipt::Kept::Newest(_) => {}
            crate::receipt::Kept::Older(newest) => cx.printer.warn(format!(
                "the cache has a newer receipt from site `{}` (written {newest}); this bundle is made from the older \
                 one given ({})",
                r.site, r.created
            )),
        }
    }
    let blobs = r.all_blobs().map(|(d, _)| *d).collect();
    let git = r.git.iter().map(|(name, g)| (name.clone(), g.refs.clone())).collect();
    let base = Base::Receipt(ReceiptBase {
        receipt: checked.digest,
        site: r.site.clone(),
        site_key: checked.signer.to_string(),
        created: r.created.clone(),
    });
    Ok(BaseInfo { base, blobs, git, site_imports: r.imported.clone() })
}

/// One git bundle per repository (incremental against the base's refs, if any), made in
/// the cache from the locked refs.
fn git_artifacts(
    lock: &Lock,
    base: Option<&BaseInfo>,
    store: &Store,
) -> Result<Vec<(Artifact, Option<BlobDescriptor>)>> {
    let root = store.layout().git_dir();
    lock.git
        .iter()
        .map(|g| {
            let base_refs = base.and_then(|b| b.git.get(&g.name));
            let made = crate::source::git::make_bundle(&root, g, base_refs, store)?;
            let head_commit = g.head.as_ref().and_then(|h| g.refs.get(h)).map(String::as_str);
            let artifact = Artifact {
                kind: Kind::Git,
                name: g.name.clone(),
                version: head_commit.map(str::to_string),
                upstream: g.upstream.clone(),
                purl: manifest::git_purl(&g.name, head_commit, &g.upstream),
                refs: Some(g.refs.clone()),
                head: g.head.clone(),
                prerequisites: made.as_ref().map(|m| m.prerequisites.clone()).unwrap_or_default(),
                blobs: made.iter().map(|m| m.digest).collect(),
                ..Default::default()
            };
            let blob = made.map(|m| BlobDescriptor {
                digest: m.digest,
                size: m.size,
                media_type: GIT_BUNDLE_MEDIA_TYPE.into(),
            });
            Ok((artifact, blob))
        })
        .collect()
}

fn build_manifest(
    lock: &Lock,
    version: &str,
    base: Option<&BaseInfo>,
    git: Vec<(Artifact, Option<BlobDescriptor>)>,
) -> Result<Manifest> {
    let mut artifacts: Vec<Artifact> = lock
        .artifacts
        .iter()
        .map(|a| {
            let url = (a.upstream.starts_with("http://") || a.upstream.starts_with("https://"))
                .then_some(a.upstream.as_str());
            Artifact {
                kind: a.kind,
                name: a.name.to_string(),
                upstream: a.upstream.clone(),
                purl: manifest::file_purl(&a.name, &a.digest, url),
                arch: a.arch.clone(),
                path: Some(a.name.clone()),
                blobs: vec![a.digest],
                ..Default::default()
            }
        })
        .collect();
    let mut git_blobs = Vec::new();
    for (a, b) in git {
        artifacts.push(a);
        git_blobs.extend(b);
    }
    let mut image_blobs = Vec::new();
    for i in lock
        .images
        .iter()
        .chain(lock.oci_artifacts.iter().map(|a| &a.image))
        .flat_map(|i| std::iter::once(i).chain(&i.referrers))
    {
        let top = &i.blobs[0];
        artifacts.push(Artifact {
            kind: Kind::Image,
            name: i.name.clone(),
            version: i.tag.clone(),
            upstream: i.repository.clone(),
            purl: manifest::image_purl(&i.repository, &i.digest, i.tag.as_deref()),
            platform: (!i.platforms.is_empty()).then(|| i.platforms.join(",")),
            upstream_digest: (i.upstream_digest != i.digest).then_some(i.upstream_digest),
            top_size: Some(top.size),
            top_media_type: Some(top.media_type.clone()),
            subject: i.subject,
            artifact_type: i.artifact_type.clone(),
            blobs: i.blobs.iter().map(|b| b.digest).collect(),
            ..Default::default()
        });
        image_blobs.extend(i.blobs.iter().cloned());
    }
    let mut python_blobs = Vec::new();
    for p in &lock.python {
        let media_type = if p.filename.ends_with(".whl") { pypi::WHEEL_MEDIA_TYPE } else { pypi::SDIST_MEDIA_TYPE };
        artifacts.push(Artifact {
            kind: Kind::Python,
            name: p.filename.clone(),
            version: Some(p.version.clone()),
            upstream: p.url.clone(),
            purl: manifest::pypi_purl(&p.project, &p.version, &p.filename),
            index: Some(p.index.clone()),
            project: Some(p.project.clone()),
            requires_python: p.requires_python.clone(),
            yanked: p.yanked.clone(),
            blobs: std::iter::once(p.digest).chain(p.metadata.as_ref().map(|m| m.digest)).collect(),
            ..Default::default()
        });
        python_blobs.push(BlobDescriptor { digest: p.digest, size: p.size, media_type: media_type.into() });
        python_blobs.extend(p.metadata.clone());
    }
    let mut deb_blobs = Vec::new();
    for d in &lock.debian {
        for p in &d.packages {
            let what = || format!("debian `{}`: package {} {} ({})", d.name, p.package, p.version, p.arch);
            let control = crate::debian::deb822::parse_one(&p.control, "control").with_context(what)?;
            if (control.get("Package"), control.get("Version"), control.get("Architecture"))
                != (Some(p.package.as_str()), Some(p.version.as_str()), Some(p.arch.as_str()))
            {
                bail!("{}: the lock's control stanza names another package", what());
            }
            let path = crate::debian::pool_path(&p.component, &control).with_context(what)?;
            artifacts.push(Artifact {
                kind: Kind::Debian,
                name: p.package.clone(),
                version: Some(p.version.clone()),
                upstream: format!("{}/{}", p.upstream.as_deref().unwrap_or(&d.upstream), p.filename),
                purl: manifest::deb_purl(&d.vendor, &p.package, &p.version, &p.arch),
                arch: Some(p.arch.clone()),
                path: Some(path),
                control: Some(p.control.clone()),
                // The site suite: the entry's, or with `layout: as-upstream` the upstream one.
                suite: Some(if d.layout.is_merged() { d.name.clone() } else { p.suite.clone() }),
                component: Some(p.component.clone()),
                architectures: d.architectures.clone(),
                blobs: vec![p.digest],
                ..Default::default()
            });
            deb_blobs.push(BlobDescriptor {
                digest: p.digest,
                size: p.size,
                media_type: crate::debian::DEB_MEDIA_TYPE.into(),
            });
        }
    }
    artifacts.sort_by(|a, b| {
        (a.kind, &a.index, &a.name, &a.version, &a.arch, &a.suite)
            .cmp(&(b.kind, &b.index, &b.name, &b.version, &b.arch, &b.suite))
    });
    let mut blobs: Vec<BlobDescriptor> = Vec::new();
    let mut seen = BTreeSet::new();
    for a in &lock.artifacts {
        if base.is_some_and(|b| b.blobs.contains(&a.digest)) || !seen.insert(a.digest) {
            continue;
        }
        blobs.push(BlobDescriptor { digest: a.digest, size: a.size, media_type: "application/octet-stream".into() });
    }
    for b in git_blobs.into_iter().chain(image_blobs).chain(python_blobs).chain(deb_blobs) {
        if base.is_some_and(|base| base.blobs.contains(&b.digest)) || !seen.insert(b.digest) {
            continue;
        }
        blobs.push(b);
    }
    blobs.sort_by_key(|b| b.digest);
    let m = Manifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        schema_version: 1,
        name: lock.name.clone(),
        version: version.to_string(),
        created: lock.resolved.clone(),
        generator: concat!("airlock ", env!("CARGO_PKG_VERSION")).into(),
        base: base.map(|b| b.base.clone()),
        artifacts,
        blobs,
        sbom: None,
        provenance: None,
    };
    m.check().map_err(anyhow::Error::msg).context("building the manifest")?;
    Ok(m)
}

/// Record the export in the cache's ledger, under the cache's lock.
fn record_export(
    cache: &Store,
    manifest: &crate::bundle::manifest::Manifest,
    digest: &Digest,
    signer: &str,
    out: &std::path::Path,
) -> Result<()> {
    let ledger = super::site_state::open(cache)?;
    let _lock = cache
        .lock_within(std::time::Duration::from_secs(30))?
        .ok_or_else(|| anyhow::anyhow!("the cache {} stayed locked", cache.root().display()))?;
    let run = crate::ledger::NewRun {
        op: "export".into(),
        env: None,
        bundle: Some(super::site_state::bundle_ref(manifest, digest)),
        signer: Some(signer.into()),
        targets: vec![std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf()).display().to_string()],
        source: manifest.base.as_ref().map(|b| format!("base {}", b.digest())),
    };
    let artifacts: Vec<crate::ledger::ArtifactResult> = manifest
        .artifacts
        .iter()
        .map(|a| crate::ledger::ArtifactResult {
            kind: a.kind.to_string(),
            name: a.name.clone(),
            action: "exported".into(),
            location: out.display().to_string(),
            purl: Some(a.purl.clone()),
            reason: None,
        })
        .collect();
    ledger.record(&run, "completed", None, &artifacts)?;
    Ok(())
}
