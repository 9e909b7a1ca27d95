//! `sbom.cdx.json`: the bundle's software bill of materials, CycloneDX 1.6 JSON, so that
//! any SBOM tool (Dependency-Track, grype, cyclonedx-cli) reads what a bundle carries.
//!
//! One component per artifact, with its purl, SHA-256, upstream URL and the licence its
//! own metadata declares: a wheel's `License-Expression`, else its `License` field and
//! licence classifiers; an image config's `org.opencontainers.image.licenses` label.
//! Debian's Packages index names no licence, so a package carries its `Section` and
//! `Homepage` instead. Every blob of an image besides its top manifest (child manifests,
//! configs, layers) is a `file` component of its own, and a git repository's component
//! holds one component per carried commit (or tag object) naming its refs.
//!
//! Dependency edges come from what the lock recorded: for Python, which requirement
//! brought each file in (`chosenFor`: the first requirement that reached a project, so the
//! graph is the resolver's spanning tree); for Debian, each package's `Depends` and
//! `Pre-Depends` resolved within the carried closure (the alternative the lock recorded,
//! else the first one carried); an image depends on its blobs, a git repository on its
//! commits, and the bundle on everything nothing else depends on.
//!
//! Deterministic: components in manifest order (then blobs by digest), dependencies sorted,
//! no time but the bundle's own `created`, and a serial number derived from the content.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use super::manifest::{Artifact, BlobDescriptor, Kind, Manifest, SBOM_MEDIA_TYPE};
use crate::debian::deb822;
use crate::debian::resolve::{Dep, parse_relations};
use crate::debian::version::Op;
use crate::digest::Digest;
use crate::lock::{Lock, LockedDebian, PythonRole};
use crate::store::Store;

/// The most airlock reads of a wheel's METADATA or an image config for the SBOM.
const MAX_METADATA: u64 = 4 << 20;

