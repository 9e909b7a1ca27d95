use std::collections::BTreeMap;

use serde_json::json;

use crate::bundle::BundleError;
use crate::bundle::manifest;
use crate::bundle::verify::{check_head, read_head};
use crate::cli::InspectArgs;
use crate::digest::Digest;
use crate::exit::ExitStatus;

use super::{CmdResult, Ctx, bytes};

pub fn inspect(args: &InspectArgs, cx: &Ctx) -> CmdResult {
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    let head = read_head(&args.bundle)?;
    let (m, trust) = match check_head(&head, &trusted) {
        Ok((m, _, signer)) => (m, format!("trusted key {signer}")),
        Err(BundleError::NotAuthentic(why)) => {
            let m = manifest::parse(&head.manifest_bytes).map_err(BundleError::NotABundle)?;
            (m, format!("NOT TRUSTED: {why}"))
        }
        Err(e) => return Err(e.into()),
    };
    let signer = crate::bundle::sign::Signature::parse(&head.signature).ok().map(|s| s.key_id().to_string());
    let digest = Digest::of(&head.manifest_bytes);
    let sizes: BTreeMap<_, _> = m.blobs.iter().map(|b| (b.digest, b.size)).collect();
    let mut per_kind: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for a in &m.artifacts {
        let e = per_kind.entry(a.kind.to_string()).or_default();
        e.0 += 1;
        e.1 += a.blobs.iter().filter_map(|d| sizes.get(d)).sum::<u64>();
    }
    cx.printer.data(
        &json!({
            "bundle": m.id(),
            "name": m.name,
            "version": m.version,
            "manifest": digest,
            "signer": signer,
            "signature": trust,
            "created": m.created,
            "generator": m.generator,
            "base": m.base,
            "totals": per_kind.iter().map(|(k, (n, b))| (k.clone(), json!({"artifacts": n, "bytes": b}))).collect::<BTreeMap<_, _>>(),
            "blobBytes": m.total_blob_bytes(),
            "artifacts": m.artifacts,
        }),
        || {
            let mut s = format!(
                "bundle    {}\nname      {}\nversion   {}\nmanifest  {digest}\nsigner    {} ({trust})\ncreated   {}\ngenerator {}\n",
                m.id(),
                m.name,
                m.version,
                signer.as_deref().unwrap_or("none"),
                m.created,
                m.generator
            );
            if let Some(b) = &m.base {
                s.push_str(&format!("base      {} ({}) — differential\n", b.label(), b.digest()));
            }
            s.push_str(&format!("carried   {} blobs, {}\n\ntotals\n", m.blobs.len(), bytes(m.total_blob_bytes())));
            for (k, (n, b)) in &per_kind {
                s.push_str(&format!("  {k:<8} {n:>6} artifacts  {:>10}\n", bytes(*b)));
            }
            s.push_str(&format!("\n{:<6} {:<44} {:>10}  {:<71}  {}\n", "KIND", "NAME", "SIZE", "DIGEST", "PLATFORM"));
            for a in &m.artifacts {
                let size: u64 = a.blobs.iter().filter_map(|d| sizes.get(d)).sum();
                let carried = a.blobs.iter().all(|d| sizes.contains_key(d));
                s.push_str(&format!(
                    "{:<6} {:<44} {:>10}  {:<71}  {}\n",
                    a.kind.to_string(),
                    a.name,
                    if carried { bytes(size) } else { "in base".into() },
                    a.blobs.first().map(|d| d.to_string()).unwrap_or_default(),
                    a.platform.as_deref().or(a.arch.as_deref()).unwrap_or("-"),
                ));
            }
            s
        },
    );
    Ok(ExitStatus::Success)
}
