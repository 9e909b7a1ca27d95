//! What the site-state commands share: opening a store's ledger (with the history a
//! store kept before it had one), reading the site file, and turning an import's results
//! into ledger rows.

use std::path::Path;

use anyhow::Result;

use crate::bundle::manifest::Manifest;
use crate::ledger::{Annotation, ArtifactResult, BundleRef, Ledger};
use crate::site::{Candidate, Decision, Environment, Site};
use crate::store::Store;
use crate::target::Placed;

/// The store's ledger; made on first use, taking over what `imported.json` and the
/// import receipts recorded before it.
pub fn open(store: &Store) -> Result<Ledger> {
    Ledger::open(store.root(), || super::import_guard::imported(store))
}

/// The ledger of the store at `root`, if it has one (read-only use).
pub fn open_existing(root: &Path) -> Result<Option<Ledger>> {
    if !root.is_dir() {
        return Ok(None);
    }
    if root.join(crate::ledger::FILE_NAME).is_file() {
        return Ledger::open_existing(root);
    }
    // A store from before the ledger: make it, so its imports show.
    if root.join("blobs").is_dir() { open(&Store::open(root)?).map(Some) } else { Ok(None) }
}

pub fn bundle_ref(m: &Manifest, digest: &crate::digest::Digest) -> BundleRef {
    BundleRef { name: m.name.clone(), version: m.version.clone(), manifest: digest.to_string() }
}

/// Import results as ledger rows, each with the purl of the manifest artifact it is.
pub fn results(placed: &[Placed], m: &Manifest) -> Vec<ArtifactResult> {
    placed
        .iter()
        .map(|p| {
            let purl = m
                .artifacts
                .iter()
                .find(|a| {
                    a.kind.to_string() == p.kind
                        && (a.name == p.name
                            || p.name.strip_prefix(a.name.as_str()).is_some_and(|rest| rest.starts_with(':'))
                            || a.path.as_ref().is_some_and(|path| path.to_string() == p.name))
                })
                .map(|a| a.purl.clone());
            ArtifactResult {
                kind: p.kind.clone(),
                name: p.name.clone(),
                action: p.action.to_string(),
                location: p.location.clone(),
                purl,
                reason: None,
            }
        })
        .collect()
}

/// Evaluate environment `name`'s policy on a verified bundle. Annotations are read from
/// the ledger of the environment each rule names; `own` is this environment's store's
/// ledger, already open.
pub fn decide(
    site: &Site,
    name: &str,
    env: &Environment,
    own: &Ledger,
    m: &Manifest,
    digest: &crate::digest::Digest,
    signer: &str,
) -> Result<Decision> {
    let manifest = digest.to_string();
    let lookup = |rule_env: Option<&str>| -> Result<Vec<Annotation>> {
        let Some(other) = rule_env else { return own.annotations(&manifest) };
        let store = &site.env(other)?.store;
        if *store == env.store {
            return own.annotations(&manifest);
        }
        match open_existing(store)? {
            Some(l) => l.annotations(&manifest),
            None => Ok(Vec::new()),
        }
    };
    let c = Candidate { manifest: m, signer, annotations: &lookup, now: std::time::SystemTime::now() };
    crate::site::evaluate(name, &env.policy, &c)
}

/// Write a policy decision into the ledger.
pub fn record_decision(ledger: &Ledger, d: &Decision, bundle: &BundleRef, signer: &str) -> Result<()> {
    let run = crate::ledger::NewRun {
        op: "policy".into(),
        env: Some(d.env.clone()),
        bundle: Some(bundle.clone()),
        signer: Some(signer.into()),
        targets: Vec::new(),
        source: None,
    };
    let refused: Vec<ArtifactResult> = d
        .refused
        .iter()
        .map(|r| ArtifactResult {
            kind: r.kind.clone(),
            name: r.name.clone(),
            action: "refused".into(),
            location: String::new(),
            purl: Some(r.purl.clone()),
            reason: Some(r.reason.clone()),
        })
        .collect();
    let detail = (!d.allowed).then(|| d.message());
    ledger.record(&run, if d.allowed { "allowed" } else { "refused" }, detail.as_deref(), &refused)?;
    Ok(())
}