/// The SBOM for `manifest`, made from `lock` (the dependency edges) and the cache (the
/// core metadata of Python files, image configs). Returns the bytes and their descriptor.
pub fn build(manifest: &Manifest, lock: &Lock, store: &Store) -> Result<(Vec<u8>, BlobDescriptor)> {
    let carried: BTreeSet<Digest> = manifest.blobs.iter().map(|b| b.digest).collect();
    let mut refs = Refs::default();
    let mut components = Vec::new();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut depended: BTreeSet<String> = BTreeSet::new();
    let mut roots: BTreeSet<String> = BTreeSet::new();
    // Image blobs other than the top manifest, each once, by digest.
    let mut image_blobs: BTreeMap<Digest, (String, String)> = BTreeMap::new();
    let media: BTreeMap<Digest, &str> = lock
        .images
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.referrers))
        .flat_map(|i| i.blobs.iter())
        .map(|b| (b.digest, b.media_type.as_str()))
        .collect();
    let sizes: BTreeMap<Digest, u64> = lock
        .images
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.referrers))
        .flat_map(|i| i.blobs.iter())
        .map(|b| (b.digest, b.size))
        .collect();
    // Artifact bom-refs by what the lock calls them.
    let mut python_refs: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut debian_refs: BTreeMap<(String, String), String> = BTreeMap::new();
    let build_only: BTreeSet<(&str, &str)> = lock
        .python
        .iter()
        .filter(|p| p.role == Some(PythonRole::Build))
        .map(|p| (p.index.as_str(), p.filename.as_str()))
        .collect();

    for a in &manifest.artifacts {
        let bom_ref = refs.unique(&artifact_ref(a));
        let mut c = base_component(a, &bom_ref, &carried);
        match a.kind {
            Kind::File => {
                roots.insert(bom_ref.clone());
            }
            Kind::Image => {
                roots.insert(bom_ref.clone());
                let configs: Vec<Digest> =
                    a.blobs.iter().skip(1).filter(|d| media.get(d).is_some_and(|m| is_config(m))).copied().collect();
                let mut labels = BTreeMap::new();
                for d in configs {
                    if let Some(bytes) = small_blob(store, &d)? {
                        for (k, v) in config_labels(&bytes) {
                            labels.entry(k).or_insert(v);
                        }
                    }
                }
                image_metadata(&mut c, &labels);
                // A signature, SBOM or attestation: what it is about, and what kind it is.
                if let Some(subject) = &a.subject {
                    push_property(&mut c, "airlock:oci:subject", &subject.to_string());
                }
                if let Some(t) = &a.artifact_type {
                    push_property(&mut c, "airlock:oci:artifactType", t);
                }
                let mut on = BTreeSet::new();
                for d in a.blobs.iter().skip(1) {
                    let m = media.get(d).copied().unwrap_or("application/octet-stream");
                    let role = if crate::oci::is_manifest_type(m) {
                        "manifest"
                    } else if is_config(m) {
                        "config"
                    } else {
                        "layer"
                    };
                    image_blobs.entry(*d).or_insert_with(|| (m.to_string(), role.to_string()));
                    on.insert(blob_ref(d));
                }
                depended.extend(on.iter().cloned());
                deps.entry(bom_ref.clone()).or_default().extend(on);
            }
            Kind::Git => {
                roots.insert(bom_ref.clone());
                let mut by_oid: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for (r, oid) in a.refs.iter().flatten() {
                    by_oid.entry(oid).or_default().push(r);
                }
                let mut nested = Vec::new();
                let mut on = BTreeSet::new();
                for (oid, names) in by_oid {
                    let r = refs.unique(&format!("{bom_ref}@{oid}"));
                    nested.push(json!({
                        "type": "library",
                        "bom-ref": r,
                        "name": a.name,
                        "version": oid,
                        "purl": super::manifest::git_purl(&a.name, Some(oid), &a.upstream),
                        "properties": [{ "name": "airlock:git:refs", "value": names.join(" ") }],
                    }));
                    deps.entry(r.clone()).or_default();
                    on.insert(r);
                }
                c.insert("components".into(), nested.into());
                deps.entry(bom_ref.clone()).or_default().extend(on);
            }
            Kind::Python => {
                if let Some(meta) = a.blobs.get(1)
                    && let Some(bytes) = small_blob(store, meta)?
                {
                    python_metadata(&mut c, &String::from_utf8_lossy(&bytes));
                }
                let index = a.index.clone().unwrap_or_default();
                if build_only.contains(&(index.as_str(), a.name.as_str())) {
                    // Carried only to build an sdist: not needed at run time.
                    c.insert("scope".into(), "excluded".into());
                    push_property(&mut c, "airlock:python:role", "build");
                }
                python_refs.insert((index, a.name.clone()), bom_ref.clone());
            }
            Kind::Debian => {
                if let Some(control) = &a.control
                    && let Ok(p) = deb822::parse_one(control, "control")
                {
                    debian_metadata(&mut c, &p);
                }
                let key = (a.suite.clone().unwrap_or_default(), deb_label(a));
                debian_refs.insert(key, bom_ref.clone());
            }
        }
        deps.entry(bom_ref).or_default();
        components.push(Value::Object(c));
    }
    for (d, (media_type, role)) in &image_blobs {
        let r = refs.unique(&blob_ref(d));
        let mut c = json!({
            "type": "file",
            "bom-ref": r,
            "name": d.to_string(),
            "hashes": [{ "alg": "SHA-256", "content": d.hex() }],
            "properties": [
                { "name": "airlock:oci:role", "value": role },
                { "name": "airlock:size", "value": sizes.get(d).copied().unwrap_or(0).to_string() },
            ],
        });
        if valid_mime(media_type) {
            c["mime-type"] = media_type.clone().into();
        }
        if !carried.contains(d) && manifest.base.is_some() {
            push_property(c.as_object_mut().expect("object"), "airlock:in-base", "true");
        }
        deps.entry(r).or_default();
        components.push(c);
    }
    python_edges(lock, &python_refs, &mut deps, &mut depended, &mut roots);
    for d in &lock.debian {
        debian_edges(d, &debian_refs, &mut deps, &mut depended, &mut roots)?;
    }

    let bundle_ref = refs.unique(&format!("bundle:{}", manifest.id()));
    deps.insert(bundle_ref.clone(), roots.into_iter().filter(|r| !depended.contains(r)).collect());
    let dependencies: Vec<Value> = deps
        .into_iter()
        .map(|(r, on)| {
            let on: Vec<String> = on.into_iter().filter(|o| *o != r).collect();
            if on.is_empty() { json!({ "ref": r }) } else { json!({ "ref": r, "dependsOn": on }) }
        })
        .collect();
    let mut metadata = json!({
        "timestamp": manifest.created,
        "tools": { "components": [{ "type": "application", "name": "airlock", "version": env!("CARGO_PKG_VERSION") }] },
        "component": { "type": "file", "bom-ref": bundle_ref, "name": manifest.name, "version": manifest.version },
    });
    if let Some(b) = &manifest.base {
        metadata["properties"] = json!([
            { "name": "airlock:base", "value": b.label() },
            { "name": "airlock:base:digest", "value": b.digest().to_string() },
        ]);
    }
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    });
    let provisional = serde_json::to_vec(&doc)?;
    doc["serialNumber"] = serial_number(&provisional).into();
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    let descriptor =
        BlobDescriptor { digest: Digest::of(&bytes), size: bytes.len() as u64, media_type: SBOM_MEDIA_TYPE.into() };
    Ok((bytes, descriptor))
}

