//! The Python resolver: one target environment, a set of requirements and constraints, an
//! index; out comes, for every project of the closure, the version pip would install and
//! the files that carry it — or, when no such set exists, a derivation that says why.
//!
//! It is PubGrub (the `pubgrub` crate, the algorithm uv's resolver is built on), so it
//! backtracks: when the newest release of a requirement needs something the constraints
//! forbid, it steps back to an older release, as pip does. The model follows uv's:
//! - a virtual root package whose dependencies are the requirements;
//! - extras as virtual packages: `p[x]` at version v depends on `p` at exactly v, plus
//!   the Requires-Dist lines whose marker holds with `extra == "x"`;
//! - markers evaluated for the target environment (never this host) when dependencies
//!   are read, so the graph is that of one environment;
//! - constraints, yanked files, pre-releases, Requires-Python and the sdist policy as the
//!   set of candidate versions of each project: a version with no usable file for the
//!   environment, or outside the constraints, is not a candidate.
//!
//! Versions are tried newest first, like pip. When a greatest solution exists (a newer
//! release never needs an *older* dependency than its predecessor: the usual case), every
//! complete newest-first search finds that same solution, which is why airlock and pip
//! agree whatever order they decide packages in.
//!
//! The index is a trait, so the resolver runs on in-memory indexes in unit tests; the
//! real one (pages, PEP 658 metadata, wheels, sdists, build hooks) is in `source/python.rs`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, Derived, External, Map, PackageResolutionStatistics,
    PubGrubError, Ranges, ReportFormatter, Reporter, Term,
};

use crate::pypi::{self, DistKind, Environment, IndexFile};
use crate::spec::SdistPolicy;

pub type Range = Ranges<Version>;

/// What the resolver needs from an index. Implementations cache; the resolver asks for
/// the same thing many times.
pub trait Index: Sync {
    /// Every file the indexes offer for `project` (a normalized name); empty when no
    /// index has the project.
    fn files(&self, project: &str) -> Result<Arc<Vec<IndexFile>>>;
    /// The core metadata of a version, read from one of its files, for `env` (an sdist's
    /// dynamic metadata may depend on the interpreter).
    fn metadata(&self, file: &IndexFile, env: &Environment) -> Result<Arc<DistMeta>>;
    /// These projects' pages will likely be asked for soon: a hint to fetch them now.
    fn prefetch_files(&self, _projects: &[String]) {}
    /// This file's metadata will likely be asked for soon.
    fn prefetch_metadata(&self, _file: &IndexFile, _env: &Environment) {}
}

/// The parts of core metadata the resolver reads.
#[derive(Debug, Clone, Default)]
pub struct DistMeta {
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
    /// `Some(why)` when the dependencies are not known (an sdist with dynamic metadata
    /// whose build hook was not run): they are not followed.
    pub unknown: Option<String>,
}

impl DistMeta {
    pub fn from_metadata(m: &pypi::Metadata) -> Self {
        Self {
            requires_dist: m.all("Requires-Dist").map(str::to_string).collect(),
            requires_python: m.get("Requires-Python").map(str::to_string),
            unknown: None,
        }
    }
}

/// One resolution's inputs.
pub struct Request<'a> {
    pub env: &'a Environment,
    /// `(line as written, parsed)`.
    pub roots: &'a [(String, Requirement)],
    pub constraints: &'a [(String, Requirement)],
    pub sdist: SdistPolicy,
    /// Follow Requires-Dist.
    pub deps: bool,
    /// Leave out (with a warning) projects that have no usable file at all.
    pub allow_missing: bool,
    /// How the roots are named in explanations (`the requirements`, `the build of x.tar.gz`).
    pub roots_name: &'a str,
}

/// A chosen project: its version, its files (the metadata's file first) and why it is here.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub version: Version,
    pub files: Vec<IndexFile>,
    /// The first requirement that brought it: `requests>=2 (from oslo-config 9.4.0)`.
    pub why: String,
}

#[derive(Debug, Default)]
pub struct Resolution {
    pub chosen: BTreeMap<String, Chosen>,
    pub warnings: Vec<String>,
    /// Patch releases of the target's minor version that some marker or Requires-Python
    /// seen in this resolution tells apart (`python_full_version < "3.11.3"`).
    pub python_points: BTreeSet<Version>,
}

/// No set of versions satisfies every requirement: the derivation, one step per line.
#[derive(Debug, thiserror::Error)]
#[error("no set of versions satisfies the requirements for {environment}: {}", derivation.join("; "))]
pub struct NoSolution {
    pub environment: String,
    pub derivation: Vec<String>,
}

/// A package as PubGrub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Project(Arc<str>),
    Extra(Arc<str>, Arc<str>),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the requirements"),
            Pkg::Project(p) => f.write_str(p),
            Pkg::Extra(p, x) => write!(f, "{p}[{x}]"),
        }
    }
}

/// The index failed: the resolution stops with this error.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct IndexError(anyhow::Error);

/// Why a version of a project is not a candidate.
#[derive(Debug, Clone, PartialEq)]
enum Unusable {
    /// No file installs in the environment (or every one is excluded by Requires-Python).
    NoFile,
    RequiresPython(String),
}

#[derive(Debug, Clone)]
struct Cand {
    version: Version,
    /// Usable files that are not yanked (best first).
    files: Vec<IndexFile>,
    /// Usable files, yanked ones included (for a version pinned with `==`).
    yanked_files: Vec<IndexFile>,
    unusable: Option<Unusable>,
}

/// A project's versions for one environment, newest first.
#[derive(Debug)]
struct Project {
    cands: Vec<Cand>,
    /// The file names the index offers (for messages).
    offered: Vec<String>,
}

/// A dependency as read: the project and the requirement line.
type Edge = (Arc<str>, String);

