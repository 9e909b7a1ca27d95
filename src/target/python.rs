//! Python distributions into a package index: the store's own static index
//! (`<store>/repository/<index>/`: `files/<project>/<file>` with `<file>.metadata`, and
//! `simple/<project>/` pages as PEP 503 HTML `index.html` and PEP 691 JSON `index.json`),
//! which `airlock serve` or any static web server serves; or any server that takes
//! twine's legacy upload (pypiserver, Nexus pypi-hosted, devpi, Artifactory).
//!
//! Files already in the index are kept: each later bundle adds to the union, and each
//! project's page is rebuilt from its JSON page plus the new files. A file name that holds
//! other bytes is a conflict, refused before anything is written. Pages are written after
//! the files they name, the root page last, each atomically.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::StatusCode;
use reqwest::blocking::multipart::{Form, Part};

use crate::bundle::manifest::{Artifact, Kind};
use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::net::{self, Failure, Net, NetOptions};
use crate::progress::Reporter;
use crate::pypi::{self, Metadata, PageFile, ProjectPage};
use crate::relpath::RelPath;
use crate::store::{PathState, Store, atomic};

use super::{Placed, Target};

/// One distribution file: of a bundle, or uploaded to `airlock serve`.
#[derive(Clone)]
pub struct Dist {
    pub index: String,
    pub project: String,
    pub filename: String,
    pub digest: Digest,
    pub size: u64,
    pub metadata: Option<(Digest, u64)>,
    pub requires_python: Option<String>,
    pub yanked: Option<String>,
}

fn dists(bundle: &VerifiedBundle, store: &Store, index_override: Option<&str>) -> Result<Vec<Dist>> {
    let sizes: std::collections::HashMap<_, _> = bundle.manifest.blobs.iter().map(|b| (b.digest, b.size)).collect();
    let size_of = |d: &Digest| sizes.get(d).copied().or_else(|| store.blob_size(d));
    let mut out = Vec::new();
    for a in bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Python) {
        let Artifact { name, index: Some(index), project: Some(project), blobs, .. } = a else { continue };
        let digest = blobs[0];
        let Some(size) = size_of(&digest) else {
            bail!(
                "{name}: blob {digest} is neither in this bundle nor in the store: import the base bundle `{}` first",
                bundle.manifest.base.as_ref().map_or_else(|| "?".to_string(), |b| format!("{}-{}", b.name, b.version))
            );
        };
        let metadata = blobs.get(1).and_then(|d| Some((*d, size_of(d)?)));
        out.push(Dist {
            index: index_override.unwrap_or(index).to_string(),
            project: project.clone(),
            filename: name.clone(),
            digest,
            size,
            metadata,
            requires_python: a.requires_python.clone(),
            yanked: a.yanked.clone(),
        });
    }
    Ok(out)
}

pub fn file_path(d: &Dist) -> Result<RelPath> {
    RelPath::new(&format!("files/{}/{}", d.project, d.filename)).map_err(|e| anyhow!("{}: {e}", d.filename))
}

pub fn metadata_path(d: &Dist) -> Result<RelPath> {
    RelPath::new(&format!("files/{}/{}.metadata", d.project, d.filename)).map_err(|e| anyhow!("{}: {e}", d.filename))
}

/// The store's own static index.
pub struct StoreIndex<'a> {
    pub store: &'a Store,
    /// Put every file into this index instead of the one the spec named.
    pub index: Option<String>,
}

pub struct IndexPlan {
    add: Vec<Dist>,
    present: Vec<Dist>,
}

