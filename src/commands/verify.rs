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
