//! `airlock report`: one self-contained HTML page about a bundle, for auditors. Every
//! string from the bundle (artifact names come from upstream) is HTML-escaped; the page
//! has no scripts, no external assets, and a print style sheet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::bundle::BundleError;
use crate::bundle::manifest::{self, Artifact, Kind, MEMBER_PROVENANCE, MEMBER_SBOM, Manifest};
use crate::bundle::provenance;
use crate::bundle::verify::{MAX_MANIFEST, check_head, read_evidence, read_head};
use crate::cli::ReportArgs;
use crate::digest::Digest;
use crate::exit::ExitStatus;

use super::{CmdResult, Ctx, bytes};

pub fn report(args: &ReportArgs, cx: &Ctx) -> CmdResult {
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    let ev = read_evidence(&args.bundle)?;
    let signer = crate::bundle::sign::Signature::parse(&ev.head.signature).ok().map(|s| s.key_id());
    let (m, trust) = match check_head(&ev.head, &trusted) {
        Ok((m, _, id)) => (m, Trust::Trusted(trusted.iter().find(|k| k.id() == id).cloned().expect("trusted"))),
        Err(BundleError::NotAuthentic(why)) => {
            (manifest::parse(&ev.head.manifest_bytes).map_err(BundleError::NotABundle)?, Trust::Not(why))
        }
        Err(e) => return Err(e.into()),
    };
    let sbom: Option<Value> = match &ev.sbom {
        Some(b) => Some(
            serde_json::from_slice(b).map_err(|e| BundleError::Corrupt(format!("{MEMBER_SBOM} is not JSON: {e}")))?,
        ),
        None => None,
    };
    let statement = match (&ev.provenance, &trust) {
        (Some(b), Trust::Trusted(k)) => Some((
            provenance::open_envelope(b, k).map_err(|e| BundleError::Corrupt(format!("{MEMBER_PROVENANCE}: {e}")))?,
            format!("DSSE signature by trusted key {} verified", k.id()),
        )),
        (Some(b), Trust::Not(_)) => {
            provenance::payload_unverified(b).map(|s| (s, "NOT VERIFIED: the signer is not a trusted key".to_string()))
        }
        (None, _) => None,
    };
    let base = args.base.as_deref().map(load_manifest).transpose()?;
    let history = args.store.as_deref().map(read_receipts).transpose()?;
    let page = Page {
        m: &m,
        digest: Digest::of(&ev.head.manifest_bytes),
        signer: signer.map(|s| s.to_string()),
        trust: &trust,
        sbom: sbom.as_ref(),
        statement: statement.as_ref(),
        base: base.as_ref(),
        history: history.as_deref(),
    };
    let html = page.render();
    crate::store::atomic::write(&args.output, html.as_bytes())
        .with_context(|| format!("writing {}", args.output.display()))?;
    cx.printer.data(
        &json!({
            "report": args.output,
            "bundle": m.id(),
            "manifest": page.digest,
            "signer": page.signer,
            "trusted": matches!(trust, Trust::Trusted(_)),
            "artifacts": m.artifacts.len(),
            "components": sbom.as_ref().and_then(|s| s["components"].as_array().map(Vec::len)),
            "imports": history.as_ref().map(Vec::len),
            "bytes": html.len(),
        }),
        || format!("wrote {} ({}): report of {}\n", args.output.display(), bytes(html.len() as u64), m.id()),
    );
    Ok(ExitStatus::Success)
}

enum Trust {
    Trusted(crate::bundle::sign::PublicKey),
    Not(String),
}

/// A manifest from a bundle or a `manifest.json` file (its signature is not checked: it
/// is only compared with).
fn load_manifest(path: &Path) -> Result<Manifest> {
    let bytes = if path.is_file() && path.file_name().is_some_and(|n| n == "manifest.json") {
        let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
        anyhow::ensure!(len <= MAX_MANIFEST, "{} is {len} bytes, more than a manifest may have", path.display());
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        read_head(path).map_err(|e| anyhow::anyhow!("reading the base bundle {}: {e}", path.display()))?.manifest_bytes
    };
    manifest::parse(&bytes).map_err(anyhow::Error::msg).with_context(|| format!("base {}", path.display()))
}