#[derive(Default)]
struct State {
    projects: HashMap<String, Arc<Project>>,
    /// Versions some requirement pins with `==`/`===` (a yanked file may then be used).
    pinned: HashMap<String, HashSet<Version>>,
    /// Projects some requirement names a pre-release for.
    pre_named: HashSet<String>,
    last_choice: HashMap<String, Version>,
    /// The dependencies read for each (package, version): (project, requirement line).
    edges: HashMap<(Pkg, Version), Vec<Edge>>,
    order: HashMap<Arc<str>, usize>,
    warnings: Vec<String>,
    missing: HashSet<String>,
    python_points: BTreeSet<Version>,
}

struct Provider<'a, I: Index + ?Sized> {
    index: &'a I,
    req: &'a Request<'a>,
    /// Per project: the intersection of its constraints, and their lines.
    constraints: HashMap<String, (Range, Vec<String>)>,
    state: RefCell<State>,
}

/// Resolve one environment.
pub fn resolve<I: Index + ?Sized>(index: &I, req: &Request<'_>) -> Result<Resolution> {
    let mut constraints: HashMap<String, (Range, Vec<String>)> = HashMap::new();
    for (line, r) in req.constraints {
        if !r.evaluate_markers(&req.env.markers, &[]) {
            continue;
        }
        if let Some(VersionOrUrl::VersionSpecifier(s)) = &r.version_or_url {
            let e = constraints.entry(pypi::normalize(r.name.as_ref())).or_insert_with(|| (Range::full(), Vec::new()));
            e.0 = e.0.intersection(&Range::from(s.clone()));
            e.1.push(line.clone());
        }
    }
    let provider = Provider { index, req, constraints, state: RefCell::default() };
    for (_, r) in req.constraints {
        provider.note_specifiers(r);
    }
    let root_version = Version::from_str("0").expect("valid");
    match pubgrub::resolve(&provider, Pkg::Root, root_version.clone()) {
        Ok(solution) => provider.finish(&solution.into_iter().collect()),
        Err(PubGrubError::NoSolution(tree)) => {
            let formatter = Explain { provider: &provider };
            let text = pubgrub::DefaultStringReporter::report_with_formatter(&tree, &formatter);
            let derivation = text.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
            Err(NoSolution { environment: req.env.label.clone(), derivation }.into())
        }
        Err(PubGrubError::ErrorChoosingVersion { package, source }) => {
            Err(source.0.context(format!("choosing a version of `{package}`")))
        }
        Err(PubGrubError::ErrorRetrievingDependencies { package, version, source }) => {
            Err(source.0.context(format!("reading the dependencies of {package} {version}")))
        }
        Err(PubGrubError::ErrorInShouldCancel(e)) => Err(e.0),
    }
}