/// `urn:uuid:` of a version-8 (RFC 9562 custom) UUID made from the SHA-256 of the content:
/// the same SBOM has the same serial number, another SBOM another one.
fn serial_number(content: &[u8]) -> String {
    let hex = Digest::of(content).hex();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("urn:uuid:{}", uuid::Uuid::from_bytes(b).hyphenated())
}

/// Unique bom-refs: a second artifact with the same natural ref gets `#2`.
#[derive(Default)]
struct Refs(BTreeSet<String>);

impl Refs {
    fn unique(&mut self, want: &str) -> String {
        let mut r = want.to_string();
        let mut n = 1;
        while !self.0.insert(r.clone()) {
            n += 1;
            r = format!("{want}#{n}");
        }
        r
    }
}

fn artifact_ref(a: &Artifact) -> String {
    match a.kind {
        Kind::File => format!("file:{}", a.name),
        Kind::Image => format!("image:{}", a.name),
        Kind::Git => format!("git:{}", a.name),
        Kind::Python => format!("python:{}/{}", a.index.as_deref().unwrap_or(""), a.name),
        Kind::Debian => format!("debian:{}/{}", a.suite.as_deref().unwrap_or(""), deb_label(a)),
    }
}

fn blob_ref(d: &Digest) -> String {
    format!("blob:{d}")
}

/// `name_version_arch`, as a .deb file is named.
fn deb_label(a: &Artifact) -> String {
    format!("{}_{}_{}", a.name, a.version.as_deref().unwrap_or(""), a.arch.as_deref().unwrap_or(""))
}

fn is_config(media_type: &str) -> bool {
    media_type.contains("config") || media_type == "application/vnd.docker.container.image.v1+json"
}

/// CycloneDX's `mime-type` pattern: `^[-+a-z0-9.]+/[-+a-z0-9.]+$`.
fn valid_mime(m: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-+.".contains(&b))
    };
    m.split_once('/').is_some_and(|(a, b)| ok(a) && ok(b))
}

fn push_property(c: &mut Map<String, Value>, name: &str, value: &str) {
    let props = c.entry("properties").or_insert_with(|| json!([]));
    props.as_array_mut().expect("array").push(json!({ "name": name, "value": value }));
}

fn push_reference(c: &mut Map<String, Value>, kind: &str, url: &str, comment: Option<&str>) {
    let Some(url) = super::provenance::absolute_url(url.trim()) else { return };
    let refs = c.entry("externalReferences").or_insert_with(|| json!([]));
    let list = refs.as_array_mut().expect("array");
    if list.iter().any(|r| r["type"] == kind && r["url"] == url.as_str()) {
        return;
    }
    let mut r = json!({ "type": kind, "url": url });
    if let Some(c) = comment {
        r["comment"] = c.into();
    }
    list.push(r);
}

