//! `airlock annotate` and `airlock annotations`: what the site learns about a bundle
//! after it was signed, kept in the ledger and never in the bundle.

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bundle::verify::{BlobSink, verify};
use crate::cli::{AnnotateArgs, AnnotationsArgs};
use crate::exit::ExitStatus;
use crate::ledger::{BundleRef, Ledger};
use crate::store::Store;

use super::{CmdResult, Ctx};

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

/// The bundle `what` names: a bundle file (verified), else `NAME-VERSION` or a manifest
/// digest that the ledger knows.
fn resolve(what: &str, ledger: &Ledger, trusted: &[crate::bundle::sign::PublicKey]) -> Result<BundleRef> {
    let path = std::path::Path::new(what);
    if path.exists() {
        let bar = crate::progress::Reporter::new(true).bytes("verify", None);
        let v = verify(path, trusted, BlobSink::Discard, &bar)
            .map_err(|e| anyhow::Error::new(e).context(format!("verifying {what}")))?;
        return Ok(super::site_state::bundle_ref(&v.manifest, &v.manifest_digest));
    }
    ledger.find_bundle(what)?.ok_or_else(|| {
        anyhow::anyhow!(
            "the ledger {} knows no bundle `{what}`: name it as `airlock history` shows it (NAME-VERSION or its \
             manifest digest), or give the bundle file",
            ledger.path().display()
        )
    })
}

pub fn annotate(args: &AnnotateArgs, cx: &Ctx) -> CmdResult {
    let mut set = Vec::new();
    for p in &args.pairs {
        let Some((k, v)) = p.split_once('=') else { bail!("`{p}` is not KEY=VALUE") };
        if !valid_key(k) {
            bail!("annotation key `{k}` must be letters, digits and `.`, `_`, `-`, `/`");
        }
        set.push((k.to_string(), v.to_string()));
    }
    for k in &args.remove {
        if !valid_key(k) {
            bail!("annotation key `{k}` must be letters, digits and `.`, `_`, `-`, `/`");
        }
    }
    if set.is_empty() && args.remove.is_empty() {
        bail!("nothing to do: give KEY=VALUE pairs or --remove KEY");
    }
    let place = super::history::place(&args.at)?;
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    let store = Store::open(&place.root)?;
    let ledger = super::site_state::open(&store)?;
    let bundle = resolve(&args.bundle, &ledger, &trusted)?;
    let _lock = store.lock_within(std::time::Duration::from_secs(30))?.ok_or_else(|| {
        anyhow::anyhow!("an import into {} has held its lock for 30s; annotate when it is done", place.root.display())
    })?;
    let env = place.env.clone().unwrap_or_default();
    for (k, v) in &set {
        ledger.annotate(&bundle, &env, k, Some(v)).with_context(|| format!("annotating {}", bundle.id()))?;
    }
    for k in &args.remove {
        ledger.annotate(&bundle, &env, k, None).with_context(|| format!("annotating {}", bundle.id()))?;
    }
    let set_json: serde_json::Map<String, serde_json::Value> = set.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    cx.printer.data(
        &json!({"bundle": bundle, "env": place.env, "store": place.root, "set": set_json, "removed": args.remove}),
        || {
            let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.extend(args.remove.iter().map(|k| format!("removed {k}")));
            let env = place.env.as_ref().map(|e| format!(" in env {e}")).unwrap_or_default();
            format!("annotated {} ({}){env}: {}\n", bundle.id(), bundle.manifest, parts.join(", "))
        },
    );
    Ok(ExitStatus::Success)
}

pub fn annotations(args: &AnnotationsArgs, cx: &Ctx) -> CmdResult {
    let place = super::history::place(&args.at)?;
    let Some(ledger) = super::site_state::open_existing(&place.root)? else {
        bail!("the store {} has no ledger: nothing was imported or annotated there", place.root.display());
    };
    let bundle = ledger
        .find_bundle(&args.bundle)?
        .ok_or_else(|| anyhow::anyhow!("the ledger {} knows no bundle `{}`", ledger.path().display(), args.bundle))?;
    let mut list = ledger.annotations(&bundle.manifest)?;
    if let Some(env) = &place.env {
        list.retain(|a| a.env == *env);
    }
    cx.printer.data(&json!({"bundle": bundle, "store": place.root, "annotations": list}), || {
        if list.is_empty() {
            return format!("{} ({}) has no annotations\n", bundle.id(), bundle.manifest);
        }
        let mut s = format!("{} ({})\n", bundle.id(), bundle.manifest);
        for a in &list {
            let env = if a.env.is_empty() { "-" } else { a.env.as_str() };
            s.push_str(&format!("  {}={}  env {env}  by {}@{} at {}\n", a.key, a.value, a.user, a.host, a.at));
        }
        s
    });
    Ok(ExitStatus::Success)
}