impl<I: Index + ?Sized> Provider<'_, I> {
    /// The candidates of a project for this environment (the index is asked once).
    fn project(&self, name: &str) -> Result<Arc<Project>> {
        if let Some(p) = self.state.borrow().projects.get(name) {
            return Ok(p.clone());
        }
        let files = self.index.files(name)?;
        let env = self.req.env;
        let mut by_version: BTreeMap<Version, Vec<&IndexFile>> = BTreeMap::new();
        let mut points = Vec::new();
        for f in files.iter() {
            if let Some(d) = pypi::parse_filename(&f.filename)
                && d.project == name
            {
                by_version.entry(d.version).or_default().push(f);
            }
            if let Some(rp) = &f.requires_python {
                points.extend(requires_python_points(rp, env));
            }
        }
        let mut cands = Vec::new();
        for (version, files) in by_version.into_iter().rev() {
            let admitted: Vec<&IndexFile> =
                files.iter().copied().filter(|f| env.admits(f.requires_python.as_deref())).collect();
            let pick = |fs: &[&IndexFile]| select_files(fs, env, self.req.sdist);
            let unyanked: Vec<&IndexFile> = admitted.iter().copied().filter(|f| f.yanked.is_none()).collect();
            let all = pick(&admitted);
            let unusable = if all.is_some() {
                None
            } else if admitted.len() < files.len() && pick(&files).is_some() {
                Some(Unusable::RequiresPython(files[0].requires_python.clone().unwrap_or_default()))
            } else {
                Some(Unusable::NoFile)
            };
            cands.push(Cand {
                version,
                files: pick(&unyanked).unwrap_or_default(),
                yanked_files: all.unwrap_or_default(),
                unusable,
            });
        }
        let mut offered: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
        offered.sort_unstable();
        let project = Arc::new(Project { cands, offered });
        let mut st = self.state.borrow_mut();
        st.python_points.extend(points);
        st.projects.insert(name.to_string(), project.clone());
        Ok(project)
    }

    fn constraint(&self, name: &str) -> Option<&Range> {
        self.constraints.get(name).map(|(r, _)| r)
    }

    /// The candidates in `range`, in preference order (newest first; finals before
    /// pre-releases unless a requirement names a pre-release or no final one fits).
    fn candidates<'p>(&self, name: &str, project: &'p Project, range: &Range) -> Vec<&'p Cand> {
        let st = self.state.borrow();
        let pinned = st.pinned.get(name);
        let allowed = |c: &&Cand| {
            c.unusable.is_none()
                && range.contains(&c.version)
                && self.constraint(name).is_none_or(|r| r.contains(&c.version))
                && (!c.files.is_empty() || pinned.is_some_and(|p| p.contains(&c.version)))
        };
        let usable: Vec<&Cand> = project.cands.iter().filter(allowed).collect();
        if st.pre_named.contains(name) {
            return usable;
        }
        let finals: Vec<&Cand> = usable.iter().copied().filter(|c| !c.version.any_prerelease()).collect();
        if finals.is_empty() { usable } else { finals }
    }

    fn cand_files(&self, name: &str, c: &Cand) -> Vec<IndexFile> {
        if !c.files.is_empty() {
            return c.files.clone();
        }
        let pinned = self.state.borrow().pinned.get(name).is_some_and(|p| p.contains(&c.version));
        if pinned { c.yanked_files.clone() } else { Vec::new() }
    }

    fn note_specifiers(&self, r: &Requirement) {
        let Some(VersionOrUrl::VersionSpecifier(specs)) = &r.version_or_url else { return };
        let name = pypi::normalize(r.name.as_ref());
        let mut st = self.state.borrow_mut();
        for s in specs.iter() {
            if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) {
                st.pinned.entry(name.clone()).or_default().insert(s.version().clone());
            }
            // As `packaging` does: naming a pre-release lets pre-releases in, but not in
            // an exclusion (`!=1.0rc1` says nothing about wanting one).
            if s.version().any_prerelease() && !matches!(s.operator(), Operator::NotEqual | Operator::NotEqualStar) {
                st.pre_named.insert(name.clone());
            }
        }
    }

    fn meta_of(&self, name: &str, version: &Version) -> Result<Option<(IndexFile, Arc<DistMeta>)>> {
        let project = self.project(name)?;
        let Some(c) = project.cands.iter().find(|c| &c.version == version) else { return Ok(None) };
        let files = self.cand_files(name, c);
        let Some(file) = files.first() else { return Ok(None) };
        Ok(Some((file.clone(), self.index.metadata(file, self.req.env)?)))
    }

    /// The dependency edges of requirement lines, for `extras` (markers evaluated for the
    /// target), merged per package.
    fn edges(
        &self,
        from: &Pkg,
        version: &Version,
        lines: &[(String, Requirement)],
        extras: &[ExtraName],
    ) -> Result<Vec<(Pkg, Range)>, String> {
        let mut out: Vec<(Pkg, Range)> = Vec::new();
        let mut recorded = Vec::new();
        let add = |out: &mut Vec<(Pkg, Range)>, p: Pkg, r: &Range| match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, have)) => *have = have.intersection(r),
            None => out.push((p, r.clone())),
        };
        let self_name = match from {
            Pkg::Project(p) | Pkg::Extra(p, _) => Some(p.clone()),
            Pkg::Root => None,
        };
        for (line, r) in lines {
            self.marker_points(r);
            if !r.evaluate_markers(&self.req.env.markers, extras) {
                continue;
            }
            let name: Arc<str> = pypi::normalize(r.name.as_ref()).into();
            if self_name.as_ref() == Some(&name) && r.extras.is_empty() {
                continue;
            }
            let range = match &r.version_or_url {
                None => Range::full(),
                Some(VersionOrUrl::VersionSpecifier(s)) => Range::from(s.clone()),
                Some(VersionOrUrl::Url(_)) => {
                    return Err(format!("needs `{line}`, a direct URL, which airlock does not follow"));
                }
            };
            if self.req.allow_missing && self.unavailable(&name) {
                continue;
            }
            self.note_specifiers(r);
            {
                let mut st = self.state.borrow_mut();
                let n = st.order.len();
                st.order.entry(name.clone()).or_insert(n);
            }
            add(&mut out, Pkg::Project(name.clone()), &range);
            for e in &r.extras {
                add(&mut out, Pkg::Extra(name.clone(), e.to_string().into()), &range);
            }
            recorded.push((name, line.clone()));
        }
        self.state.borrow_mut().edges.insert((from.clone(), version.clone()), recorded);
        // Fetch what comes next in parallel: the pages of every dependency, and the
        // metadata of the version each would get now.
        let names: Vec<String> = out
            .iter()
            .filter_map(|(p, _)| match p {
                Pkg::Project(n) if !self.state.borrow().projects.contains_key(&**n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        self.index.prefetch_files(&names);
        for (p, range) in &out {
            if let Pkg::Project(n) = p
                && self.state.borrow().projects.contains_key(&**n)
                && let Ok(project) = self.project(n)
                && let Some(c) = self.candidates(n, &project, range).first()
                && let Some(f) = self.cand_files(n, c).first()
            {
                self.index.prefetch_metadata(f, self.req.env);
            }
        }
        Ok(out)
    }

    /// With allow-missing: a project that has no usable file at all is left out, with a warning.
    fn unavailable(&self, name: &str) -> bool {
        if self.state.borrow().missing.contains(name) {
            return true;
        }
        let missing = match self.project(name) {
            Ok(p) => p.cands.iter().all(|c| c.unusable.is_some()),
            Err(_) => false,
        };
        if missing {
            let why = match self.project(name) {
                Ok(p) if p.offered.is_empty() => format!("no index offers project `{name}`"),
                _ => format!("no file of `{name}` fits {}", self.req.env.label),
            };
            let mut st = self.state.borrow_mut();
            st.missing.insert(name.to_string());
            st.warnings.push(format!("{why} (skipped: allow-missing)"));
        }
        missing
    }

    fn marker_points(&self, r: &Requirement) {
        let Some(text) = r.marker.try_to_string() else { return };
        if !text.contains("python_full_version") {
            return;
        }
        let points = marker_points(&text, self.req.env);
        if !points.is_empty() {
            self.state.borrow_mut().python_points.extend(points);
        }
    }

    fn finish(&self, solution: &HashMap<Pkg, Version>) -> Result<Resolution> {
        let st = self.state.borrow();
        let mut chosen = BTreeMap::new();
        // Breadth first from the root: each project's `why` is the first requirement that
        // reached it.
        let mut why: HashMap<Arc<str>, String> = HashMap::new();
        let mut queue: VecDeque<Pkg> = VecDeque::from([Pkg::Root]);
        let mut seen: HashSet<Pkg> = HashSet::new();
        while let Some(pkg) = queue.pop_front() {
            if !seen.insert(pkg.clone()) {
                continue;
            }
            let Some(v) = solution.get(&pkg) else { continue };
            let Some(edges) = st.edges.get(&(pkg.clone(), v.clone())) else { continue };
            for (name, line) in edges {
                why.entry(name.clone()).or_insert_with(|| match &pkg {
                    Pkg::Root => format!("{line} (from {})", self.req.roots_name),
                    p => format!("{line} (from {p} {v})"),
                });
                queue.push_back(Pkg::Project(name.clone()));
                for p in solution.keys() {
                    if let Pkg::Extra(n, _) = p
                        && n == name
                    {
                        queue.push_back(p.clone());
                    }
                }
            }
        }
        for (pkg, v) in solution {
            let Pkg::Project(name) = pkg else { continue };
            let project = st.projects.get(&**name).expect("a chosen project was read");
            let c = project.cands.iter().find(|c| &c.version == v).expect("a chosen version is a candidate");
            let files = if !c.files.is_empty() {
                c.files.clone()
            } else if st.pinned.get(&**name).is_some_and(|p| p.contains(v)) {
                c.yanked_files.clone()
            } else {
                Vec::new()
            };
            let why = why.get(name).cloned().unwrap_or_else(|| format!("{name} (from {})", self.req.roots_name));
            chosen.insert(name.to_string(), Chosen { version: v.clone(), files, why });
        }
        Ok(Resolution { chosen, warnings: st.warnings.clone(), python_points: st.python_points.clone() })
    }
}

impl<I: Index + ?Sized> DependencyProvider for Provider<'_, I> {
    type P = Pkg;
    type V = Version;
    type VS = Range;
    type M = String;
    type Err = IndexError;
    /// Projects before extras (an extra takes the version its project got); then the
    /// packages that conflicted most, pinned ones, upper-bounded ones, and the order
    /// they were first required in (pip's preferences, roughly).
    type Priority = (u8, u32, bool, bool, Reverse<usize>);

    fn prioritize(&self, package: &Pkg, range: &Range, stats: &PackageResolutionStatistics) -> Self::Priority {
        let order = |n: &Arc<str>| self.state.borrow().order.get(n).copied().unwrap_or(usize::MAX);
        let singleton = range.as_singleton().is_some();
        let upper = range.bounding_range().is_some_and(|(_, hi)| !matches!(hi, Bound::Unbounded));
        match package {
            Pkg::Root => (3, 0, true, true, Reverse(0)),
            Pkg::Project(n) => (2, stats.conflict_count(), singleton, upper, Reverse(order(n))),
            Pkg::Extra(n, _) => (1, stats.conflict_count(), singleton, upper, Reverse(order(n))),
        }
    }

    fn choose_version(&self, package: &Pkg, range: &Range) -> Result<Option<Version>, IndexError> {
        let name = match package {
            Pkg::Root => return Ok(Some(Version::from_str("0").expect("valid"))),
            Pkg::Project(n) | Pkg::Extra(n, _) => n,
        };
        let project = self.project(name).map_err(IndexError)?;
        let cands = self.candidates(name, &project, range);
        if let Pkg::Extra(..) = package
            && let Some(v) = self.state.borrow().last_choice.get(&**name)
            && cands.iter().any(|c| &c.version == v)
        {
            return Ok(Some(v.clone()));
        }
        let v = cands.first().map(|c| c.version.clone());
        if let (Pkg::Project(_), Some(v)) = (package, &v) {
            self.state.borrow_mut().last_choice.insert(name.to_string(), v.clone());
        }
        Ok(v)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range, String>, IndexError> {
        let deps = match package {
            Pkg::Root => {
                let roots: Vec<(String, Requirement)> = self.req.roots.to_vec();
                for (_, r) in &roots {
                    self.note_specifiers(r);
                }
                self.edges(package, version, &roots, &[])
            }
            Pkg::Project(name) | Pkg::Extra(name, _) => {
                let Some((file, meta)) = self.meta_of(name, version).map_err(IndexError)? else {
                    return Ok(Dependencies::Unavailable("has no usable file".into()));
                };
                if let Some(rp) = meta.requires_python.as_deref().filter(|rp| !self.req.env.admits(Some(rp))) {
                    return Ok(Dependencies::Unavailable(format!("requires Python {rp}")));
                }
                let mut extras = Vec::new();
                let mut out = Vec::new();
                if let Pkg::Extra(_, x) = package {
                    extras.push(ExtraName::from_str(x).map_err(|e| IndexError(anyhow!("extra `{x}`: {e}")))?);
                    out.push((Pkg::Project(name.clone()), Range::singleton(version.clone())));
                }
                if !self.req.deps {
                    return Ok(Dependencies::Available(out.into_iter().collect()));
                }
                if let Some(why) = &meta.unknown {
                    let mut st = self.state.borrow_mut();
                    let w = format!("{}: {why}", file.filename);
                    if !st.warnings.contains(&w) {
                        st.warnings.push(w);
                    }
                    return Ok(Dependencies::Available(out.into_iter().collect()));
                }
                let mut lines = Vec::new();
                for line in &meta.requires_dist {
                    match pypi::parse_requirement_line(line) {
                        Ok(r) => lines.push((line.clone(), r)),
                        Err(e) => {
                            return Ok(Dependencies::Unavailable(format!(
                                "has a Requires-Dist that does not parse: {e:#}"
                            )));
                        }
                    }
                }
                self.edges(package, version, &lines, &extras).map(|mut e| {
                    e.extend(out);
                    e
                })
            }
        };
        Ok(match deps {
            Ok(d) => Dependencies::Available(d.into_iter().collect::<DependencyConstraints<_, _>>()),
            Err(why) => Dependencies::Unavailable(why),
        })
    }
}

/// The files that carry a version for `env`: the best-ranked wheel, and the sdist as the
/// policy says (the first file is the one whose metadata speaks for the version).
pub fn select_files(files: &[&IndexFile], env: &Environment, policy: SdistPolicy) -> Option<Vec<IndexFile>> {
    let wheel = files
        .iter()
        .filter_map(|f| match pypi::parse_filename(&f.filename)?.kind {
            DistKind::Wheel(tags) => Some((env.rank(&tags)?, (*f).clone())),
            DistKind::Sdist => None,
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, f)| f);
    let sdist = files
        .iter()
        .filter(|f| matches!(pypi::parse_filename(&f.filename).map(|d| d.kind), Some(DistKind::Sdist)))
        .min_by_key(|f| !f.filename.ends_with(".tar.gz"))
        .map(|f| (*f).clone());
    match (policy, wheel, sdist) {
        (SdistPolicy::Never | SdistPolicy::Fallback, Some(w), _) => Some(vec![w]),
        (SdistPolicy::Fallback | SdistPolicy::Always, None, Some(s)) => Some(vec![s]),
        (SdistPolicy::Always, Some(w), Some(s)) => Some(vec![w, s]),
        (SdistPolicy::Always, Some(w), None) => Some(vec![w]),
        _ => None,
    }
}

/// Patch releases of the target's minor version on either side of each
/// `python_full_version` comparison in a marker's text.
fn marker_points(text: &str, env: &Environment) -> Vec<Version> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("python_full_version") {
        let rest = &text[i + "python_full_version".len()..];
        let Some(q) = rest.find(['\'', '"']) else { continue };
        let quote = rest.as_bytes()[q] as char;
        let Some(end) = rest[q + 1..].find(quote) else { continue };
        if let Ok(v) = Version::from_str(&rest[q + 1..q + 1 + end]) {
            out.extend(points_around(&v, env));
        }
    }
    out
}

