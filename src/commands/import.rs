use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use crate::bundle::manifest::Kind;
use crate::bundle::verify::{BlobSink, SignedHead, check_signed_head, verify};
use crate::cli::ImportArgs;
use crate::exit::ExitStatus;
use crate::store::{Store, hook};
use crate::target::apt::{KEYRING_STEM, StoreApt, sources_example};
use crate::target::aptly::{Aptly, AptlyOptions};
use crate::target::git::{RemoteGit, StoreGit};
use crate::target::nexus_apt::NexusApt;
use crate::target::oci::{RegistryOci, StoreOci};
use crate::target::python::{StoreIndex, UploadIndex};
use crate::target::raw::{HttpRaw, StoreRaw};
use crate::target::{Journal, Placed, Target};

use super::{CmdResult, Ctx};

pub fn import(args: &ImportArgs, cx: &Ctx) -> CmdResult {
    import_as(args, cx, "import", None)
}

/// An import (`op` `import`) or a promotion (`promote`, from environment `from`).
pub(super) fn import_as(args: &ImportArgs, cx: &Ctx, op: &str, from: Option<&str>) -> CmdResult {
    let started = Instant::now();
    let site_env = match &args.env {
        Some(name) => {
            let site = crate::site::Site::load(&args.site)?;
            let env = site.env(name)?.clone();
            Some((site, name.clone(), env))
        }
        None => None,
    };
    let merged;
    let args = match &site_env {
        Some((_, _, env)) => {
            merged = args.with_env(env);
            &merged
        }
        None => args,
    };
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    crate::names::repository(&args.raw_repo).map_err(|e| anyhow::anyhow!("--raw-repo {e}"))?;
    crate::names::repository(&args.apt_repo).map_err(|e| anyhow::anyhow!("--apt-repo {e}"))?;
    if args.apt_repo == args.raw_repo && args.raw_url.is_none() {
        anyhow::bail!("--apt-repo and --raw-repo are both `{}`: they must be different directories", args.apt_repo);
    }
    let root = args.store.clone().unwrap_or_else(crate::dirs::store_dir);
    let root = std::path::absolute(&root).with_context(|| format!("store {}", root.display()))?;
    // Check the target's settings before reading the media: a typo must not cost a full read.
    let password = std::env::var("AIRLOCK_RAW_PASSWORD").ok();
    let http = args.raw_url.as_deref().map(|url| HttpRaw::new(url, args.raw_username.clone(), password)).transpose()?;
    if let Some(t) = &args.git_push {
        RemoteGit::check_template(t)?;
    }
    let oci_target = args
        .oci_registry
        .as_deref()
        .map(|spec| -> anyhow::Result<(crate::registry::Registry, String)> {
            let (host, prefix) = spec.split_once('/').unwrap_or((spec, ""));
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() {
                crate::names::image_repository(prefix).map_err(|e| anyhow::anyhow!("--oci-registry prefix {e}"))?;
            }
            Ok((crate::registry::Registry::new(host, args.oci_insecure)?, prefix.to_string()))
        })
        .transpose()?;
    if let Some(n) = &args.python_index {
        crate::names::repository(n).map_err(|e| anyhow::anyhow!("--python-index {e}"))?;
    }
    let store = Store::open(&root)?;
    let aptly = args
        .apt_aptly
        .as_ref()
        .map(|url| {
            Aptly::new(
                &store,
                AptlyOptions {
                    url: url.clone(),
                    repo: args.apt_aptly_repo.clone(),
                    create: args.apt_aptly_create,
                    distribution: args.apt_aptly_distribution.clone(),
                    prefix: args.apt_aptly_prefix.clone(),
                    skip_signing: args.apt_aptly_skip_signing,
                    username: std::env::var("AIRLOCK_APT_USERNAME").ok(),
                    password: std::env::var("AIRLOCK_APT_PASSWORD").ok(),
                },
            )
        })
        .transpose()?;
    let python_upload = args
        .python_upload
        .as_deref()
        .map(|url| {
            UploadIndex::new(&store, url, args.python_username.clone(), std::env::var("AIRLOCK_PYTHON_PASSWORD").ok())
        })
        .transpose()?;
    let nexus = args
        .apt_nexus
        .as_deref()
        .map(|url| {
            NexusApt::new(
                &store,
                url,
                args.apt_nexus_distribution.clone(),
                std::env::var("AIRLOCK_APT_USERNAME").ok(),
                std::env::var("AIRLOCK_APT_PASSWORD").ok(),
            )
        })
        .transpose()?;
    // One import at a time per store; whatever a killed import staged or left half
    // written is discarded.
    // A write of `airlock serve` holds the lock briefly: wait for it, not for an import.
    let _lock = store.lock_within(std::time::Duration::from_secs(10))?.ok_or_else(|| {
        anyhow::anyhow!(
            "another import into {} is running (or `airlock serve` is writing to it); wait for it to finish",
            root.display()
        )
    })?;
    // The run is in the ledger before anything is written; one killed before it
    // finished (no other import can hold the lock now) is written down as interrupted.
    let ledger = super::site_state::open(&store)?;
    ledger.mark_interrupted()?;
    let mut targets = vec![format!("store:{}", root.display())];
    for (flag, v) in [
        ("raw-url", &args.raw_url),
        ("apt-aptly", &args.apt_aptly),
        ("apt-nexus", &args.apt_nexus),
        ("oci-registry", &args.oci_registry),
        ("python-upload", &args.python_upload),
        ("git-push", &args.git_push),
    ] {
        if let Some(v) = v {
            targets.push(format!("{flag}:{v}"));
        }
    }
    let source = match from {
        Some(f) => format!("{} (promoted from env {f})", args.bundle.display()),
        None => args.bundle.display().to_string(),
    };
    let run_id = ledger.begin(&crate::ledger::NewRun {
        op: op.into(),
        env: args.env.clone(),
        targets,
        source: Some(source),
        ..Default::default()
    })?;
    let oci_remote = oci_target.map(|(registry, prefix)| RegistryOci {
        store: &store,
        registry: registry.resume_uploads_in(store.layout().partial_dir()),
        prefix,
        max_components: args.oci_max_components,
        jobs: args.oci_jobs,
        chunk_size: args.oci_chunk_size,
        moved: Default::default(),
        mounted: Default::default(),
        early: Default::default(),
    });
    // What a record of this import is for: the same bundle into the same target.
    let target_key = match &args.oci_registry {
        Some(r) => format!("oci-registry:{r} max-components:{:?}", args.oci_max_components),
        None => "store".to_string(),
    };
    let mut results = Vec::new();
    let outcome = (|| -> CmdResult {
        store.discard_staging();
        if let Err(e) = store.remove_litter() {
            cx.printer.warn(format!("{e:#}"));
        }
        if !args.verify_all && site_env.is_none() {
            // Not confirmed, or the head itself is bad: the full path decides, as verify.
            if let Ok(Some((head, placed))) =
                answer_from_record(&store, &ledger, &trusted, args, &target_key, oci_remote.as_ref())
            {
                results = super::site_state::results(&placed, &head.manifest);
                return answered(&store, &ledger, run_id, &root, &head, placed, oci_remote.as_ref(), started, cx);
            }
        }
        // The prints of the media before it is read: recorded once the import completes.
        let prints =
            ledger.record_key().ok().and_then(|key| crate::bundle::fingerprint::of(&args.bundle, &key).ok().flatten());

        let staging = store.staging("current")?;
        let bar = cx.reporter.bytes("verify", None);
        // Into a registry, layers go up while later ones are still being read, once the
        // head is known good (no policy decides later: an environment's import waits).
        let early = match (&oci_remote, &site_env) {
            (Some(t), None) => early_head(&store, &trusted, args, t),
            _ => None,
        };
        let verified = match (&oci_remote, early) {
            (Some(t), Some(m)) => {
                let (tx, rx) = crossbeam_channel::unbounded();
                std::thread::scope(|s| {
                    let pusher = s.spawn(|| t.push_confirmed(&m, &rx, &|d| staging.open(d)));
                    let v = verify(&args.bundle, &trusted, BlobSink::StageAndTell(&store, &staging, tx), &bar);
                    if v.is_err() {
                        // Nothing more goes up for a bundle that failed: the queue is dropped.
                        while rx.try_recv().is_ok() {}
                    }
                    let _ = pusher.join();
                    v
                })
            }
            _ => verify(&args.bundle, &trusted, BlobSink::Stage(&store, &staging), &bar),
        };
        bar.finish_and_clear();
        let bundle = match verified {
            Ok(b) => b,
            Err(e) => {
                staging.discard();
                return Err(anyhow::Error::new(e)
                    .context(format!("verifying {} (nothing was imported)", args.bundle.display())));
            }
        };
        let bundle_ref = super::site_state::bundle_ref(&bundle.manifest, &bundle.manifest_digest);
        ledger.set_bundle(run_id, &bundle_ref, &bundle.signer.to_string())?;
        // Rollback and base checks: before anything is kept or planned.
        if let Err(e) = super::import_guard::check(&store, &bundle, args.allow_downgrade) {
            staging.discard();
            return Err(e);
        }
        // The environment's policy: before anything is kept or planned.
        if let Some((site, name, env)) = &site_env {
            let signer = bundle.signer.to_string();
            let decided =
                super::site_state::decide(site, name, env, &ledger, &bundle.manifest, &bundle.manifest_digest, &signer);
            let d = match decided {
                Ok(d) => d,
                Err(e) => {
                    staging.discard();
                    return Err(e);
                }
            };
            super::site_state::record_decision(&ledger, &d, &bundle_ref, &signer)?;
            if !d.allowed {
                staging.discard();
                return Err(crate::site::Refused(format!("{}; nothing was imported", d.message())).into());
            }
        }
        let digests: Vec<_> = bundle.manifest.blobs.iter().map(|b| b.digest).collect();
        staging.promote(&digests).context("moving verified blobs into the store")?;

        // The import is one transaction: plan every target (a plan changes nothing, so a
        // conflict anywhere leaves every target as it was), then load each, recording every
        // change; if anything fails, undo them all, newest first.
        let raw_http = http.as_ref().map(|h| h.on(&store));
        let raw_store = StoreRaw { store: &store, repo: args.raw_repo.clone() };
        let git_store = StoreGit { store: &store, allow_force: args.git_allow_force };
        let apt_store = StoreApt {
            store: &store,
            repo: args.apt_repo.clone(),
            key_path: args.apt_key.clone().unwrap_or_else(|| cx.config_dir.join("keys").join("apt.key")),
            passphrase: std::env::var(crate::debian::openpgp::APT_PASSWORD_ENV).ok(),
            valid_for: args.apt_valid_for,
        };
        let oci_store = StoreOci { store: &store };
        let python_store = StoreIndex { store: &store, index: args.python_index.clone() };
        let remote_git = args.git_push.as_ref().map(|template| RemoteGit {
            store: &store,
            template: template.clone(),
            allow_force: args.git_allow_force,
        });
        let mut apt_info = None;
        let mut journal = Journal::default();
        let mut loading = false;
        let outcome = (|| -> anyhow::Result<(Vec<Placed>, serde_json::Value, std::path::PathBuf)> {
            if args.python_upload.is_none() {
                let python_indexes =
                    bundle.manifest.artifacts.iter().filter_map(|a| {
                        args.python_index.as_ref().or(a.index.as_ref()).filter(|_| a.kind == Kind::Python)
                    });
                for index in python_indexes {
                    if *index == args.apt_repo || (*index == args.raw_repo && args.raw_url.is_none()) {
                        anyhow::bail!(
                            "the Python index `{index}` would share its directory with the raw or apt repository of the same name: \
                         pass --python-index, --raw-repo or --apt-repo to separate them"
                        );
                    }
                }
            }
            let raw_plan = match &raw_http {
                Some(t) => t.plan(&bundle)?,
                None => raw_store.plan(&bundle)?,
            };
            let git_plan = git_store.plan(&bundle)?;
            let (apt_plan, aptly_plan, nexus_plan) = match (&aptly, &nexus) {
                (Some(t), _) => (None, Some(t.plan(&bundle)?), None),
                (None, Some(t)) => (None, None, Some(t.plan(&bundle)?)),
                (None, None) => (Some(apt_store.plan(&bundle)?), None, None),
            };
            apt_info = apt_plan.as_ref().filter(|p| !p.is_empty()).map(|apt_plan| {
                let dir = store.repository_dir(&args.apt_repo);
                json!({
                    "repository": dir,
                    "suites": apt_plan.suites(),
                    "fingerprint": apt_plan.fingerprint(),
                    "keyring": store.layout().apt_keyring(&args.apt_repo, "asc"),
                })
            });
            let (oci_store_plan, oci_remote_plan) = match &oci_remote {
                Some(t) => (None, Some(t.plan(&bundle)?)),
                None => (Some(oci_store.plan(&bundle)?), None),
            };
            let python_plan = match &python_upload {
                Some(_) => None,
                None => Some(python_store.plan(&bundle)?),
            };
            hook::pause("planned");
            loading = true;

            // Local targets first, then remote ones; last, what no one can take back.
            let r = &cx.reporter;
            let mut placed = match &raw_http {
                Some(t) => t.load(raw_plan, &bundle, r, &mut journal)?,
                None => raw_store.load(raw_plan, &bundle, r, &mut journal)?,
            };
            placed.extend(git_store.load(git_plan, &bundle, r, &mut journal)?);
            if let Some(p) = apt_plan {
                placed.extend(apt_store.load(p, &bundle, r, &mut journal)?);
            }
            if let (Some(t), Some(p)) = (&aptly, aptly_plan) {
                placed.extend(t.load(p, &bundle, r, &mut journal)?);
            }
            if let Some(p) = oci_store_plan {
                placed.extend(oci_store.load(p, &bundle, r, &mut journal)?);
            }
            if let (Some(t), Some(p)) = (&oci_remote, oci_remote_plan) {
                placed.extend(t.load(p, &bundle, r, &mut journal)?);
            }
            if let Some(p) = python_plan {
                placed.extend(python_store.load(p, &bundle, r, &mut journal)?);
            }
            if let (Some(t), Some(p)) = (&nexus, nexus_plan) {
                placed.extend(t.load(p, &bundle, r, &mut journal)?);
            }
            if let Some(t) = &python_upload {
                placed.extend(t.upload(&bundle, r, &mut journal)?);
            }
            if let Some(remote) = &remote_git {
                placed.extend(remote.push(&bundle, r, &mut journal)?);
            }
            let secs = started.elapsed().as_secs_f64();
            let count = |action: &str| placed.iter().filter(|p| p.action == action).count();
            let receipt = json!({
                "bundle": bundle.id(),
                "manifest": bundle.manifest_digest,
                "signer": bundle.signer.to_string(),
                "store": root,
                "imported": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                "added": count("added"),
                "updated": count("updated") + count("forced"),
                "present": count("present"),
                "pushed": count("pushed"),
                "registry": registry_json(oci_remote.as_ref()),
                "apt": apt_info,
                "artifacts": placed,
                "answeredFromRecord": false,
                "seconds": secs,
            });
            let mut receipt_bytes = serde_json::to_vec_pretty(&receipt)?;
            receipt_bytes.push(b'\n');
            // What `airlock env` reads for the bundles `imported.json` names: upstream names
            // and versions, as verified.
            let manifest_path = store.layout().imported_manifest(&bundle.manifest_digest);
            let new_manifest = !manifest_path.exists();
            crate::store::atomic::write(&manifest_path, &bundle.manifest.to_bytes())
                .with_context(|| format!("writing {}", manifest_path.display()))?;
            if new_manifest {
                journal.record(Vec::new(), move || {
                    std::fs::remove_file(&manifest_path)
                        .with_context(|| format!("removing {}", manifest_path.display()))
                });
            }
            hook::pause("receipt");
            let receipt_path = store.write_receipt(&bundle.id(), &receipt_bytes)?;
            super::import_guard::record(&store, &bundle)?;
            Ok((placed, receipt, receipt_path))
        })();
        let (placed, receipt, receipt_path) = match outcome {
            Ok(o) => {
                results = super::site_state::results(&o.0, &bundle.manifest);
                // What `airlock gc` keeps while this bundle is retained.
                let m = &bundle.manifest;
                let named: std::collections::BTreeSet<String> = m
                    .blobs
                    .iter()
                    .map(|b| b.digest.to_string())
                    .chain(m.artifacts.iter().flat_map(|a| a.blobs.iter().map(ToString::to_string)))
                    .collect();
                ledger.set_blobs(&bundle.manifest_digest.to_string(), &named.into_iter().collect::<Vec<_>>())?;
                if let Some(prints) = &prints
                    && !m.artifacts.is_empty()
                    && m.artifacts.iter().all(|a| a.kind == Kind::Image)
                {
                    let prints = serde_json::to_string(prints)?;
                    ledger.set_import_record(&bundle.manifest_digest.to_string(), &target_key, &prints)?;
                }
                o
            }
            Err(e) => {
                let rollback = journal.roll_back();
                // A plan's refusal says itself that nothing changed.
                let line = if loading { format!("{e:#}; {}", rollback.summary()) } else { format!("{e:#}") };
                if cx.printer.json {
                    let status = if rollback.stayed.is_empty() { "rolled-back" } else { "partly-rolled-back" };
                    cx.printer.data(
                        &json!({
                            "ok": false,
                            "status": status,
                            "error": line,
                            "bundle": bundle.id(),
                            "manifest": bundle.manifest_digest,
                            "store": root,
                            "rolledBack": rollback.undone,
                            "stayed": rollback.stayed,
                            "registry": registry_json(oci_remote.as_ref()),
                        }),
                        String::new,
                    );
                }
                return Err(anyhow::anyhow!(line));
            }
        };
        let secs = receipt["seconds"].as_f64().unwrap_or_default();
        let count = |action: &str| placed.iter().filter(|p| p.action == action).count();
        let (added, present) = (count("added"), count("present"));
        let changed = count("updated") + count("forced");
        cx.printer.data(&receipt, || {
        let mut s = format!(
            "imported {} (signed by {}): {added} added, {changed} updated, {present} already present, in {:.1}s\n  receipt {}\n",
            bundle.id(),
            bundle.signer,
            secs,
            receipt_path.display()
        );
        for p in &placed {
            s.push_str(&format!("  {:<8} {:<5} {:<36} {}\n", p.action, p.kind, p.name, p.location));
        }
        if let Some(apt) = &apt_info {
            let suites: Vec<String> =
                apt["suites"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            let components: Vec<String> = bundle
                .manifest
                .artifacts
                .iter()
                .filter_map(|a| a.component.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            s.push_str(&format!(
                "  apt repository {} signed by {}; for clients (`airlock serve` serves it), e.g. /etc/apt/sources.list.d/airlock.sources:\n",
                apt["repository"].as_str().unwrap_or(""),
                apt["fingerprint"].as_str().unwrap_or("")
            ));
            let example = sources_example(
                &format!("http://AIRLOCK-HOST:8080/repository/{}", args.apt_repo),
                &suites,
                &components,
                &format!("/etc/apt/keyrings/{KEYRING_STEM}.asc"),
            );
            for line in example.lines() {
                s.push_str(&format!("    {line}\n"));
            }
        }
        s
    });
        Ok(ExitStatus::Success)
    })();
    match &outcome {
        Ok(_) => ledger.finish(run_id, "completed", None, &results)?,
        Err(e) => {
            let status = if e.is::<crate::site::Refused>() { "refused" } else { "failed" };
            if let Err(le) = ledger.finish(run_id, status, Some(&format!("{e:#}")), &results) {
                cx.printer.warn(format!("{le:#}"));
            }
        }
    }
    outcome
}

/// The receipt's `registry` block: what moved to `--oci-registry`.
fn registry_json(remote: Option<&RegistryOci<'_>>) -> serde_json::Value {
    use std::sync::atomic::Ordering::Relaxed;
    remote.map_or(serde_json::Value::Null, |t| {
        json!({
            "host": t.registry.host,
            "bytesUploaded": t.moved.load(Relaxed),
            "blobsMounted": t.mounted.load(Relaxed),
        })
    })
}

/// The same bundle again: answered from the store's record of its full import when the
/// signed head checks, the media has the sizes and keyed prints recorded then, no rollback
/// or base rule refuses it, and every image is confirmed at the target. `None` (or an
/// error) sends the import down the full path, whose verdict is verify's.
fn answer_from_record(
    store: &Store,
    ledger: &crate::ledger::Ledger,
    trusted: &[crate::bundle::sign::PublicKey],
    args: &ImportArgs,
    target_key: &str,
    remote: Option<&RegistryOci<'_>>,
) -> anyhow::Result<Option<(SignedHead, Vec<Placed>)>> {
    let head = check_signed_head(&args.bundle, trusted)?;
    let m = &head.manifest;
    if m.artifacts.is_empty() || m.artifacts.iter().any(|a| a.kind != Kind::Image) {
        return Ok(None);
    }
    let Some(recorded) = ledger.import_record(&head.manifest_digest.to_string(), target_key)? else {
        return Ok(None);
    };
    let recorded: Vec<crate::bundle::fingerprint::Print> = serde_json::from_str(&recorded)?;
    let now = crate::bundle::fingerprint::of(&args.bundle, &ledger.record_key()?)?;
    if now.as_ref() != Some(&recorded) {
        anyhow::bail!("the media differs from what the recorded import read");
    }
    super::import_guard::check_manifest(store, m, &head.manifest_digest, args.allow_downgrade)?;
    let placed = match remote {
        Some(t) => t.confirm(m)?,
        None => StoreOci { store }.confirm(m)?,
    };
    let Some(placed) = placed else {
        anyhow::bail!("not every image is at the target as the recorded import left it");
    };
    Ok(Some((head, placed)))
}

/// The signed manifest of a bundle whose images may go up to the registry while it is
/// verified: its head checks, no rollback or base rule refuses it, it carries images, and
/// the registry answers. Anything else (`None`) leaves every push to after the verify,
/// whose verdict then decides.
fn early_head(
    store: &Store,
    trusted: &[crate::bundle::sign::PublicKey],
    args: &ImportArgs,
    remote: &RegistryOci<'_>,
) -> Option<crate::bundle::manifest::Manifest> {
    let head = check_signed_head(&args.bundle, trusted).ok()?;
    let m = head.manifest;
    let first = m.artifacts.iter().find(|a| a.kind == Kind::Image)?;
    super::import_guard::check_manifest(store, &m, &head.manifest_digest, args.allow_downgrade).ok()?;
    let r = crate::oci::Reference::parse(&first.name).ok()?;
    remote.registry.check(&remote.target_repository(&r.repository)).ok()?;
    Some(m)
}

/// Write down and print an import answered from its record.
#[allow(clippy::too_many_arguments)]
fn answered(
    store: &Store,
    ledger: &crate::ledger::Ledger,
    run_id: i64,
    root: &std::path::Path,
    head: &SignedHead,
    placed: Vec<Placed>,
    remote: Option<&RegistryOci<'_>>,
    started: Instant,
    cx: &Ctx,
) -> CmdResult {
    let m = &head.manifest;
    let bundle_ref = super::site_state::bundle_ref(m, &head.manifest_digest);
    ledger.set_bundle(run_id, &bundle_ref, &head.signer.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let receipt = json!({
        "bundle": m.id(),
        "manifest": head.manifest_digest,
        "signer": head.signer.to_string(),
        "store": root,
        "imported": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "added": 0,
        "updated": 0,
        "present": placed.len(),
        "pushed": 0,
        "registry": registry_json(remote),
        "apt": null,
        "artifacts": placed,
        "answeredFromRecord": true,
        "seconds": secs,
    });
    let mut receipt_bytes = serde_json::to_vec_pretty(&receipt)?;
    receipt_bytes.push(b'\n');
    let manifest_path = store.layout().imported_manifest(&head.manifest_digest);
    if !manifest_path.exists() {
        crate::store::atomic::write(&manifest_path, &m.to_bytes())
            .with_context(|| format!("writing {}", manifest_path.display()))?;
    }
    let receipt_path = store.write_receipt(&m.id(), &receipt_bytes)?;
    super::import_guard::record_manifest(store, m, &head.manifest_digest)?;
    cx.printer.data(&receipt, || {
        let mut s = format!(
            "imported {} (signed by {}): answered from the record of its earlier import, {} already present, in {secs:.1}s \
             (its signature and head were checked, not every byte: --verify-all reads them all)\n  receipt {}\n",
            m.id(),
            head.signer,
            placed.len(),
            receipt_path.display()
        );
        for p in &placed {
            s.push_str(&format!("  {:<8} {:<5} {:<36} {}\n", p.action, p.kind, p.name, p.location));
        }
        s
    });
    Ok(ExitStatus::Success)
}
