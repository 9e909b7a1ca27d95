//! OCI artifacts by version range: a registry as the resolver's [`Index`] (tags, and each
//! version's `manifest.yaml` read from its layer), and the resolution locked as images.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};

use crate::artifact;
use crate::digest::Digest;
use crate::extensions::{self, ExtensionManifest, Index, Meta, Resolution, Root};
use crate::lock::LockedOciArtifact;
use crate::oci;
use crate::registry::Registry;
use crate::spec::{ImageEntry, Spec};
use crate::store::Store;

use super::oci::ImageSource;

/// `manifest.yaml` larger than this is refused.
const MANIFEST_YAML_MAX: u64 = 1 << 20;

type Connect<'a> = dyn Fn(&str) -> Result<Registry> + Sync + 'a;

/// Registries read through, one client per host; layers land in `store`.
pub struct RegistryIndex<'a> {
    connect: Box<Connect<'a>>,
    clients: Mutex<HashMap<String, Arc<Registry>>>,
    store: &'a Store,
}

impl<'a> RegistryIndex<'a> {
    pub fn new(store: &'a Store, connect: impl Fn(&str) -> Result<Registry> + Sync + 'a) -> Self {
        Self { connect: Box::new(connect), clients: Mutex::new(HashMap::new()), store }
    }

    fn client(&self, repository: &str) -> Result<(Arc<Registry>, String)> {
        let (host, path) =
            repository.split_once('/').ok_or_else(|| anyhow!("`{repository}` is not host[:port]/path"))?;
        let mut c = self.clients.lock().unwrap();
        let reg = match c.get(host) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new((self.connect)(host)?);
                c.insert(host.to_string(), r.clone());
                r
            }
        };
        Ok((reg, path.to_string()))
    }
}

impl Index for RegistryIndex<'_> {
    fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let (reg, path) = self.client(repository)?;
        reg.tags(&path)
    }

    fn meta(&self, repository: &str, tag: &str) -> Result<Meta> {
        let (reg, path) = self.client(repository)?;
        let (bytes, ct) = reg.get_manifest(&path, tag)?;
        let digest = Digest::of(&bytes);
        let mt = oci::media_type_of(&bytes, ct.as_deref())?;
        if mt != oci::OCI_MANIFEST && mt != oci::DOCKER_MANIFEST {
            bail!("a {mt}, not an artifact manifest");
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).context("the manifest")?;
        let artifact_type = v["artifactType"].as_str().map(str::to_string);
        let mut yaml = None;
        for l in v["layers"].as_array().into_iter().flatten() {
            let lmt = l["mediaType"].as_str().unwrap_or("");
            let ann: std::collections::BTreeMap<String, String> = l["annotations"]
                .as_object()
                .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            if !artifact::is_archive(lmt, &ann) {
                continue;
            }
            let d: Digest = l["digest"].as_str().ok_or_else(|| anyhow!("a layer without a digest"))?.parse()?;
            reg.fetch_blob(&path, &d, l["size"].as_u64(), self.store)?;
            if let Some(y) = artifact::read_entry(self.store.open_blob(&d)?, lmt, "manifest.yaml", MANIFEST_YAML_MAX)
                .with_context(|| format!("layer {d}"))?
            {
                yaml = Some(y);
                break;
            }
        }
        // An artifact without manifest.yaml depends on nothing.
        let dependencies = match yaml {
            Some(y) => ExtensionManifest::parse(&y)?.dependencies(),
            None => Vec::new(),
        };
        Ok(Meta { digest, artifact_type, dependencies })
    }
}

/// Resolve the spec's `artifacts:` and lock each chosen version as an image (fetched into
/// `store`).
pub fn lock(
    spec: &Spec,
    images: &ImageSource<'_>,
    index: &RegistryIndex<'_>,
    store: &Store,
) -> Result<(Resolution, Vec<LockedOciArtifact>)> {
    let roots = spec
        .artifacts
        .iter()
        .map(|a| Ok(Root { repository: a.repository.clone(), range: a.range()? }))
        .collect::<Result<Vec<_>>>()?;
    let res = extensions::resolve(&roots, "spec", index)?;
    let mut out = Vec::new();
    for a in res.artifacts.values() {
        let what = format!("artifact {}:{}", a.repository, a.tag);
        let entry = ImageEntry {
            reference: format!("{}:{}", a.repository, a.tag),
            layout: None,
            platforms: Vec::new(),
            referrers: false,
            referrer_types: Vec::new(),
            verify: None,
        };
        let mut image = images.lock(&entry, store).with_context(|| what.clone())?;
        if image.upstream_digest != a.digest {
            bail!(
                "{what}: the tag moved while mirroring (from {} to {}); run mirror again",
                a.digest,
                image.upstream_digest
            );
        }
        image.artifact_type = a.artifact_type.clone();
        out.push(LockedOciArtifact {
            repository: a.repository.clone(),
            version: a.version.to_string(),
            tag: a.tag.clone(),
            digest: a.digest,
            dependencies: a.dependencies.iter().cloned().collect(),
            required_by: a.required_by.clone(),
            image,
        });
    }
    Ok((res, out))
}