fn requires_python_points(rp: &str, env: &Environment) -> Vec<Version> {
    let Ok(specs) = VersionSpecifiers::from_str(rp) else { return Vec::new() };
    specs.iter().flat_map(|s| points_around(s.version(), env)).collect()
}

/// For `3.11.3` (on a `3.11` target): `3.11.3` and `3.11.4`, which every comparison
/// operator tells apart from each other and from `3.11.0`.
fn points_around(v: &Version, env: &Environment) -> Vec<Version> {
    if env.exact {
        return Vec::new();
    }
    let base = env.python_full.release();
    match v.release() {
        [maj, min, patch] if base.len() >= 2 && *maj == base[0] && *min == base[1] && !v.any_prerelease() => {
            vec![Version::new([*maj, *min, *patch]), Version::new([*maj, *min, patch + 1])]
        }
        _ => Vec::new(),
    }
}

/// A version without the internal min/max markers ranges use.
fn plain(v: &Version) -> Version {
    let mut v = v.clone();
    if Version::min(&v).is_some() {
        v = v.with_min(None);
    }
    if Version::max(&v).is_some() {
        v = v.with_max(None);
    }
    v
}

/// `>=1.0,<2.0`, `==1.0`, `!=1.0`, `<1.0 or >=2.0`; empty for any version.
pub fn range_text(r: &Range) -> String {
    if r == &Range::full() {
        return String::new();
    }
    if r.is_empty() {
        return " (no version)".into();
    }
    if let Some(v) = r.as_singleton() {
        return format!("=={}", plain(v));
    }
    let segs: Vec<(&Bound<Version>, &Bound<Version>)> = r.iter().collect();
    if let [(Bound::Unbounded, Bound::Excluded(a)), (Bound::Excluded(b), Bound::Unbounded)] = segs.as_slice()
        && a == b
    {
        return format!("!={}", plain(a));
    }
    let seg = |(lo, hi): &(&Bound<Version>, &Bound<Version>)| {
        let lo = match lo {
            Bound::Included(v) => Some(format!(">={}", plain(v))),
            Bound::Excluded(v) => Some(format!(">{}", plain(v))),
            Bound::Unbounded => None,
        };
        let hi = match hi {
            Bound::Included(v) => Some(format!("<={}", plain(v))),
            Bound::Excluded(v) => Some(format!("<{}", plain(v))),
            Bound::Unbounded => None,
        };
        lo.into_iter().chain(hi).collect::<Vec<_>>().join(",")
    };
    segs.iter().map(seg).collect::<Vec<_>>().join(" or ")
}