/// What every artifact's component has: type, ref, name, version, purl, hash, upstream.
fn base_component(a: &Artifact, bom_ref: &str, carried: &BTreeSet<Digest>) -> Map<String, Value> {
    let (kind, name) = match a.kind {
        Kind::File => ("file", a.name.clone()),
        Kind::Image => ("container", a.upstream.clone()),
        Kind::Git => ("library", a.name.clone()),
        Kind::Python => ("library", a.project.clone().unwrap_or_else(|| a.name.clone())),
        Kind::Debian => ("library", a.name.clone()),
    };
    let mut c = Map::new();
    c.insert("type".into(), kind.into());
    c.insert("bom-ref".into(), bom_ref.into());
    c.insert("name".into(), name.into());
    let version = match a.kind {
        Kind::Image => a.version.clone().or_else(|| a.blobs.first().map(ToString::to_string)),
        _ => a.version.clone(),
    };
    if let Some(v) = version {
        c.insert("version".into(), v.into());
    }
    if let Some(d) = a.blobs.first() {
        c.insert("hashes".into(), json!([{ "alg": "SHA-256", "content": d.hex() }]));
    }
    c.insert("purl".into(), a.purl.clone().into());
    let url_kind = if a.kind == Kind::Git { "vcs" } else { "distribution" };
    push_reference(&mut c, url_kind, &a.upstream, None);
    push_property(&mut c, "airlock:kind", &a.kind.to_string());
    push_property(&mut c, "airlock:upstream", &a.upstream);
    for (name, v) in [
        ("airlock:arch", &a.arch),
        ("airlock:platform", &a.platform),
        ("airlock:path", &a.path.as_ref().map(ToString::to_string)),
        ("airlock:python:index", &a.index),
        ("airlock:python:file", &(a.kind == Kind::Python).then(|| a.name.clone())),
        ("airlock:python:requires-python", &a.requires_python),
        ("airlock:python:yanked", &a.yanked),
        ("airlock:debian:suite", &a.suite),
        ("airlock:debian:component", &a.component),
        ("airlock:oci:upstream-digest", &a.upstream_digest.map(|d| d.to_string())),
    ] {
        if let Some(v) = v {
            push_property(&mut c, name, v);
        }
    }
    if !a.blobs.iter().all(|d| carried.contains(d)) {
        push_property(&mut c, "airlock:in-base", "true");
    }
    c
}

