//! Images into an OCI registry: the store itself (the embedded default, served later by
//! `airlock serve`), or any distribution registry (distribution, Harbor, Nexus, Zot,
//! Artifactory, Quay). Order is what keeps a registry consistent at every instant: blobs,
//! then child manifests by digest, then the top manifest by digest, tags last, so no tag
//! ever points at missing content, and an interrupted import is resumed by running it
//! again. Blobs already there are skipped (HEAD), or mounted from another repository.
//!
//! Undoing an import puts each tag back where it pointed (the old manifest's exact bytes,
//! read before the tag moved), or deletes a tag the import added: with the manifest, when
//! this import pushed that manifest (no other tag can name it), else the tag alone where
//! the registry can (distribution 3, Harbor, Zot), else the manifest if no other tag names
//! it. Blobs and manifests pushed by digest stay: no name points at them.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::bundle::manifest::{Artifact, Kind};
use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::oci::{self, Parsed, Reference};
use crate::progress::Reporter;
use crate::registry::Registry;
use crate::store::{Store, hook, remove_empty_dirs};

use super::{Journal, Placed, Target};

/// One step of pushing an image, in the order it must happen.
#[derive(Debug, Clone)]
pub enum Step {
    Blob { digest: Digest, size: u64 },
    Manifest { digest: Digest, media_type: String },
}

/// Every step of an image, leaves first, from the manifests in `store`; a referenced blob
/// the store lacks is an error naming both.
pub fn closure(store: &Store, name: &str, top: &Digest, media_type: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    walk(store, name, top, media_type, &mut steps, 0)?;
    let mut seen = std::collections::HashSet::new();
    steps.retain(|s| {
        seen.insert(match s {
            Step::Blob { digest, .. } | Step::Manifest { digest, .. } => *digest,
        })
    });
    Ok(steps)
}

fn walk(store: &Store, name: &str, d: &Digest, media_type: &str, steps: &mut Vec<Step>, depth: u32) -> Result<()> {
    if depth > 4 {
        bail!("image `{name}`: indexes nested too deep at {d}");
    }
    let bytes = std::fs::read(store.blob_path_for_tool(d))
        .with_context(|| format!("image `{name}`: manifest {d} is neither in the bundle nor in the store"))?;
    let need = |child: &Digest, what: &str| -> Result<()> {
        if !store.contains(child) {
            bail!("image `{name}`: manifest {d} names {what} {child}, which neither the bundle nor the store has");
        }
        Ok(())
    };
    match oci::parse(&bytes, media_type).with_context(|| format!("image `{name}`: manifest {d}"))? {
        Parsed::Index { manifests } => {
            for m in &manifests {
                need(&m.digest, "manifest")?;
                walk(store, name, &m.digest, &m.media_type, steps, depth + 1)?;
            }
        }
        Parsed::Image { config, layers } => {
            for b in std::iter::once(&config).chain(&layers) {
                need(&b.digest, "blob")?;
                steps.push(Step::Blob { digest: b.digest, size: b.size });
            }
        }
    }
    steps.push(Step::Manifest { digest: *d, media_type: media_type.to_string() });
    Ok(())
}

fn images(bundle: &VerifiedBundle) -> impl Iterator<Item = &Artifact> {
    bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Image)
}

fn top(a: &Artifact) -> (Digest, String) {
    (a.blobs[0], a.top_media_type.clone().unwrap_or_else(|| oci::OCI_MANIFEST.to_string()))
}

/// The store's own registry: tags as files, `<store>/oci/<repository>/tags/<tag>`.
pub struct StoreOci<'a> {
    pub store: &'a Store,
}

