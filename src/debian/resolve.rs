//! The download closure of a set of packages, per architecture, as apt computes it for
//! an empty system (Debian Policy ch. 7, dpkg's and apt's Multi-Arch rules):
//!
//! - Each package name and architecture has one **candidate**, the version apt would
//!   install: the highest pin (500, or 1 / 100 for a `NotAutomatic` suite), then the
//!   highest version, then the earlier suite. Only candidates are carried, as apt installs
//!   only candidates; `Architecture: all` counts as the native architecture.
//! - A closure starts from the listed packages and takes what their `Pre-Depends` and
//!   `Depends` (and, if asked, `Recommends`) need. For alternatives `a | b` the first
//!   satisfiable one is taken, unless another is already in the closure; a versioned
//!   relation on a virtual name is met only by a versioned `Provides`.
//! - Architectures (dpkg's `deparchsatisfied`): an unqualified relation is met by a
//!   package of the depending package's architecture, or of any listed architecture if it
//!   is `Multi-Arch: foreign`; `name:any` only by a `Multi-Arch: allowed` package;
//!   `name:native` by the native architecture; `name:<arch>` by that architecture.
//!
//! Each listed architecture is resolved as the native one, with the others as foreign
//! architectures (apt's `APT::Architectures`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Result, bail};

use super::deb822::Paragraph;
use super::version::{self, Op};
use crate::digest::Digest;

/// Where a stanza was read: the archive root, its suite and component, and the suite's
/// default pin priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub upstream: String,
    pub suite: String,
    pub component: String,
    pub pin: i32,
}

/// apt's default pin priorities (apt_preferences(5)).
pub const PIN_DEFAULT: i32 = 500;
pub const PIN_NOT_AUTOMATIC: i32 = 1;
pub const PIN_BUT_AUTOMATIC_UPGRADES: i32 = 100;

/// The `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One binary package stanza of an upstream index.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub para: Paragraph,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub multi_arch: MultiArch,
    /// The archive root it is downloaded from.
    pub upstream: String,
    pub suite: String,
    pub component: String,
    pub pin: i32,
    pub filename: String,
    pub size: u64,
    pub sha256: Digest,
    /// Provided names, each with the version of a `(= v)` provide.
    pub provides: Vec<(String, Option<String>)>,
}

/// A valid Debian package name: lowercase letters, digits, `+ - .`, at least two, starting
/// with a letter or digit; [`crate::names::deb_package`].
pub fn valid_name(n: &str) -> bool {
    crate::names::deb_package(n).is_ok()
}

impl Pkg {
    /// Read a Packages stanza; `what` names the index in errors.
    pub fn from_stanza(para: Paragraph, origin: &Origin, what: &str) -> Result<Self> {
        let field = |f: &str| -> Result<String> {
            match para.get(f) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => bail!(
                    "{what}: a stanza{} has no `{f}` field",
                    para.get("Package").map(|p| format!(" (`{p}`)")).unwrap_or_default()
                ),
            }
        };
        let name = field("Package")?;
        if !valid_name(&name) {
            bail!("{what}: `{name}` is not a valid package name");
        }
        let version = field("Version")?;
        if !version::valid(&version) {
            bail!("{what}: package `{name}` has an invalid version `{version}`");
        }
        let arch = field("Architecture")?;
        // apt reads an unknown value as `no` (with a warning).
        let multi_arch = match para.get("Multi-Arch") {
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            _ => MultiArch::No,
        };
        let filename = field("Filename")?;
        let size: u64 =
            field("Size")?.parse().map_err(|_| anyhow::anyhow!("{what}: package `{name}`: `Size` is not a number"))?;
        let sha = field("SHA256").map_err(|_| {
            anyhow::anyhow!("{what}: package `{name}` {version} has no SHA256 (MD5/SHA-1 alone are not trusted)")
        })?;
        let sha256 = Digest::from_hex(&sha.to_ascii_lowercase())
            .map_err(|_| anyhow::anyhow!("{what}: package `{name}`: `SHA256: {sha}` is not 64 hex digits"))?;
        let mut provides = Vec::new();
        if let Some(p) = para.get("Provides") {
            for alts in parse_relations(p).map_err(|e| anyhow::anyhow!("{what}: package `{name}`: Provides: {e}"))? {
                for d in alts {
                    let v = match d.version {
                        Some((Op::Eq, v)) => Some(v),
                        _ => None,
                    };
                    provides.push((d.name, v));
                }
            }
        }
        Ok(Self {
            para,
            name,
            version,
            arch,
            multi_arch,
            upstream: origin.upstream.clone(),
            suite: origin.suite.clone(),
            component: origin.component.clone(),
            pin: origin.pin,
            filename,
            size,
            sha256,
            provides,
        })
    }

    pub fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.arch)
    }
}

