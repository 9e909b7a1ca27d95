//! Python packages: resolve requirements against a simple index (PEP 691 JSON, PEP 503
//! HTML as fallback; or a local directory holding such a tree) for every target
//! environment, with markers evaluated for the target (not this host), and fetch every
//! chosen file checked against the index's SHA-256.
//!
//! The resolution itself is `resolve` (PubGrub, backtracking, newest first as pip); this
//! file is its index — pages, PEP 658 metadata, METADATA from wheels, PKG-INFO from
//! sdists, fetched in parallel ahead of the resolver's questions — and the wiring around
//! it: every `pythons` x `platforms` environment (a minor-version target at each patch
//! release its markers tell apart), the build requirements of every carried sdist
//! (`build`), and the dependencies of sdists with dynamic metadata, learned by running
//! their PEP 517 hook.

mod build;
pub mod resolve;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use pep508_rs::Requirement;
use pep508_rs::pep440_rs::Version;
use rayon::prelude::*;
use reqwest::Url;

use crate::bundle::manifest::BlobDescriptor;
use crate::digest::Digest;
use crate::lock::{LockedPython, PythonRole};
use crate::pypi::{self, Environment, IndexFile, Metadata};
use crate::source::file::FileSource;
use crate::spec::PythonEntry;
use crate::store::Store;

use build::{BuildSystem, Hooks};
use resolve::{DistMeta, Index, Request, Resolution};

pub use resolve::NoSolution;

pub struct PythonSource<'a> {
    pub files: &'a FileSource<'a>,
    pub store: &'a Store,
    pages: Memo<Arc<Vec<IndexFile>>>,
    metadata: Memo<Arc<Meta>>,
}

/// Results computed once per key, however many threads ask at the same time.
type Memo<T> = Mutex<HashMap<String, Arc<OnceLock<Result<T, String>>>>>;

