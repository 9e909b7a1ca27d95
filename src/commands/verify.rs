use std::time::Instant;

use serde_json::json;

use crate::bundle::verify::{BlobSink, verify as verify_bundle};
use crate::cli::VerifyArgs;
use crate::exit::ExitStatus;

use super::{CmdResult, Ctx, bytes, rate};

pub fn verify(args: &VerifyArgs, cx: &Ctx) -> CmdResult {
    let started = Instant::now();
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    let bar = cx.reporter.bytes("verify", None);
    let result = verify_bundle(&args.bundle, &trusted, BlobSink::Discard, &bar);
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if let Err(e) = record(args, &result) {
        cx.printer.warn(format!("the verification is not in the ledger: {e:#}"));
    }
    match result {
        Ok(v) => {
            let m = &v.manifest;
            cx.printer.data(
                &json!({
                    "ok": true,
                    "status": "verified",
                    "bundle": v.id(),
                    "manifest": v.manifest_digest,
                    "signer": v.signer.to_string(),
                    "artifacts": m.artifacts.len(),
                    "blobs": m.blobs.len(),
                    "blobBytes": m.total_blob_bytes(),
                    "streamBytes": v.stream_bytes,
                    "seconds": secs,
                }),
                || {
                    format!(
                        "verified {}: {} artifacts, {} blobs ({}), signed by trusted key {}, in {:.1}s ({})\n  manifest {}",
                        v.id(),
                        m.artifacts.len(),
                        m.blobs.len(),
                        bytes(m.total_blob_bytes()),
                        v.signer,
                        secs,
                        rate(m.total_blob_bytes(), secs),
                        v.manifest_digest
                    )
                },
            );
            Ok(ExitStatus::Success)
        }
        Err(e) => {
            if cx.printer.json {
                cx.printer.data(
                    &json!({"ok": false, "status": e.status_word(), "error": e.to_string(), "bundle": args.bundle}),
                    String::new,
                );
            }
            Err(anyhow::Error::new(e).context(format!("verifying {}", args.bundle.display())))
        }
    }
}

/// Write the result into the ledger of the store or environment, when there is one.
fn record(
    args: &VerifyArgs,
    result: &Result<crate::bundle::verify::VerifiedBundle, crate::bundle::BundleError>,
) -> anyhow::Result<()> {
    let place = super::history::place(&args.at)?;
    if place.env.is_none() && !place.root.join("blobs").is_dir() {
        return Ok(());
    }
    let store = crate::store::Store::open(&place.root)?;
    let ledger = super::site_state::open(&store)?;
    // A verification changes nothing but the ledger: it waits briefly for an import that
    // holds the store's lock, and otherwise writes its row under SQLite's own locking
    // rather than hold up the operator (or lose the record).
    let _lock = store.lock_within(std::time::Duration::from_secs(2))?;
    let (bundle, signer, status, detail) = match result {
        Ok(v) => (
            Some(super::site_state::bundle_ref(&v.manifest, &v.manifest_digest)),
            Some(v.signer.to_string()),
            "verified",
            None,
        ),
        Err(e) => (None, None, e.status_word(), Some(e.to_string())),
    };
    let run = crate::ledger::NewRun {
        op: "verify".into(),
        env: place.env,
        bundle,
        signer,
        targets: Vec::new(),
        source: Some(args.bundle.display().to_string()),
    };
    ledger.record(&run, status, detail.as_deref(), &[])?;
    Ok(())
}