pub struct StorePlan {
    /// (artifact name, repository, tag, digest, action)
    tags: Vec<(String, String, String, Digest, &'static str)>,
    /// Manifests with a `subject`, for the referrers API: (repository, subject, manifest,
    /// descriptor), those not recorded yet.
    referrers: Vec<(String, Digest, Digest, Vec<u8>)>,
}

/// For an image whose top manifest has a `subject`: the subject, and the descriptor the
/// referrers API lists.
fn subject_of(store: &Store, d: &Digest, media_type: &str) -> Result<Option<(Digest, Vec<u8>)>> {
    let bytes = std::fs::read(store.blob_path_for_tool(d))?;
    Ok(oci::referrer_descriptor(&bytes, media_type, d))
}

impl Target for StoreOci<'_> {
    type Plan = StorePlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<StorePlan> {
        let mut tags = Vec::new();
        let mut referrers = Vec::new();
        for a in images(bundle) {
            let (d, mt) = top(a);
            closure(self.store, &a.name, &d, &mt)?;
            let r = Reference::parse(&a.name)?;
            let mut listed = false;
            if let Some((subject, descriptor)) = subject_of(self.store, &d, &mt)?
                && !self.store.has_oci_referrer(&r.repository, &subject, &d)
            {
                referrers.push((r.repository.clone(), subject, d, descriptor));
                listed = true;
            }
            let Some(tag) = r.tag else {
                // By digest only: its manifest is in the store's blobs, servable by digest
                // (and, a referrer, listed for its subject).
                tags.push((a.name.clone(), r.repository, String::new(), d, if listed { "added" } else { "present" }));
                continue;
            };
            let action = match self.store.oci_tag(&r.repository, &tag)? {
                None => "added",
                Some(have) if have == d => "present",
                Some(_) => "updated",
            };
            tags.push((a.name.clone(), r.repository, tag, d, action));
        }
        Ok(StorePlan { tags, referrers })
    }

    fn load<'a>(
        &'a self,
        plan: StorePlan,
        _bundle: &VerifiedBundle,
        _reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let mut placed = Vec::new();
        // Referrers before the tags, as a registry takes them: a subject's listing never
        // names a manifest the store lacks (every blob is in already).
        for (repo, subject, d, descriptor) in plan.referrers {
            let dirs = self.store.oci_referrer_dirs_to_create(&repo, &subject, &d);
            self.store.add_oci_referrer(&repo, &subject, &d, &descriptor)?;
            let store = self.store;
            journal.record(Vec::new(), move || {
                store.remove_oci_referrer(&repo, &subject, &d)?;
                remove_empty_dirs(&dirs);
                Ok(())
            });
        }
        for (name, repo, tag, d, action) in plan.tags {
            let location =
                if tag.is_empty() { format!("store {repo}@{d}") } else { format!("store {repo}:{tag} at {d}") };
            let p = Placed { kind: "image".into(), name, action, location };
            if action != "present" && !tag.is_empty() {
                let old = self.store.oci_tag(&repo, &tag)?;
                let dirs = self.store.oci_tag_dirs_to_create(&repo, &tag);
                self.store.set_oci_tag(&repo, &tag, &d)?;
                let store = self.store;
                journal.record(vec![p.clone()], move || match old {
                    Some(o) => store.set_oci_tag(&repo, &tag, &o),
                    None => {
                        store.remove_oci_tag(&repo, &tag)?;
                        remove_empty_dirs(&dirs);
                        Ok(())
                    }
                });
                hook::pause("oci-tag");
            }
            placed.push(p);
        }
        Ok(placed)
    }
}

/// Any OCI distribution registry.
pub struct RegistryOci<'a> {
    pub store: &'a Store,
    pub registry: Registry,
    /// Prepended to each upstream repository path (`mirror` in `registry.site.example/mirror/...`).
    pub prefix: String,
    /// At most this many path components (Quay allows 2): the tail is joined with `-`.
    pub max_components: Option<usize>,
    pub jobs: usize,
    /// Blobs larger than this go up in PATCH chunks of this size.
    pub chunk_size: u64,
    /// Bytes uploaded and blobs mounted by [`Target::load`], for the receipt.
    pub moved: std::sync::atomic::AtomicU64,
    pub mounted: std::sync::atomic::AtomicU64,
    /// Blobs [`RegistryOci::push_confirmed`] put at the registry (repository, digest):
    /// [`Target::load`] does not ask for them again.
    pub early: std::sync::Mutex<HashSet<(String, Digest)>>,
}

pub struct RegistryPlan {
    images: Vec<ImagePlan>,
}

struct ImagePlan {
    name: String,
    repo: String,
    tag: Option<String>,
    top: Digest,
    top_media_type: String,
    steps: Vec<Step>,
    /// For a manifest with a `subject`: the subject, and the descriptor to list.
    subject: Option<(Digest, Vec<u8>)>,
}