/// `glance 32.0.0`, `glance>=32`, `glance`, `the requirements`.
fn subject(p: &Pkg, r: &Range) -> String {
    match (p, r.as_singleton()) {
        (Pkg::Root, _) => p.to_string(),
        (_, Some(v)) => format!("{p} {}", plain(v)),
        _ => format!("{p}{}", range_text(r)),
    }
}

fn object(p: &Pkg, r: &Range) -> String {
    let t = range_text(r);
    if t.contains(" or ") { format!("{p} ({t})") } else { format!("{p}{t}") }
}

/// Renders PubGrub's derivation in airlock's words, one clause per line.
struct Explain<'a, 'b, I: Index + ?Sized> {
    provider: &'a Provider<'b, I>,
}

impl<I: Index + ?Sized> Explain<'_, '_, I> {
    fn no_versions(&self, p: &Pkg, set: &Range) -> String {
        let name = match p {
            Pkg::Root => return "the requirements cannot be read".into(),
            Pkg::Project(n) | Pkg::Extra(n, _) => n.clone(),
        };
        let Some(project) = self.provider.state.borrow().projects.get(&*name).cloned() else {
            return format!("no version of {} is known", object(p, set));
        };
        if project.offered.is_empty() {
            return format!("no index offers project `{name}` (check the project name and the index URL in the spec)");
        }
        let env = &self.provider.req.env.label;
        let in_set: Vec<&Cand> = project.cands.iter().filter(|c| set.contains(&c.version)).collect();
        if in_set.is_empty() {
            let have: Vec<String> = project.cands.iter().take(10).map(|c| c.version.to_string()).collect();
            return format!("the index has no version of {} (it has {})", object(p, set), have.join(", "));
        }
        let mut reasons: Vec<String> = Vec::new();
        let constraint = self.provider.constraints.get(&*name);
        let (by_constraint, rest): (Vec<&Cand>, Vec<&Cand>) =
            in_set.iter().partition(|c| constraint.is_some_and(|(r, _)| !r.contains(&c.version)));
        if !by_constraint.is_empty() {
            let (r, lines) = constraint.expect("constrained");
            let verb = if r.as_singleton().is_some() { "pin" } else { "allow only" };
            reasons.push(format!("the constraints {verb} {}", lines.join(", ")));
        }
        let mut no_file = Vec::new();
        for c in rest {
            match &c.unusable {
                Some(Unusable::NoFile) => no_file.push(c.version.to_string()),
                Some(Unusable::RequiresPython(rp)) => {
                    reasons.push(format!("{name} {} requires Python {rp}", c.version));
                }
                None if c.files.is_empty() => reasons.push(format!("{name} {} is yanked", c.version)),
                None if c.version.any_prerelease() => {
                    reasons.push(format!("{name} {} is a pre-release (name one to allow it)", c.version))
                }
                None => {}
            }
        }
        if !no_file.is_empty() {
            let shown: Vec<&str> = project.offered.iter().take(12).map(String::as_str).collect();
            let more = project.offered.len().saturating_sub(12);
            reasons.push(format!(
                "no file of `{name}` fits {env} (versions {}; the index offers: {}{})",
                no_file.join(", "),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
        }
        if reasons.is_empty() {
            return format!("no version of {} can be used in {env}", object(p, set));
        }
        reasons.join(", and ")
    }
}

impl<I: Index + ?Sized> ReportFormatter<Pkg, Range, String> for Explain<'_, '_, I> {
    type Output = String;

    fn format_external(&self, external: &External<Pkg, Range, String>) -> String {
        match external {
            External::NotRoot(p, v) => format!("{p} {v} is being resolved"),
            External::NoVersions(p, set) => self.no_versions(p, set),
            External::Custom(p, set, why) => format!("{} {why}", subject(p, set)),
            External::FromDependencyOf(p, sp, d, sd) => match p {
                Pkg::Root => format!("{} ask for {}", self.provider.req.roots_name, object(d, sd)),
                Pkg::Extra(n, _) if matches!(d, Pkg::Project(m) if m == n) => {
                    format!("{} is {}", subject(p, sp), object(d, sd))
                }
                _ => format!("{} needs {}", subject(p, sp), object(d, sd)),
            },
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<Range>>) -> String {
        let v: Vec<(&Pkg, &Term<Range>)> = terms.iter().collect();
        match v.as_slice() {
            [] => "so no set of versions fits".into(),
            [(Pkg::Root, Term::Positive(_))] => format!("so {} cannot all be met", self.provider.req.roots_name),
            [(p, Term::Positive(r))] if r == &Range::full() => format!("so no version of {p} can be used"),
            [(p, Term::Positive(r))] if r.as_singleton().is_some() => format!("so {} cannot be used", subject(p, r)),
            [(p, Term::Positive(r))] => format!("so {}", object(p, &r.complement())),
            [(p, Term::Negative(r))] => format!("so {} is needed", object(p, r)),
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => {
                format!("so {} needs {}", subject(p1, r1), object(p2, r2))
            }
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => subject(p, r),
                        Term::Negative(r) => format!("not {}", object(p, r)),
                    })
                    .collect();
                format!("so {} cannot all hold", parts.join(", "))
            }
        }
    }

