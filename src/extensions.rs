//! Resolving OCI artifacts (extensions) and their dependencies by version range.
//!
//! A spec's `artifacts:` names repositories and version ranges; each artifact's
//! `manifest.yaml` names its dependencies, also by range. The rule (docs/oci.md):
//!
//! - the candidates of a repository are its tags that read as versions (a leading `v`
//!   allowed, `1.28` read as `1.28.0`); on equal versions the tag sorting last wins;
//! - walking from the roots, breadth-first in spec order, through the versions chosen so
//!   far, every range that reaches a repository is collected; the repository gets the
//!   highest version satisfying all of them; this repeats until no choice changes (a
//!   range that only a former choice imposed is withdrawn with it);
//! - no version satisfying all the ranges that reach a repository is a conflict, and a
//!   dependency path back to where it started is a cycle: both are refused, naming the
//!   chains of ranges.
//!
//! There is no backtracking: an older version of a dependent is never tried to make room
//! for a dependency. The same tags and manifests always give the same answer.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;

use crate::digest::Digest;

/// How many rounds of choosing before giving up on ranges that keep changing each other.
const MAX_ROUNDS: usize = 64;

/// A version range as written (`">=1.28 <1.30"`, `"^2"`, `"*"`) and as the semver crate
/// reads it (comparators joined by commas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub text: String,
    pub req: semver::VersionReq,
    /// Only this tag (for `oci tree REF`, which names one).
    pub tag: Option<String>,
}

impl Range {
    /// Parse a range: space- or comma-separated comparators, each an operator (`=`, `>`,
    /// `>=`, `<`, `<=`, `~`, `^`, or none, which means `^` as in Cargo) and a version with
    /// an optional leading `v`. Empty or `*` is any version.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.contains("||") {
            bail!("version range `{text}`: `||` alternatives are not supported");
        }
        let mut parts: Vec<String> = Vec::new();
        let mut pending_op: Option<String> = None;
        for tok in t.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()) {
            if tok.chars().all(|c| "<>=~^".contains(c)) {
                if pending_op.is_some() {
                    bail!("version range `{text}`: two operators in a row");
                }
                pending_op = Some(tok.to_string());
                continue;
            }
            let op_len = tok.find(|c: char| !"<>=~^".contains(c)).unwrap_or(tok.len());
            let (op, ver) = tok.split_at(op_len);
            let op = match (pending_op.take(), op) {
                (Some(p), "") => p,
                (Some(_), _) => bail!("version range `{text}`: two operators in a row"),
                (None, o) => o.to_string(),
            };
            let ver = ver.strip_prefix('v').unwrap_or(ver);
            parts.push(format!("{op}{ver}"));
        }
        if pending_op.is_some() {
            bail!("version range `{text}`: an operator without a version");
        }
        let joined = if parts.is_empty() { "*".to_string() } else { parts.join(", ") };
        let req = semver::VersionReq::parse(&joined).map_err(|e| anyhow!("version range `{text}`: {e}"))?;
        Ok(Self { text: if t.is_empty() { "*".into() } else { t.to_string() }, req, tag: None })
    }

    /// Exactly this tag, whose version is `version`.
    pub fn exact(tag: &str, version: &semver::Version) -> Self {
        let req = semver::VersionReq::parse(&format!("={version}")).expect("a version is a range");
        Self { text: tag.to_string(), req, tag: Some(tag.to_string()) }
    }

    pub fn matches(&self, c: &Candidate) -> bool {
        self.req.matches(&c.version) && self.tag.as_ref().is_none_or(|t| *t == c.tag)
    }
}

/// A tag as a version: a leading `v` allowed, missing minor and patch read as 0.
pub fn tag_version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = semver::Version::parse(t) {
        return Some(v);
    }
    let nums: Vec<&str> = t.split('.').collect();
    if nums.len() < 3 && nums.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        let mut it = nums.iter().map(|n| n.parse::<u64>().ok());
        let major = it.next().flatten()?;
        let minor = it.next().flatten().unwrap_or(0);
        return Some(semver::Version::new(major, minor, 0));
    }
    None
}

/// One tag of a repository that reads as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub version: semver::Version,
    pub tag: String,
}

/// What the resolver learns of one artifact version.
#[derive(Debug, Clone)]
pub struct Meta {
    pub digest: Digest,
    pub artifact_type: Option<String>,
    /// Dependencies as `manifest.yaml` names them, with their ranges, in its order.
    pub dependencies: Vec<(String, String)>,
}

