use std::fs::File;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use crate::bundle::verify::{BlobSink, VerifiedBundle, verify};
use crate::cli::ImportArgs;
use crate::exit::ExitStatus;
use crate::store::Store;
use crate::target::raw::{HttpRaw, StoreRaw};
use crate::target::{Placed, Target};

use super::{CmdResult, Ctx};

pub fn import(args: &ImportArgs, cx: &Ctx) -> CmdResult {
    let started = Instant::now();
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    if !crate::spec::valid_name(&args.raw_repo) {
        anyhow::bail!("--raw-repo `{}` must be 1-128 letters, digits, `.`, `_`, `+` or `-`", args.raw_repo);
    }
    let root = args.store.clone().unwrap_or_else(crate::dirs::store_dir);
    let root = std::path::absolute(&root).with_context(|| format!("store {}", root.display()))?;
    // Check the target's settings before reading the media: a typo must not cost a full read.
    let password = std::env::var("AIRLOCK_RAW_PASSWORD").ok();
    let http = args.raw_url.as_deref().map(|url| HttpRaw::new(url, args.raw_username.clone(), password)).transpose()?;
    let store = Store::open(&root)?;
    // One import at a time per store; whatever a killed import staged is discarded.
    let lock_file = File::create(root.join(".import.lock")).with_context(|| format!("locking {}", root.display()))?;
    lock_file
        .try_lock()
        .map_err(|_| anyhow::anyhow!("another import into {} is running; wait for it to finish", root.display()))?;
    let _ = std::fs::remove_dir_all(root.join("staging"));

    let staging = store.staging("current")?;
    let bar = cx.reporter.bytes("verify", None);
    let verified = verify(&args.bundle, &trusted, BlobSink::Stage(&store, &staging), &bar);
    bar.finish_and_clear();
    let bundle = match verified {
        Ok(b) => b,
        Err(e) => {
            staging.discard();
            return Err(
                anyhow::Error::new(e).context(format!("verifying {} (nothing was imported)", args.bundle.display()))
            );
        }
    };
    let digests: Vec<_> = bundle.manifest.blobs.iter().map(|b| b.digest).collect();
    staging.promote(&digests).context("moving verified blobs into the store")?;

    let placed = match &http {
        Some(http) => run(&http.on(&store), &bundle, cx)?,
        None => run(&StoreRaw { store: &store, repo: args.raw_repo.clone() }, &bundle, cx)?,
    };
    let secs = started.elapsed().as_secs_f64();
    let added = placed.iter().filter(|p| p.action == "added").count();
    let receipt = json!({
        "bundle": bundle.id(),
        "manifest": bundle.manifest_digest,
        "signer": bundle.signer.to_string(),
        "store": root,
        "imported": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "added": added,
        "present": placed.len() - added,
        "artifacts": placed,
        "seconds": secs,
    });
    let receipt_path = store.write_receipt(&bundle.id(), &serde_json::to_vec_pretty(&receipt)?)?;
    cx.printer.data(&receipt, || {
        let mut s = format!(
            "imported {} (signed by {}): {added} added, {} already present, in {:.1}s\n  receipt {}\n",
            bundle.id(),
            bundle.signer,
            placed.len() - added,
            secs,
            receipt_path.display()
        );
        for p in &placed {
            s.push_str(&format!("  {:<8} {:<7} {}\n", p.action, p.kind, p.location));
        }
        s
    });
    Ok(ExitStatus::Success)
}

fn run<T: Target>(target: &T, bundle: &VerifiedBundle, cx: &Ctx) -> Result<Vec<Placed>> {
    let plan = target.plan(bundle)?;
    target.load(plan, bundle, &cx.reporter)
}
