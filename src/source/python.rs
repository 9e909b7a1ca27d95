//! Python packages: resolve requirements against a simple index (PEP 691 JSON, PEP 503
//! HTML as fallback; or a local directory holding such a tree) for every target
//! environment, follow Requires-Dist to the closure with markers evaluated for the
//! target (not this host), and fetch every chosen file checked against the index's
//! SHA-256.
//!
//! Resolution is pip's "highest version that satisfies every requirement and constraint
//! seen so far, with a file for this environment", repeated until nothing changes. It does
//! not backtrack: requirements that contradict each other are an error naming both, which
//! with pinned constraints (the OpenStack way) does not happen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use rayon::prelude::*;
use reqwest::Url;

use crate::bundle::manifest::BlobDescriptor;
use crate::digest::Digest;
use crate::lock::LockedPython;
use crate::pypi::{self, DistKind, Environment, IndexFile, Metadata};
use crate::source::file::FileSource;
use crate::spec::{PythonEntry, SdistPolicy};
use crate::store::Store;

pub struct PythonSource<'a> {
    pub files: &'a FileSource<'a>,
    pub store: &'a Store,
    pages: Memo<Arc<Vec<IndexFile>>>,
    metadata: Memo<Arc<Meta>>,
}

/// Results computed once per key, however many threads ask at the same time.
type Memo<T> = Mutex<HashMap<String, Arc<OnceLock<Result<T, String>>>>>;

/// One environment's closure: (file, environment label, why) for each file; warnings.
type Resolved = (Vec<(IndexFile, String, String)>, Vec<String>);

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

/// A project at a version, whose Requires-Dist asked for something.
type Origin = (String, Version);

/// What one environment needs of one project.
#[derive(Default)]
struct Want {
    /// Each specifier, why, and the (project, version) whose Requires-Dist it came from.
    specs: Vec<(VersionSpecifiers, String, Option<Origin>)>,
    extras: BTreeSet<String>,
    /// Why the project is here (the first requirement that brought it).
    reason: String,
    chosen: Option<Chosen>,
    expanded_extras: Option<BTreeSet<String>>,
}

#[derive(Clone)]
struct Chosen {
    version: Version,
    files: Vec<IndexFile>,
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
        self.files.download(&f.url, Some(&expected), self.store)
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

