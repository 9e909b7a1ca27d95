//! The download closure of a set of packages, per architecture (Debian Policy ch. 7):
//! the highest version of each requested package, then everything its `Pre-Depends` and
//! `Depends` (and, if asked, `Recommends`) need. For alternatives `a | b` the first
//! satisfiable one is taken, unless another is already in the closure; a versioned
//! dependency on a virtual name is met only by a versioned `Provides`. Each architecture
//! sees its own packages plus `Architecture: all` ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Result, bail};

use super::deb822::Paragraph;
use super::version::{self, Op};
use crate::digest::Digest;

/// One binary package stanza of an upstream index.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub para: Paragraph,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub suite: String,
    pub component: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Digest,
    /// Provided names, each with the version of a `(= v)` provide.
    pub provides: Vec<(String, Option<String>)>,
}

/// A valid Debian package name: lowercase letters, digits, `+ - .`, at least two, starting
/// with a letter or digit.
pub fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.len() <= 128
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

impl Pkg {
    /// Read a Packages stanza; `what` names the index in errors.
    pub fn from_stanza(para: Paragraph, suite: &str, component: &str, what: &str) -> Result<Self> {
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
            suite: suite.into(),
            component: component.into(),
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

/// Does `p` meet `d` (by its own name, or by a Provides)?
fn meets(p: &Pkg, d: &Dep, arch: &str) -> bool {
    let qual_ok = match d.qualifier.as_deref() {
        None | Some("native") => true,
        // As apt has it: `x:any` is met by a package x only if it is `Multi-Arch: allowed`.
        Some("any") => p.name != d.name || p.para.get("Multi-Arch") == Some("allowed"),
        Some(q) => q == p.arch || (p.arch == "all" && q == arch),
    };
    if !qual_ok {
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

/// The packages one architecture sees, indexed by name and by provided name.
struct View<'a> {
    pkgs: &'a [Pkg],
    arch: &'a str,
    by_name: HashMap<&'a str, Vec<usize>>,
    by_provides: HashMap<&'a str, Vec<usize>>,
}

impl<'a> View<'a> {
    fn new(pkgs: &'a [Pkg], arch: &'a str) -> Self {
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_provides: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            if p.arch != arch && p.arch != "all" {
                continue;
            }
            by_name.entry(&p.name).or_default().push(i);
            for (n, _) in &p.provides {
                by_provides.entry(n).or_default().push(i);
            }
        }
        Self { pkgs, arch, by_name, by_provides }
    }

    /// The best package meeting `d`: the highest version of a real package by that name
    /// (the earlier suite on ties), else among providers the first by name, at its highest
    /// version.
    fn best(&self, d: &Dep) -> Option<usize> {
        let ok = |ids: Option<&Vec<usize>>| -> Vec<usize> {
            ids.map(|v| v.iter().copied().filter(|&i| meets(&self.pkgs[i], d, self.arch)).collect()).unwrap_or_default()
        };
        let newest = |ids: Vec<usize>| -> Option<usize> {
            ids.into_iter().reduce(|b, i| {
                if version::compare(&self.pkgs[i].version, &self.pkgs[b].version).is_gt() { i } else { b }
            })
        };
        let real: Vec<usize> =
            ok(self.by_name.get(d.name.as_str())).into_iter().filter(|&i| self.pkgs[i].name == d.name).collect();
        if !real.is_empty() {
            return newest(real);
        }
        let providers = ok(self.by_provides.get(d.name.as_str()));
        let first = providers.iter().map(|&i| self.pkgs[i].name.as_str()).min()?.to_string();
        newest(providers.into_iter().filter(|&i| self.pkgs[i].name == first).collect())
    }

    /// What exists under `name` on any architecture, for error messages.
    fn seen(&self, name: &str) -> String {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for p in self.pkgs {
            if p.name == name {
                seen.insert(format!("{} {} ({})", p.name, p.version, p.arch));
            } else if let Some((_, v)) = p.provides.iter().find(|(n, _)| n == name) {
                seen.insert(format!(
                    "{} {} ({}) provides it{}",
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

/// Resolve `req` for one architecture.
pub fn resolve(pkgs: &[Pkg], arch: &str, req: &Request) -> Result<Closure> {
    let view = View::new(pkgs, arch);
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
        let mut names: Vec<&str> = view.by_name.keys().copied().filter(|n| glob(pat, n) && !excluded(n)).collect();
        names.sort();
        if names.is_empty() {
            warnings.push(format!("include pattern `{pat}` matches no package on {arch}"));
        }
        roots.extend(names.into_iter().map(String::from));
    }
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    let mut queue = std::collections::VecDeque::new();
    for n in &roots {
        let d = Dep { name: n.clone(), qualifier: None, version: None };
        let Some(i) = view.best(&d) else {
            bail!("package `{n}` is not available for {arch} (seen: {})", view.seen(n));
        };
        let providers: BTreeSet<&str> = view
            .by_provides
            .get(n.as_str())
            .map(|v| v.iter().map(|&i| pkgs[i].name.as_str()).collect())
            .unwrap_or_default();
        if pkgs[i].name != *n && providers.len() > 1 {
            bail!(
                "package `{n}` is virtual on {arch}, provided by {}: list the one to carry",
                providers.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        if chosen.insert(i) {
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
        for field in &fields {
            let Some(text) = p.para.get(field) else { continue };
            let rels = parse_relations(text).map_err(|e| anyhow::anyhow!("{}: {field}: {e}", p.label()))?;
            for alts in rels {
                if alts.iter().any(|d| excluded(&d.name)) {
                    continue; // the site provides it
                }
                if alts.iter().any(|d| chosen.iter().any(|&c| meets(&pkgs[c], d, arch))) {
                    continue;
                }
                let pick = alts.iter().find_map(|d| view.best(d).map(|c| (d, c)));
                let text = alts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ");
                match pick {
                    Some((_, c)) => {
                        if alts.len() > 1 {
                            choices.push(Choice {
                                package: p.label(),
                                arch: arch.into(),
                                relation: text,
                                chosen: pkgs[c].label(),
                            });
                        }
                        chosen.insert(c);
                        queue.push_back(c);
                    }
                    None if *field == "Recommends" => warnings
                        .push(format!("{} recommends `{text}` on {arch}, which is not available; left out", p.label())),
                    None => {
                        let seen: Vec<String> =
                            alts.iter().map(|d| format!("{}: {}", d.name, view.seen(&d.name))).collect();
                        let verb = if *field == "Pre-Depends" { "pre-depends on" } else { "depends on" };
                        bail!(
                            "{} on {arch} {verb} `{text}`, which nothing satisfies (seen: {})",
                            p.label(),
                            seen.join("; ")
                        );
                    }
                }
            }
        }
    }
    for &c in &chosen {
        let p = &pkgs[c];
        for field in ["Conflicts", "Breaks"] {
            let Some(text) = p.para.get(field) else { continue };
            let Ok(rels) = parse_relations(text) else { continue };
            for d in rels.into_iter().flatten() {
                if let Some(&o) =
                    chosen.iter().find(|&&o| o != c && pkgs[o].name == d.name && meets(&pkgs[o], &d, arch))
                {
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
    Ok(Closure { chosen: chosen.into_iter().collect(), choices, warnings })
}

/// Resolve for every architecture; returns the union (each package once), the choices
/// and the warnings.
pub fn resolve_all(pkgs: &[Pkg], arches: &[String], req: &Request) -> Result<Closure> {
    let mut chosen = BTreeMap::new();
    let mut choices = Vec::new();
    let mut warnings = Vec::new();
    for a in arches {
        let c = resolve(pkgs, a, req)?;
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
        let mut para = super::super::deb822::parse_one(text, "t").unwrap();
        para.push("Filename", "pool/x.deb");
        para.push("Size", "1");
        para.push("SHA256", Digest::of(text.as_bytes()).hex());
        Pkg::from_stanza(para, "s", "main", "t").unwrap()
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
        let c = resolve(&pkgs, "amd64", &req(&p)).unwrap();
        assert_eq!(
            names(&pkgs, &c),
            ["alt-b=1/all", "app=2.0/amd64", "base=1/all", "libx=2.1/amd64", "postfix=3/amd64"]
        );
        assert_eq!(c.choices.len(), 1);
        assert_eq!(c.choices[0].chosen, "alt-b 1 (all)");
        let err = resolve(&pkgs, "arm64", &req(&p)).err().unwrap().to_string();
        assert!(err.contains("`app` is not available for arm64 (seen: app 1.0 (amd64), app 2.0 (amd64))"), "{err}");
    }

    #[test]
    fn versioned_virtual_needs_versioned_provides() {
        let pkgs = vec![
            pkg("Package: aa\nVersion: 1\nArchitecture: all\nDepends: virt (>= 2)\n"),
            pkg("Package: p1\nVersion: 9\nArchitecture: all\nProvides: virt\n"),
            pkg("Package: p2\nVersion: 1\nArchitecture: all\nProvides: virt (= 3)\n"),
        ];
        let p = vec!["aa".to_string()];
        let c = resolve(&pkgs, "amd64", &req(&p)).unwrap();
        assert_eq!(names(&pkgs, &c), ["aa=1/all", "p2=1/all"]);
        let pkgs = vec![pkgs[0].clone(), pkgs[1].clone()];
        let err = resolve(&pkgs, "amd64", &req(&p)).err().unwrap().to_string();
        assert!(err.contains("aa 1 (all) on amd64 depends on `virt (>= 2)`, which nothing satisfies"), "{err}");
        assert!(err.contains("p1 9 (all) provides it"), "{err}");
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
