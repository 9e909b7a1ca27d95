//! `airlock diff`: what changed between two bundles, manifests or site receipts.
//!
//! Each side is reduced to the same shape ([`Side`]): its artifacts keyed by where they
//! land at a site, and every blob it names. Keys are chosen so that the two kinds of
//! document line up: a file by its path; an image by repository and tag, without the
//! registry host (the site's registry has none); a git repository by name; a Python file
//! by index, project and file name without its version, so that a new release of the same
//! wheel is a change from one version to the other; a Debian package by suite, name and
//! architecture. Comparing keys gives added, removed and changed artifacts; comparing
//! blob sets gives what one side names and the other lacks, with bytes where sizes are
//! known (a receipt knows every size, a differential bundle only those it carries).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::bundle::manifest::{Base, Kind, Manifest};
use crate::digest::Digest;
use crate::receipt::Receipt;

/// One artifact of a side.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: Kind,
    /// As the document names it (an image's full reference in a bundle).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What it is (files, images, Python files, Debian packages): its first blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// For git: every ref and its object.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: BTreeMap<String, String>,
    /// For git from a bundle: the upstream URL (the cache's repository for it can tell
    /// fast-forwards from forced moves) and the git bundle carried, if any.
    #[serde(skip)]
    pub upstream: Option<String>,
    #[serde(skip)]
    pub git_bundle: Option<Digest>,
}

/// A bundle, manifest or receipt, reduced for comparison.
#[derive(Debug, Clone)]
pub struct Side {
    /// `bundle`, `manifest` or `receipt`.
    pub what: &'static str,
    /// `<name>-<version>`, or `site <name> (<created>)`.
    pub label: String,
    pub digest: Digest,
    /// Who signed it, or why it is not trusted.
    pub signature: String,
    pub base: Option<Base>,
    pub artifacts: BTreeMap<(Kind, String), Item>,
    /// Every blob named, and its size where known.
    pub blobs: BTreeMap<Digest, Option<u64>>,
}

/// The key of a Python file: `<index>/<project>/<file name without its version>`.
pub fn python_key(index: &str, project: &str, filename: &str) -> (String, Option<String>) {
    let (stem, ext) = if let Some(s) = filename.strip_suffix(".whl") {
        (s, ".whl")
    } else if let Some((s, ext)) =
        [".tar.gz", ".zip", ".tar.bz2", ".tgz"].iter().find_map(|e| Some((filename.strip_suffix(e)?, *e)))
    {
        (s, ext)
    } else {
        return (format!("{index}/{project}/{filename}"), None);
    };
    let parts: Vec<&str> = stem.split('-').collect();
    let (rest, version) = if ext == ".whl" && (parts.len() == 5 || parts.len() == 6) {
        // name-version(-build)?-python-abi-platform: drop the version and any build tag.
        let tags = &parts[parts.len() - 3..];
        (format!("{}-{}", parts[0], tags.join("-")), Some(parts[1].to_string()))
    } else if let Some((name, version)) = stem.rsplit_once('-') {
        (name.to_string(), Some(version.to_string()))
    } else {
        (stem.to_string(), None)
    };
    (format!("{index}/{project}/{rest}{ext}"), version)
}

/// An image's key: `<repository>:<tag>` or `<repository>@<digest>`, no registry host.
fn image_key(name: &str) -> String {
    match crate::oci::Reference::parse(name) {
        Ok(r) => match (&r.tag, &r.digest) {
            (Some(t), _) => format!("{}:{t}", r.repository),
            (None, Some(d)) => format!("{}@{d}", r.repository),
            _ => name.to_string(),
        },
        Err(_) => name.to_string(),
    }
}

