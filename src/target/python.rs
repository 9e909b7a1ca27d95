//! Python distributions into a package index: the store's own static index
//! (`<store>/repository/<index>/`: `files/<project>/<file>` with `<file>.metadata`, and
//! `simple/<project>/` pages as PEP 503 HTML `index.html` and PEP 691 JSON `index.json`),
//! which `airlock serve` or any static web server serves; or any server that takes
//! twine's legacy upload (pypiserver, Nexus pypi-hosted, devpi, Artifactory).
//!
//! Files already in the index are kept: each later bundle adds to the union, and each
//! project's page is rebuilt from its JSON page plus the new files. A file name that holds
//! other bytes is a conflict, refused before anything is written. Pages are written after
//! the files they name, the root page last, each atomically; undoing an import puts back
//! every page it rewrote, then removes the files it added.

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
use crate::store::{Layout, PathState, Store, atomic, hook, missing_dirs, remove_empty_dirs};

use super::{Journal, Placed, Target};

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
                bundle.manifest.base.as_ref().map_or_else(|| "?".to_string(), crate::bundle::manifest::Base::label)
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
    Layout::python_file(&d.project, &d.filename).map_err(|e| anyhow!("{}: {e}", d.filename))
}

pub fn metadata_path(d: &Dist) -> Result<RelPath> {
    Layout::python_metadata(&d.project, &d.filename).map_err(|e| anyhow!("{}: {e}", d.filename))
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

    fn load<'a>(
        &'a self,
        plan: IndexPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let bar = reporter.items("python", plan.add.len() as u64);
        let layout = self.store.layout();
        let location = |d: &Dist| layout.python_project_pages(&d.index, &d.project).display().to_string() + "/";
        let store = self.store;
        for d in &plan.add {
            let p = Placed { kind: "python".into(), name: d.filename.clone(), action: "added", location: location(d) };
            let mut files = vec![file_path(d)?];
            if let Some((m, _)) = d.metadata {
                let mp = metadata_path(d)?;
                if matches!(self.store.repository_state(&d.index, &mp, &m)?, PathState::Missing) {
                    files.push(mp);
                }
            }
            let digests = std::iter::once(d.digest).chain(d.metadata.map(|m| m.0));
            let mut placed: Vec<(RelPath, Vec<std::path::PathBuf>)> = Vec::new();
            let undo = move |placed: &[(RelPath, Vec<std::path::PathBuf>)], index: &str| -> Result<()> {
                for (path, dirs) in placed.iter().rev() {
                    store.remove_from_repository(index, path)?;
                    remove_empty_dirs(dirs);
                }
                Ok(())
            };
            for (path, digest) in files.into_iter().zip(digests) {
                let dirs = store.repository_dirs_to_create(&d.index, &path);
                if let Err(e) = store.place_in_repository(&d.index, &path, &digest) {
                    let _ = undo(&placed, &d.index);
                    return Err(e.context(format!("importing {} into python index `{}`", d.filename, d.index)));
                }
                placed.push((path, dirs));
            }
            let index = d.index.clone();
            journal.record(vec![p], move || undo(&placed, &index));
            bar.inc(1);
        }
        hook::pause("python-placed");
        // Every page that names a file of this bundle, even one already present: a page
        // lost in an interrupted import is rebuilt on the re-run.
        let all: Vec<&Dist> = plan.add.iter().chain(&plan.present).collect();
        let mut pages = Pages::default();
        let published = publish_into(self.store, &all, &mut pages);
        if !pages.0.is_empty() {
            let indexes: BTreeSet<&str> = all.iter().map(|d| d.index.as_str()).collect();
            let item = Placed {
                kind: "python".into(),
                name: format!("the pages of {}", indexes.into_iter().collect::<Vec<_>>().join(", ")),
                action: "updated",
                location: layout.python_simple(&all[0].index).display().to_string() + "/",
            };
            journal.record(vec![item], move || pages.restore());
        }
        published.context("writing the Python index pages")?;
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

/// Pages an import wrote, with what each held before (None: it did not exist, nor did
/// the directories listed), so that undoing puts them back.
#[derive(Default)]
pub struct Pages(Vec<(std::path::PathBuf, Option<Vec<u8>>, Vec<std::path::PathBuf>)>);

impl Pages {
    fn write(&mut self, path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        let old = match std::fs::read(path) {
            Ok(b) if b == bytes => return Ok(()),
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let dirs = missing_dirs(path);
        self.0.push((path.to_path_buf(), old, dirs));
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        atomic::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    fn restore(self) -> Result<()> {
        for (path, old, dirs) in self.0.into_iter().rev() {
            match old {
                Some(b) => atomic::write(&path, &b).with_context(|| format!("writing {}", path.display()))?,
                None => {
                    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                    remove_empty_dirs(&dirs);
                }
            }
        }
        Ok(())
    }
}

/// Rebuild the pages that list `dists` (whose files are in place): each touched project's
/// page from its JSON page plus these files, then each touched index's root page.
pub fn publish(store: &Store, dists: &[&Dist]) -> Result<()> {
    publish_into(store, dists, &mut Pages::default())
}

/// [`publish`], noting in `pages` what each page held before.
fn publish_into(store: &Store, dists: &[&Dist], pages: &mut Pages) -> Result<()> {
    let mut touched: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in dists {
        touched.entry(&d.index).or_default().insert(&d.project);
    }
    for (index, projects) in touched {
        for project in projects {
            let files: Vec<&Dist> =
                dists.iter().copied().filter(|d| d.index == index && d.project == project).collect();
            write_project(store, index, project, &files, pages)?;
        }
        write_root(store, index, pages)?;
    }
    Ok(())
}

fn write_project(store: &Store, index: &str, project: &str, new: &[&Dist], pages: &mut Pages) -> Result<()> {
    let dir = store.layout().python_project_pages(index, project);
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
    pages.write(&dir.join("index.html"), &page.to_html())?;
    pages.write(&json_path, &page.to_json())
}

fn write_root(store: &Store, index: &str, pages: &mut Pages) -> Result<()> {
    let simple = store.layout().python_simple(index);
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
    pages.write(&simple.join("index.html"), &html)?;
    pages.write(&simple.join("index.json"), &json)
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
    /// --skip-existing reads it), so a re-run after a failure resumes. Each file the
    /// server accepts is recorded in `journal` as final: an index keeps what it published.
    pub fn upload(
        &self,
        bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'_>,
    ) -> Result<Vec<Placed>> {
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
            let p = Placed { kind: "python".into(), name: d.filename.clone(), action, location: self.url.clone() };
            if action == "added" {
                journal.record_final(
                    vec![p.clone()],
                    format!("uploaded to {}, which keeps it: a package index never takes a file back", self.url),
                );
            }
            placed.push(p);
        }
        Ok(placed)
    }
}