    fn explain_both_external(
        &self,
        e1: &External<Pkg, Range, String>,
        e2: &External<Pkg, Range, String>,
        terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!("{}; {}; {}", self.format_external(e1), self.format_external(e2), self.format_terms(terms))
    }

    fn explain_both_ref(
        &self,
        id1: usize,
        d1: &Derived<Pkg, Range, String>,
        id2: usize,
        d2: &Derived<Pkg, Range, String>,
        terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "by ({id1}) {} and ({id2}) {}, {}",
            self.format_terms(&d1.terms).trim_start_matches("so "),
            self.format_terms(&d2.terms).trim_start_matches("so "),
            self.format_terms(terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        id: usize,
        d: &Derived<Pkg, Range, String>,
        e: &External<Pkg, Range, String>,
        terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "by ({id}) {}, and {}; {}",
            self.format_terms(&d.terms).trim_start_matches("so "),
            self.format_external(e),
            self.format_terms(terms)
        )
    }

    fn and_explain_external(&self, e: &External<Pkg, Range, String>, terms: &Map<Pkg, Term<Range>>) -> String {
        format!("{}; {}", self.format_external(e), self.format_terms(terms))
    }

    fn and_explain_ref(&self, id: usize, d: &Derived<Pkg, Range, String>, terms: &Map<Pkg, Term<Range>>) -> String {
        format!("by ({id}) {}, {}", self.format_terms(&d.terms).trim_start_matches("so "), self.format_terms(terms))
    }