/// Where the resolver reads tags and manifests (a registry; a map in the unit tests).
/// Repositories are `host/path`.
pub trait Index {
    fn tags(&self, repository: &str) -> Result<Vec<String>>;
    fn meta(&self, repository: &str, tag: &str) -> Result<Meta>;
}

/// `manifest.yaml` at the root of an artifact: the fields the resolver reads. Other
/// fields are the artifact's own business.
#[derive(Debug, Deserialize, Default)]
pub struct ExtensionManifest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub version: Option<yaml_serde::Value>,
    #[serde(default)]
    pub dependencies: Dependencies,
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// `dependencies:` as a mapping `name: range`, or a list of `{name, version}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Dependencies {
    Map(BTreeMap<String, Option<String>>),
    List(Vec<DependencyItem>),
}

impl Default for Dependencies {
    fn default() -> Self {
        Dependencies::List(Vec::new())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyItem {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

impl ExtensionManifest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        yaml_serde::from_slice(bytes).map_err(|e| anyhow!("manifest.yaml: {e}"))
    }

    /// `(name, range)` pairs; a missing range is `*`.
    pub fn dependencies(&self) -> Vec<(String, String)> {
        match &self.dependencies {
            Dependencies::Map(m) => {
                m.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| "*".into()))).collect()
            }
            Dependencies::List(l) => {
                l.iter().map(|d| (d.name.clone(), d.version.clone().unwrap_or_else(|| "*".into()))).collect()
            }
        }
    }
}

/// The repository a dependency names, relative to the one depending on it: a plain name
/// is a sibling (`host/extensions/app` needs `db` → `host/extensions/db`); a name with a
/// `/` is a repository path on the same registry (`tools/db` → `host/tools/db`).
pub fn dependency_repository(of: &str, name: &str) -> Result<String> {
    let host = of.split('/').next().unwrap_or_default();
    let repo = if name.contains('/') {
        format!("{host}/{}", name.trim_start_matches('/'))
    } else {
        match of.rsplit_once('/') {
            Some((parent, _)) if parent.contains('/') => format!("{parent}/{name}"),
            _ => format!("{host}/{name}"),
        }
    };
    let path = &repo[host.len() + 1..];
    crate::names::image_repository(path).map_err(|e| anyhow!("dependency `{name}` of {}: {e}", short(of)))?;
    Ok(repo)
}

/// The last path component: how errors and trees name an artifact.
pub fn short(repository: &str) -> &str {
    repository.rsplit('/').next().unwrap_or(repository)
}

/// A root of the resolution: a spec entry, or the reference `oci tree` was given.
#[derive(Debug, Clone)]
pub struct Root {
    pub repository: String,
    pub range: Range,
}

/// One artifact of the resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub repository: String,
    pub version: semver::Version,
    pub tag: String,
    pub digest: Digest,
    pub artifact_type: Option<String>,
    /// Each dependency: repository and range, in `manifest.yaml`'s order.
    pub dependencies: Vec<(String, String)>,
    /// Every chain of ranges that reaches it (`app 1.0.0 → db >=2`, or `db >=2 (spec)`).
    pub required_by: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// By repository.
    pub artifacts: BTreeMap<String, Resolved>,
    pub roots: Vec<String>,
}

#[derive(Debug, Clone)]
struct Constraint {
    range: Range,
    /// `name version` of each artifact on the way, from a root.
    path: Vec<String>,
    origin: String,
}

impl Constraint {
    fn chain(&self, repository: &str) -> String {
        let end = format!("{} {}", short(repository), self.range.text);
        if self.path.is_empty() {
            format!("{end} ({})", self.origin)
        } else {
            format!("{} → {end}", self.path.join(" → "))
        }
    }
}

/// A version's metadata and its dependencies as repositories with parsed ranges.
type MetaDeps = (Meta, Vec<(String, Range)>);

struct Resolver<'a> {
    index: &'a dyn Index,
    candidates: HashMap<String, Vec<Candidate>>,
    metas: HashMap<(String, String), MetaDeps>,
}

