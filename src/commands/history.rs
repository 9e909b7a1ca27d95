//! `airlock history` and `airlock status`: what the ledgers say.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{HistoryArgs, StatusArgs, WhereArgs};
use crate::exit::ExitStatus;
use crate::ledger::{ArtifactResult, Run};
use crate::site::Site;

use super::{CmdResult, Ctx};

/// Where a site-state command reads and writes.
pub struct Place {
    pub root: PathBuf,
    pub env: Option<String>,
    pub site: Option<Site>,
}

/// `--env` (with the site file), else `--store`, else the default store.
pub fn place(at: &WhereArgs) -> Result<Place> {
    if let Some(env) = &at.env {
        let site = Site::load(&at.site)?;
        let root = site.env(env)?.store.clone();
        return Ok(Place { root, env: Some(env.clone()), site: Some(site) });
    }
    let root = at.store.clone().unwrap_or_else(crate::dirs::store_dir);
    let root = std::path::absolute(&root).unwrap_or(root);
    Ok(Place { root, env: None, site: None })
}

/// `2026-12-01` or RFC 3339, as the ledger's times compare (UTC, to the second).
fn since(s: &str) -> Result<String> {
    let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_string() };
    match humantime::parse_rfc3339_weak(&full) {
        Ok(t) => Ok(humantime::format_rfc3339_seconds(t).to_string()),
        Err(e) => bail!("--since `{s}`: {e} (e.g. `2026-12-01` or `2026-12-01T08:00:00Z`)"),
    }
}

fn artifact_matches(a: &ArtifactResult, what: &str) -> bool {
    a.name == what
        || a.name.split_once(':').is_some_and(|(n, _)| n == what)
        || a.purl.as_deref().is_some_and(|p| p == what || p.split_once('@').is_some_and(|(n, _)| n == what))
}

pub fn history(args: &HistoryArgs, cx: &Ctx) -> CmdResult {
    let mut place = place(&args.at)?;
    if args.watch {
        // `airlock watch` records its refreshes where `export` records: the factory cache.
        let cache = args.cache_dir.clone().unwrap_or_else(crate::dirs::cache_dir);
        place.root = std::path::absolute(&cache).unwrap_or(cache);
    }
    let since = args.since.as_deref().map(since).transpose()?;
    let filter = crate::ledger::Filter {
        op: args.watch.then(|| "watch".to_string()),
        env: place.env.clone(),
        since,
        bundle: args.bundle.clone(),
        artifact: args.artifact.clone(),
    };
    let mut entries = match super::site_state::open_existing(&place.root)? {
        Some(l) => l.runs_where(&filter)?,
        None => Vec::new(),
    };
    if let Some(what) = &args.artifact {
        entries.retain_mut(|r| {
            r.artifacts.retain(|a| artifact_matches(a, what));
            !r.artifacts.is_empty()
        });
    }
    cx.printer.data(&json!({"store": place.root, "entries": entries}), || {
        if entries.is_empty() {
            return format!("no history in the store {} matches\n", place.root.display());
        }
        let mut s = String::new();
        for r in &entries {
            s.push_str(&line(r));
            let show_all = args.artifact.is_some();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for a in &r.artifacts {
                *counts.entry(a.action.as_str()).or_default() += 1;
            }
            if !r.targets.is_empty() {
                s.push_str(&format!("    into {}\n", r.targets.join(", ")));
            }
            if !counts.is_empty() && !show_all {
                let c: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
                s.push_str(&format!("    {}\n", c.join(", ")));
            }
            for a in r.artifacts.iter().filter(|a| show_all || a.action == "refused" || a.action == "failed") {
                let reason = a.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                s.push_str(&format!("    {:<8} {:<6} {} {}{reason}\n", a.action, a.kind, a.name, a.location));
            }
            if let Some(d) = &r.detail {
                s.push_str(&format!("    {d}\n"));
            }
        }
        s
    });
    Ok(ExitStatus::Success)
}

/// A run's headline.
fn line(r: &Run) -> String {
    let bundle = r.bundle.as_ref().map(|b| format!("  {} ({})", b.id(), short(&b.manifest))).unwrap_or_default();
    let env = r.env.as_ref().map(|e| format!("  env {e}")).unwrap_or_default();
    let signer = r.signer.as_ref().map(|k| format!("  signed by {k}")).unwrap_or_default();
    format!("{}  {:<8} {:<11}{env}{bundle}{signer}  by {}@{}\n", r.started, r.op, r.status, r.user, r.host)
}

fn short(digest: &str) -> String {
    digest.get(..19).map_or_else(|| digest.to_string(), |s| format!("{s}…"))
}

