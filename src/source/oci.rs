//! Container images from any OCI distribution registry. A tag is resolved to its manifest
//! digest; manifests, configs and layers are fetched in parallel, each checked against the
//! digest that referenced it and stored byte for byte. A `platforms` filter keeps a
//! sub-index of an image index (a new index, recorded beside the upstream digest).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::bundle::manifest::BlobDescriptor;
use crate::digest::Digest;
use crate::lock::LockedImage;
use crate::net::NetOptions;
use crate::oci::{self, Parsed, Reference};
use crate::registry::Registry;
use crate::spec::{ImageEntry, RegistrySettings};
use crate::store::Store;

use super::referrer;

/// Where an image is read from.
enum Upstream {
    Registry(Arc<Registry>),
    /// An OCI image layout directory.
    Layout(std::path::PathBuf),
}

impl Upstream {
    fn manifest(&self, r: &Reference, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        match self {
            Upstream::Registry(reg) => reg.get_manifest(&r.repository, reference),
            Upstream::Layout(dir) => {
                let digest: Digest = match reference.parse() {
                    Ok(d) => d,
                    Err(_) => {
                        let index_path = dir.join(oci::LAYOUT_INDEX);
                        let index: serde_json::Value = serde_json::from_slice(
                            &read_capped(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
                        )
                        .with_context(|| format!("parsing {}", index_path.display()))?;
                        let found = index["manifests"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|m| m["annotations"][oci::REF_NAME].as_str() == Some(reference));
                        let Some(d) = found.and_then(|m| m["digest"].as_str()) else {
                            bail!("image {r}: the layout {} has no image named `{reference}`", dir.display());
                        };
                        d.parse()?
                    }
                };
                let p = dir.join("blobs/sha256").join(digest.hex());
                let bytes = read_capped(&p).with_context(|| format!("image {r}: reading {}", p.display()))?;
                Ok((bytes, None))
            }
        }
    }

    fn blob(&self, r: &Reference, d: &oci::Descriptor, store: &Store) -> Result<()> {
        match self {
            Upstream::Registry(reg) => reg.fetch_blob(&r.repository, &d.digest, Some(d.size), store),
            Upstream::Layout(dir) => {
                if store.contains(&d.digest) {
                    return Ok(());
                }
                let p = dir.join("blobs/sha256").join(d.digest.hex());
                let f = std::fs::File::open(&p).with_context(|| format!("image {r}: reading {}", p.display()))?;
                // One byte past the descriptor's size is enough to tell a longer blob.
                store.insert(&mut std::io::Read::take(f, d.size + 1), Some(&d.digest), &p.display().to_string())?;
                Ok(())
            }
        }
    }
}

/// A layout's `index.json` or manifest, at most [`crate::net::MANIFEST_MAX`] bytes, as from
/// a registry.
fn read_capped(path: &std::path::Path) -> Result<Vec<u8>> {
    let max = crate::net::MANIFEST_MAX;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(path)?, max + 1), &mut bytes)?;
    if bytes.len() as u64 > max {
        bail!("larger than the {max} bytes airlock reads for a manifest");
    }
    Ok(bytes)
}

pub struct ImageSource<'a> {
    pub settings: &'a BTreeMap<String, RegistrySettings>,
    /// The spec's directory: `layout:` paths are relative to it.
    pub spec_dir: std::path::PathBuf,
    pub net: NetOptions,
    clients: Mutex<HashMap<String, Arc<Registry>>>,
}

impl<'a> ImageSource<'a> {
    pub fn new(settings: &'a BTreeMap<String, RegistrySettings>, spec_dir: &std::path::Path, net: &NetOptions) -> Self {
        Self { settings, spec_dir: spec_dir.to_path_buf(), net: net.clone(), clients: Mutex::new(HashMap::new()) }
    }

    fn client(&self, host: &str) -> Result<Arc<Registry>> {
        let mut c = self.clients.lock().unwrap();
        if let Some(r) = c.get(host) {
            return Ok(r.clone());
        }
        let insecure = self.settings.get(host).is_some_and(|s| s.insecure);
        let r = Arc::new(Registry::with_options(host, insecure, &self.net)?);
        c.insert(host.to_string(), r.clone());
        Ok(r)
    }

    /// Fetch a manifest by reference into the store; returns its descriptor.
    fn manifest(
        &self,
        up: &Upstream,
        r: &Reference,
        reference: &str,
        want: Option<&Digest>,
        store: &Store,
    ) -> Result<BlobDescriptor> {
        let (bytes, ct) = up.manifest(r, reference)?;
        Self::insert_manifest(r, &bytes, ct.as_deref(), want, store)
    }