impl Side {
    pub fn from_manifest(m: &Manifest, what: &'static str, digest: Digest, signature: String) -> Self {
        let mut blobs: BTreeMap<Digest, Option<u64>> = m.blobs.iter().map(|b| (b.digest, Some(b.size))).collect();
        let mut artifacts = BTreeMap::new();
        for a in &m.artifacts {
            for d in &a.blobs {
                blobs.entry(*d).or_insert(None);
            }
            let (key, version) = match a.kind {
                Kind::File => (a.path.as_ref().map_or_else(|| a.name.clone(), ToString::to_string), None),
                Kind::Image => (image_key(&a.name), a.version.clone()),
                Kind::Git => (a.name.clone(), a.version.clone()),
                Kind::Python => {
                    let (k, _) =
                        python_key(a.index.as_deref().unwrap_or(""), a.project.as_deref().unwrap_or(""), &a.name);
                    (k, a.version.clone())
                }
                Kind::Debian => (
                    format!("{}/{}/{}", a.suite.as_deref().unwrap_or(""), a.name, a.arch.as_deref().unwrap_or("")),
                    a.version.clone(),
                ),
            };
            let item = Item {
                kind: a.kind,
                name: a.name.clone(),
                version,
                digest: if a.kind == Kind::Git { None } else { a.blobs.first().copied() },
                refs: a.refs.clone().unwrap_or_default(),
                upstream: (a.kind == Kind::Git).then(|| a.upstream.clone()),
                git_bundle: if a.kind == Kind::Git { a.blobs.first().copied() } else { None },
            };
            artifacts.insert((a.kind, key), item);
        }
        Side { what, label: m.id(), digest, signature, base: m.base.clone(), artifacts, blobs }
    }

    pub fn from_receipt(r: &Receipt, digest: Digest, signature: String) -> Self {
        let blobs = r.all_blobs().map(|(d, s)| (*d, Some(s))).collect();
        let mut artifacts = BTreeMap::new();
        let item = |kind: Kind, name: String, version: Option<String>, digest: Option<Digest>| Item {
            kind,
            name,
            version,
            digest,
            refs: BTreeMap::new(),
            upstream: None,
            git_bundle: None,
        };
        for paths in r.files.values() {
            for (p, d) in paths {
                artifacts.entry((Kind::File, p.clone())).or_insert_with(|| item(Kind::File, p.clone(), None, Some(*d)));
            }
        }
        for (repo, tags) in &r.images {
            for (tag, d) in tags {
                let key = format!("{repo}:{tag}");
                artifacts
                    .entry((Kind::Image, key.clone()))
                    .or_insert_with(|| item(Kind::Image, key, Some(tag.clone()), Some(*d)));
            }
        }
        for (name, g) in &r.git {
            let version = g.head.as_ref().and_then(|h| g.refs.get(h)).cloned();
            let mut i = item(Kind::Git, name.clone(), version, None);
            i.refs = g.refs.clone();
            artifacts.insert((Kind::Git, name.clone()), i);
        }
        for (index, projects) in &r.python {
            for (project, files) in projects {
                for (file, d) in files {
                    let (key, version) = python_key(index, project, file);
                    artifacts
                        .entry((Kind::Python, key))
                        .or_insert_with(|| item(Kind::Python, file.clone(), version, Some(*d)));
                }
            }
        }
        for suites in r.apt.values() {
            for (suite, s) in suites {
                for p in &s.packages {
                    let key = format!("{suite}/{}/{}", p.name, p.arch);
                    artifacts
                        .entry((Kind::Debian, key))
                        .or_insert_with(|| item(Kind::Debian, p.name.clone(), Some(p.version.clone()), Some(p.digest)));
                }
            }
        }
        Side {
            what: "receipt",
            label: format!("site {} ({})", r.site, r.created),
            digest,
            signature,
            base: None,
            artifacts,
            blobs,
        }
    }
}

/// How one git ref differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefChange {
    #[serde(rename = "ref")]
    pub name: String,
    /// `added`, `deleted`, `moved` (a fast-forward), `forced` (not a fast-forward, or a
    /// tag that moved), or `changed` (no repository at hand has the commits to tell).
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// One side of a change.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    pub from: Version,
    pub to: Version,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<RefChange>,
}

