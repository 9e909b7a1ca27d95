//! `airlock gc`: free what nothing needs any more, safely.
//!
//! A blob stays when the store's registry reaches it (a tag, an index, a referrer), when
//! a repository file is a hard link to it, when a retained bundle names it (the newest
//! `--keep` bundles of each name imported into the store, as the ledger records them),
//! or when it is younger than the grace window (an upload `airlock serve` is still
//! receiving, a client that resolved a tag a moment ago). Everything runs under the
//! store's lock, so no import or `serve` write changes the store meanwhile; what is freed
//! is recorded in the ledger.

use std::collections::{BTreeMap, HashSet};

use anyhow::bail;
use serde_json::json;

use crate::cli::GcArgs;
use crate::exit::ExitStatus;
use crate::ledger::{ArtifactResult, NewRun};
use crate::store::Store;

use super::{CmdResult, Ctx, bytes};

pub fn gc(args: &GcArgs, cx: &Ctx) -> CmdResult {
    let place = super::history::place(&args.at)?;
    if !place.root.join("blobs").is_dir() {
        bail!("{} is not a store (it has no blobs/): nothing to collect", place.root.display());
    }
    let store = Store::open(&place.root)?;
    let ledger = super::site_state::open(&store)?;
    let _lock = store.lock_within(std::time::Duration::from_secs(30))?.ok_or_else(|| {
        anyhow::anyhow!("an import into {} has held its lock for 30s; run gc when it is done", place.root.display())
    })?;

    // The bundles retained: the newest --keep of each name, by their last completed import.
    let mut newest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in ledger.runs()?.into_iter().rev() {
        let done = (r.op == "import" || r.op == "promote") && r.status == "completed";
        let Some(b) = r.bundle.filter(|_| done) else { continue };
        let list = newest.entry(b.name.clone()).or_default();
        if !list.contains(&b.manifest) && list.len() < args.keep {
            list.push(b.manifest.clone());
        }
    }
    let mut keep: HashSet<String> = HashSet::new();
    let mut unknown = Vec::new();
    for (name, manifests) in &newest {
        for m in manifests {
            match ledger.blobs_of(m)? {
                Some(blobs) => keep.extend(blobs),
                None => unknown.push(format!("{name} ({m})")),
            }
        }
    }
    let reachable = store.oci_reachable()?;
    let entries = store.blob_entries()?;
    let freeable: Vec<_> = if unknown.is_empty() {
        entries
            .iter()
            .filter(|b| {
                !reachable.contains(&b.digest)
                    && !keep.contains(&b.digest.to_string())
                    && b.links < 2
                    && b.age >= args.grace
            })
            .collect()
    } else {
        Vec::new()
    };
    let leftovers = store.stale_leftovers(args.grace)?;
    let staging = store.layout().staging_root().is_dir();

    let blob_bytes: u64 = freeable.iter().map(|b| b.size).sum();
    let leftover_bytes: u64 = leftovers.iter().map(|(_, n)| *n).sum();
    if !args.dry_run {
        for b in &freeable {
            store.remove_blob(&b.digest)?;
        }
        for (p, _) in &leftovers {
            let _ = std::fs::remove_file(p);
        }
        store.discard_staging();
        let _ = store.remove_litter();
        let freed: Vec<ArtifactResult> = freeable
            .iter()
            .map(|b| ArtifactResult {
                kind: "blob".into(),
                name: b.digest.to_string(),
                action: "freed".into(),
                location: store.blob_path_for_tool(&b.digest).display().to_string(),
                purl: None,
                reason: Some(format!("{} bytes, named by no tag, repository file or retained bundle", b.size)),
            })
            .chain(leftovers.iter().map(|(p, n)| ArtifactResult {
                kind: "leftover".into(),
                name: p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                action: "freed".into(),
                location: p.display().to_string(),
                purl: None,
                reason: Some(format!("{n} bytes, an interrupted upload or download")),
            }))
            .collect();
        let run = NewRun {
            op: "gc".into(),
            env: place.env.clone(),
            targets: vec![format!("store:{}", place.root.display())],
            source: Some(format!("keep {}, grace {}", args.keep, humantime::format_duration(args.grace))),
            ..Default::default()
        };
        ledger.record(&run, "completed", None, &freed)?;
    }
    let list: Vec<_> = freeable.iter().map(|b| json!({"digest": b.digest, "size": b.size})).collect();
    let left: Vec<_> = leftovers.iter().map(|(p, n)| json!({"path": p, "size": n})).collect();
    cx.printer.data(
        &json!({
            "store": place.root,
            "dryRun": args.dry_run,
            "blobs": list,
            "blobBytes": blob_bytes,
            "leftovers": left,
            "leftoverBytes": leftover_bytes,
            "staging": staging,
            "kept": entries.len() - freeable.len(),
            "unknownBundles": unknown,
        }),
        || {
            let verb = if args.dry_run { "would free" } else { "freed" };
            let mut s = format!(
                "{verb} {} blobs ({}) and {} leftovers ({}) in {}; {} blobs kept\n",
                freeable.len(),
                bytes(blob_bytes),
                leftovers.len(),
                bytes(leftover_bytes),
                place.root.display(),
                entries.len() - freeable.len()
            );
            for b in &freeable {
                s.push_str(&format!("  blob {} {}\n", b.digest, bytes(b.size)));
            }
            for (p, n) in &leftovers {
                s.push_str(&format!("  leftover {} {}\n", p.display(), bytes(*n)));
            }
            if !unknown.is_empty() {
                s.push_str(&format!(
                    "  no blob is freed: the ledger has no blob list for {} (imported before airlock kept one); \
                     import them again once, so that the ledger records it\n",
                    unknown.join(", ")
                ));
            }
            s
        },
    );
    Ok(ExitStatus::Success)
}