impl RegistryOci<'_> {
    /// Put blob `d` into each of `repos`: skipped where the registry has it, uploaded to
    /// the first that lacks it and mounted from there into the others.
    fn put_blob(
        &self,
        d: &Digest,
        size: u64,
        repos: &[String],
        open: &(dyn Fn() -> Result<std::fs::File> + Sync),
    ) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let reg = &self.registry;
        let mut home: Option<&str> = None;
        for repo in repos {
            let done = self.early.lock().expect("early").contains(&(repo.clone(), *d));
            let r = (|| -> Result<()> {
                if !done && !reg.has_blob(repo, d)? {
                    match reg.push_blob_from(repo, d, size, open, home, self.chunk_size)? {
                        crate::registry::Sent::Mounted => self.mounted.fetch_add(1, Relaxed),
                        crate::registry::Sent::Bytes(n) => self.moved.fetch_add(n, Relaxed),
                    };
                }
                Ok(())
            })();
            r.with_context(|| format!("blob {d} to {}/{repo}", reg.host))?;
            home.get_or_insert(repo);
        }
        Ok(())
    }

    /// Push each layer and config of the bundle's images as its digest arrives on
    /// `confirmed` (sent by the verify of an import once the blob's bytes hash to what the
    /// signed manifest `m` says), on `jobs` threads, until the channel closes. Nothing
    /// names these blobs yet, so the registry shows no change; [`Target::load`] pushes
    /// whatever this did not (a failure here is retried there and reported then), then
    /// the manifests and tags. `open` reads a confirmed blob.
    pub fn push_confirmed(
        &self,
        m: &crate::bundle::manifest::Manifest,
        confirmed: &crossbeam_channel::Receiver<Digest>,
        open: &(dyn Fn(&Digest) -> Result<std::fs::File> + Sync),
    ) {
        let mut repos: HashMap<Digest, Vec<String>> = HashMap::new();
        for a in m.artifacts.iter().filter(|a| a.kind == Kind::Image) {
            let Ok(r) = Reference::parse(&a.name) else { continue };
            let repo = self.target_repository(&r.repository);
            for d in &a.blobs {
                let e = repos.entry(*d).or_default();
                if !e.contains(&repo) {
                    e.push(repo.clone());
                }
            }
        }
        let sizes: HashMap<Digest, u64> = m
            .blobs
            .iter()
            .filter(|b| !oci::is_manifest_type(&b.media_type) && !oci::is_index(&b.media_type))
            .map(|b| (b.digest, b.size))
            .collect();
        // After one failure (the registry went away, say) the rest waits for the load,
        // which retries and reports: no retries here that only delay the verdict.
        let gave_up = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..self.jobs.max(1) {
                s.spawn(|| {
                    for d in confirmed {
                        let (Some(size), Some(to)) = (sizes.get(&d), repos.get(&d)) else { continue };
                        if gave_up.load(std::sync::atomic::Ordering::Relaxed) {
                            continue;
                        }
                        match self.put_blob(&d, *size, to, &|| open(&d)) {
                            Ok(()) => self.early.lock().expect("early").extend(to.iter().map(|r| (r.clone(), d))),
                            Err(_) => gave_up.store(true, std::sync::atomic::Ordering::Relaxed),
                        }
                    }
                });
            }
        });
    }

    /// The repository at the target for an upstream `host/path`.
    pub fn target_repository(&self, upstream_path: &str) -> String {
        let mut parts: Vec<String> = self
            .prefix
            .split('/')
            .chain(upstream_path.split('/'))
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(max) = self.max_components
            && max >= 1
            && parts.len() > max
        {
            let tail = parts.split_off(max - 1).join("-");
            parts.push(tail);
        }
        parts.join("/")
    }
}