    fn and_explain_prior_and_external(
        &self,
        prior: &External<Pkg, Range, String>,
        e: &External<Pkg, Range, String>,
        terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!("{}; {}; {}", self.format_external(prior), self.format_external(e), self.format_terms(terms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index in memory: wheels `name-version-<tag>.whl` with their metadata.
    #[derive(Default)]
    struct Mem {
        files: HashMap<String, Vec<IndexFile>>,
        meta: HashMap<String, DistMeta>,
    }

    impl Mem {
        fn add(&mut self, name: &str, version: &str, deps: &[&str]) -> &mut IndexFile {
            self.add_file(name, version, "py3-none-any", deps, None)
        }

        fn add_file(
            &mut self,
            name: &str,
            version: &str,
            tag: &str,
            deps: &[&str],
            rp: Option<&str>,
        ) -> &mut IndexFile {
            let filename = format!("{}-{version}-{tag}.whl", name.replace('-', "_"));
            let url = format!("http://idx.example/files/{filename}");
            self.meta.insert(
                url.clone(),
                DistMeta {
                    requires_dist: deps.iter().map(|d| d.to_string()).collect(),
                    requires_python: rp.map(str::to_string),
                    unknown: None,
                },
            );
            let list = self.files.entry(name.to_string()).or_default();
            list.push(IndexFile {
                filename,
                url,
                sha256: None,
                requires_python: None,
                yanked: None,
                core_metadata: None,
                size: None,
            });
            list.last_mut().unwrap()
        }
    }

    impl Index for Mem {
        fn files(&self, project: &str) -> Result<Arc<Vec<IndexFile>>> {
            Ok(Arc::new(self.files.get(project).cloned().unwrap_or_default()))
        }
        fn metadata(&self, file: &IndexFile, _env: &Environment) -> Result<Arc<DistMeta>> {
            Ok(Arc::new(self.meta[&file.url].clone()))
        }
    }

    fn lines(v: &[&str]) -> Vec<(String, Requirement)> {
        v.iter().map(|l| (l.to_string(), pypi::parse_requirement_line(l).unwrap())).collect()
    }

    fn run(idx: &Mem, env: &Environment, roots: &[&str], constraints: &[&str]) -> Result<BTreeMap<String, String>> {
        let (roots, constraints) = (lines(roots), lines(constraints));
        let req = request(env, &roots, &constraints);
        Ok(resolve(idx, &req)?.chosen.into_iter().map(|(k, c)| (k, c.version.to_string())).collect())
    }

    /// The defaults: sdists as a fallback, dependencies followed, nothing allowed missing.
    fn request<'a>(
        env: &'a Environment,
        roots: &'a [(String, Requirement)],
        constraints: &'a [(String, Requirement)],
    ) -> Request<'a> {
        Request {
            env,
            roots,
            constraints,
            sdist: SdistPolicy::Fallback,
            deps: true,
            allow_missing: false,
            roots_name: "the requirements",
        }
    }

    fn env() -> Environment {
        Environment::new("3.11", "manylinux_2_28_x86_64").unwrap()
    }

    fn versions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// The OpenStack case: the newest service needs more than the constraints allow.
    fn openstack() -> Mem {
        let mut idx = Mem::default();
        idx.add("glance", "32.0.0", &["futurist>=3.2.1", "oslo-config>=9"]);
        idx.add("glance", "31.0.0", &["futurist>=3.0.0", "oslo-config>=9"]);
        idx.add("glance", "30.0.0", &["futurist>=2", "oslo-config>=8"]);
        idx.add("futurist", "3.2.1", &[]);
        idx.add("futurist", "3.0.0", &[]);
        idx.add("oslo-config", "9.4.0", &[]);
        idx.add("oslo-config", "9.5.0", &[]);
        idx
    }

    #[test]
    fn backtracks_to_an_older_release_the_constraints_allow() {
        let idx = openstack();
        let got = run(&idx, &env(), &["glance"], &["futurist===3.0.0", "oslo.config===9.4.0"]).unwrap();
        assert_eq!(got, versions(&[("glance", "31.0.0"), ("futurist", "3.0.0"), ("oslo-config", "9.4.0")]));
        // Without constraints: the newest of everything.
        let got = run(&idx, &env(), &["glance"], &[]).unwrap();
        assert_eq!(got, versions(&[("glance", "32.0.0"), ("futurist", "3.2.1"), ("oslo-config", "9.5.0")]));
        // A constraint on a project nothing needs adds nothing.
        let got = run(&idx, &env(), &["futurist"], &["glance===30.0.0"]).unwrap();
        assert_eq!(got, versions(&[("futurist", "3.2.1")]));
    }

    #[test]
    fn a_conflict_is_explained_as_a_derivation() {
        let idx = openstack();
        let err = run(&idx, &env(), &["glance>=32"], &["futurist===3.0.0"]).unwrap_err();
        let ns = err.downcast_ref::<NoSolution>().expect("a NoSolution");
        assert_eq!(ns.environment, "cp311-manylinux_2_28_x86_64");
        let text = ns.derivation.join("; ");
        assert!(text.contains("glance 32.0.0 needs futurist>=3.2.1"), "{text}");
        assert!(text.contains("the constraints pin futurist===3.0.0"), "{text}");
        assert!(text.contains("so glance 32.0.0 cannot be used"), "{text}");
        assert!(text.contains("the requirements ask for glance>=32"), "{text}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }

    #[test]
    fn extras_are_followed_and_follow_their_project() {
        let mut idx = Mem::default();
        idx.add("app", "1.0", &["lib[fast]", "lib<2"]);
        idx.add("lib", "2.0", &["speedup>=2; extra == 'fast'"]);
        idx.add("lib", "1.5", &["speedup<2; extra == \"fast\"", "plain"]);
        idx.add("speedup", "1.0", &[]);
        idx.add("speedup", "2.0", &[]);
        idx.add("plain", "1.0", &[]);
        let got = run(&idx, &env(), &["app"], &[]).unwrap();
        assert_eq!(got, versions(&[("app", "1.0"), ("lib", "1.5"), ("plain", "1.0"), ("speedup", "1.0")]));
        // Without the extra, speedup stays out.
        let got = run(&idx, &env(), &["lib"], &[]).unwrap();
        assert_eq!(got, versions(&[("lib", "2.0")]));
    }

    #[test]
    fn markers_are_the_targets() {
        let mut idx = Mem::default();
        idx.add("app", "1.0", &["colorama; sys_platform == 'win32'", "uvloop; sys_platform != 'win32'"]);
        idx.add("colorama", "1.0", &[]);
        idx.add("uvloop", "1.0", &[]);
        let win = Environment::new("3.11", "win_amd64").unwrap();
        assert_eq!(run(&idx, &win, &["app"], &[]).unwrap(), versions(&[("app", "1.0"), ("colorama", "1.0")]));
        assert_eq!(run(&idx, &env(), &["app"], &[]).unwrap(), versions(&[("app", "1.0"), ("uvloop", "1.0")]));
        // A root requirement's own marker too.
        assert_eq!(run(&idx, &env(), &["colorama; sys_platform == 'win32'", "uvloop"], &[]).unwrap().len(), 1);
    }

    #[test]
    fn yanked_files_only_when_pinned() {
        let mut idx = Mem::default();
        idx.add("lib", "1.1", &[]);
        idx.add("lib", "1.2", &[]).yanked = Some("broken".into());
        assert_eq!(run(&idx, &env(), &["lib"], &[]).unwrap(), versions(&[("lib", "1.1")]));
        assert_eq!(run(&idx, &env(), &["lib==1.2"], &[]).unwrap(), versions(&[("lib", "1.2")]));
        assert_eq!(run(&idx, &env(), &["lib"], &["lib===1.2"]).unwrap(), versions(&[("lib", "1.2")]));
        let err = run(&idx, &env(), &["lib>1.1"], &[]).unwrap_err().to_string();
        assert!(err.contains("lib 1.2 is yanked"), "{err}");
    }

    #[test]
    fn pre_releases_only_when_named_or_alone() {
        let mut idx = Mem::default();
        idx.add("lib", "1.0", &[]);
        idx.add("lib", "2.0rc1", &[]);
        idx.add("beta", "0.1b1", &[]);
        assert_eq!(run(&idx, &env(), &["lib"], &[]).unwrap(), versions(&[("lib", "1.0")]));
        assert_eq!(run(&idx, &env(), &["lib>=2.0rc1"], &[]).unwrap(), versions(&[("lib", "2.0rc1")]));
        // pip takes a pre-release when no final release fits the specifier.
        assert_eq!(run(&idx, &env(), &["lib>=1.5"], &[]).unwrap(), versions(&[("lib", "2.0rc1")]));
        assert_eq!(run(&idx, &env(), &["beta"], &[]).unwrap(), versions(&[("beta", "0.1b1")]));
        // Excluding a pre-release does not ask for pre-releases (as `packaging` reads it).
        idx.add("lib", "2.0rc2", &[]);
        assert_eq!(run(&idx, &env(), &["lib!=2.0rc1"], &[]).unwrap(), versions(&[("lib", "1.0")]));
    }

    #[test]
    fn requires_python_of_the_index_and_of_the_metadata() {
        let mut idx = Mem::default();
        idx.add("lib", "3.0", &[]).requires_python = Some(">=3.12".into());
        idx.add_file("lib", "2.0", "py3-none-any", &[], Some(">=3.12"));
        idx.add("lib", "1.0", &[]);
        assert_eq!(run(&idx, &env(), &["lib"], &[]).unwrap(), versions(&[("lib", "1.0")]));
        let py312 = Environment::new("3.12", "any").unwrap();
        assert_eq!(run(&idx, &py312, &["lib"], &[]).unwrap(), versions(&[("lib", "3.0")]));
        let err = run(&idx, &env(), &["lib>=3"], &[]).unwrap_err().to_string();
        assert!(err.contains("lib 3.0 requires Python >=3.12"), "{err}");
        let err = run(&idx, &env(), &["lib==2.0"], &[]).unwrap_err().to_string();
        assert!(err.contains("lib 2.0 requires Python >=3.12"), "{err}");
    }

    #[test]
    fn wheels_for_the_platform_and_the_sdist_policy() {
        let mut idx = Mem::default();
        idx.add_file("native", "2.0", "cp311-cp311-win_amd64", &[], None);
        idx.add_file("native", "1.0", "cp311-cp311-manylinux_2_17_x86_64", &[], None);
        assert_eq!(run(&idx, &env(), &["native"], &[]).unwrap(), versions(&[("native", "1.0")]));
        let err = run(&idx, &env(), &["native>=2"], &[]).unwrap_err().to_string();
        assert!(err.contains("no file of `native` fits cp311-manylinux_2_28_x86_64"), "{err}");
        assert!(err.contains("native-2.0-cp311-cp311-win_amd64.whl"), "{err}");
    }

    #[test]
    fn a_project_no_index_offers_says_so() {
        let idx = openstack();
        let err = run(&idx, &env(), &["glance", "nonesuch"], &[]).unwrap_err().to_string();
        assert!(err.contains("no index offers project `nonesuch`") && err.contains("index URL"), "{err}");
    }

    #[test]
    fn patch_releases_a_marker_tells_apart_are_reported() {
        let mut idx = Mem::default();
        idx.add("app", "1.0", &["old; python_full_version < '3.11.3'", "any; python_version >= '3.8'"]);
        idx.add("old", "1.0", &[]);
        idx.add("any", "1.0", &[]);
        let (roots, constraints) = (lines(&["app"]), lines(&[]));
        let env = env();
        let req = request(&env, &roots, &constraints);
        let res = resolve(&idx, &req).unwrap();
        assert!(res.chosen.contains_key("old"), "3.11.0 is below 3.11.3");
        let points: Vec<String> = res.python_points.iter().map(ToString::to_string).collect();
        assert_eq!(points, ["3.11.3", "3.11.4"]);
        let later = env.at_patch(&res.python_points.iter().next().unwrap().clone()).unwrap();
        assert_eq!(run(&idx, &later, &["app"], &[]).unwrap(), versions(&[("any", "1.0"), ("app", "1.0")]));
        // An exact target is just that release.
        let exact = Environment::new("3.11.4", "manylinux_2_28_x86_64").unwrap();
        let req = Request { env: &exact, ..req };
        assert!(resolve(&idx, &req).unwrap().python_points.is_empty());
    }

    #[test]
    fn why_names_the_first_requirement_that_brought_a_project() {
        let idx = openstack();
        let (roots, constraints) = (lines(&["glance"]), lines(&[]));
        let env = env();
        let req = request(&env, &roots, &constraints);
        let res = resolve(&idx, &req).unwrap();
        assert_eq!(res.chosen["glance"].why, "glance (from the requirements)");
        assert_eq!(res.chosen["futurist"].why, "futurist>=3.2.1 (from glance 32.0.0)");
    }
}