impl Resolver<'_> {
    fn candidates(&mut self, repo: &str) -> Result<&[Candidate]> {
        if !self.candidates.contains_key(repo) {
            let tags = self.index.tags(repo).map_err(|e| anyhow!("artifact {repo}: {e:#}"))?;
            let mut c: Vec<Candidate> =
                tags.into_iter().filter_map(|t| Some(Candidate { version: tag_version(&t)?, tag: t })).collect();
            c.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.tag.cmp(&b.tag)));
            self.candidates.insert(repo.to_string(), c);
        }
        Ok(&self.candidates[repo])
    }

    fn meta(&mut self, repo: &str, tag: &str) -> Result<&MetaDeps> {
        let key = (repo.to_string(), tag.to_string());
        if !self.metas.contains_key(&key) {
            let what = format!("artifact {repo}:{tag}");
            let meta = self.index.meta(repo, tag).map_err(|e| anyhow!("{what}: {e:#}"))?;
            let mut deps = Vec::new();
            for (name, range) in &meta.dependencies {
                let r = dependency_repository(repo, name).map_err(|e| anyhow!("{what}: {e:#}"))?;
                let range =
                    Range::parse(range).map_err(|e| anyhow!("{what}: manifest.yaml: dependency `{name}`: {e:#}"))?;
                if deps.iter().any(|(o, _): &(String, Range)| *o == r) {
                    bail!("{what}: manifest.yaml names the dependency `{name}` twice");
                }
                deps.push((r, range));
            }
            self.metas.insert(key.clone(), (meta, deps));
        }
        Ok(&self.metas[&key])
    }
}

/// Resolve `roots` and everything they depend on; see the module's rule.
pub fn resolve(roots: &[Root], origin: &str, index: &dyn Index) -> Result<Resolution> {
    let mut rs = Resolver { index, candidates: HashMap::new(), metas: HashMap::new() };
    let mut picks: BTreeMap<String, Candidate> = BTreeMap::new();
    for _round in 0..MAX_ROUNDS {
        // Every range reaching each repository through the current choices, in walk order.
        let mut order: Vec<String> = Vec::new();
        let mut constraints: HashMap<String, Vec<Constraint>> = HashMap::new();
        let mut queue: VecDeque<(String, Vec<String>)> = VecDeque::new();
        let mut seen = BTreeSet::new();
        for r in roots {
            let c = Constraint { range: r.range.clone(), path: Vec::new(), origin: origin.to_string() };
            if !constraints.contains_key(&r.repository) {
                order.push(r.repository.clone());
            }
            constraints.entry(r.repository.clone()).or_default().push(c);
            if seen.insert(r.repository.clone()) {
                queue.push_back((r.repository.clone(), Vec::new()));
            }
        }
        while let Some((repo, path)) = queue.pop_front() {
            let Some(pick) = picks.get(&repo).cloned() else { continue };
            let mut here = path.clone();
            here.push(format!("{} {}", short(&repo), pick.version));
            let deps = rs.meta(&repo, &pick.tag)?.1.clone();
            for (dep, range) in deps {
                if !constraints.contains_key(&dep) {
                    order.push(dep.clone());
                }
                constraints.entry(dep.clone()).or_default().push(Constraint {
                    range,
                    path: here.clone(),
                    origin: origin.to_string(),
                });
                if seen.insert(dep.clone()) {
                    queue.push_back((dep, here.clone()));
                }
            }
        }
        let mut next = BTreeMap::new();
        for repo in &order {
            let cons = &constraints[repo];
            let cands = rs.candidates(repo)?.to_vec();
            match cands.iter().rev().find(|c| cons.iter().all(|k| k.range.matches(c))) {
                Some(c) => {
                    next.insert(repo.clone(), c.clone());
                }
                None => return Err(conflict(repo, cons, &cands)),
            }
        }
        if next == picks {
            let mut stack = Vec::new();
            let mut done = BTreeSet::new();
            for r in roots {
                find_cycle(&mut rs, &picks, &r.repository, &mut stack, &mut done)?;
            }
            let mut out =
                Resolution { roots: roots.iter().map(|r| r.repository.clone()).collect(), ..Default::default() };
            for (repo, c) in &picks {
                let (meta, deps) = rs.meta(repo, &c.tag)?.clone();
                out.artifacts.insert(
                    repo.clone(),
                    Resolved {
                        repository: repo.clone(),
                        version: c.version.clone(),
                        tag: c.tag.clone(),
                        digest: meta.digest,
                        artifact_type: meta.artifact_type,
                        dependencies: deps.iter().map(|(r, g)| (r.clone(), g.text.clone())).collect(),
                        required_by: constraints[repo].iter().map(|k| k.chain(repo)).collect(),
                    },
                );
            }
            return Ok(out);
        }
        picks = next;
    }
    let names: Vec<String> = picks.iter().map(|(r, c)| format!("{} {}", short(r), c.version)).collect();
    bail!(
        "artifacts: the version ranges keep changing each other's choices after {MAX_ROUNDS} rounds ({})",
        names.join(", ")
    )
}

