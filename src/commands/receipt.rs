use anyhow::{Context, bail};
use serde_json::json;

use crate::bundle::sign::{PASSWORD_ENV, SecretKey};
use crate::cli::ReceiptArgs;
use crate::exit::ExitStatus;
use crate::receipt;
use crate::store::Store;

use super::{CmdResult, Ctx, bytes};

pub fn receipt(args: &ReceiptArgs, cx: &Ctx) -> CmdResult {
    let name = args.name.clone().unwrap_or_else(receipt::default_site_name);
    crate::names::bundle_name(&name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let root = args.store.clone().unwrap_or_else(crate::dirs::store_dir);
    // A new site has no store yet: its receipt says it holds nothing, so that the
    // factory's first `export --since-receipt` is a full bundle (and the site key travels).
    let fresh = !root.exists();
    if root.exists() && !root.is_dir() {
        bail!("the store {} is not a directory: pass --store", root.display());
    }
    let (sk_path, pk_path) = match &args.key {
        Some(k) => (k.clone(), k.with_extension("pub")),
        None => super::key::site_key_paths(cx),
    };
    if args.key.is_none() && !sk_path.exists() && !pk_path.exists() {
        let dir = sk_path.parent().expect("keys dir");
        let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        let protected = password.is_some();
        let (_, pk_path, pk) = super::key::write_pair(dir, super::key::SITE_KEY_NAME, password, false)?;
        cx.printer.info(format!(
            "made the site key {} ({}{}); give {} to the mirror factory: `airlock trust add --site site.pub`",
            pk.id(),
            sk_path.display(),
            if protected { ", protected by AIRLOCK_KEY_PASSWORD" } else { ", not passphrase-protected" },
            pk_path.display()
        ));
    }
    let key = SecretKey::load(&sk_path)?;
    // An empty stand-in for a store that does not exist yet; the site's path stays unmade.
    let scratch = if fresh { Some(tempfile::tempdir().context("making an empty scratch store")?) } else { None };
    let store = Store::open(scratch.as_ref().map_or(root.as_path(), |s| s.path()))?;
    if fresh {
        cx.printer.info(format!(
            "the store {} does not exist yet: this receipt says the site holds nothing, so the factory's next \
             `export --since-receipt` is a full bundle",
            root.display()
        ));
    }
    // A consistent picture: no import or `serve` write changes the store meanwhile.
    let _lock = store
        .lock_within(std::time::Duration::from_secs(10))?
        .ok_or_else(|| anyhow::anyhow!("an import into {} is running; wait for it to finish", root.display()))?;
    let imported = super::import_guard::imported(&store)?;
    let r = receipt::collect(&store, &name, key.id(), imported)?;
    let bytes_out = r.to_bytes();
    let file_name = args.output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let signature = receipt::sign(&bytes_out, &r, &key, &file_name);
    let sig_path = receipt::signature_path(&args.output);
    crate::store::atomic::write(&args.output, &bytes_out)
        .with_context(|| format!("writing {}", args.output.display()))?;
    crate::store::atomic::write(&sig_path, signature.as_bytes())
        .with_context(|| format!("writing {}", sig_path.display()))?;
    let digest = crate::digest::Digest::of(&bytes_out);
    let per_kind: serde_json::Map<String, serde_json::Value> =
        r.blobs.iter().map(|(k, m)| (k.clone(), json!(m.len()))).collect();
    let tags: usize = r.images.values().map(|t| t.len()).sum();
    let python: usize = r.python.values().flat_map(|p| p.values()).map(|f| f.len()).sum();
    let suites: usize = r.apt.values().map(|s| s.len()).sum();
    let files: usize = r.files.values().map(|f| f.len()).sum();
    cx.printer.data(
        &json!({
            "receipt": args.output,
            "signature": sig_path,
            "digest": digest,
            "site": r.site,
            "siteKey": r.site_key,
            "created": r.created,
            "store": root,
            "imported": r.imported.len(),
            "blobs": per_kind,
            "blobBytes": r.blob_bytes(),
            "files": files,
            "gitRepositories": r.git.len(),
            "imageTags": tags,
            "pythonFiles": python,
            "aptSuites": suites,
        }),
        || {
            format!(
                "receipt of site `{}` written: {} bundles imported, {} blobs ({}), {files} files, {} git repositories, \
                 {tags} image tags, {python} Python files, {suites} apt suites\n  {} (signed by site key {})\n  {}\n  \
                 digest {digest}\n  carry both files to the mirror factory: `airlock export --since-receipt {}`\n",
                r.site,
                r.imported.len(),
                r.blob_count(),
                bytes(r.blob_bytes()),
                r.git.len(),
                args.output.display(),
                r.site_key,
                sig_path.display(),
                file_name
            )
        },
    );
    Ok(ExitStatus::Success)
}