impl Target for RegistryOci<'_> {
    type Plan = RegistryPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<RegistryPlan> {
        let mut out = Vec::new();
        if let Some(first) = images(bundle).next() {
            // Reachable, and the credentials work, before anything anywhere changes.
            let r = Reference::parse(&first.name)?;
            self.registry.check(&self.target_repository(&r.repository))?;
        }
        for a in images(bundle) {
            let (d, mt) = top(a);
            let steps = closure(self.store, &a.name, &d, &mt)?;
            let r = Reference::parse(&a.name)?;
            let repo = self.target_repository(&r.repository);
            crate::names::image_repository(&repo)
                .with_context(|| format!("image `{}`: its repository at the target", a.name))?;
            let subject = subject_of(self.store, &d, &mt)?;
            out.push(ImagePlan { name: a.name.clone(), repo, tag: r.tag, top: d, top_media_type: mt, steps, subject });
        }
        // Referrers after their subjects (every one, signatures and cosign's tags alike).
        out.sort_by_key(|p| bundle.manifest.artifacts.iter().any(|a| a.name == p.name && a.subject.is_some()));
        Ok(RegistryPlan { images: out })
    }

    fn load<'a>(
        &'a self,
        plan: RegistryPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let reg = &self.registry;
        // Every blob once, with the repositories that need it (and the first image naming
        // it, for errors): uploaded to the first, mounted into the others. All blobs of all
        // images go up in parallel before any manifest, so no manifest or tag ever points
        // at missing content, whenever the import stops.
        let mut order: Vec<Digest> = Vec::new();
        let mut needs: HashMap<Digest, (u64, Vec<String>, String)> = HashMap::new();
        for img in &plan.images {
            for s in &img.steps {
                if let Step::Blob { digest, size } = s {
                    let e = needs.entry(*digest).or_insert_with(|| {
                        order.push(*digest);
                        (*size, Vec::new(), img.name.clone())
                    });
                    if !e.1.contains(&img.repo) {
                        e.1.push(img.repo.clone());
                    }
                }
            }
        }
        order.sort_by_key(|d| std::cmp::Reverse(needs[d].0));
        let total: u64 = needs.values().map(|n| n.0).sum();
        let bar = reporter.bytes("push", Some(total));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(self.jobs.max(1)).build()?;
        pool.install(|| {
            order.par_iter().try_for_each(|d| -> Result<()> {
                let (size, repos, image) = &needs[d];
                self.put_blob(d, *size, repos, &|| self.store.open_blob(d))
                    .with_context(|| format!("image `{image}`"))?;
                bar.inc(*size);
                hook::pause("registry-blob");
                Ok(())
            })
        })?;
        bar.finish_and_clear();

        // Manifests this run pushed: no tag at the registry could name them before.
        let mut pushed: HashSet<(String, Digest)> = HashSet::new();
        let mut placed = Vec::new();
        for img in &plan.images {
            // Manifests, children before parents, each by digest; the tag last.
            let mut top_was_there = false;
            // The registry named the subject on push: it serves the referrers API itself.
            let mut indexed = false;
            for s in &img.steps {
                if let Step::Manifest { digest, media_type } = s {
                    if reg.manifest_digest(&img.repo, &digest.to_string())?.is_some() {
                        top_was_there |= *digest == img.top;
                        continue;
                    }
                    let bytes = std::fs::read(self.store.blob_path_for_tool(digest))?;
                    let said = reg
                        .put_manifest_subject(&img.repo, &digest.to_string(), media_type, &bytes)
                        .with_context(|| format!("image `{}`", img.name))?;
                    indexed |= *digest == img.top && said.is_some();
                    pushed.insert((img.repo.clone(), *digest));
                    hook::pause("registry-manifest");
                }
            }
            if let Some((subject, descriptor)) = &img.subject
                && !indexed
            {
                fallback_referrer(reg, &img.repo, subject, &img.top, descriptor, journal)
                    .with_context(|| format!("image `{}`: listing it as a referrer of {subject}", img.name))?;
            }
            let top_new = pushed.contains(&(img.repo.clone(), img.top));
            let at = match &img.tag {
                Some(t) => format!("{}/{}:{t}", reg.host, img.repo),
                None => format!("{}/{}@{}", reg.host, img.repo, img.top),
            };
            let mut p = Placed { kind: "image".into(), name: img.name.clone(), action: "present", location: at };
            match &img.tag {
                Some(tag) => {
                    let have = reg.manifest_digest(&img.repo, tag)?;
                    if have != Some(img.top) {
                        // What the tag names now, byte for byte, so that undoing puts it back.
                        let old = match have {
                            Some(h) => Some(
                                previous_manifest(reg, &img.repo, &h)
                                    .with_context(|| format!("image `{}`: reading what {tag} names now", img.name))?,
                            ),
                            None => None,
                        };
                        let bytes = std::fs::read(self.store.blob_path_for_tool(&img.top))?;
                        reg.put_manifest(&img.repo, tag, &img.top_media_type, &bytes)
                            .with_context(|| format!("image `{}`: tagging", img.name))?;
                        p.action = if old.is_some() { "updated" } else { "added" };
                        let (repo, tag, top) = (img.repo.clone(), tag.clone(), img.top);
                        journal.record(vec![p.clone()], move || match old {
                            Some((bytes, media_type)) => reg.put_manifest(&repo, &tag, &media_type, &bytes),
                            None => untag(reg, &repo, &tag, &top, top_new),
                        });
                        hook::pause("registry-tag");
                    }
                }
                None if top_was_there => {}
                None => {
                    p.action = "added";
                    let (repo, top) = (img.repo.clone(), img.top);
                    // Only this run's manifest: no tag names it.
                    journal.record(vec![p.clone()], move || delete(reg, &repo, &top.to_string()));
                }
            }
            placed.push(p);
        }
        Ok(placed)
    }
}