/// The error for a repository no version of which satisfies every range reaching it:
/// the one range nothing satisfies, else two ranges no one version satisfies together,
/// else all of them.
fn conflict(repo: &str, cons: &[Constraint], cands: &[Candidate]) -> anyhow::Error {
    let name = short(repo);
    let offered = || {
        let v: Vec<&str> = cands.iter().map(|c| c.tag.as_str()).collect();
        if v.is_empty() { "no version tags".to_string() } else { format!("tags {}", v.join(", ")) }
    };
    if cands.is_empty() {
        return anyhow!("artifact {repo}: no tag reads as a version ({} asks for one)", cons[0].chain(repo));
    }
    if let Some(k) = cons.iter().find(|k| !cands.iter().any(|c| k.range.matches(c))) {
        return anyhow!("artifact {name}: no version satisfies {}; {repo} has {}", k.chain(repo), offered());
    }
    for (i, a) in cons.iter().enumerate() {
        for b in &cons[i + 1..] {
            if !cands.iter().any(|c| a.range.matches(c) && b.range.matches(c)) {
                return anyhow!(
                    "artifact {name}: conflicting version ranges: {} and {}; no version of {repo} satisfies both",
                    a.chain(repo),
                    b.chain(repo)
                );
            }
        }
    }
    let all: Vec<String> = cons.iter().map(|k| k.chain(repo)).collect();
    anyhow!("artifact {name}: conflicting version ranges: {}; no version of {repo} satisfies all", all.join(" and "))
}