/// One alternative of a relation: `name[:qualifier] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    pub qualifier: Option<String>,
    pub version: Option<(Op, String)>,
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// Parse a relationship field into a list of alternatives lists. Build-profile `<...>`
/// and architecture `[...]` restrictions are dropped.
pub fn parse_relations(field: &str) -> Result<Vec<Vec<Dep>>> {
    let mut out = Vec::new();
    for rel in field.split(',') {
        let rel = rel.trim();
        if rel.is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in rel.split('|') {
            let mut s = strip_restrictions(alt.trim());
            let mut version = None;
            if let Some(open) = s.find('(') {
                let Some(close) = s[open..].find(')') else { bail!("`{alt}`: unclosed `(`") };
                let inner = s[open + 1..open + close].trim();
                let split = inner.find(|c: char| !"<>=".contains(c)).unwrap_or(inner.len());
                let (op, v) = inner.split_at(split);
                let Some(op) = Op::parse(op.trim()) else { bail!("`{alt}`: unknown relation `{op}`") };
                let v = v.trim();
                if !version::valid(v) {
                    bail!("`{alt}`: invalid version `{v}`");
                }
                version = Some((op, v.to_string()));
                s = s[..open].trim().to_string();
            }
            let (name, qualifier) = match s.split_once(':') {
                Some((n, q)) => (n.trim().to_string(), Some(q.trim().to_string())),
                None => (s.trim().to_string(), None),
            };
            if !valid_name(&name) {
                bail!("`{}` is not a package name", alt.trim());
            }
            alts.push(Dep { name, qualifier, version });
        }
        out.push(alts);
    }
    Ok(out)
}

fn strip_restrictions(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '[' | '<'
                if depth == 0 && !out.ends_with('(') && !out.trim_end().ends_with('(') && !is_op_context(&out) =>
            {
                depth = 1
            }
            ']' | '>' if depth == 1 => depth = 0,
            _ if depth == 1 => {}
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// Inside `( ... )` the `<` and `>` are relation operators, not a profile.
fn is_op_context(before: &str) -> bool {
    before.rfind('(').is_some_and(|o| before.rfind(')').is_none_or(|c| c < o))
}

/// `*` and `?` glob matching, for `include` / `exclude` patterns.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// What to resolve.
pub struct Request<'a> {
    pub packages: &'a [String],
    pub include: &'a [String],
    pub exclude: &'a [String],
    pub deps: bool,
    pub recommends: bool,
}

/// An alternative taken: `package` needed `relation`, `chosen` met it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub package: String,
    pub arch: String,
    pub relation: String,
    pub chosen: String,
}

pub struct Closure {
    /// Indexes into the package list, sorted, each once.
    pub chosen: Vec<usize>,
    pub choices: Vec<Choice>,
    pub warnings: Vec<String>,
}

/// What one native architecture sees: the candidate of each name and architecture
/// (the listed ones and `all`), indexed by name and by provided name.
struct View<'a> {
    pkgs: &'a [Pkg],
    native: &'a str,
    arches: &'a [String],
    by_name: HashMap<&'a str, Vec<usize>>,
    by_provides: HashMap<&'a str, Vec<usize>>,
}

/// Is candidate `a` better than `b`? Higher pin, then higher version; on ties the one
/// read first (the earlier source and suite) stays.
fn better(a: &Pkg, b: &Pkg) -> bool {
    a.pin.cmp(&b.pin).then_with(|| version::compare(&a.version, &b.version)).is_gt()
}

