use std::collections::BTreeMap;

use serde_json::json;

use crate::bundle::BundleError;
use crate::bundle::manifest;
use crate::bundle::manifest::{MEMBER_PROVENANCE, MEMBER_SBOM};
use crate::bundle::sign::PublicKey;
use crate::bundle::verify::{check_head, read_evidence, read_head};
use crate::cli::InspectArgs;
use crate::digest::Digest;
use crate::exit::ExitStatus;

use super::{CmdResult, Ctx, bytes};

pub fn inspect(args: &InspectArgs, cx: &Ctx) -> CmdResult {
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    if args.sbom || args.provenance {
        return evidence(args, cx, &trusted);
    }
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

/// `inspect --sbom` and `inspect --provenance`: the member, checked against the digest the
/// manifest lists; with `--json` exactly as carried. A bundle whose signer is not trusted
/// is still shown, with a warning: nothing in it is vouched for.
fn evidence(args: &InspectArgs, cx: &Ctx, trusted: &[PublicKey]) -> CmdResult {
    let ev = read_evidence(&args.bundle)?;
    let (m, key) = match check_head(&ev.head, trusted) {
        Ok((m, _, signer)) => (m, trusted.iter().find(|k| k.id() == signer).cloned()),
        Err(BundleError::NotAuthentic(why)) => {
            cx.printer.warn(format!("{}: {why}", args.bundle.display()));
            (manifest::parse(&ev.head.manifest_bytes).map_err(BundleError::NotABundle)?, None)
        }
        Err(e) => return Err(e.into()),
    };
    let (name, bytes, descriptor) = if args.sbom {
        (MEMBER_SBOM, ev.sbom, m.sbom.as_ref())
    } else {
        (MEMBER_PROVENANCE, ev.provenance, m.provenance.as_ref())
    };
    let (Some(bytes), Some(d)) = (bytes, descriptor) else {
        anyhow::bail!(
            "{} ({}) carries no {name}: it was exported by an airlock without it",
            args.bundle.display(),
            m.id()
        );
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| BundleError::Corrupt(format!("{name} is not JSON: {e}")))?;
    if args.sbom {
        cx.printer.data(&doc, || sbom_summary(&doc, &d.digest));
        return Ok(ExitStatus::Success);
    }
    let (statement, checked) = match &key {
        Some(k) => (
            crate::bundle::provenance::open_envelope(&bytes, k)
                .map_err(|e| BundleError::Corrupt(format!("{name}: {e}")))?,
            format!("DSSE signature by trusted key {} verified", k.id()),
        ),
        None => (
            crate::bundle::provenance::payload_unverified(&bytes)
                .ok_or_else(|| BundleError::Corrupt(format!("{name} is not a DSSE envelope")))?,
            "NOT TRUSTED: the signer is not a trusted key".to_string(),
        ),
    };
    cx.printer.data(&doc, || provenance_summary(&statement, &d.digest, &checked));
    Ok(ExitStatus::Success)
}

/// The licences a CycloneDX component declares, as one line.
pub fn licences(c: &serde_json::Value) -> String {
    let list = c["licenses"].as_array().map(Vec::as_slice).unwrap_or_default();
    let names: Vec<&str> = list
        .iter()
        .filter_map(|l| l["expression"].as_str().or(l["license"]["id"].as_str()).or(l["license"]["name"].as_str()))
        .collect();
    names.join(", ")
}

fn sbom_summary(doc: &serde_json::Value, digest: &Digest) -> String {
    let components = doc["components"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    for c in components {
        *types.entry(c["type"].as_str().unwrap_or("?")).or_default() += 1;
    }
    let edges: usize = doc["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["dependsOn"].as_array().map_or(0, Vec::len))
        .sum();
    let with_licence = components.iter().filter(|c| c.get("licenses").is_some()).count();
    let mut s = format!(
        "{MEMBER_SBOM}  CycloneDX {}, {digest}\nserial        {}\ndescribes     {} {}\ncomponents    {} ({})\nlicences      {with_licence} components declare one\ndependencies  {edges} edges\n\n",
        doc["specVersion"].as_str().unwrap_or("?"),
        doc["serialNumber"].as_str().unwrap_or("-"),
        doc["metadata"]["component"]["name"].as_str().unwrap_or("?"),
        doc["metadata"]["component"]["version"].as_str().unwrap_or(""),
        components.len(),
        types.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", "),
    );
    s.push_str(&format!("{:<9} {:<40} {:<16} {:<20} {}\n", "TYPE", "NAME", "VERSION", "LICENCE", "PURL"));
    for c in components {
        let version = c["version"].as_str().unwrap_or("-");
        s.push_str(&format!(
            "{:<9} {:<40} {:<16} {:<20} {}\n",
            c["type"].as_str().unwrap_or("?"),
            c["name"].as_str().unwrap_or("?").escape_debug().to_string(),
            if version.len() > 16 { &version[..version.floor_char_boundary(12)] } else { version },
            licences(c),
            c["purl"].as_str().unwrap_or("-").escape_debug(),
        ));
    }
    s
}

fn provenance_summary(st: &serde_json::Value, digest: &Digest, checked: &str) -> String {
    let p = &st["predicate"];
    let def = &p["buildDefinition"];
    let run = &p["runDetails"];
    let ext = &def["externalParameters"];
    let sha = |v: &serde_json::Value| v["digest"]["sha256"].as_str().map(|h| format!("sha256:{h}")).unwrap_or_default();
    let subjects = st["subject"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut s = format!(
        "{MEMBER_PROVENANCE}  {digest}, {checked}\nstatement     {} with {}\nbuild type    {}\nbuilder       {} ({})\nstarted       {}\nfinished      {}\nlock          {} {}\nspec          {}\nsubjects      {}\nresolved      {} dependencies\n\n",
        st["_type"].as_str().unwrap_or("?"),
        st["predicateType"].as_str().unwrap_or("?"),
        def["buildType"].as_str().unwrap_or("?"),
        crate::names::shown(run["builder"]["id"].as_str().unwrap_or("?")),
        run["builder"]["version"]
            .as_object()
            .map(|v| v.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        run["metadata"]["startedOn"].as_str().unwrap_or("-"),
        run["metadata"]["finishedOn"].as_str().unwrap_or("-"),
        ext["lock"]["name"].as_str().unwrap_or("?"),
        sha(&ext["lock"]),
        ext["spec"]["name"].as_str().map_or_else(
            || "not recorded (no spec beside the lock)".to_string(),
            |n| format!("{n} {}", sha(&ext["spec"]))
        ),
        subjects.len(),
        def["resolvedDependencies"].as_array().map_or(0, Vec::len),
    );
    s.push_str(&format!("{:<71}  {}\n", "SUBJECT DIGEST", "NAME"));
    for sub in subjects {
        let d = sub["digest"]["sha256"].as_str().map(|h| format!("sha256:{h}"));
        let d = d.or_else(|| sub["digest"]["gitCommit"].as_str().map(|h| format!("gitCommit:{h}"))).unwrap_or_default();
        s.push_str(&format!("{d:<71}  {}\n", sub["name"].as_str().unwrap_or("?").escape_debug()));
    }
    s
}