fn find_cycle(
    rs: &mut Resolver<'_>,
    picks: &BTreeMap<String, Candidate>,
    repo: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Result<()> {
    if done.contains(repo) {
        return Ok(());
    }
    let label = |r: &str| format!("{} {}", short(r), picks[r].version);
    if let Some(at) = stack.iter().position(|s| s == repo) {
        let mut path: Vec<String> = stack[at..].iter().map(|r| label(r)).collect();
        path.push(label(repo));
        bail!("artifact {}: dependency cycle: {}", short(repo), path.join(" → "));
    }
    stack.push(repo.to_string());
    let tag = picks[repo].tag.clone();
    let deps = rs.meta(repo, &tag)?.1.clone();
    for (dep, _) in deps {
        find_cycle(rs, picks, &dep, stack, done)?;
    }
    stack.pop();
    done.insert(repo.to_string());
    Ok(())
}

/// The resolution as a tree from its roots: text, one artifact a line, an artifact seen
/// before marked `(*)` and not expanded again.
pub fn tree_text(res: &Resolution) -> String {
    fn walk(
        res: &Resolution,
        repo: &str,
        range: &str,
        prefix: &str,
        // None for a root, else whether it is its parent's last dependency.
        last: Option<bool>,
        seen: &mut BTreeSet<String>,
        out: &mut String,
    ) {
        let a = &res.artifacts[repo];
        let top = last.is_none();
        let branch = match last {
            None => "",
            Some(true) => "└── ",
            Some(false) => "├── ",
        };
        let again = !seen.insert(repo.to_string()) && !a.dependencies.is_empty();
        let range = if top { String::new() } else { format!(" ({range})") };
        out.push_str(&format!(
            "{prefix}{branch}{} {}{range} {}{}\n",
            short(repo),
            a.version,
            a.digest,
            if again { " (*)" } else { "" }
        ));
        if again {
            return;
        }
        let child_prefix =
            if top { String::new() } else { format!("{prefix}{}", if last == Some(true) { "    " } else { "│   " }) };
        for (i, (d, r)) in a.dependencies.iter().enumerate() {
            walk(res, d, r, &child_prefix, Some(i + 1 == a.dependencies.len()), seen, out);
        }
    }
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for r in &res.roots {
        walk(res, r, "", "", None, &mut seen, &mut out);
    }
    out
}

/// The resolution as a tree, for `--json`: each node with its repository, version, tag,
/// digest and dependencies (an artifact seen before is not expanded again).
pub fn tree_json(res: &Resolution) -> serde_json::Value {
    fn node(res: &Resolution, repo: &str, range: Option<&str>, seen: &mut BTreeSet<String>) -> serde_json::Value {
        let a = &res.artifacts[repo];
        let first = seen.insert(repo.to_string());
        let deps: Vec<serde_json::Value> =
            if first { a.dependencies.iter().map(|(d, r)| node(res, d, Some(r), seen)).collect() } else { Vec::new() };
        let mut v = serde_json::json!({
            "name": short(repo), "repository": repo, "version": a.version.to_string(), "tag": a.tag,
            "digest": a.digest.to_string(), "dependencies": deps,
        });
        if let Some(r) = range {
            v["range"] = r.into();
        }
        if !first && !a.dependencies.is_empty() {
            v["repeated"] = true.into();
        }
        v
    }
    let mut seen = BTreeSet::new();
    serde_json::Value::Array(res.roots.iter().map(|r| node(res, r, None, &mut seen)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each tag of a repository with its dependencies.
    type Versions = Vec<(String, Vec<(String, String)>)>;
    /// (name, tag, dependencies as (name, range)).
    type Graph<'a> = &'a [(&'a str, &'a str, &'a [(&'a str, &'a str)])];

    /// name -> versions, all under `r.example/ext/`.
    struct Fake(BTreeMap<String, Versions>);

    fn fake(g: Graph<'_>) -> Fake {
        let mut m: BTreeMap<String, Versions> = BTreeMap::new();
        for (name, tag, deps) in g {
            m.entry(format!("r.example/ext/{name}"))
                .or_default()
                .push((tag.to_string(), deps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()));
        }
        Fake(m)
    }

    impl Index for Fake {
        fn tags(&self, repository: &str) -> Result<Vec<String>> {
            let v = self.0.get(repository).ok_or_else(|| anyhow!("no such repository"))?;
            Ok(v.iter().map(|(t, _)| t.clone()).chain(["latest".to_string()]).collect())
        }
        fn meta(&self, repository: &str, tag: &str) -> Result<Meta> {
            let (_, deps) = self.0[repository].iter().find(|(t, _)| t == tag).unwrap();
            Ok(Meta {
                digest: Digest::of(format!("{repository}:{tag}").as_bytes()),
                artifact_type: None,
                dependencies: deps.clone(),
            })
        }
    }

    fn roots(r: &[(&str, &str)]) -> Vec<Root> {
        r.iter()
            .map(|(n, v)| Root { repository: format!("r.example/ext/{n}"), range: Range::parse(v).unwrap() })
            .collect()
    }

    fn versions(res: &Resolution) -> Vec<String> {
        res.artifacts.values().map(|a| format!("{} {}", short(&a.repository), a.version)).collect()
    }

    fn err(f: &Fake, r: &[(&str, &str)]) -> String {
        format!("{:#}", resolve(&roots(r), "spec", f).unwrap_err())
    }

    #[test]
    fn ranges_with_spaces_commas_and_v() {
        let r = Range::parse(">=1.28 <1.30").unwrap();
        assert_eq!(r.req.to_string(), ">=1.28, <1.30");
        let c = |t: &str| Candidate { version: tag_version(t).unwrap(), tag: t.into() };
        assert!(r.matches(&c("v1.29.3")));
        assert!(!r.matches(&c("1.30.0")));
        assert!(!r.matches(&c("1.27.9")));
        assert_eq!(Range::parse(">= v1.2, < 2").unwrap().req.to_string(), ">=1.2, <2");
        assert_eq!(Range::parse("").unwrap().req, semver::VersionReq::STAR);
        assert_eq!(Range::parse("*").unwrap().req, semver::VersionReq::STAR);
        assert!(Range::parse("1 || 2").unwrap_err().to_string().contains("`||`"));
        assert!(Range::parse(">= ").unwrap_err().to_string().contains("without a version"));
        assert!(Range::parse(">=x").is_err());
        assert_eq!(tag_version("v1.29"), Some(semver::Version::new(1, 29, 0)));
        assert_eq!(tag_version("2"), Some(semver::Version::new(2, 0, 0)));
        assert_eq!(tag_version("latest"), None);
        assert_eq!(tag_version("sha256-abc"), None);
    }

    #[test]
    fn highest_satisfying_version_with_v_prefix() {
        let f = fake(&[("k", "v1.28.1", &[]), ("k", "1.29.0", &[]), ("k", "v1.29.3", &[]), ("k", "1.30.0", &[])]);
        let res = resolve(&roots(&[("k", ">=1.28 <1.30")]), "spec", &f).unwrap();
        let k = &res.artifacts["r.example/ext/k"];
        assert_eq!((k.version.to_string(), k.tag.as_str()), ("1.29.3".to_string(), "v1.29.3"));
    }

    #[test]
    fn diamond_takes_one_version_satisfying_both() {
        let f = fake(&[
            ("app", "1.0.0", &[("db", ">=2"), ("cache", "^1")]),
            ("cache", "1.1.0", &[("db", ">=2.1 <3")]),
            ("db", "1.5.0", &[]),
            ("db", "2.0.0", &[]),
            ("db", "2.1.0", &[]),
            ("db", "3.0.0", &[]),
        ]);
        let res = resolve(&roots(&[("app", "1")]), "spec", &f).unwrap();
        assert_eq!(versions(&res), ["app 1.0.0", "cache 1.1.0", "db 2.1.0"]);
        assert_eq!(
            res.artifacts["r.example/ext/db"].required_by,
            ["app 1.0.0 → db >=2", "app 1.0.0 → cache 1.1.0 → db >=2.1 <3"]
        );
        let t = tree_text(&res);
        assert!(t.starts_with("app 1.0.0 "), "{t}");
        assert!(t.contains("├── db 2.1.0 (>=2)"), "{t}");
        assert!(t.contains("    └── db 2.1.0 (>=2.1 <3)"), "{t}");
    }

    #[test]
    fn a_lowered_choice_withdraws_its_ranges() {
        // Alone, tool 2.0 would want lib ^2; the spec's range keeps tool at 1.x.
        let f = fake(&[
            ("tool", "1.0.0", &[("lib", "^1")]),
            ("tool", "2.0.0", &[("lib", "^2")]),
            ("lib", "1.4.0", &[]),
            ("lib", "2.0.0", &[]),
            ("app", "1.0.0", &[("tool", "*")]),
        ]);
        let res = resolve(&roots(&[("app", "*"), ("tool", "<2")]), "spec", &f).unwrap();
        assert_eq!(versions(&res), ["app 1.0.0", "lib 1.4.0", "tool 1.0.0"]);
    }

    #[test]
    fn conflict_names_both_chains() {
        let f = fake(&[
            ("app", "1.0.0", &[("db", ">=2"), ("cache", "*")]),
            ("cache", "1.1.0", &[("db", "<2")]),
            ("db", "1.0.0", &[]),
            ("db", "2.0.0", &[]),
        ]);
        assert_eq!(
            err(&f, &[("app", "*")]),
            "artifact db: conflicting version ranges: app 1.0.0 → db >=2 and app 1.0.0 → cache 1.1.0 → db <2; no version of r.example/ext/db satisfies both"
        );
    }

    #[test]
    fn nothing_satisfies_one_range() {
        let f = fake(&[("app", "1.0.0", &[("db", ">=9")]), ("db", "1.0.0", &[])]);
        assert_eq!(
            err(&f, &[("app", "*")]),
            "artifact db: no version satisfies app 1.0.0 → db >=9; r.example/ext/db has tags 1.0.0"
        );
        assert_eq!(
            err(&f, &[("app", ">=2")]),
            "artifact app: no version satisfies app >=2 (spec); r.example/ext/app has tags 1.0.0"
        );
    }

    #[test]
    fn cycle_is_named() {
        let f = fake(&[
            ("top", "1.0.0", &[("ring", "*")]),
            ("ring", "1.0.0", &[("loop", ">=1")]),
            ("loop", "1.0.0", &[("ring", "^1")]),
        ]);
        assert_eq!(err(&f, &[("top", "*")]), "artifact ring: dependency cycle: ring 1.0.0 → loop 1.0.0 → ring 1.0.0");
    }

    #[test]
    fn dependency_names() {
        assert_eq!(dependency_repository("h:5000/extensions/app", "db").unwrap(), "h:5000/extensions/db");
        assert_eq!(dependency_repository("h:5000/extensions/app", "tools/db").unwrap(), "h:5000/tools/db");
        assert_eq!(dependency_repository("h/app", "db").unwrap(), "h/db");
        assert!(dependency_repository("h/ext/app", "../x").is_err());
        let m = ExtensionManifest::parse(b"name: app\ndependencies:\n  db: \">=2\"\n  cache:\n").unwrap();
        assert_eq!(m.dependencies(), [("cache".to_string(), "*".to_string()), ("db".to_string(), ">=2".to_string())]);
        let m = ExtensionManifest::parse(b"dependencies:\n  - {name: db, version: '^1'}\n").unwrap();
        assert_eq!(m.dependencies(), [("db".to_string(), "^1".to_string())]);
    }
}