fn memo<T: Clone>(m: &Memo<T>, key: &str, init: impl FnOnce() -> Result<T>) -> Result<T> {
    let cell = m.lock().expect("not poisoned").entry(key.to_string()).or_default().clone();
    cell.get_or_init(|| init().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

/// A file's core metadata, parsed, and its blob in the store (when it has one).
struct Meta {
    parsed: Metadata,
    blob: Option<(Digest, u64)>,
    /// Whether Requires-Dist can be trusted (not for old or dynamic sdist metadata).
    known: bool,
}

pub struct PythonLocked {
    pub locked: Vec<LockedPython>,
    pub warnings: Vec<String>,
}

/// A file chosen for one environment: the file, `<env>: <why>`, and whether it is only
/// needed to build.
struct Pick {
    file: IndexFile,
    chosen_for: String,
    build: bool,
}

impl<'a> PythonSource<'a> {
    pub fn new(files: &'a FileSource<'a>, store: &'a Store) -> Result<Self> {
        Ok(Self { files, store, pages: Default::default(), metadata: Default::default() })
    }

    /// GET through the shared network layer (retries, timeouts, at most
    /// [`crate::net::PAGE_MAX`] bytes): `None` for 404 or 410 (or a missing local file);
    /// the body, its content type and its final URL otherwise.
    fn get(&self, url: &Url, accept: &str) -> Result<Option<(Vec<u8>, String, Url)>> {
        let max = crate::net::PAGE_MAX;
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|_| anyhow!("{url} is not a local path"))?;
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
            };
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut b)
                .with_context(|| format!("reading {}", path.display()))?;
            if b.len() as u64 > max {
                bail!("{}: larger than the {max} bytes airlock reads for an index page", path.display());
            }
            return Ok(Some((b, String::new(), url.clone())));
        }
        self.files.net.get_document(url, accept, max)
    }

    /// Every file the indexes offer for `project` (the first index wins a file name).
    fn page(&self, indexes: &[Url], project: &str) -> Result<Arc<Vec<IndexFile>>> {
        let key = format!("{}\n{project}", indexes.iter().map(Url::as_str).collect::<Vec<_>>().join(" "));
        let cell = self.pages.lock().expect("not poisoned").entry(key).or_default().clone();
        cell.get_or_init(|| {
            let mut files: Vec<IndexFile> = Vec::new();
            for index in indexes {
                let page_url = index.join(&format!("{project}/")).map_err(|e| e.to_string())?;
                let found = if index.scheme() == "file" {
                    let json = page_url.join("index.json").map_err(|e| e.to_string())?;
                    match self.get(&json, "").map_err(|e| format!("{e:#}"))? {
                        Some(b) => Some((b.0, pypi::JSON_V1.to_string(), page_url.clone())),
                        None => self
                            .get(&page_url.join("index.html").map_err(|e| e.to_string())?, "")
                            .map_err(|e| format!("{e:#}"))?
                            .map(|b| (b.0, "text/html".to_string(), page_url.clone())),
                    }
                } else {
                    self.get(&page_url, pypi::ACCEPT).map_err(|e| format!("{e:#}"))?
                };
                let Some((body, ty, base)) = found else { continue };
                let parsed = if ty.contains("json") {
                    pypi::parse_json_page(&body, &base)
                } else {
                    pypi::parse_html_page(&String::from_utf8_lossy(&body), &base)
                }
                .map_err(|e| format!("{page_url}: {e:#}"))?;
                for f in parsed {
                    // A remote index names remote files: never a path on this machine.
                    let remote = f.url.starts_with("http://") || f.url.starts_with("https://");
                    if (index.scheme() != "file" && !remote) || f.filename.contains(['/', '\\']) {
                        continue;
                    }
                    if !files.iter().any(|have| have.filename == f.filename) {
                        files.push(f);
                    }
                }
            }
            Ok(Arc::new(files))
        })
        .clone()
        .map_err(anyhow::Error::msg)
    }

    /// Fetch one distribution file into the store, checked against the index's SHA-256.
    fn fetch(&self, f: &IndexFile) -> Result<(Digest, u64)> {
        let Some(expected) = f.sha256 else {
            bail!(
                "the index gives no sha256 for {} ({}); airlock checks every file against its index hash",
                f.filename,
                f.url
            );
        };
        self.files.download_sized(&f.url, Some(&expected), f.size, self.store)
    }

    /// The core metadata of a file: `<url>.metadata` when the index offers it (PEP 658),
    /// else read from the downloaded wheel (METADATA) or sdist (PKG-INFO).
    fn meta(&self, f: &IndexFile) -> Result<Arc<Meta>> {
        let cell = self.metadata.lock().expect("not poisoned").entry(f.url.clone()).or_default().clone();
        cell.get_or_init(|| self.load_meta(f).map(Arc::new).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(anyhow::Error::msg)
    }

    fn load_meta(&self, f: &IndexFile) -> Result<Meta> {
        let is_wheel = f.filename.ends_with(".whl");
        if let Some(expected) = f.core_metadata
            && is_wheel
        {
            let url = Url::parse(&format!("{}.metadata", f.url))?;
            if let Some((bytes, _, _)) = self.get(&url, "*/*")? {
                let d = Digest::of(&bytes);
                if let Some(e) = expected
                    && e != d
                {
                    bail!("sha256 mismatch for {url}: the index says {}, got {}", e.hex(), d.hex());
                }
                let blob = self.store.insert(&mut bytes.as_slice(), Some(&d), url.as_str())?;
                return Ok(Meta { parsed: Metadata::parse(&bytes), blob: Some(blob), known: true });
            }
        }
        let (digest, _) = self.fetch(f)?;
        let path = self.store.blob_path_for_tool(&digest);
        if is_wheel {
            let bytes = pypi::wheel_metadata(&path, &f.filename)?;
            let blob = self.store.insert(&mut bytes.as_slice(), None, &f.filename)?;
            return Ok(Meta { parsed: Metadata::parse(&bytes), blob: Some(blob), known: true });
        }
        match pypi::sdist_metadata(&path, &f.filename)? {
            Some(bytes) => {
                let parsed = Metadata::parse(&bytes);
                let known = parsed.static_requirements();
                Ok(Meta { parsed, blob: None, known })
            }
            None => Ok(Meta { parsed: Metadata::default(), blob: None, known: false }),
        }
    }

    pub fn lock(&self, entry: &PythonEntry, spec_dir: &std::path::Path) -> Result<PythonLocked> {
        let indexes = entry.index_urls(spec_dir)?;
        let mut roots: Vec<(String, Requirement)> = Vec::new();
        for r in &entry.requirements {
            roots.push((r.clone(), pypi::parse_requirement_line(r)?));
        }
        let mut constraints: Vec<(String, Requirement)> = Vec::new();
        for f in &entry.requirements_files {
            let file = pypi::read_requirements_file(&spec_dir.join(f))?;
            roots.extend(file.requirements);
            constraints.extend(file.constraints);
        }
        for f in &entry.constraints {
            // A constraints file's own lines, and whatever it includes, all constrain.
            let file = pypi::read_requirements_file(&spec_dir.join(f))?;
            constraints.extend(file.requirements.into_iter().chain(file.constraints));
        }
        let envs: Vec<Environment> = entry
            .pythons
            .iter()
            .flat_map(|py| entry.platforms.iter().map(move |p| Environment::new(py, p)))
            .collect::<Result<_>>()?;
        let session = Session::new(entry)?;
        let at = || format!("python entry `{}`", entry.name);

        let results: Vec<Result<(Vec<Pick>, Vec<String>)>> = rayon::scope(|scope| {
            let live = Live { src: self, indexes: &indexes, entry, session: &session, scope };
            envs.par_iter().map(|env| live.target(env, &roots, &constraints)).collect()
        });
        let mut chosen: BTreeMap<String, (IndexFile, Vec<String>, bool)> = BTreeMap::new();
        let mut warnings: Vec<String> = Vec::new();
        for r in results {
            let (picks, w) = r.with_context(at)?;
            for w in w {
                let w = format!("{}: {w}", at());
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            for p in picks {
                let e = chosen.entry(p.file.filename.clone()).or_insert_with(|| (p.file.clone(), Vec::new(), true));
                if !e.1.contains(&p.chosen_for) {
                    e.1.push(p.chosen_for);
                }
                e.2 &= p.build;
            }
        }
        let no_python = session.no_python.lock().expect("not poisoned").clone();
        if !no_python.is_empty() {
            let (sdists, why): (Vec<String>, Vec<String>) = no_python.into_iter().unzip();
            let why: BTreeSet<String> = why.into_iter().collect();
            bail!(
                "{}: {} declare their dependencies only through their build backend, and no Python here can run it: {} (set `python:` in the entry or AIRLOCK_PYTHON to such an interpreter, or `prepare-metadata: false` to carry them without their dependencies)",
                at(),
                sdists.join(", "),
                why.into_iter().collect::<Vec<_>>().join("; ")
            );
        }
        // Fetch everything chosen, in parallel; a wheel's METADATA comes along.
        let locked: Vec<Result<LockedPython>> = chosen
            .into_par_iter()
            .map(|(_, (f, chosen_for, build))| {
                let (digest, size) = self.fetch(&f)?;
                let metadata = if f.filename.ends_with(".whl") {
                    self.meta(&f)?.blob.map(|(d, s)| BlobDescriptor {
                        digest: d,
                        size: s,
                        media_type: pypi::METADATA_MEDIA_TYPE.into(),
                    })
                } else {
                    None
                };
                let name = pypi::parse_filename(&f.filename).expect("chosen files parse");
                Ok(LockedPython {
                    index: entry.name.clone(),
                    project: name.project,
                    version: name.version.to_string(),
                    filename: f.filename.clone(),
                    url: f.url.clone(),
                    digest,
                    size,
                    requires_python: f.requires_python.clone(),
                    yanked: f.yanked.clone(),
                    metadata,
                    chosen_for,
                    role: build.then_some(PythonRole::Build),
                })
            })
            .collect();
        let mut locked = locked.into_iter().collect::<Result<Vec<_>>>()?;
        locked.sort_by(|a, b| (&a.project, &a.filename).cmp(&(&b.project, &b.filename)));
        Ok(PythonLocked { locked, warnings })
    }
}

/// What one `lock` shares between its environments: build resolutions, hook results,
/// and the sdists no interpreter here could prepare.
struct Session {
    hooks: Hooks,
    /// Build-requirement closures, per (requirements, environment).
    builds: Memo<Arc<Resolution>>,
    systems: Memo<Arc<BuildSystem>>,
    /// Hook results per (sdist URL, environment); `prepared` per (sdist URL, Python minor)
    /// once known, so other platforms of the same Python reuse them.
    hook_meta: Memo<Arc<DistMeta>>,
    prepared: Mutex<HashMap<String, Arc<DistMeta>>>,
    /// What `get_requires_for_build_wheel` added, per sdist URL.
    extra_build: Mutex<HashMap<String, Vec<String>>>,
    /// (sdist, why) for sdists whose hook no interpreter here can run.
    no_python: Mutex<BTreeSet<(String, String)>>,
}

impl Session {
    fn new(entry: &PythonEntry) -> Result<Self> {
        Ok(Self {
            hooks: Hooks::new(entry.python.as_deref())?,
            builds: Memo::default(),
            systems: Memo::default(),
            hook_meta: Memo::default(),
            prepared: Mutex::default(),
            extra_build: Mutex::default(),
            no_python: Mutex::default(),
        })
    }
}

/// The live index for one `lock`: the source's memoized pages and metadata, prefetched
/// on rayon's pool inside one scope.
struct Live<'r, 's, 'a> {
    src: &'s PythonSource<'a>,
    indexes: &'s [Url],
    entry: &'s PythonEntry,
    session: &'s Session,
    scope: &'r rayon::Scope<'s>,
}