impl Target for StoreIndex<'_> {
    type Plan = IndexPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<IndexPlan> {
        let mut plan = IndexPlan { add: Vec::new(), present: Vec::new() };
        // With --python-index, files of several spec entries meet in one index: the same
        // file name twice is fine only with the same bytes.
        let mut seen: BTreeMap<(String, String), Digest> = BTreeMap::new();
        for d in dists(bundle, self.store, self.index.as_deref())? {
            match seen.insert((d.index.clone(), d.filename.clone()), d.digest) {
                Some(other) if other != d.digest => bail!(
                    "the bundle has two files named {} for python index `{}` ({other} and {}); nothing was changed",
                    d.filename,
                    d.index,
                    d.digest
                ),
                Some(_) => continue,
                None => {}
            }
            let path = file_path(&d)?;
            match self.store.repository_state(&d.index, &path, &d.digest)? {
                PathState::Missing => plan.add.push(d),
                PathState::Same => plan.present.push(d),
                PathState::Different(have) => bail!(
                    "python index `{}` already has {} with other content ({have}, the bundle has {}); \
                     nothing was changed: a published file must never change",
                    d.index,
                    d.filename,
                    d.digest
                ),
            }
        }
        Ok(plan)
    }

    fn load(&self, plan: IndexPlan, _bundle: &VerifiedBundle, reporter: &Reporter) -> Result<Vec<Placed>> {
        let bar = reporter.items("python", plan.add.len() as u64);
        let mut added: Vec<(String, RelPath)> = Vec::new();
        let placing = (|| -> Result<()> {
            for d in &plan.add {
                let path = file_path(d)?;
                self.store.place_in_repository(&d.index, &path, &d.digest)?;
                added.push((d.index.clone(), path));
                if let Some((m, _)) = d.metadata {
                    let mp = metadata_path(d)?;
                    if matches!(self.store.repository_state(&d.index, &mp, &m)?, PathState::Missing) {
                        self.store.place_in_repository(&d.index, &mp, &m)?;
                        added.push((d.index.clone(), mp));
                    }
                }
                bar.inc(1);
            }
            Ok(())
        })();
        if let Err(e) = placing {
            for (index, path) in added.iter().rev() {
                let _ = self.store.remove_from_repository(index, path);
            }
            return Err(e.context("importing Python files; the files added were removed again"));
        }
        // Every page that names a file of this bundle, even one already present: a page
        // lost in an interrupted import is rebuilt on the re-run. Once pages are being
        // written the files stay (a page may already list them); running the import again
        // finds them present and finishes the pages.
        let all: Vec<&Dist> = plan.add.iter().chain(&plan.present).collect();
        publish(self.store, &all).context("writing the Python index pages; run the import again to finish them")?;
        let location =
            |d: &Dist| self.store.repository_dir(&d.index).join("simple").join(&d.project).display().to_string() + "/";
        let mut placed: Vec<Placed> = plan
            .add
            .iter()
            .map(|d| Placed { kind: "python".into(), name: d.filename.clone(), action: "added", location: location(d) })
            .collect();
        placed.extend(plan.present.iter().map(|d| Placed {
            kind: "python".into(),
            name: d.filename.clone(),
            action: "present",
            location: location(d),
        }));
        Ok(placed)
    }
}

/// Rebuild the pages that list `dists` (whose files are in place): each touched project's
/// page from its JSON page plus these files, then each touched index's root page.
pub fn publish(store: &Store, dists: &[&Dist]) -> Result<()> {
    let mut touched: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in dists {
        touched.entry(&d.index).or_default().insert(&d.project);
    }
    for (index, projects) in touched {
        for project in projects {
            let files: Vec<&Dist> =
                dists.iter().copied().filter(|d| d.index == index && d.project == project).collect();
            write_project(store, index, project, &files)?;
        }
        write_root(store, index)?;
    }
    Ok(())
}