impl<'a> View<'a> {
    fn new(pkgs: &'a [Pkg], native: &'a str, arches: &'a [String]) -> Self {
        let mut candidates: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            if p.arch != "all" && !arches.contains(&p.arch) {
                continue;
            }
            let key = (p.name.as_str(), if p.arch == "all" { native } else { p.arch.as_str() });
            match candidates.get(&key) {
                Some(&c) if !better(p, &pkgs[c]) => {}
                _ => {
                    candidates.insert(key, i);
                }
            }
        }
        let mut ids: Vec<usize> = candidates.into_values().collect();
        ids.sort_unstable();
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_provides: HashMap<&str, Vec<usize>> = HashMap::new();
        for i in ids {
            let p = &pkgs[i];
            by_name.entry(&p.name).or_default().push(i);
            for (n, _) in &p.provides {
                by_provides.entry(n).or_default().push(i);
            }
        }
        Self { pkgs, native, arches, by_name, by_provides }
    }

    /// The architecture a package counts as: `all` is the native one.
    fn arch_of<'b>(&'b self, p: &'b Pkg) -> &'b str {
        if p.arch == "all" { self.native } else { &p.arch }
    }

    /// Does `p` meet `d`, a relation of a package of architecture `from` (dpkg's
    /// `deparchsatisfied`, then the version or the `Provides`)?
    fn meets(&self, p: &Pkg, d: &Dep, from: &str) -> bool {
        let arch_ok = match d.qualifier.as_deref() {
            None => p.multi_arch == MultiArch::Foreign || self.arch_of(p) == from,
            Some("any") => p.multi_arch == MultiArch::Allowed,
            Some("native") => self.arch_of(p) == self.native,
            Some(q) => self.arch_of(p) == if q == "all" { self.native } else { q },
        };
        if !arch_ok {
            return false;
        }
        if p.name == d.name {
            return d.version.as_ref().is_none_or(|(op, v)| op.holds(&p.version, v));
        }
        p.provides.iter().any(|(n, pv)| {
            n == &d.name
                && match (&d.version, pv) {
                    (None, _) => true,
                    (Some((op, v)), Some(pv)) => op.holds(pv, v),
                    (Some(_), None) => false,
                }
        })
    }

    /// Among packages meeting a relation, the one apt prefers: of the depending
    /// package's architecture, then the native one, then the listed order.
    fn prefer(&self, ids: impl Iterator<Item = usize>, from: &str) -> Option<usize> {
        ids.min_by_key(|&i| {
            let a = self.arch_of(&self.pkgs[i]);
            (a != from, a != self.native, self.arches.iter().position(|x| x == a))
        })
    }

    /// The candidate meeting `d` from architecture `from`: a real package by that name,
    /// else among providers the first by name.
    fn best(&self, d: &Dep, from: &str) -> Option<usize> {
        let ok = |ids: Option<&Vec<usize>>| -> Vec<usize> {
            ids.map(|v| v.iter().copied().filter(|&i| self.meets(&self.pkgs[i], d, from)).collect()).unwrap_or_default()
        };
        let real: Vec<usize> =
            ok(self.by_name.get(d.name.as_str())).into_iter().filter(|&i| self.pkgs[i].name == d.name).collect();
        if !real.is_empty() {
            return self.prefer(real.into_iter(), from);
        }
        let providers = ok(self.by_provides.get(d.name.as_str()));
        let first = providers.iter().map(|&i| self.pkgs[i].name.as_str()).min()?;
        self.prefer(providers.iter().copied().filter(|&i| self.pkgs[i].name == first), from)
    }

    /// What exists under `name`, for error messages: every version read, and which are
    /// the candidates.
    fn seen(&self, name: &str) -> String {
        let candidate = |i: usize| self.by_name.get(self.pkgs[i].name.as_str()).is_some_and(|v| v.contains(&i));
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (i, p) in self.pkgs.iter().enumerate() {
            let mark = if candidate(i) { " (candidate)" } else { "" };
            if p.name == name {
                seen.insert(format!("{} {} ({}) from `{}`{mark}", p.name, p.version, p.arch, p.suite));
            } else if let Some((_, v)) = p.provides.iter().find(|(n, _)| n == name) {
                seen.insert(format!(
                    "{} {} ({}) provides it{}{mark}",
                    p.name,
                    p.version,
                    p.arch,
                    v.as_ref().map(|v| format!(" as version {v}")).unwrap_or_default()
                ));
            }
        }
        if seen.is_empty() { "nothing by that name".into() } else { seen.into_iter().collect::<Vec<_>>().join(", ") }
    }
}