impl Index for Live<'_, '_, '_> {
    fn files(&self, project: &str) -> Result<Arc<Vec<IndexFile>>> {
        self.src.page(self.indexes, project)
    }

    fn metadata(&self, file: &IndexFile, env: &Environment) -> Result<Arc<DistMeta>> {
        let meta = self.src.meta(file)?;
        if meta.known {
            return Ok(Arc::new(DistMeta::from_metadata(&meta.parsed)));
        }
        if !self.entry.prepare_metadata {
            return Ok(Arc::new(DistMeta {
                unknown: Some(
                    "declares no static dependencies (sdist metadata); they are not followed (prepare-metadata: false)"
                        .into(),
                ),
                ..DistMeta::from_metadata(&meta.parsed)
            }));
        }
        let key = format!("{}\n{}", file.url, env.label);
        memo(&self.session.hook_meta, &key, || self.prepare(file, env).map(Arc::new))
    }

    fn prefetch_files(&self, projects: &[String]) {
        for p in projects {
            let (src, indexes, p) = (self.src, self.indexes, p.clone());
            self.scope.spawn(move |_| {
                let _ = src.page(indexes, &p);
            });
        }
    }

    fn prefetch_metadata(&self, file: &IndexFile, _env: &Environment) {
        let (src, file) = (self.src, file.clone());
        self.scope.spawn(move |_| {
            let _ = src.meta(&file);
        });
    }
}