/// A registry without the referrers API learns of a referrer through the tag fallback of
/// the distribution spec: `sha256-<subject hex>` names an image index of the subject's
/// referrers, which the client that pushes one keeps up to date. A registry that answers
/// the referrers API needs nothing more.
fn fallback_referrer<'a>(
    reg: &'a Registry,
    repo: &str,
    subject: &Digest,
    manifest: &Digest,
    descriptor: &[u8],
    journal: &mut Journal<'a>,
) -> Result<()> {
    if reg.referrers(repo, subject, None)?.is_some() {
        return Ok(());
    }
    let tag = format!("sha256-{}", subject.hex());
    let old = reg.find_manifest(repo, &tag)?;
    let mut index: serde_json::Value = match &old {
        Some((bytes, _)) => serde_json::from_slice(bytes)
            .ok()
            .filter(|v: &serde_json::Value| v["manifests"].is_array())
            .with_context(|| format!("{}/{repo}:{tag} is not an image index", reg.host))?,
        None => serde_json::json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": []}),
    };
    let list = index["manifests"].as_array_mut().expect("checked");
    if list.iter().any(|m| m["digest"].as_str() == Some(&manifest.to_string())) {
        return Ok(());
    }
    list.push(serde_json::from_slice(descriptor)?);
    let bytes = serde_json::to_vec(&index)?;
    reg.put_manifest(repo, &tag, oci::OCI_INDEX, &bytes)?;
    let (repo, new) = (repo.to_string(), Digest::of(&bytes));
    journal.record(Vec::new(), move || match old {
        Some((bytes, _)) => reg.put_manifest(&repo, &tag, oci::OCI_INDEX, &bytes),
        None => delete(reg, &repo, &new.to_string()),
    });
    hook::pause("registry-tag");
    Ok(())
}

/// A manifest's exact bytes and media type, checked against its digest.
fn previous_manifest(reg: &Registry, repo: &str, d: &Digest) -> Result<(Vec<u8>, String)> {
    let (bytes, ct) = reg.get_manifest(repo, &d.to_string())?;
    if Digest::of(&bytes) != *d {
        bail!("{}/{repo}@{d}: the registry sent a manifest that does not match its digest", reg.host);
    }
    let media_type = ct.filter(|c| !c.is_empty() && c != "application/json").unwrap_or_else(|| {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(String::from))
            .unwrap_or_else(|| oci::OCI_MANIFEST.to_string())
    });
    Ok((bytes, media_type))
}

/// `DELETE` a manifest reference; gone already is fine.
fn delete(reg: &Registry, repo: &str, reference: &str) -> Result<()> {
    match reg.delete_manifest(repo, reference)? {
        s if s.is_success() || s == reqwest::StatusCode::NOT_FOUND => Ok(()),
        s => bail!("the registry refuses to delete {}/{repo}:{reference} ({s})", reg.host),
    }
}