/// Blobs that one side names and the other does not.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobSet {
    pub count: usize,
    /// The sum of the sizes known.
    pub bytes: u64,
    /// How many have no known size (left to a differential bundle's base).
    pub unknown_size: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Blobs {
    pub added: BlobSet,
    pub removed: BlobSet,
    pub shared: BlobSet,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub added: Vec<Item>,
    pub removed: Vec<Item>,
    pub changed: Vec<Change>,
    pub unchanged: usize,
    pub blobs: Blobs,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compare `a` with `b`. `fast_forward(item_a, item_b, old, new)` says whether a branch
/// moved forward (`Some(true)`), was rewritten (`Some(false)`), or cannot be told (`None`).
pub fn compare(a: &Side, b: &Side, fast_forward: &mut dyn FnMut(&Item, &Item, &str, &str) -> Option<bool>) -> Diff {
    let mut d =
        Diff { added: Vec::new(), removed: Vec::new(), changed: Vec::new(), unchanged: 0, blobs: Blobs::default() };
    for (key, x) in &a.artifacts {
        let Some(y) = b.artifacts.get(key) else {
            d.removed.push(x.clone());
            continue;
        };
        let refs = if key.0 == Kind::Git { ref_changes(x, y, fast_forward) } else { Vec::new() };
        if x.digest == y.digest && x.version == y.version && refs.is_empty() {
            d.unchanged += 1;
            continue;
        }
        if key.0 == Kind::Git && refs.is_empty() {
            // Same refs; only how HEAD is described differs.
            d.unchanged += 1;
            continue;
        }
        d.changed.push(Change {
            kind: key.0,
            name: y.name.clone(),
            from: Version { version: x.version.clone(), digest: x.digest },
            to: Version { version: y.version.clone(), digest: y.digest },
            refs,
        });
    }
    d.added = b.artifacts.iter().filter(|(k, _)| !a.artifacts.contains_key(k)).map(|(_, i)| i.clone()).collect();
    let add = |set: &mut BlobSet, size: Option<u64>| {
        set.count += 1;
        match size {
            Some(n) => set.bytes += n,
            None => set.unknown_size += 1,
        }
    };
    for (digest, size) in &b.blobs {
        match a.blobs.get(digest) {
            None => add(&mut d.blobs.added, *size),
            Some(other) => add(&mut d.blobs.shared, size.or(*other)),
        }
    }
    for (digest, size) in &a.blobs {
        if !b.blobs.contains_key(digest) {
            add(&mut d.blobs.removed, *size);
        }
    }
    d
}

fn ref_changes(
    a: &Item,
    b: &Item,
    fast_forward: &mut dyn FnMut(&Item, &Item, &str, &str) -> Option<bool>,
) -> Vec<RefChange> {
    let names: BTreeSet<&String> = a.refs.keys().chain(b.refs.keys()).collect();
    let mut out = Vec::new();
    for r in names {
        let (old, new) = (a.refs.get(r), b.refs.get(r));
        let change = match (old, new) {
            (Some(o), Some(n)) if o == n => continue,
            (None, Some(_)) => "added",
            (Some(_), None) => "deleted",
            (Some(_), Some(_)) if r.starts_with("refs/tags/") => "forced",
            (Some(o), Some(n)) => match fast_forward(a, b, o, n) {
                Some(true) => "moved",
                Some(false) => "forced",
                None => "changed",
            },
            (None, None) => continue,
        };
        out.push(RefChange { name: r.clone(), change, from: old.cloned(), to: new.cloned() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_files_are_keyed_without_their_version() {
        assert_eq!(
            python_key("pypi", "aldemo-lib", "aldemo_lib-1.1-py3-none-any.whl"),
            ("pypi/aldemo-lib/aldemo_lib-py3-none-any.whl".into(), Some("1.1".into()))
        );
        assert_eq!(
            python_key("pypi", "aldemo-lib", "aldemo_lib-1.2-1-py3-none-any.whl").0,
            "pypi/aldemo-lib/aldemo_lib-py3-none-any.whl"
        );
        assert_eq!(
            python_key("pypi", "aldemo-lib", "aldemo_lib-1.1.tar.gz"),
            ("pypi/aldemo-lib/aldemo_lib.tar.gz".into(), Some("1.1".into()))
        );
    }

    fn git(refs: &[(&str, &str)]) -> Item {
        Item {
            kind: Kind::Git,
            name: "r".into(),
            version: None,
            digest: None,
            refs: refs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            upstream: None,
            git_bundle: None,
        }
    }

    #[test]
    fn refs_are_added_deleted_moved_or_forced() {
        let a =
            git(&[("refs/heads/main", "1"), ("refs/heads/old", "2"), ("refs/tags/v1", "3"), ("refs/heads/wip", "5")]);
        let b =
            git(&[("refs/heads/main", "4"), ("refs/tags/v1", "6"), ("refs/heads/new", "7"), ("refs/heads/wip", "8")]);
        let mut ff = |_: &Item, _: &Item, old: &str, _: &str| match old {
            "1" => Some(true),
            "5" => None,
            _ => Some(false),
        };
        let got: Vec<(String, &str)> = ref_changes(&a, &b, &mut ff).into_iter().map(|c| (c.name, c.change)).collect();
        assert_eq!(
            got,
            [
                ("refs/heads/main".to_string(), "moved"),
                ("refs/heads/new".to_string(), "added"),
                ("refs/heads/old".to_string(), "deleted"),
                ("refs/heads/wip".to_string(), "changed"),
                ("refs/tags/v1".to_string(), "forced"),
            ]
        );
    }
}