impl Live<'_, '_, '_> {
    /// Every file one target (a `pythons` x `platforms` pair) needs: the closure at each
    /// patch release the markers tell apart, and what the sdists of each need to build.
    fn target(
        &self,
        env: &Environment,
        roots: &[(String, Requirement)],
        constraints: &[(String, Requirement)],
    ) -> Result<(Vec<Pick>, Vec<String>)> {
        let mut picks = Vec::new();
        let mut warnings = Vec::new();
        let mut done: BTreeSet<Version> = BTreeSet::new();
        let mut todo: Vec<Environment> = vec![env.clone()];
        while let Some(point) = todo.pop() {
            if !done.insert(point.python_full.clone()) {
                continue;
            }
            let req = Request {
                env: &point,
                roots,
                constraints,
                sdist: self.entry.sdist,
                deps: self.entry.deps,
                allow_missing: self.entry.allow_missing,
                roots_name: "the requirements",
            };
            let res = resolve::resolve(self, &req)?;
            warnings.extend(res.warnings.iter().cloned());
            for p in &res.python_points {
                if !done.contains(p) {
                    todo.push(env.at_patch(p)?);
                }
            }
            for c in res.chosen.values() {
                for f in &c.files {
                    picks.push(Pick {
                        file: f.clone(),
                        chosen_for: format!("{}: {}", point.label, c.why),
                        build: false,
                    });
                }
            }
            if self.entry.build_requirements {
                picks.extend(self.build_closure(&point, &res)?);
            }
        }
        Ok((picks, warnings))
    }

    /// The build requirements of every sdist in `res`, and theirs, for `env`.
    fn build_closure(&self, env: &Environment, res: &Resolution) -> Result<Vec<Pick>> {
        let mut out = Vec::new();
        let mut queue: Vec<IndexFile> =
            res.chosen.values().flat_map(|c| c.files.iter()).filter(|f| is_sdist(f)).cloned().collect();
        let mut seen = BTreeSet::new();
        while let Some(sdist) = queue.pop() {
            if !seen.insert(sdist.filename.clone()) {
                continue;
            }
            let build = self.build_resolution(&sdist, env)?;
            for c in build.chosen.values() {
                for f in &c.files {
                    out.push(Pick {
                        file: f.clone(),
                        chosen_for: format!("{}: {} to build {}", env.label, c.why, sdist.filename),
                        build: true,
                    });
                    if is_sdist(f) {
                        queue.push(f.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    fn build_system(&self, sdist: &IndexFile) -> Result<Arc<BuildSystem>> {
        memo(&self.session.systems, &sdist.url, || {
            let (digest, _) = self.src.fetch(sdist)?;
            BuildSystem::of_sdist(&self.src.store.blob_path_for_tool(&digest), &sdist.filename).map(Arc::new)
        })
    }

    /// The requirements building `sdist` needs: `[build-system] requires`, plus what its
    /// backend's `get_requires_for_build_wheel` asked for when it ran here.
    fn build_requirements(&self, sdist: &IndexFile) -> Result<Vec<String>> {
        let mut reqs = self.build_system(sdist)?.requires.clone();
        if let Some(extra) = self.session.extra_build.lock().expect("not poisoned").get(&sdist.url) {
            reqs.extend(extra.iter().cloned());
        }
        Ok(reqs)
    }

    fn build_resolution(&self, sdist: &IndexFile, env: &Environment) -> Result<Arc<Resolution>> {
        let reqs = self.build_requirements(sdist)?;
        self.resolve_requirements(&reqs, env).with_context(|| format!("the build requirements of {}", sdist.filename))
    }

    fn resolve_requirements(&self, reqs: &[String], env: &Environment) -> Result<Arc<Resolution>> {
        let mut sorted = reqs.to_vec();
        sorted.sort();
        sorted.dedup();
        let key = format!("{}\n{}", sorted.join("\n"), env.label);
        memo(&self.session.builds, &key, || {
            let roots =
                sorted.iter().map(|r| Ok((r.clone(), pypi::parse_requirement_line(r)?))).collect::<Result<Vec<_>>>()?;
            // pip builds in an isolated environment resolved without the install's
            // constraints; so is this.
            let req = Request {
                env,
                roots: &roots,
                constraints: &[],
                sdist: self.entry.sdist,
                deps: true,
                allow_missing: false,
                roots_name: "the build requirements",
            };
            resolve::resolve(self, &req).map(Arc::new)
        })
    }

    /// The dependencies of an sdist whose metadata does not declare them: its PEP 517
    /// hooks, run here with its build requirements installed from the fetched files.
    fn prepare(&self, sdist: &IndexFile, env: &Environment) -> Result<DistMeta> {
        let minor = format!("{}.{}", env.python_full.release()[0], env.python_full.release().get(1).unwrap_or(&0));
        let shared = format!("{}\n{minor}", sdist.url);
        if let Some(m) = self.session.prepared.lock().expect("not poisoned").get(&shared) {
            return Ok((**m).clone());
        }
        let python = match self.session.hooks.interpreter(&minor) {
            Ok(p) => p,
            Err(why) => {
                self.session.no_python.lock().expect("not poisoned").insert((sdist.filename.clone(), why.clone()));
                return Ok(DistMeta { unknown: Some(why), ..Default::default() });
            }
        };
        let what = || format!("learning the dependencies of {} (dynamic metadata)", sdist.filename);
        let system = self.build_system(sdist).with_context(what)?;
        let (digest, _) = self.src.fetch(sdist).with_context(what)?;
        let sdist_path = self.src.store.blob_path_for_tool(&digest);
        let venv = self.venv_for(&system.requires, env, &python).with_context(what)?;
        let extra: Vec<String> = serde_json::from_slice(
            &self.session.hooks.run_hook(&venv, &system, &sdist_path, "requires").with_context(what)?,
        )
        .with_context(what)?;
        let venv = if extra.is_empty() {
            venv
        } else {
            self.session.extra_build.lock().expect("not poisoned").insert(sdist.url.clone(), extra.clone());
            let all: Vec<String> = system.requires.iter().chain(&extra).cloned().collect();
            self.venv_for(&all, env, &python).with_context(what)?
        };
        let bytes = self.session.hooks.run_hook(&venv, &system, &sdist_path, "metadata").with_context(what)?;
        let meta = DistMeta::from_metadata(&Metadata::parse(&bytes));
        self.session.prepared.lock().expect("not poisoned").insert(shared, Arc::new(meta.clone()));
        Ok(meta)
    }

    /// A virtualenv with `reqs` installed, from files of their closure for `env` only.
    fn venv_for(&self, reqs: &[String], env: &Environment, python: &std::path::Path) -> Result<PathBuf> {
        let res = self.resolve_requirements(reqs, env)?;
        let files: Vec<IndexFile> = res.chosen.values().flat_map(|c| c.files.iter().cloned()).collect();
        // Fetched on plain threads: never block rayon workers inside the resolver.
        let fetched: Vec<Result<(PathBuf, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .iter()
                .map(|f| {
                    s.spawn(move || {
                        let (d, _) = self.src.fetch(f)?;
                        Ok((self.src.store.blob_path_for_tool(&d), f.filename.clone()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a download thread panicked"))))
                .collect()
        });
        let fetched = fetched.into_iter().collect::<Result<Vec<_>>>()?;
        self.session.hooks.venv(python, reqs, &fetched)
    }
}

fn is_sdist(f: &IndexFile) -> bool {
    matches!(pypi::parse_filename(&f.filename).map(|d| d.kind), Some(pypi::DistKind::Sdist))
}