/// Take away a tag this run added, pointing at `top`.
fn untag(reg: &Registry, repo: &str, tag: &str, top: &Digest, top_new: bool) -> Result<()> {
    if top_new {
        // Deleting the manifest deletes every tag naming it: only this run's.
        return delete(reg, repo, &top.to_string());
    }
    let s = reg.delete_manifest(repo, tag)?;
    if s.is_success() || s == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    // Registries of the distribution 2 line delete manifests, not tags: delete the
    // manifest if no other tag names it.
    for other in reg.tags(repo)? {
        if other != tag && reg.manifest_digest(repo, &other)? == Some(*top) {
            bail!(
                "{}/{repo} cannot delete a tag alone ({s}) and its manifest {top} is also tagged {other}: \
                 delete {tag} with the registry's own tools",
                reg.host
            );
        }
    }
    delete(reg, repo, &top.to_string())
}

/// The image artifacts of a signed manifest, each with its top manifest and media type.
fn manifest_images(m: &crate::bundle::manifest::Manifest) -> impl Iterator<Item = (&Artifact, Digest, String)> {
    m.artifacts.iter().filter(|a| a.kind == Kind::Image).map(|a| {
        let (d, mt) = top(a);
        (a, d, mt)
    })
}

impl StoreOci<'_> {
    /// For an import answered from its record: is every image of `m` in the store as a
    /// full import leaves it (every blob and manifest present, each tag naming its top
    /// manifest, each referrer listed)? `None` when anything is not.
    pub fn confirm(&self, m: &crate::bundle::manifest::Manifest) -> Result<Option<Vec<Placed>>> {
        let mut placed = Vec::new();
        for (a, d, mt) in manifest_images(m) {
            closure(self.store, &a.name, &d, &mt)?;
            let r = Reference::parse(&a.name)?;
            if let Some((subject, _)) = subject_of(self.store, &d, &mt)?
                && !self.store.has_oci_referrer(&r.repository, &subject, &d)
            {
                return Ok(None);
            }
            let location = match &r.tag {
                Some(tag) if self.store.oci_tag(&r.repository, tag)? != Some(d) => return Ok(None),
                Some(tag) => format!("store {}:{tag} at {d}", r.repository),
                None => format!("store {}@{d}", r.repository),
            };
            placed.push(Placed { kind: "image".into(), name: a.name.clone(), action: "present", location });
        }
        Ok(Some(placed))
    }
}

impl RegistryOci<'_> {
    /// For an import answered from its record: does the registry hold every manifest of
    /// every image of `m` (a HEAD of each by digest; a registry accepts a manifest only
    /// once it has its blobs) and does each tag name its top manifest? A referrer counts
    /// only where the registry serves the referrers API and lists it. `None` when
    /// anything is not confirmed.
    pub fn confirm(&self, m: &crate::bundle::manifest::Manifest) -> Result<Option<Vec<Placed>>> {
        let reg = &self.registry;
        let mut placed = Vec::new();
        let mut checked = false;
        for (a, d, mt) in manifest_images(m) {
            let steps = closure(self.store, &a.name, &d, &mt)?;
            let r = Reference::parse(&a.name)?;
            let repo = self.target_repository(&r.repository);
            if !checked {
                reg.check(&repo)?;
                checked = true;
            }
            for s in &steps {
                if let Step::Manifest { digest, .. } = s
                    && reg.manifest_digest(&repo, &digest.to_string())? != Some(*digest)
                {
                    return Ok(None);
                }
            }
            if let Some((subject, _)) = subject_of(self.store, &d, &mt)? {
                let listed = reg.referrers(&repo, &subject, None)?.is_some_and(|(bytes, _)| {
                    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| {
                        v["manifests"].as_array().into_iter().flatten().any(|e| e["digest"] == d.to_string())
                    })
                });
                if !listed {
                    return Ok(None);
                }
            }
            let location = match &r.tag {
                Some(tag) if reg.manifest_digest(&repo, tag)? != Some(d) => return Ok(None),
                Some(tag) => format!("{}/{repo}:{tag}", reg.host),
                None => format!("{}/{repo}@{d}", reg.host),
            };
            placed.push(Placed { kind: "image".into(), name: a.name.clone(), action: "present", location });
        }
        Ok(Some(placed))
    }
}