pub fn status(args: &StatusArgs, cx: &Ctx) -> CmdResult {
    let mut place = place(&args.at)?;
    // Without --env, every environment of the site file, when there is one.
    if place.site.is_none() && args.at.site.is_file() {
        place.site = Some(Site::load(&args.at.site)?);
    }
    let envs: Vec<(Option<String>, PathBuf)> = match (&place.site, &place.env) {
        (Some(site), Some(e)) => vec![(Some(e.clone()), site.env(e)?.store.clone())],
        (Some(site), None) => site.environments.iter().map(|(n, e)| (Some(n.clone()), e.store.clone())).collect(),
        (None, _) => vec![(None, place.root.clone())],
    };
    let mut out = Vec::new();
    for (name, root) in envs {
        let runs = match super::site_state::open_existing(&root)? {
            Some(l) => l.runs()?,
            None => Vec::new(),
        };
        out.push(env_state(name, root, &runs));
    }
    cx.printer.data(&json!({"environments": out}), || {
        let mut s = String::new();
        for e in &out {
            let name = e["name"].as_str().map_or_else(|| "store".to_string(), |n| format!("environment {n}"));
            s.push_str(&format!("{name} ({})\n", e["store"].as_str().unwrap_or("")));
            let imported = e["imported"].as_array().cloned().unwrap_or_default();
            if imported.is_empty() {
                s.push_str("  nothing imported\n");
            }
            for b in &imported {
                s.push_str(&format!(
                    "  imported {}-{} ({}) on {} by {}, signed by {}\n",
                    b["bundle"]["name"].as_str().unwrap_or(""),
                    b["bundle"]["version"].as_str().unwrap_or(""),
                    short(b["bundle"]["manifest"].as_str().unwrap_or("")),
                    b["imported"].as_str().unwrap_or(""),
                    b["by"].as_str().unwrap_or(""),
                    b["signer"].as_str().unwrap_or("?"),
                ));
                for a in b["set"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "    {:<8} {:<6} {} {}\n",
                        a["action"].as_str().unwrap_or(""),
                        a["kind"].as_str().unwrap_or(""),
                        a["name"].as_str().unwrap_or(""),
                        a["location"].as_str().unwrap_or("")
                    ));
                }
            }
            for p in e["pending"].as_array().into_iter().flatten() {
                let detail = p["detail"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
                s.push_str(&format!(
                    "  pending  {}-{} ({}) {} on {}{detail}\n",
                    p["bundle"]["name"].as_str().unwrap_or(""),
                    p["bundle"]["version"].as_str().unwrap_or(""),
                    short(p["bundle"]["manifest"].as_str().unwrap_or("")),
                    p["state"].as_str().unwrap_or(""),
                    p["at"].as_str().unwrap_or(""),
                ));
            }
        }
        s
    });
    Ok(ExitStatus::Success)
}

/// One environment's state from its store's runs.
fn env_state(name: Option<String>, root: PathBuf, runs: &[Run]) -> Value {
    let mine = |r: &&Run| name.is_none() || r.env == name;
    let is_import = |r: &Run| (r.op == "import" || r.op == "promote") && r.status == "completed";
    // Bundles imported, by manifest, in the order they first came in.
    let mut order: Vec<String> = Vec::new();
    let mut imported: BTreeMap<String, (Value, Vec<ArtifactResult>)> = BTreeMap::new();
    for r in runs.iter().filter(mine).filter(|r| is_import(r)) {
        let Some(b) = &r.bundle else { continue };
        let entry = imported.entry(b.manifest.clone()).or_insert_with(|| {
            order.push(b.manifest.clone());
            (Value::Null, Vec::new())
        });
        entry.0 = json!({
            "bundle": b,
            "op": r.op,
            "imported": r.finished.clone().unwrap_or_else(|| r.started.clone()),
            "by": format!("{}@{}", r.user, r.host),
            "signer": r.signer,
        });
        for a in &r.artifacts {
            match entry.1.iter_mut().find(|x| x.kind == a.kind && x.name == a.name && x.location == a.location) {
                Some(x) if x.action == "present" => x.action.clone_from(&a.action),
                Some(_) => {}
                None => entry.1.push(a.clone()),
            }
        }
    }
    // Pending: the newest verify or refusal of a bundle never imported since.
    let mut pending: BTreeMap<String, Value> = BTreeMap::new();
    let mut pending_order: Vec<String> = Vec::new();
    for r in runs {
        let Some(b) = &r.bundle else { continue };
        let env_ok = name.is_none() || r.env == name || (r.op == "verify" && r.env.is_none());
        if !env_ok {
            continue;
        }
        let state = match (r.op.as_str(), r.status.as_str()) {
            ("verify", "verified") => "verified",
            (_, "refused") => "refused",
            _ if is_import(r) => {
                pending.remove(&b.manifest);
                continue;
            }
            _ => continue,
        };
        if imported.contains_key(&b.manifest) && state == "verified" {
            continue;
        }
        if !pending_order.contains(&b.manifest) {
            pending_order.push(b.manifest.clone());
        }
        pending.insert(
            b.manifest.clone(),
            json!({"bundle": b, "state": state, "at": r.finished.clone().unwrap_or_else(|| r.started.clone()), "detail": r.detail}),
        );
    }
    let imported: Vec<Value> = order
        .iter()
        .filter_map(|m| imported.remove(m))
        .map(|(mut v, set)| {
            v["set"] = json!(set);
            v
        })
        .collect();
    let pending: Vec<Value> = pending_order.iter().filter_map(|m| pending.remove(m)).collect();
    json!({"name": name, "store": root, "imported": imported, "pending": pending})
}