/// The packages chosen so far, indexed by name and provided name.
#[derive(Default)]
struct Chosen<'a> {
    set: BTreeSet<usize>,
    by_name: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Chosen<'a> {
    fn insert(&mut self, pkgs: &'a [Pkg], i: usize) -> bool {
        if !self.set.insert(i) {
            return false;
        }
        let p = &pkgs[i];
        self.by_name.entry(&p.name).or_default().push(i);
        for (n, _) in &p.provides {
            self.by_name.entry(n).or_default().push(i);
        }
        true
    }

    fn any(&self, name: &str, f: impl Fn(usize) -> bool) -> bool {
        self.by_name.get(name).is_some_and(|v| v.iter().any(|&i| f(i)))
    }
}

/// Resolve `req` with `native` as the native architecture and `arches` (which holds it)
/// as the architectures apt is configured for.
pub fn resolve(pkgs: &[Pkg], native: &str, arches: &[String], req: &Request) -> Result<Closure> {
    let view = View::new(pkgs, native, arches);
    let excluded = |n: &str| req.exclude.iter().any(|p| glob(p, n));
    let mut roots: Vec<String> = Vec::new();
    for n in req.packages {
        if excluded(n) {
            bail!("package `{n}` is both listed and excluded");
        }
        roots.push(n.clone());
    }
    let mut warnings = Vec::new();
    for pat in req.include {
        let mut names: Vec<&str> = view
            .by_name
            .iter()
            .filter(|(n, ids)| glob(pat, n) && !excluded(n) && ids.iter().any(|&i| view.arch_of(&pkgs[i]) == native))
            .map(|(n, _)| *n)
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            warnings.push(format!("include pattern `{pat}` matches no package on {native}"));
        }
        roots.extend(names.into_iter().map(String::from));
    }
    let mut chosen = Chosen::default();
    let mut queue = std::collections::VecDeque::new();
    for n in &roots {
        let d = Dep { name: n.clone(), qualifier: None, version: None };
        let Some(i) = view.best(&d, native) else {
            bail!("package `{n}` is not available for {native} (seen: {})", view.seen(n));
        };
        let providers: BTreeSet<&str> = view
            .by_provides
            .get(n.as_str())
            .map(|v| v.iter().map(|&i| pkgs[i].name.as_str()).collect())
            .unwrap_or_default();
        if pkgs[i].name != *n && providers.len() > 1 {
            bail!(
                "package `{n}` is virtual on {native}, provided by {}: list the one to carry",
                providers.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        if chosen.insert(pkgs, i) {
            queue.push_back(i);
        }
    }
    let mut choices = Vec::new();
    let mut fields = vec!["Pre-Depends", "Depends"];
    if req.recommends {
        fields.push("Recommends");
    }
    while let Some(i) = queue.pop_front() {
        if !req.deps {
            break;
        }
        let p = &pkgs[i];
        let from = view.arch_of(p);
        for field in &fields {
            let Some(text) = p.para.get(field) else { continue };
            let rels = parse_relations(text).map_err(|e| anyhow::anyhow!("{}: {field}: {e}", p.label()))?;
            for alts in rels {
                if alts.iter().any(|d| excluded(&d.name)) {
                    continue; // the site provides it
                }
                if alts.iter().any(|d| chosen.any(&d.name, |c| view.meets(&pkgs[c], d, from))) {
                    continue;
                }
                let pick = alts.iter().find_map(|d| view.best(d, from));
                let text = alts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ");
                match pick {
                    Some(c) => {
                        if alts.len() > 1 {
                            choices.push(Choice {
                                package: p.label(),
                                arch: native.into(),
                                relation: text,
                                chosen: pkgs[c].label(),
                            });
                        }
                        if chosen.insert(pkgs, c) {
                            queue.push_back(c);
                        }
                    }
                    None if *field == "Recommends" => warnings.push(format!(
                        "{} recommends `{text}` on {native}, which is not available; left out",
                        p.label()
                    )),
                    None => {
                        let seen: Vec<String> =
                            alts.iter().map(|d| format!("{}: {}", d.name, view.seen(&d.name))).collect();
                        let verb = if *field == "Pre-Depends" { "pre-depends on" } else { "depends on" };
                        bail!(
                            "{} on {native} {verb} `{text}`, which nothing satisfies (seen: {})",
                            p.label(),
                            seen.join("; ")
                        );
                    }
                }
            }
        }
    }
    for &c in &chosen.set {
        let p = &pkgs[c];
        for field in ["Conflicts", "Breaks"] {
            let Some(text) = p.para.get(field) else { continue };
            let Ok(rels) = parse_relations(text) else { continue };
            for d in rels.into_iter().flatten() {
                // Conflicts and Breaks apply to packages of any architecture.
                let hit = |o: usize| {
                    o != c
                        && pkgs[o].name == d.name
                        && d.version.as_ref().is_none_or(|(op, v)| op.holds(&pkgs[o].version, v))
                };
                if let Some(&o) = chosen.set.iter().find(|&&o| hit(o)) {
                    warnings.push(format!(
                        "{} {} {} ({field}); both are carried",
                        p.label(),
                        field.to_ascii_lowercase(),
                        pkgs[o].label()
                    ));
                }
            }
        }
    }
    Ok(Closure { chosen: chosen.set.into_iter().collect(), choices, warnings })
}

/// Resolve with each of `arches` as the native architecture; returns the union (each
/// package once), the choices and the warnings.
pub fn resolve_all(pkgs: &[Pkg], arches: &[String], req: &Request) -> Result<Closure> {
    let mut chosen = BTreeMap::new();
    let mut choices = Vec::new();
    let mut warnings = Vec::new();
    for a in arches {
        let c = resolve(pkgs, a, arches, req)?;
        for i in c.chosen {
            let p = &pkgs[i];
            chosen.entry((p.name.clone(), p.version.clone(), p.arch.clone())).or_insert(i);
        }
        choices.extend(c.choices);
        warnings.extend(c.warnings);
    }
    let mut chosen: Vec<usize> = chosen.into_values().collect();
    chosen.sort_unstable();
    warnings.dedup();
    Ok(Closure { chosen, choices, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(text: &str) -> Pkg {
        pkg_in(text, "s", PIN_DEFAULT)
    }

    fn pkg_in(text: &str, suite: &str, pin: i32) -> Pkg {
        let mut para = super::super::deb822::parse_one(text, "t").unwrap();
        para.push("Filename", "pool/x.deb");
        para.push("Size", "1");
        para.push("SHA256", Digest::of(text.as_bytes()).hex());
        let origin = Origin { upstream: "http://h/d".into(), suite: suite.into(), component: "main".into(), pin };
        Pkg::from_stanza(para, &origin, "t").unwrap()
    }

    fn arches(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn names(pkgs: &[Pkg], c: &Closure) -> Vec<String> {
        let mut v: Vec<_> =
            c.chosen.iter().map(|&i| format!("{}={}/{}", pkgs[i].name, pkgs[i].version, pkgs[i].arch)).collect();
        v.sort();
        v
    }

    fn req<'a>(p: &'a [String]) -> Request<'a> {
        Request { packages: p, include: &[], exclude: &[], deps: true, recommends: false }
    }

    #[test]
    fn relations_parse() {
        let r = parse_relations("aa (>= 1.0) | bb:any, cc [amd64] <!nocheck>, dd (<< 2~)").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0][0], Dep { name: "aa".into(), qualifier: None, version: Some((Op::Ge, "1.0".into())) });
        assert_eq!(r[0][1].qualifier.as_deref(), Some("any"));
        assert_eq!(r[1][0].name, "cc");
        assert_eq!(r[2][0].version, Some((Op::Lt, "2~".into())));
        assert!(parse_relations("aa (~= 1)").is_err());
        assert!(parse_relations("A").is_err());
    }

    #[test]
    fn closure() {
        let pkgs = vec![
            pkg(
                "Package: app\nVersion: 1.0\nArchitecture: amd64\nDepends: libx (>= 2.0), mail-transport-agent, alt-a | alt-b\nPre-Depends: base:any\n",
            ),
            pkg(
                "Package: app\nVersion: 2.0\nArchitecture: amd64\nDepends: libx (>= 2.0), mail-transport-agent, alt-a | alt-b\nPre-Depends: base:any\n",
            ),
            pkg("Package: libx\nVersion: 1.0\nArchitecture: amd64\n"),
            pkg("Package: libx\nVersion: 2.1\nArchitecture: amd64\n"),
            pkg("Package: postfix\nVersion: 3\nArchitecture: amd64\nProvides: mail-transport-agent\n"),
            pkg("Package: alt-b\nVersion: 1\nArchitecture: all\n"),
            pkg("Package: base\nVersion: 1\nArchitecture: all\nMulti-Arch: allowed\n"),
            pkg("Package: unused\nVersion: 1\nArchitecture: amd64\n"),
        ];
        let p = vec!["app".to_string()];
        let c = resolve(&pkgs, "amd64", &arches(&["amd64"]), &req(&p)).unwrap();
        assert_eq!(
            names(&pkgs, &c),
            ["alt-b=1/all", "app=2.0/amd64", "base=1/all", "libx=2.1/amd64", "postfix=3/amd64"]
        );
        assert_eq!(c.choices.len(), 1);
        assert_eq!(c.choices[0].chosen, "alt-b 1 (all)");
        let err = resolve(&pkgs, "arm64", &arches(&["arm64"]), &req(&p)).err().unwrap().to_string();
        assert!(
            err.contains("`app` is not available for arm64 (seen: app 1.0 (amd64) from `s`, app 2.0 (amd64) from `s`)"),
            "{err}"
        );
    }

    #[test]
    fn versioned_virtual_needs_versioned_provides() {
        let pkgs = vec![
            pkg("Package: aa\nVersion: 1\nArchitecture: all\nDepends: virt (>= 2)\n"),
            pkg("Package: p1\nVersion: 9\nArchitecture: all\nProvides: virt\n"),
            pkg("Package: p2\nVersion: 1\nArchitecture: all\nProvides: virt (= 3)\n"),
        ];
        let p = vec!["aa".to_string()];
        let one = arches(&["amd64"]);
        let c = resolve(&pkgs, "amd64", &one, &req(&p)).unwrap();
        assert_eq!(names(&pkgs, &c), ["aa=1/all", "p2=1/all"]);
        let pkgs = vec![pkgs[0].clone(), pkgs[1].clone()];
        let err = resolve(&pkgs, "amd64", &one, &req(&p)).err().unwrap().to_string();
        assert!(err.contains("aa 1 (all) on amd64 depends on `virt (>= 2)`, which nothing satisfies"), "{err}");
        assert!(err.contains("p1 9 (all) provides it"), "{err}");
    }

    #[test]
    fn candidates_across_suites() {
        // The highest version wins across suites with equal pins; a NotAutomatic suite
        // (backports) only when nothing else has the package; only candidates are carried,
        // as apt installs only candidates.
        let pkgs = vec![
            pkg_in("Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib (>= 1.0), tool, extra\n", "rel", 500),
            pkg_in("Package: lib\nVersion: 1.0\nArchitecture: amd64\n", "rel", 500),
            pkg_in("Package: lib\nVersion: 1.2\nArchitecture: amd64\n", "updates", 500),
            pkg_in("Package: lib\nVersion: 1.1\nArchitecture: amd64\n", "security", 500),
            pkg_in("Package: lib\nVersion: 9\nArchitecture: amd64\n", "backports", PIN_NOT_AUTOMATIC),
            pkg_in("Package: tool\nVersion: 1\nArchitecture: all\n", "rel", 500),
            pkg_in("Package: tool\nVersion: 1\nArchitecture: all\n", "updates", 500),
            pkg_in("Package: extra\nVersion: 3\nArchitecture: all\n", "backports", PIN_NOT_AUTOMATIC),
        ];
        let p = vec!["app".to_string()];
        let one = arches(&["amd64"]);
        let c = resolve(&pkgs, "amd64", &one, &req(&p)).unwrap();
        assert_eq!(names(&pkgs, &c), ["app=1/amd64", "extra=3/all", "lib=1.2/amd64", "tool=1/all"]);
        let lib = c.chosen.iter().map(|&i| &pkgs[i]).find(|p| p.name == "lib").unwrap();
        assert_eq!(lib.suite, "updates");
        let tool = c.chosen.iter().map(|&i| &pkgs[i]).find(|p| p.name == "tool").unwrap();
        assert_eq!(tool.suite, "rel", "on equal versions the earlier suite");
        // `lib (<< 1.2)`: an older version exists, but apt would install the candidate.
        let mut pkgs = pkgs;
        pkgs[0] = pkg_in("Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib (<< 1.2)\n", "rel", 500);
        let err = resolve(&pkgs, "amd64", &one, &req(&p)).err().unwrap().to_string();
        assert!(err.contains("depends on `lib (<< 1.2)`, which nothing satisfies"), "{err}");
        assert!(err.contains("lib 1.2 (amd64) from `updates` (candidate)"), "{err}");
    }

    #[test]
    fn multi_arch() {
        let pkgs = vec![
            pkg("Package: app\nVersion: 1\nArchitecture: amd64\nDepends: helper, interp:any, libz\n"),
            // Only on arm64, but Multi-Arch: foreign: it meets amd64 dependencies, and its
            // own dependencies are arm64 ones.
            pkg("Package: helper\nVersion: 1\nArchitecture: arm64\nMulti-Arch: foreign\nDepends: libz\n"),
            pkg("Package: interp\nVersion: 1\nArchitecture: arm64\nMulti-Arch: allowed\n"),
            pkg("Package: libz\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\n"),
            pkg("Package: libz\nVersion: 1\nArchitecture: arm64\nMulti-Arch: same\n"),
            pkg("Package: other\nVersion: 1\nArchitecture: amd64\nDepends: plain\n"),
            pkg("Package: plain\nVersion: 1\nArchitecture: arm64\n"),
            pkg("Package: strict\nVersion: 1\nArchitecture: amd64\nDepends: notallowed:any\n"),
            pkg("Package: notallowed\nVersion: 1\nArchitecture: amd64\nMulti-Arch: foreign\n"),
        ];
        let both = arches(&["amd64", "arm64"]);
        let p = vec!["app".to_string()];
        let c = resolve(&pkgs, "amd64", &both, &req(&p)).unwrap();
        assert_eq!(
            names(&pkgs, &c),
            ["app=1/amd64", "helper=1/arm64", "interp=1/arm64", "libz=1/amd64", "libz=1/arm64"]
        );
        // Without arm64 configured, the foreign package is not there.
        let err = resolve(&pkgs, "amd64", &arches(&["amd64"]), &req(&p)).err().unwrap().to_string();
        assert!(err.contains("depends on `helper`, which nothing satisfies"), "{err}");
        // A package of another architecture that is not Multi-Arch: foreign meets nothing.
        let err = resolve(&pkgs, "amd64", &both, &req(&["other".to_string()])).err().unwrap().to_string();
        assert!(err.contains("depends on `plain`, which nothing satisfies"), "{err}");
        // `:any` needs Multi-Arch: allowed, even on the same architecture (dpkg).
        let err = resolve(&pkgs, "amd64", &both, &req(&["strict".to_string()])).err().unwrap().to_string();
        assert!(err.contains("depends on `notallowed:any`, which nothing satisfies"), "{err}");
        // With arm64 native, app (amd64 only) is not a root.
        let err = resolve(&pkgs, "arm64", &both, &req(&p)).err().unwrap().to_string();
        assert!(err.contains("`app` is not available for arm64"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob("python3-*", "python3-yaml"));
        assert!(!glob("python3-*", "python3"));
        assert!(glob("lib?", "liba"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }
}