/// Every receipt in `<store>/receipts/<bundle>/<time>.json`, oldest first.
fn read_receipts(store: &Path) -> Result<Vec<Value>> {
    let root = store.join("receipts");
    let mut out = Vec::new();
    let dirs = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    for dir in dirs.filter_map(Result::ok) {
        let Ok(files) = std::fs::read_dir(dir.path()) else { continue };
        for f in files.filter_map(Result::ok) {
            let p = f.path();
            if p.extension().is_none_or(|e| e != "json") || f.metadata().is_ok_and(|m| m.len() > MAX_MANIFEST) {
                continue;
            }
            if let Some(v) = std::fs::read(&p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                && v.get("bundle").is_some()
            {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| a["imported"].as_str().cmp(&b["imported"].as_str()));
    Ok(out)
}

struct Page<'a> {
    m: &'a Manifest,
    digest: Digest,
    signer: Option<String>,
    trust: &'a Trust,
    sbom: Option<&'a Value>,
    statement: Option<&'a (Value, String)>,
    base: Option<&'a Manifest>,
    history: Option<&'a [Value]>,
}

/// HTML-escape text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push_str(&format!("&#x{:x};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg: #1d1f21; --muted: #5f6368; --line: #d7dadd; --ok: #1e6b35; --bad: #a3161a; --head: #f3f4f5; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
nav { color: var(--muted); margin-bottom: 1rem; }
nav a { color: inherit; margin-right: .8rem; }
.status { display: inline-block; padding: .25rem .6rem; border-radius: 4px; font-weight: 600; }
.ok { background: #e3f3e7; color: var(--ok); border: 1px solid var(--ok); }
.bad { background: #fbe6e6; color: var(--bad); border: 1px solid var(--bad); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1.2rem; margin: .4rem 0; }
dt { color: var(--muted); }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: .25rem .5rem; border-bottom: 1px solid var(--line); }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
.digest, .wrap { word-break: break-all; }
.muted { color: var(--muted); }
pre { background: var(--head); padding: .6rem; overflow-x: auto; font-size: 12px; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8pt; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  pre { white-space: pre-wrap; }
  .status { border-width: 2px; }
}
@page { margin: 1.5cm; }
"#;

fn kind_title(k: Kind) -> &'static str {
    match k {
        Kind::File => "Files",
        Kind::Image => "Container images",
        Kind::Git => "Git repositories",
        Kind::Python => "Python packages",
        Kind::Debian => "Debian packages",
    }
}

/// What identifies an artifact across two bundles.
fn key(a: &Artifact) -> (Kind, String, String, String, String) {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    (a.kind, opt(&a.index), a.name.clone(), opt(&a.arch), opt(&a.suite))
}

/// What an artifact is, for comparing two bundles.
fn identity(a: &Artifact) -> (Option<String>, Vec<Digest>, Option<BTreeMap<String, String>>) {
    (a.version.clone(), a.blobs.first().copied().into_iter().collect(), a.refs.clone())
}

impl Page<'_> {
    fn render(&self) -> String {
        let m = self.m;
        let mut h = String::with_capacity(64 * 1024 + m.artifacts.len() * 600);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"airlock {}\">\n<title>airlock report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            env!("CARGO_PKG_VERSION"),
            esc(&m.id())
        );
        let _ = write!(h, "<header>\n<h1>Bundle <span id=\"bundle\">{}</span></h1>\n", esc(&m.id()));
        let (class, text) = match self.trust {
            Trust::Trusted(k) => ("ok", format!("Signed by trusted key {}", k.id())),
            Trust::Not(why) => ("bad", format!("NOT TRUSTED: {why}")),
        };
        let _ = writeln!(h, "<p id=\"signature\" class=\"status {class}\">{}</p>\n</header>", esc(&text));
        h.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#totals\">Totals</a>");
        if m.base.is_some() || self.base.is_some() {
            h.push_str("<a href=\"#changes\">Changes</a>");
        }
        h.push_str(
            "<a href=\"#artifacts\">Artifacts</a><a href=\"#sbom\">SBOM</a><a href=\"#provenance\">Provenance</a>",
        );
        if self.history.is_some() {
            h.push_str("<a href=\"#history\">Site history</a>");
        }
        h.push_str("</nav>\n");
        self.summary(&mut h);
        self.totals(&mut h);
        self.changes(&mut h);
        self.artifacts(&mut h);
        self.sbom(&mut h);
        self.provenance(&mut h);
        self.history(&mut h);
        let _ = write!(
            h,
            "<footer>Written by airlock {} from the bundle's head: its signed manifest, the SBOM and the provenance, each checked against the manifest's digests. <code>airlock verify</code> checks every byte of the bundle.</footer>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        );
        h
    }

    fn summary(&self, h: &mut String) {
        let m = self.m;
        h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<dl>\n");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(h, "<dt>{k}</dt><dd>{v}</dd>");
        };
        row("Name", esc(&m.name));
        row("Version", esc(&m.version));
        row("Manifest", format!("<code class=\"digest\">{}</code>", self.digest));
        row("Signer", format!("<code id=\"signer\">{}</code>", esc(self.signer.as_deref().unwrap_or("none"))));
        row(
            "Signature",
            match self.trust {
                Trust::Trusted(_) => "verified with a key trusted here".into(),
                Trust::Not(why) => format!("<strong>not trusted</strong>: {}", esc(why)),
            },
        );
        row("Created", esc(&m.created));
        row("Generator", esc(&m.generator));
        match &m.base {
            Some(b) => row(
                "Base",
                format!("differential, builds on {} (<code class=\"digest\">{}</code>)", esc(&b.label()), b.digest()),
            ),
            None => row("Base", "none: a full bundle".into()),
        }
        for (name, d) in m.evidence() {
            row(name, format!("<code class=\"digest\">{}</code>, {}", d.digest, bytes(d.size)));
        }
        h.push_str("</dl>\n</section>\n");
    }

    fn sizes(&self) -> BTreeMap<Digest, u64> {
        self.m.blobs.iter().map(|b| (b.digest, b.size)).collect()
    }

    fn totals(&self, h: &mut String) {
        let sizes = self.sizes();
        let mut per: BTreeMap<Kind, (usize, u64, usize)> = BTreeMap::new();
        for a in &self.m.artifacts {
            let e = per.entry(a.kind).or_default();
            e.0 += 1;
            e.1 += a.blobs.iter().filter_map(|d| sizes.get(d)).sum::<u64>();
            e.2 += usize::from(!a.blobs.iter().all(|d| sizes.contains_key(d)));
        }
        h.push_str("<section id=\"totals\">\n<h2>Totals</h2>\n<table>\n<thead><tr><th>Kind</th><th class=\"num\">Artifacts</th><th class=\"num\">Carried bytes</th><th class=\"num\">In the base</th></tr></thead>\n<tbody>\n");
        for (k, (n, b, base)) in &per {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{}</td><td class=\"num\">{base}</td></tr>",
                kind_title(*k),
                bytes(*b)
            );
        }
        let _ = write!(
            h,
            "</tbody>\n<tfoot><tr><th>All</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{} blobs</th></tr></tfoot>\n</table>\n</section>\n",
            self.m.artifacts.len(),
            bytes(self.m.total_blob_bytes()),
            self.m.blobs.len()
        );
    }

    fn changes(&self, h: &mut String) {
        let m = self.m;
        if m.base.is_none() && self.base.is_none() {
            return;
        }
        h.push_str("<section id=\"changes\">\n<h2>Changes against the base</h2>\n");
        let Some(base) = self.base else {
            let sizes = self.sizes();
            let (new, old): (Vec<&Artifact>, Vec<&Artifact>) =
                m.artifacts.iter().partition(|a| a.blobs.iter().any(|d| sizes.contains_key(d)));
            let _ = writeln!(
                h,
                "<p>{} artifacts carry new blobs; {} are unchanged since the base and left to it. Run with <code>--base BASE-BUNDLE</code> to list what was added, removed and changed.</p>",
                new.len(),
                old.len()
            );
            self.artifact_table(h, &new.into_iter().cloned().collect::<Vec<_>>(), "Carrying new blobs");
            return h.push_str("</section>\n");
        };
        if let Some(b) = &m.base {
            let _ = writeln!(
                h,
                "<p>Compared with <strong>{}</strong>{}.</p>",
                esc(&base.id()),
                if matches!(b, crate::bundle::manifest::Base::Bundle(bb) if bb.name == base.name && bb.version == base.version)
                {
                    ", the base this bundle names"
                } else {
                    ", which is not the base this bundle names"
                }
            );
        } else {
            let _ = writeln!(h, "<p>Compared with <strong>{}</strong>.</p>", esc(&base.id()));
        }
        let before: BTreeMap<_, &Artifact> = base.artifacts.iter().map(|a| (key(a), a)).collect();
        let after: BTreeMap<_, &Artifact> = m.artifacts.iter().map(|a| (key(a), a)).collect();
        let keys: BTreeSet<_> = before.keys().chain(after.keys()).cloned().collect();
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for k in keys {
            match (before.get(&k), after.get(&k)) {
                (None, Some(a)) => added.push((*a).clone()),
                (Some(b), None) => removed.push((*b).clone()),
                (Some(b), Some(a)) if identity(a) != identity(b) => changed.push(((*b).clone(), (*a).clone())),
                _ => {}
            }
        }
        let _ = writeln!(h, "<p>{} added, {} removed, {} changed.</p>", added.len(), removed.len(), changed.len());
        if !added.is_empty() {
            self.artifact_table(h, &added, "Added");
        }
        if !removed.is_empty() {
            self.artifact_table(h, &removed, "Removed");
        }
        if !changed.is_empty() {
            h.push_str("<h3>Changed</h3>\n<table>\n<thead><tr><th>Kind</th><th>Name</th><th>Before</th><th>Now</th></tr></thead>\n<tbody>\n");
            let show = |a: &Artifact| {
                format!(
                    "{} <code class=\"digest\">{}</code>",
                    esc(a.version.as_deref().unwrap_or("")),
                    a.blobs.first().map(ToString::to_string).unwrap_or_default()
                )
            };
            for (b, a) in &changed {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"wrap\">{}</td><td>{}</td><td>{}</td></tr>",
                    a.kind,
                    esc(&a.name),
                    show(b),
                    show(a)
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str("</section>\n");
    }

    fn artifacts(&self, h: &mut String) {
        h.push_str("<section id=\"artifacts\">\n<h2>Artifacts</h2>\n");
        let mut by: BTreeMap<Kind, Vec<Artifact>> = BTreeMap::new();
        for a in &self.m.artifacts {
            by.entry(a.kind).or_default().push(a.clone());
        }
        for (k, list) in &by {
            self.artifact_table(h, list, &format!("{} ({})", kind_title(*k), list.len()));
        }
        h.push_str("</section>\n");
    }

    fn artifact_table(&self, h: &mut String, list: &[Artifact], title: &str) {
        let sizes = self.sizes();
        let _ = write!(
            h,
            "<h3>{}</h3>\n<table>\n<thead><tr><th>Name</th><th>Version</th><th>Platform</th><th>Upstream</th><th>Digest</th><th class=\"num\">Size</th></tr></thead>\n<tbody>\n",
            esc(title)
        );
        for a in list {
            let carried = a.blobs.iter().all(|d| sizes.contains_key(d));
            let size: u64 = a.blobs.iter().filter_map(|d| sizes.get(d)).sum();
            let name = match (a.kind, &a.index) {
                (Kind::Python, Some(i)) => format!("{} <span class=\"muted\">({})</span>", esc(&a.name), esc(i)),
                (Kind::Debian, Some(_)) => {
                    format!("{} <span class=\"muted\">({})</span>", esc(&a.name), esc(a.suite.as_deref().unwrap_or("")))
                }
                _ => esc(&a.name),
            };
            let _ = writeln!(
                h,
                "<tr class=\"artifact\" data-kind=\"{}\"><td class=\"wrap\">{name}</td><td class=\"wrap\">{}</td><td>{}</td><td class=\"wrap\">{}</td><td><code class=\"digest\">{}</code></td><td class=\"num\">{}</td></tr>",
                a.kind,
                esc(a.version.as_deref().unwrap_or("")),
                esc(a.platform.as_deref().or(a.arch.as_deref()).unwrap_or("")),
                esc(&a.upstream),
                a.blobs.first().map(ToString::to_string).unwrap_or_default(),
                if carried { bytes(size) } else { "in the base".into() },
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }

    fn sbom(&self, h: &mut String) {
        h.push_str("<section id=\"sbom\">\n<h2>SBOM</h2>\n");
        let Some(s) = self.sbom else {
            h.push_str("<p>This bundle carries no SBOM.</p>\n</section>\n");
            return;
        };
        let comps = s["components"].as_array().map(Vec::as_slice).unwrap_or_default();
        let edges: usize = s["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d["dependsOn"].as_array().map_or(0, Vec::len))
            .sum();
        let licensed = comps.iter().filter(|c| c.get("licenses").is_some()).count();
        let _ = writeln!(
            h,
            "<dl><dt>Format</dt><dd>CycloneDX {} (<code>{MEMBER_SBOM}</code>)</dd><dt>Serial number</dt><dd><code>{}</code></dd><dt>Components</dt><dd>{}, {licensed} with a declared licence</dd><dt>Dependency edges</dt><dd>{edges}</dd></dl>",
            esc(s["specVersion"].as_str().unwrap_or("?")),
            esc(s["serialNumber"].as_str().unwrap_or("-")),
            comps.len()
        );
        h.push_str("<table>\n<thead><tr><th>Type</th><th>Name</th><th>Version</th><th>Licence</th><th>purl</th></tr></thead>\n<tbody>\n");
        for c in comps {
            let _ = writeln!(
                h,
                "<tr class=\"component\"><td>{}</td><td class=\"wrap\">{}</td><td class=\"wrap\">{}</td><td>{}</td><td class=\"mono wrap\">{}</td></tr>",
                esc(c["type"].as_str().unwrap_or("")),
                esc(c["name"].as_str().unwrap_or("")),
                esc(c["version"].as_str().unwrap_or("")),
                esc(&super::inspect::licences(c)),
                esc(c["purl"].as_str().unwrap_or("")),
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn provenance(&self, h: &mut String) {
        h.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n");
        let Some((st, checked)) = self.statement else {
            h.push_str("<p>This bundle carries no provenance.</p>\n</section>\n");
            return;
        };
        let p = &st["predicate"];
        let def = &p["buildDefinition"];
        let run = &p["runDetails"];
        let ext = &def["externalParameters"];
        let s = |v: &Value| esc(v.as_str().unwrap_or("-"));
        let sha = |v: &Value| v["digest"]["sha256"].as_str().map(|x| format!("sha256:{x}")).unwrap_or_default();
        let versions = run["builder"]["version"]
            .as_object()
            .map(|v| v.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let class = if checked.starts_with("NOT") { "bad" } else { "ok" };
        let _ = writeln!(h, "<p class=\"status {class}\">{}</p>", esc(checked));
        let _ = writeln!(
            h,
            "<dl><dt>Statement</dt><dd>{} with <code>{}</code></dd><dt>Build type</dt><dd><code>{}</code></dd><dt>Builder</dt><dd><code>{}</code> ({})</dd><dt>Started</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd><dt>Lock</dt><dd>{} <code class=\"digest\">{}</code></dd><dt>Spec</dt><dd>{}</dd><dt>Subjects</dt><dd>{}</dd></dl>",
            s(&st["_type"]),
            s(&st["predicateType"]),
            s(&def["buildType"]),
            s(&run["builder"]["id"]),
            esc(&versions),
            s(&run["metadata"]["startedOn"]),
            s(&run["metadata"]["finishedOn"]),
            s(&ext["lock"]["name"]),
            sha(&ext["lock"]),
            match ext["spec"]["name"].as_str() {
                Some(n) => format!("{} <code class=\"digest\">{}</code>", esc(n), sha(&ext["spec"])),
                None => "not recorded (no spec beside the lock)".into(),
            },
            st["subject"].as_array().map_or(0, Vec::len),
        );
        if let Some(text) = ext["spec"]["text"].as_str() {
            let _ = writeln!(h, "<h3>The spec</h3>\n<pre>{}</pre>", esc(text));
        }
        h.push_str("<h3>Resolved dependencies</h3>\n<table>\n<thead><tr><th>Name</th><th>Upstream</th><th>Digest</th></tr></thead>\n<tbody>\n");
        for d in def["resolvedDependencies"].as_array().into_iter().flatten() {
            let digest = d["digest"]
                .as_object()
                .map(|o| {
                    o.iter().map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(" ")
                })
                .unwrap_or_default();
            let upstream = d["uri"].as_str().or(d["annotations"]["upstream"].as_str()).unwrap_or("");
            let _ = writeln!(
                h,
                "<tr><td class=\"wrap\">{}</td><td class=\"wrap mono\">{}</td><td><code class=\"digest\">{}</code></td></tr>",
                s(&d["name"]),
                esc(upstream),
                esc(&digest)
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn history(&self, h: &mut String) {
        let Some(receipts) = self.history else { return };
        h.push_str("<section id=\"history\">\n<h2>Site history</h2>\n");
        if receipts.is_empty() {
            h.push_str("<p>The store has no receipts: nothing was imported into it yet.</p>\n</section>\n");
            return;
        }
        let _ = writeln!(h, "<p>{} imports recorded in the store's receipts, oldest first.</p>", receipts.len());
        h.push_str("<table>\n<thead><tr><th>Imported</th><th>Bundle</th><th>Manifest</th><th>Signer</th><th class=\"num\">Added</th><th class=\"num\">Updated</th><th class=\"num\">Present</th></tr></thead>\n<tbody>\n");
        let this = self.digest.to_string();
        for r in receipts {
            let n = |k: &str| r[k].as_u64().map(|n| n.to_string()).unwrap_or_default();
            let manifest = r["manifest"].as_str().unwrap_or("");
            let mark = if manifest == this { " <strong>(this bundle)</strong>" } else { "" };
            let _ = writeln!(
                h,
                "<tr class=\"import\"><td>{}</td><td>{}{mark}</td><td><code class=\"digest\">{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(r["imported"].as_str().unwrap_or("")),
                esc(r["bundle"].as_str().unwrap_or("")),
                esc(manifest),
                esc(r["signer"].as_str().unwrap_or("")),
                n("added"),
                n("updated"),
                n("present"),
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_upstream_cannot_make_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;&#x7;"
        );
        let m = Manifest {
            media_type: manifest::MANIFEST_MEDIA_TYPE.into(),
            schema_version: 1,
            name: "n".into(),
            version: "1".into(),
            created: "2026-01-01T00:00:00Z".into(),
            generator: "test".into(),
            base: None,
            artifacts: vec![Artifact {
                kind: Kind::File,
                name: "<img src=x onerror=alert(1)>".into(),
                upstream: "\"><script>x</script>".into(),
                ..Default::default()
            }],
            blobs: Vec::new(),
            sbom: None,
            provenance: None,
        };
        let page = Page {
            m: &m,
            digest: Digest::of(b"m"),
            signer: Some("<b>".into()),
            trust: &Trust::Not("<i>why</i>".into()),
            sbom: None,
            statement: None,
            base: None,
            history: None,
        };
        let html = page.render();
        assert!(!html.contains("<img") && !html.contains("<script") && !html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
}