fn write_project(store: &Store, index: &str, project: &str, new: &[&Dist]) -> Result<()> {
    let dir = store.repository_dir(index).join("simple").join(project);
    let json_path = dir.join("index.json");
    let mut files: Vec<PageFile> = match std::fs::read(&json_path) {
        Ok(b) => {
            serde_json::from_slice::<ProjectPage>(&b).with_context(|| format!("reading {}", json_path.display()))?.files
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", json_path.display())),
    };
    for d in new {
        if files.iter().any(|f| f.filename == d.filename) {
            continue;
        }
        let meta = d.metadata.map(|(m, _)| BTreeMap::from([("sha256".to_string(), m.hex())]));
        files.push(PageFile {
            filename: d.filename.clone(),
            url: format!("../../files/{project}/{}", d.filename),
            hashes: BTreeMap::from([("sha256".to_string(), d.digest.hex())]),
            requires_python: d.requires_python.clone(),
            core_metadata: meta,
            yanked: d.yanked.as_ref().map(|r| {
                if r.is_empty() { serde_json::Value::Bool(true) } else { serde_json::Value::String(r.clone()) }
            }),
            size: d.size,
        });
    }
    let page = ProjectPage::new(project, files);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    atomic::write(&dir.join("index.html"), &page.to_html())
        .with_context(|| format!("writing {}", dir.join("index.html").display()))?;
    atomic::write(&json_path, &page.to_json()).with_context(|| format!("writing {}", json_path.display()))
}

fn write_root(store: &Store, index: &str) -> Result<()> {
    let simple = store.repository_dir(index).join("simple");
    let mut projects = Vec::new();
    for e in std::fs::read_dir(&simple).with_context(|| format!("reading {}", simple.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir() && e.path().join("index.json").is_file() {
            projects.push(name);
        }
    }
    projects.sort();
    let (html, json) = pypi::root_pages(&projects);
    atomic::write(&simple.join("index.html"), &html).with_context(|| format!("writing {}", simple.display()))?;
    atomic::write(&simple.join("index.json"), &json).with_context(|| format!("writing {}", simple.display()))
}

/// A server that takes twine's legacy upload form (`POST <url>`, multipart, Basic auth).
pub struct UploadIndex<'a> {
    pub store: &'a Store,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    net: Net,
}

impl<'a> UploadIndex<'a> {
    pub fn new(store: &'a Store, url: &str, username: Option<String>, password: Option<String>) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--python-upload `{url}` must be an http:// or https:// URL");
        }
        // twine treats a redirect as an error: the upload URL must be exact.
        let net = Net::build(&NetOptions::from_env()?, |b| b.redirect(reqwest::redirect::Policy::none()))?;
        Ok(Self { store, url: url.to_string(), username, password, net })
    }

    /// The form twine sends: the action, the file, its digest, and the core metadata
    /// fields (lowercased, `-` -> `_`, multi-valued fields repeated).
    fn form(&self, d: &Dist) -> Result<Form> {
        let meta_bytes = match d.metadata {
            Some((m, _)) => Some(std::fs::read(self.store.blob_path_for_tool(&m))?),
            None => {
                let path = self.store.blob_path_for_tool(&d.digest);
                if d.filename.ends_with(".whl") {
                    Some(pypi::wheel_metadata(&path, &d.filename)?)
                } else {
                    pypi::sdist_metadata(&path, &d.filename)?
                }
            }
        };
        let meta = meta_bytes.as_deref().map(Metadata::parse).unwrap_or_default();
        let parsed = pypi::parse_filename(&d.filename).ok_or_else(|| anyhow!("{}: not a distribution", d.filename))?;
        let (filetype, pyversion) = match &parsed.kind {
            pypi::DistKind::Wheel(tags) => {
                let py: BTreeSet<&str> = tags.iter().map(|t| t.0.as_str()).collect();
                ("bdist_wheel", py.into_iter().collect::<Vec<_>>().join("."))
            }
            pypi::DistKind::Sdist => ("sdist", "source".to_string()),
        };
        let mut form = Form::new()
            .text(":action", "file_upload")
            .text("protocol_version", "1")
            .text("sha256_digest", d.digest.hex())
            .text("filetype", filetype)
            .text("pyversion", pyversion)
            .text("metadata_version", meta.get("Metadata-Version").unwrap_or("2.1").to_string())
            .text("name", meta.get("Name").unwrap_or(&d.project).to_string())
            .text("version", meta.get("Version").map_or_else(|| parsed.version.to_string(), str::to_string));
        for (k, v) in &meta.fields {
            let key = k.to_ascii_lowercase().replace('-', "_");
            if matches!(key.as_str(), "metadata_version" | "name" | "version") {
                continue;
            }
            let key = match key.as_str() {
                "classifier" => "classifiers".to_string(),
                "project_url" => "project_urls".to_string(),
                _ => key,
            };
            form = form.text(key, v.clone());
        }
        let file = self.store.open_blob(&d.digest)?;
        let part = Part::reader_with_length(file, d.size)
            .file_name(d.filename.clone())
            .mime_str("application/octet-stream")?;
        Ok(form.part("content", part))
    }

    /// Upload every Python file of the bundle; files the server already has are skipped.
    /// The server's own answer decides (409, or 400 "already exists", as twine's
    /// --skip-existing reads it), so a re-run after a failure resumes.
    pub fn upload(&self, bundle: &VerifiedBundle, reporter: &Reporter) -> Result<Vec<Placed>> {
        let dists = dists(bundle, self.store, None)?;
        let bar = reporter.bytes("upload", Some(dists.iter().map(|d| d.size).sum()));
        let mut placed = Vec::new();
        for d in &dists {
            let what = format!("uploading {} to {}", d.filename, self.url);
            // Retried on network errors and 5xx: a repeated upload of a file that did
            // arrive is answered "already exists", which counts as present.
            let (status, text) = self.net.retry(&what, || {
                let form = self.form(d)?;
                let mut req =
                    self.net.client().post(&self.url).timeout(self.net.upload_timeout(d.size)).multipart(form);
                if let Some(u) = &self.username {
                    req = req.basic_auth(u, self.password.as_deref());
                }
                let mut resp = req.send().map_err(|e| self.net.failure(e).context("the server did not answer"))?;
                if net::is_transient_status(resp.status()) {
                    return Err(Failure::status(&resp));
                }
                let body = self.net.read_capped(&mut resp, net::SMALL_MAX).unwrap_or_default();
                Ok((resp.status(), String::from_utf8_lossy(&body).into_owned()))
            })?;
            let action = match status {
                s if s.is_success() => "added",
                StatusCode::CONFLICT => "present",
                StatusCode::BAD_REQUEST if text.to_ascii_lowercase().contains("already exist") => "present",
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    bail!("{what}: {status} (check --python-username and AIRLOCK_PYTHON_PASSWORD)")
                }
                s if s.is_redirection() => {
                    bail!("{what}: the server redirects ({s}); give the exact upload URL (mind the trailing slash)")
                }
                s => bail!("{what}: {s}: {}", text.lines().next().unwrap_or("").trim()),
            };
            bar.inc(d.size);
            placed.push(Placed { kind: "python".into(), name: d.filename.clone(), action, location: self.url.clone() });
        }
        Ok(placed)
    }
}
