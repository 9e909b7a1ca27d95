//! `airlock policy check` (the dry run of an environment's policy) and `airlock promote`
//! (an import into the next environment, under its policy).

use anyhow::bail;
use clap::Parser;
use serde_json::json;

use crate::bundle::verify::{BlobSink, check_head, read_head, verify};
use crate::cli::{ImportArgs, PolicyArgs, PolicyCommand, PromoteArgs};
use crate::exit::ExitStatus;
use crate::site::Site;
use crate::store::Store;

use super::{CmdResult, Ctx};

pub fn policy(args: &PolicyArgs, cx: &Ctx) -> CmdResult {
    let PolicyCommand::Check(args) = &args.command;
    let site = Site::load(&args.site)?;
    let env = site.env(&args.env)?;
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    let bar = cx.reporter.bytes("verify", None);
    let verified = verify(&args.bundle, &trusted, BlobSink::Discard, &bar);
    bar.finish_and_clear();
    let v = verified.map_err(|e| anyhow::Error::new(e).context(format!("verifying {}", args.bundle.display())))?;
    let store = Store::open(&env.store)?;
    let ledger = super::site_state::open(&store)?;
    let signer = v.signer.to_string();
    let d = super::site_state::decide(&site, &args.env, env, &ledger, &v.manifest, &v.manifest_digest, &signer)?;
    {
        let _lock = store.lock_within(std::time::Duration::from_secs(30))?;
        let bundle = super::site_state::bundle_ref(&v.manifest, &v.manifest_digest);
        if let Err(e) = super::site_state::record_decision(&ledger, &d, &bundle, &signer) {
            cx.printer.warn(format!("the decision is not in the ledger: {e:#}"));
        }
    }
    cx.printer.data(
        &json!({
            "bundle": v.id(),
            "manifest": v.manifest_digest,
            "signer": signer,
            "env": args.env,
            "allowed": d.allowed,
            "checked": d.checked,
            "failed": d.failed,
            "refused": d.refused,
        }),
        || {
            let rules = if d.checked.is_empty() { "no rules".to_string() } else { d.checked.join(", ") };
            let mut s = format!(
                "policy `{}` {} {} (checked: {rules})\n",
                args.env,
                if d.allowed { "allows" } else { "refuses" },
                v.id()
            );
            for f in &d.failed {
                s.push_str(&format!("  failed: {f}\n"));
            }
            for r in &d.refused {
                s.push_str(&format!("  refused {} {} ({})\n", r.kind, r.purl, r.reason));
            }
            s
        },
    );
    if d.allowed { Ok(ExitStatus::Success) } else { Err(crate::site::Refused(d.message()).into()) }
}

/// The import flags for `airlock import BUNDLE --env TO`, as if typed.
#[derive(Parser)]
struct AsImport {
    #[command(flatten)]
    args: ImportArgs,
}

pub fn promote(args: &PromoteArgs, cx: &Ctx) -> CmdResult {
    if args.from == args.to {
        bail!("--from and --to are both `{}`: promote moves a bundle to another environment", args.to);
    }
    let site = Site::load(&args.site)?;
    let from = site.env(&args.from)?;
    site.env(&args.to)?;
    let trusted = cx.trust().keys_with(&args.trusted_keys)?;
    // The head names the bundle; the import verifies every byte again.
    let head = read_head(&args.bundle)
        .map_err(|e| anyhow::Error::new(e).context(format!("reading {}", args.bundle.display())))?;
    let (manifest, digest, _) = check_head(&head, &trusted)
        .map_err(|e| anyhow::Error::new(e).context(format!("verifying {}", args.bundle.display())))?;
    let digest_s = digest.to_string();
    let imported = match super::site_state::open_existing(&from.store)? {
        Some(l) => l.runs()?.into_iter().any(|r| {
            (r.op == "import" || r.op == "promote")
                && r.status == "completed"
                && r.env.as_deref() == Some(args.from.as_str())
                && r.bundle.as_ref().is_some_and(|b| b.manifest == digest_s)
        }),
        None => false,
    };
    if !imported {
        bail!(
            "{} (manifest {digest}) was never imported into env `{}` (store {}): import it there first \
             (`airlock import {} --env {}`)",
            manifest.id(),
            args.from,
            from.store.display(),
            args.bundle.display(),
            args.from
        );
    }
    let mut argv: Vec<std::ffi::OsString> = vec!["import".into(), args.bundle.clone().into()];
    argv.extend(["--env".into(), args.to.clone().into(), "--site".into(), args.site.clone().into()]);
    if args.allow_downgrade {
        argv.push("--allow-downgrade".into());
    }
    for k in &args.trusted_keys {
        argv.extend(["--trusted-key".into(), k.clone().into()]);
    }
    let import = AsImport::try_parse_from(argv)?.args;
    super::import::import_as(&import, cx, "promote", Some(&args.from))
}