        let results: Vec<Result<Resolved>> =
            envs.par_iter().map(|env| self.resolve(entry, &indexes, env, &roots, &constraints)).collect();
        let mut chosen: BTreeMap<String, (IndexFile, Vec<String>)> = BTreeMap::new();
        let mut warnings = Vec::new();
        for r in results {
            let (files, w) = r?;
            warnings.extend(w);
            for (f, env, why) in files {
                chosen.entry(f.filename.clone()).or_insert_with(|| (f, Vec::new())).1.push(format!("{env}: {why}"));
            }
        }
        // Fetch everything chosen, in parallel; a wheel's METADATA comes along.
        let locked: Vec<Result<LockedPython>> = chosen
            .into_par_iter()
            .map(|(_, (f, chosen_for))| {
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
                })
            })
            .collect();
        let mut locked = locked.into_iter().collect::<Result<Vec<_>>>()?;
        locked.sort_by(|a, b| (&a.project, &a.filename).cmp(&(&b.project, &b.filename)));
        Ok(PythonLocked { locked, warnings })
    }

    /// The closure for one environment: (file, environment label, why) for every file chosen.
    fn resolve(
        &self,
        entry: &PythonEntry,
        indexes: &[Url],
        env: &Environment,
        roots: &[(String, Requirement)],
        constraints: &[(String, Requirement)],
    ) -> Result<Resolved> {
        let mut wants: BTreeMap<String, Want> = BTreeMap::new();
        let mut pending: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        let constraint_specs: Vec<(String, VersionSpecifiers, String)> = constraints
            .iter()
            .filter(|(_, r)| r.evaluate_markers(&env.markers, &[]))
            .filter_map(|(line, r)| match &r.version_or_url {
                Some(VersionOrUrl::VersionSpecifier(s)) => {
                    Some((pypi::normalize(r.name.as_ref()), s.clone(), format!("constraint {line}")))
                }
                _ => None,
            })
            .collect();
        let add = |wants: &mut BTreeMap<String, Want>,
                   pending: &mut BTreeSet<String>,
                   r: &Requirement,
                   why: String,
                   origin: Option<(String, Version)>| {
            let project = pypi::normalize(r.name.as_ref());
            let want = wants.entry(project.clone()).or_insert_with(|| {
                let mut w = Want { reason: why.clone(), ..Default::default() };
                for (p, s, line) in &constraint_specs {
                    if *p == project {
                        w.specs.push((s.clone(), line.clone(), None));
                    }
                }
                pending.insert(project.clone());
                w
            });
            if let Some(VersionOrUrl::VersionSpecifier(s)) = &r.version_or_url
                && !s.is_empty()
            {
                want.specs.push((s.clone(), why.clone(), origin));
                if want.chosen.as_ref().is_some_and(|c| !s.contains(&c.version)) {
                    pending.insert(project.clone());
                }
            }
            for e in &r.extras {
                if want.extras.insert(e.to_string()) {
                    pending.insert(project.clone());
                }
            }
        };
        for (line, r) in roots {
            if r.evaluate_markers(&env.markers, &[]) {
                add(&mut wants, &mut pending, r, format!("{line} (from spec)"), None);
            }
        }
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > 10_000 {
                bail!("python entry `{}`: resolution for {} does not settle", entry.name, env.label);
            }
            let batch: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
            let pages: Vec<Result<Arc<Vec<IndexFile>>>> = batch.par_iter().map(|p| self.page(indexes, p)).collect();
            let mut expand = Vec::new();
            let mut moved: Vec<(String, Version)> = Vec::new();
            for (project, page) in batch.iter().zip(pages) {
                let page =
                    page.with_context(|| format!("python entry `{}`: reading the index for `{project}`", entry.name))?;
                let want = wants.get_mut(project).expect("pending projects are wanted");
                match choose(project, &page, want, env, entry.sdist) {
                    Ok(c) => {
                        let changed = want.chosen.as_ref().is_none_or(|old| old.version != c.version);
                        if changed && let Some(old) = &want.chosen {
                            moved.push((project.clone(), old.version.clone()));
                        }
                        want.chosen = Some(c);
                        if entry.deps && (changed || want.expanded_extras.as_ref() != Some(&want.extras)) {
                            expand.push(project.clone());
                        }
                    }
                    Err(e) if entry.allow_missing => {
                        warnings.push(format!("python entry `{}`: {e} (skipped: allow-missing)", entry.name));
                    }
                    Err(e) => bail!("python entry `{}`: {e}", entry.name),
                }
            }
            // A version given up no longer constrains anything: drop what its Requires-Dist
            // said, and choose again where that may allow a higher version.
            for origin in &moved {
                for (name, w) in wants.iter_mut() {
                    let before = w.specs.len();
                    w.specs.retain(|(_, _, o)| o.as_ref() != Some(origin));
                    if w.specs.len() != before {
                        pending.insert(name.clone());
                    }
                }
            }
            // Metadata of the chosen files, in parallel.
            let metas: Vec<Result<Arc<Meta>>> = expand
                .par_iter()
                .map(|p| {
                    let c = wants[p].chosen.as_ref().expect("chosen");
                    self.meta(&c.files[0])
                })
                .collect();
            for (project, meta) in expand.iter().zip(metas) {
                let meta = meta?;
                let (version, extras) = {
                    let w = wants.get_mut(project).expect("wanted");
                    w.expanded_extras = Some(w.extras.clone());
                    (w.chosen.as_ref().expect("chosen").version.clone(), w.extras.clone())
                };
                if !meta.known {
                    let f = &wants[project].chosen.as_ref().expect("chosen").files[0];
                    warnings.push(format!(
                        "python entry `{}`: {} declares no static dependencies (sdist metadata); its dependencies are not followed",
                        entry.name, f.filename
                    ));
                    continue;
                }
                let extra_names: Vec<ExtraName> = extras.iter().filter_map(|e| ExtraName::from_str(e).ok()).collect();
                for line in meta.parsed.all("Requires-Dist") {
                    let r = pypi::parse_requirement_line(line)
                        .with_context(|| format!("{project} {version}: Requires-Dist"))?;
                    if r.evaluate_markers(&env.markers, &extra_names) {
                        let why = format!("{line} (from {project} {version})");
                        add(&mut wants, &mut pending, &r, why, Some((project.clone(), version.clone())));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for w in wants.values() {
            if let Some(c) = &w.chosen {
                for f in &c.files {
                    out.push((f.clone(), env.label.clone(), w.reason.clone()));
                }
            }
        }
        Ok((out, warnings))
    }
}

/// The highest version that every requirement admits and that has a file for `env`
/// (the wheel that ranks best; the sdist as `policy` says). The first of `files` is
/// the one whose metadata speaks for the version.
fn choose(project: &str, page: &[IndexFile], want: &Want, env: &Environment, policy: SdistPolicy) -> Result<Chosen> {
    if page.is_empty() {
        bail!("no index offers project `{project}` (wanted by {})", want.reason);
    }
    let mut by_version: BTreeMap<Version, Vec<&IndexFile>> = BTreeMap::new();
    for f in page {
        if let Some(d) = pypi::parse_filename(&f.filename)
            && d.project == project
        {
            by_version.entry(d.version).or_default().push(f);
        }
    }
    let allow_pre = want.specs.iter().any(|(s, _, _)| s.iter().any(|v| v.any_prerelease()));
    let mut passed = Vec::new();
    for (version, files) in by_version.iter().rev() {
        if (version.any_prerelease() && !allow_pre) || !want.specs.iter().all(|(s, _, _)| s.contains(version)) {
            continue;
        }
        let pinned = want.specs.iter().any(|(s, _, _)| {
            s.iter().any(|v| matches!(v.operator(), Operator::Equal | Operator::ExactEqual) && v.version() == version)
        });
        let usable: Vec<&&IndexFile> = files
            .iter()
            .filter(|f| (f.yanked.is_none() || pinned) && env.admits(f.requires_python.as_deref()))
            .collect();
        let wheel = usable
            .iter()
            .filter_map(|f| match pypi::parse_filename(&f.filename)?.kind {
                DistKind::Wheel(tags) => Some((env.rank(&tags)?, (**f).clone())),
                DistKind::Sdist => None,
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, f)| f);
        let sdist = usable
            .iter()
            .filter(|f| matches!(pypi::parse_filename(&f.filename).map(|d| d.kind), Some(DistKind::Sdist)))
            .min_by_key(|f| !f.filename.ends_with(".tar.gz"))
            .map(|f| (**f).clone());
        let files: Vec<IndexFile> = match (policy, wheel, sdist) {
            (SdistPolicy::Never, Some(w), _) | (SdistPolicy::Fallback, Some(w), _) => vec![w],
            (SdistPolicy::Fallback | SdistPolicy::Always, None, Some(s)) => vec![s],
            (SdistPolicy::Always, Some(w), Some(s)) => vec![w, s],
            (SdistPolicy::Always, Some(w), None) => vec![w],
            _ => {
                passed.push(version.to_string());
                continue;
            }
        };
        return Ok(Chosen { version: version.clone(), files });
    }
    let specs: Vec<String> = want.specs.iter().map(|(s, why, _)| format!("{s} ({why})")).collect();
    let mut seen: Vec<&str> = page.iter().map(|f| f.filename.as_str()).collect();
    seen.sort_unstable();
    let shown = seen.iter().take(12).copied().collect::<Vec<_>>().join(", ");
    let more = if seen.len() > 12 { format!(" and {} more", seen.len() - 12) } else { String::new() };
    bail!(
        "no file of `{project}` fits {} (wanted by {}{}{}); the index offers: {shown}{more}",
        env.label,
        want.reason,
        if specs.is_empty() { String::new() } else { format!("; requires {}", specs.join(", ")) },
        if passed.is_empty() { String::new() } else { format!("; versions {} have no file for it", passed.join(", ")) },
    )
}