    /// Check manifest bytes against the digest that named them, and store them.
    fn insert_manifest(
        r: &Reference,
        bytes: &[u8],
        ct: Option<&str>,
        want: Option<&Digest>,
        store: &Store,
    ) -> Result<BlobDescriptor> {
        let digest = Digest::of(bytes);
        if let Some(w) = want
            && *w != digest
        {
            bail!("image {r}: manifest {w} does not match its digest (the registry sent bytes hashing to {digest})");
        }
        let media_type = oci::media_type_of(bytes, ct).with_context(|| format!("image {r}: manifest {digest}"))?;
        store.insert(&mut &bytes[..], Some(&digest), &format!("manifest {digest}"))?;
        Ok(BlobDescriptor { digest, size: bytes.len() as u64, media_type })
    }

    pub fn lock(&self, entry: &ImageEntry, store: &Store) -> Result<LockedImage> {
        let r = Reference::parse(&entry.reference)?;
        let up = match &entry.layout {
            Some(dir) => Upstream::Layout(if dir.is_absolute() { dir.clone() } else { self.spec_dir.join(dir) }),
            None => Upstream::Registry(self.client(&r.registry)?),
        };
        // The key first: a spec naming a missing or unusable key fails before any request.
        let key = match &entry.verify {
            Some(v) => {
                let path = if v.key.is_absolute() { v.key.clone() } else { self.spec_dir.join(&v.key) };
                Some(crate::sigstore::PublicKey::load(&path).with_context(|| format!("image {r}: `verify`"))?)
            }
            None => None,
        };
        let (top_bytes, top_type) = up.manifest(&r, &r.reference())?;
        let upstream_digest = Digest::of(&top_bytes);
        // What refers to the image, and the signature check, before anything is stored:
        // a refused image leaves nothing in the cache.
        let mut found = match &up {
            Upstream::Registry(reg) if entry.referrers || entry.verify.is_some() => {
                let only = entry.verify.is_none().then_some(&entry.referrer_types[..]);
                referrer::discover(reg, &r, &upstream_digest, only)?
            }
            _ => Vec::new(),
        };
        if let (Some(v), Some(key), Upstream::Registry(reg)) = (&entry.verify, &key, &up) {
            referrer::verify(reg, &r, &upstream_digest, &found, key, &v.key)?;
        }
        let top = Self::insert_manifest(&r, &top_bytes, top_type.as_deref(), r.digest.as_ref(), store)?;
        let mut blobs: Vec<BlobDescriptor> = Vec::new();
        let mut platforms = Vec::new();
        let mut images: Vec<BlobDescriptor> = Vec::new();
        let carried_top = match oci::parse(&top_bytes, &top.media_type)? {
            Parsed::Index { manifests } => {
                let keep: Vec<&oci::Descriptor> = manifests
                    .iter()
                    .filter(|d| {
                        entry.platforms.is_empty()
                            || d.platform.as_ref().is_some_and(|p| entry.platforms.iter().any(|w| p.matches(w)))
                    })
                    .collect();
                if keep.is_empty() {
                    let offered: Vec<String> =
                        manifests.iter().filter_map(|d| d.platform.as_ref().map(oci::Platform::name)).collect();
                    bail!("image {r}: no manifest for {:?}; the index offers {offered:?}", entry.platforms);
                }
                for d in &keep {
                    if let Some(p) = &d.platform {
                        platforms.push(p.name());
                    }
                    let child = self.manifest(&up, &r, &d.digest.to_string(), Some(&d.digest), store)?;
                    images.push(child);
                }
                if keep.len() == manifests.len() {
                    top.clone()
                } else {
                    // A new index with only the chosen platforms; everything else kept as is.
                    let mut v: serde_json::Value = serde_json::from_slice(&top_bytes)?;
                    let kept: Vec<serde_json::Value> = v["manifests"]
                        .as_array()
                        .map(|all| {
                            all.iter()
                                .filter(|m| keep.iter().any(|k| m["digest"].as_str() == Some(&k.digest.to_string())))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    v["manifests"] = serde_json::Value::Array(kept);
                    let bytes = serde_json::to_vec(&v)?;
                    let (digest, size) = store.insert(&mut bytes.as_slice(), None, "the filtered index")?;
                    BlobDescriptor { digest, size, media_type: top.media_type.clone() }
                }
            }
            Parsed::Image { .. } => {
                images.push(top.clone());
                top.clone()
            }
        };
        blobs.push(carried_top.clone());
        // Configs and layers of every image manifest, fetched in parallel.
        let mut wanted: Vec<oci::Descriptor> = Vec::new();
        for m in &images {
            if m.digest != carried_top.digest {
                blobs.push(m.clone());
            }
            let bytes = std::fs::read(store.blob_path_for_tool(&m.digest))?;
            match oci::parse(&bytes, &m.media_type).with_context(|| format!("image {r}: manifest {}", m.digest))? {
                Parsed::Image { config, layers } => {
                    if let Some(u) = layers.iter().find(|l| l.urls.is_some()) {
                        bail!(
                            "image {r}: layer {} is non-distributable (it lives at {}); airlock will not carry it",
                            u.digest,
                            u.urls.as_deref().unwrap_or_default().join(", ")
                        );
                    }
                    wanted.push(config);
                    wanted.extend(layers);
                }
                Parsed::Index { .. } => bail!("image {r}: nested indexes are not supported yet ({})", m.digest),
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        wanted.retain(|d| seen.insert(d.digest));
        wanted.par_iter().try_for_each(|d| {
            up.blob(&r, d, store).with_context(|| format!("image {r}"))?;
            let have = store.blob_size(&d.digest).unwrap_or(0);
            if have != d.size {
                bail!("image {r}: blob {} is {have} bytes, its descriptor says {}", d.digest, d.size);
            }
            Ok(())
        })?;
        // A single image manifest has its platform in its config: the filter applies too.
        if !entry.platforms.is_empty() && images.len() == 1 && images[0].digest == carried_top.digest {
            let bytes = std::fs::read(store.blob_path_for_tool(&wanted[0].digest))?;
            let cfg: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let platform = oci::Platform {
                os: cfg["os"].as_str().unwrap_or("").to_string(),
                architecture: cfg["architecture"].as_str().unwrap_or("").to_string(),
                variant: cfg["variant"].as_str().map(str::to_string),
            };
            if !entry.platforms.iter().any(|w| platform.matches(w)) {
                bail!("image {r} is for {} only; `platforms` asks for {:?}", platform.name(), entry.platforms);
            }
            platforms.push(platform.name());
        }
        for d in wanted {
            if !blobs.iter().any(|b| b.digest == d.digest) {
                blobs.push(BlobDescriptor { digest: d.digest, size: d.size, media_type: d.media_type });
            }
        }
        let mut referrers = Vec::new();
        if let (true, Upstream::Registry(reg)) = (entry.referrers, &up) {
            // Referrers of what the site gets: the carried top (when it is upstream's), and
            // each image manifest (signatures can be per platform).
            let mut subjects: Vec<Digest> = images.iter().map(|m| m.digest).collect();
            if carried_top.digest == upstream_digest && !subjects.contains(&upstream_digest) {
                subjects.insert(0, upstream_digest);
            }
            for subject in subjects {
                let listed = if subject == upstream_digest {
                    std::mem::take(&mut found)
                } else {
                    referrer::discover(reg, &r, &subject, Some(&entry.referrer_types))?
                };
                for f in listed {
                    if !entry.referrer_types.is_empty()
                        && !f.artifact_type.as_ref().is_some_and(|t| entry.referrer_types.contains(t))
                    {
                        continue;
                    }
                    let e = ImageEntry {
                        reference: format!("{}/{}{}", r.registry, r.repository, f.reference),
                        layout: None,
                        platforms: Vec::new(),
                        referrers: false,
                        referrer_types: Vec::new(),
                        verify: None,
                    };
                    let mut l =
                        self.lock(&e, store).with_context(|| format!("image {r}: its referrer {}", f.reference))?;
                    l.subject = Some(subject);
                    l.artifact_type = f.artifact_type;
                    if !referrers.iter().any(|o: &LockedImage| o.name == l.name) {
                        referrers.push(l);
                    }
                }
            }
            referrers.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(LockedImage {
            subject: None,
            artifact_type: None,
            referrers,
            name: entry.reference.clone(),
            repository: match &entry.layout {
                Some(dir) => format!("oci-layout:{}", dir.display()),
                None => format!("{}/{}", r.registry, r.repository),
            },
            tag: r.tag.clone(),
            upstream_digest,
            digest: carried_top.digest,
            platforms,
            blobs,
        })
    }
}