/// A blob from the cache, if it is there and small (metadata, configs); checked against
/// its digest.
fn small_blob(store: &Store, d: &Digest) -> Result<Option<Vec<u8>>> {
    if !store.contains(d) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    store.open_blob(d)?.take(MAX_METADATA + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_METADATA {
        return Ok(None);
    }
    if Digest::of(&bytes) != *d {
        bail!("cache blob {d} is corrupt: delete it and run `airlock mirror` again");
    }
    Ok(Some(bytes))
}

/// An image config's labels (`config.Labels`, OCI and Docker alike).
fn config_labels(bytes: &[u8]) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
    v["config"]["Labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// The OCI annotation keys an image config may declare as labels.
fn image_metadata(c: &mut Map<String, Value>, labels: &BTreeMap<String, String>) {
    let get =
        |k: &str| labels.get(&format!("org.opencontainers.image.{k}")).map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(l) = get("licenses") {
        c.insert("licenses".into(), json!([{ "expression": l, "acknowledgement": "declared" }]));
    }
    if let Some(d) = get("description").or(get("title")) {
        c.insert("description".into(), d.into());
    }
    if let Some(v) = get("vendor") {
        c.insert("supplier".into(), json!({ "name": v }));
    }
    for (key, kind) in [("source", "vcs"), ("url", "website"), ("documentation", "documentation")] {
        if let Some(u) = get(key) {
            push_reference(c, kind, u, None);
        }
    }
    for key in ["version", "revision", "created", "base.name", "base.digest"] {
        if let Some(v) = get(key) {
            push_property(c, &format!("org.opencontainers.image.{key}"), v);
        }
    }
}

/// Core metadata headers (RFC 822 style, continuation lines folded), up to the body.
fn metadata_headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// A wheel's METADATA: licence, summary, home page and project URLs.
fn python_metadata(c: &mut Map<String, Value>, text: &str) {
    let headers = metadata_headers(text);
    let get = |k: &'static str| headers.iter().filter(move |(h, _)| h.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    if let Some(e) = get("License-Expression").next().filter(|e| !e.is_empty()) {
        c.insert("licenses".into(), json!([{ "expression": e, "acknowledgement": "declared" }]));
    } else {
        let mut names: Vec<String> = Vec::new();
        for cl in get("Classifier") {
            if let Some(rest) = cl.strip_prefix("License ::") {
                let name = rest.rsplit("::").next().unwrap_or(rest).trim();
                if !name.is_empty() && name != "OSI Approved" {
                    names.push(name.to_string());
                }
            }
        }
        if let Some(l) = get("License").next() {
            let first = l.lines().next().unwrap_or("").trim();
            if !first.is_empty() && !first.eq_ignore_ascii_case("UNKNOWN") {
                names.push(first.chars().take(200).collect());
            }
        }
        let mut seen = BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        if !names.is_empty() {
            let list: Vec<Value> =
                names.iter().map(|n| json!({ "license": { "name": n, "acknowledgement": "declared" } })).collect();
            c.insert("licenses".into(), list.into());
        }
    }
    if let Some(s) = get("Summary").next().filter(|s| !s.is_empty()) {
        c.insert("description".into(), s.into());
    }
    if let Some(h) = get("Home-page").next() {
        push_reference(c, "website", h, None);
    }
    for pu in get("Project-URL") {
        let Some((label, url)) = pu.split_once(',') else { continue };
        let l = label.trim().to_ascii_lowercase();
        let kind = match l.as_str() {
            "homepage" | "home" | "website" => "website",
            "source" | "source code" | "repository" | "code" | "github" => "vcs",
            "documentation" | "docs" => "documentation",
            "issues" | "bug tracker" | "tracker" | "issue tracker" | "bugs" => "issue-tracker",
            "changelog" | "changes" | "release notes" => "release-notes",
            _ => "other",
        };
        push_reference(c, kind, url, (kind == "other").then_some(label.trim()));
    }
}

/// A Debian control stanza: description, home page, section, source package.
fn debian_metadata(c: &mut Map<String, Value>, p: &deb822::Paragraph) {
    // The synopsis: the extended description is the lines after it.
    if let Some(d) = p.get("Description").and_then(|d| d.lines().next()).map(str::trim).filter(|d| !d.is_empty()) {
        c.insert("description".into(), d.into());
    }
    if let Some(h) = p.get("Homepage") {
        push_reference(c, "website", h, None);
    }
    for (field, name) in [
        ("Section", "airlock:debian:section"),
        ("Source", "airlock:debian:source"),
        ("Maintainer", "airlock:debian:maintainer"),
    ] {
        if let Some(v) = p.get(field).filter(|v| !v.is_empty()) {
            push_property(c, name, v);
        }
    }
}

/// A Python file's name and the environments it was chosen for.
type FileEnvs<'a> = (&'a str, BTreeSet<&'a str>);

/// Python edges from each file's `chosenFor` lines: `<env>: <requirement> (from <project>
/// <version>)`, `(from the requirements)`, and `... to build <sdist>` for build
/// requirements.
fn python_edges(
    lock: &Lock,
    refs: &BTreeMap<(String, String), String>,
    deps: &mut BTreeMap<String, BTreeSet<String>>,
    depended: &mut BTreeSet<String>,
    roots: &mut BTreeSet<String>,
) {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    // The files of each (index, project, version), with the environments they were chosen for.
    let mut files: BTreeMap<(&str, &str, &str), Vec<FileEnvs>> = BTreeMap::new();
    for q in &lock.python {
        let envs = q.chosen_for.iter().filter_map(|l| l.split_once(": ").map(|(e, _)| e)).collect();
        files.entry((&q.index, &q.project, &q.version)).or_default().push((&q.filename, envs));
    }
    for p in &lock.python {
        let Some(me) = refs.get(&(p.index.clone(), p.filename.clone())) else { continue };
        for line in &p.chosen_for {
            let Some((env, why)) = line.split_once(": ") else { continue };
            let (why, build_of) = match why.rsplit_once(" to build ") {
                Some((w, s)) => (w, Some(s)),
                None => (why, None),
            };
            let from = why.rsplit_once(" (from ").map(|(_, f)| f.trim_end_matches(')'));
            let parent = from.and_then(|f| {
                if f.starts_with("the ") {
                    return None;
                }
                let (name, version) = f.rsplit_once(' ')?;
                Some((norm(name.split('[').next().unwrap_or(name)), version.to_string()))
            });
            let mut parents: Vec<String> = match &parent {
                Some((name, version)) => files
                    .get(&(p.index.as_str(), name.as_str(), version.as_str()))
                    .into_iter()
                    .flatten()
                    .filter(|(_, envs)| envs.contains(env))
                    .filter_map(|(f, _)| refs.get(&(p.index.clone(), (*f).to_string())).cloned())
                    .collect(),
                None => Vec::new(),
            };
            if parents.is_empty()
                && let Some(sdist) = build_of
                && let Some(r) = refs.get(&(p.index.clone(), sdist.to_string()))
            {
                parents.push(r.clone());
            }
            if parents.is_empty() {
                roots.insert(me.clone());
                continue;
            }
            for parent in parents {
                if parent != *me {
                    deps.entry(parent).or_default().insert(me.clone());
                    depended.insert(me.clone());
                }
            }
        }
    }
}

/// One carried Debian package, as the edges need it.
struct Deb {
    name: String,
    version: String,
    arch: String,
    foreign: bool,
    provides: Vec<(String, Option<String>)>,
    relations: Vec<Vec<Dep>>,
    bom_ref: String,
}

/// Debian edges: each package's `Pre-Depends` and `Depends`, resolved among the packages
/// of the same entry.
fn debian_edges(
    d: &LockedDebian,
    refs: &BTreeMap<(String, String), String>,
    deps: &mut BTreeMap<String, BTreeSet<String>>,
    depended: &mut BTreeSet<String>,
    roots: &mut BTreeSet<String>,
) -> Result<()> {
    let mut debs = Vec::new();
    for p in &d.packages {
        let suite = if d.layout.is_merged() { d.name.clone() } else { p.suite.clone() };
        let Some(bom_ref) = refs.get(&(suite, format!("{}_{}_{}", p.package, p.version, p.arch))) else { continue };
        let para = deb822::parse_one(&p.control, "control")?;
        let mut relations = Vec::new();
        for field in ["Pre-Depends", "Depends"] {
            if let Some(text) = para.get(field) {
                relations.extend(parse_relations(text).unwrap_or_default());
            }
        }
        let mut provides = Vec::new();
        for alts in para.get("Provides").map(|p| parse_relations(p).unwrap_or_default()).unwrap_or_default() {
            for dep in alts {
                let v = match dep.version {
                    Some((Op::Eq, v)) => Some(v),
                    _ => None,
                };
                provides.push((dep.name, v));
            }
        }
        debs.push(Deb {
            name: p.package.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            foreign: para.get("Multi-Arch") == Some("foreign"),
            provides,
            relations,
            bom_ref: bom_ref.clone(),
        });
    }
    let label = |x: &Deb| format!("{} {} ({})", x.name, x.version, x.arch);
    let chosen: BTreeMap<(&str, &str), &str> =
        d.alternatives.iter().map(|c| ((c.package.as_str(), c.relation.as_str()), c.chosen.as_str())).collect();
    let meets = |cand: &Deb, dep: &Dep, from: &str| {
        let arch_ok = from == "all"
            || cand.arch == "all"
            || cand.arch == from
            || cand.foreign
            || matches!(dep.qualifier.as_deref(), Some("any" | "native"));
        if !arch_ok {
            return false;
        }
        if cand.name == dep.name {
            return dep.version.as_ref().is_none_or(|(op, v)| op.holds(&cand.version, v));
        }
        cand.provides.iter().any(|(n, pv)| {
            n == &dep.name
                && match (&dep.version, pv) {
                    (None, _) => true,
                    (Some((op, v)), Some(pv)) => op.holds(pv, v),
                    (Some(_), None) => false,
                }
        })
    };
    // Candidates by the names they answer to: their own and what they provide.
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, x) in debs.iter().enumerate() {
        by_name.entry(&x.name).or_default().push(i);
        for (n, _) in &x.provides {
            by_name.entry(n).or_default().push(i);
        }
    }
    let by_label: BTreeMap<String, usize> = debs.iter().enumerate().map(|(i, x)| (label(x), i)).collect();
    let candidates = |name: &str| by_name.get(name).into_iter().flatten().map(|&i| &debs[i]);
    let mut incoming: BTreeSet<&str> = BTreeSet::new();
    for p in &debs {
        let mine = label(p);
        for alts in &p.relations {
            let text = alts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ");
            let targets: Vec<&Deb> = match chosen.get(&(mine.as_str(), text.as_str())) {
                Some(c) => by_label.get(*c).map(|&i| &debs[i]).into_iter().collect(),
                None => alts
                    .iter()
                    .map(|dep| candidates(&dep.name).filter(|x| meets(x, dep, &p.arch)).collect::<Vec<_>>())
                    .find(|v| !v.is_empty())
                    .unwrap_or_default(),
            };
            for t in targets {
                if t.bom_ref != p.bom_ref {
                    deps.entry(p.bom_ref.clone()).or_default().insert(t.bom_ref.clone());
                    depended.insert(t.bom_ref.clone());
                    incoming.insert(&t.bom_ref);
                }
            }
        }
    }
    for p in &debs {
        if !incoming.contains(p.bom_ref.as_str()) {
            roots.insert(p.bom_ref.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_licences_prefer_the_expression_then_classifiers_and_the_field() {
        let mut c = Map::new();
        python_metadata(
            &mut c,
            "Metadata-Version: 2.4\nName: a\nLicense-Expression: MIT OR Apache-2.0\nClassifier: License :: OSI Approved :: MIT License\n\nbody: x\n",
        );
        assert_eq!(c["licenses"], json!([{ "expression": "MIT OR Apache-2.0", "acknowledgement": "declared" }]));
        let mut c = Map::new();
        python_metadata(
            &mut c,
            "Name: a\nLicense: BSD 3-Clause\n        Copyright (c) someone\nClassifier: License :: OSI Approved :: BSD License\nHome-page: https://a.example/\nProject-URL: Source, https://git.example/a\nProject-URL: Funding, https://fund.example/\nSummary: the a\n",
        );
        let names: Vec<&str> =
            c["licenses"].as_array().unwrap().iter().map(|l| l["license"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["BSD License", "BSD 3-Clause"]);
        assert_eq!(c["description"], "the a");
        let refs = &c["externalReferences"];
        assert_eq!(refs[0], json!({ "type": "website", "url": "https://a.example/" }));
        assert_eq!(refs[1], json!({ "type": "vcs", "url": "https://git.example/a" }));
        assert_eq!(refs[2], json!({ "type": "other", "url": "https://fund.example/", "comment": "Funding" }));
        let mut c = Map::new();
        python_metadata(&mut c, "Name: a\nLicense: UNKNOWN\nHome-page: not a url\n");
        assert!(!c.contains_key("licenses") && !c.contains_key("externalReferences"));
    }

    #[test]
    fn image_labels_give_licence_and_links() {
        let config = br#"{"config":{"Labels":{"org.opencontainers.image.licenses":"Apache-2.0","org.opencontainers.image.source":"https://git.example/img","org.opencontainers.image.vendor":"Example"}}}"#;
        let mut c = Map::new();
        image_metadata(&mut c, &config_labels(config));
        assert_eq!(c["licenses"][0]["expression"], "Apache-2.0");
        assert_eq!(c["supplier"]["name"], "Example");
        assert_eq!(c["externalReferences"][0], json!({ "type": "vcs", "url": "https://git.example/img" }));
    }

    #[test]
    fn debian_stanzas_give_section_and_homepage() {
        let p = deb822::parse_one(
            "Package: p\nVersion: 1\nArchitecture: all\nSection: utils\nHomepage: https://p.example/\nDescription: the p\n more\n",
            "t",
        )
        .unwrap();
        let mut c = Map::new();
        debian_metadata(&mut c, &p);
        assert_eq!(c["description"], "the p");
        assert_eq!(c["externalReferences"][0], json!({ "type": "website", "url": "https://p.example/" }));
        assert_eq!(c["properties"][0], json!({ "name": "airlock:debian:section", "value": "utils" }));
    }

    #[test]
    fn serial_numbers_are_uuids_of_the_content() {
        let a = serial_number(b"a");
        assert_eq!(a, serial_number(b"a"));
        assert_ne!(a, serial_number(b"b"));
        let u = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid::Uuid::parse_str(u).unwrap().get_version_num(), 8);
        assert!(valid_mime("application/vnd.oci.image.layer.v1.tar+gzip") && !valid_mime("Application/x y"));
    }
}
