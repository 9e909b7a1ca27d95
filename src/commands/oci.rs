//! `airlock oci`: artifacts pushed, pulled, copied, listed and deleted in OCI registries.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value, json};

use crate::artifact::{self, EMPTY_BYTES, EMPTY_CONFIG, LAYER_GZIP, TITLE};
use crate::cli::{
    OciArgs, OciCommand, OciConn, OciCopyArgs, OciListArgs, OciLoginArgs, OciPullArgs, OciPushArgs, OciRefArgs,
    OciTagsArgs,
};
use crate::digest::Digest;
use crate::exit::ExitStatus;
use crate::oci::{self, OCI_MANIFEST, Reference};
use crate::registry::Registry;
use crate::store::Store;
use crate::store::atomic::{AtomicFile, TEMP_PREFIX, TEMP_SUFFIX};

use super::{CmdResult, Ctx};

pub fn oci(args: &OciArgs, cx: &Ctx) -> CmdResult {
    match &args.command {
        OciCommand::Push(a) => push(a, cx),
        OciCommand::Pull(a) => pull(a, cx),
        OciCommand::Tags(a) => tags(a, cx),
        OciCommand::Inspect(a) => inspect(a, cx),
        OciCommand::Tree(a) => tree(a, cx),
        OciCommand::List(a) => list(a, cx),
        OciCommand::Copy(a) => copy(a, cx),
        OciCommand::Delete(a) => delete(a, cx),
        OciCommand::Login(a) => login(a, cx),
    }
}

fn registry(host: &str, conn: &OciConn) -> Result<Registry> {
    Registry::new(host, conn.insecure)
}

/// `host/repository`, with or without a tag: the registry and the repository.
fn repository_of(s: &str) -> Result<(String, String)> {
    let r = match Reference::parse(s) {
        Ok(r) => r,
        Err(_) => Reference::parse(&format!("{s}:latest")).with_context(|| format!("repository `{s}`"))?,
    };
    Ok((r.registry, r.repository))
}

fn temp_store() -> Result<(tempfile::TempDir, Store)> {
    let dir = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempdir()?;
    let store = Store::open(dir.path())?;
    Ok((dir, store))
}

fn push(a: &OciPushArgs, cx: &Ctx) -> CmdResult {
    let r = Reference::parse(&a.reference)?;
    let Some(tag) = r.tag.clone() else { bail!("`{}`: push needs a tag", a.reference) };
    if !a.dir.is_dir() {
        bail!("{}: not a directory", a.dir.display());
    }
    let mut annotations = artifact::manifest_annotations(&a.dir)?;
    for kv in &a.annotations {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--annotation `{kv}`: expected KEY=VALUE"))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    let (_tmp, store) = temp_store()?;
    let (layer, size) = artifact::pack(&a.dir, &store)?;
    let layer_title = format!("{}.tar.gz", annotations.get(TITLE).map(String::as_str).unwrap_or("artifact"));
    let config = Digest::of(EMPTY_BYTES);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": a.artifact_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": config.to_string(), "size": EMPTY_BYTES.len(), "data": "e30="},
        "layers": [{"mediaType": LAYER_GZIP, "digest": layer.to_string(), "size": size,
                    "annotations": {TITLE: layer_title}}],
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = Digest::of(&bytes);
    let reg = registry(&r.registry, &a.conn)?;
    reg.check(&r.repository)?;
    store.insert(&mut &EMPTY_BYTES[..], Some(&config), "the empty config")?;
    for (d, n) in [(&config, EMPTY_BYTES.len() as u64), (&layer, size)] {
        if !reg.has_blob(&r.repository, d)? {
            reg.push_blob(&r.repository, d, n, &store, None, 64 << 20)?;
        }
    }
    reg.put_manifest(&r.repository, &tag, OCI_MANIFEST, &bytes)?;
    let out = json!({"ref": a.reference, "digest": digest.to_string(), "size": bytes.len()});
    cx.printer.data(&out, || digest.to_string());
    Ok(ExitStatus::Success)
}

/// A manifest's layers: media type, digest, size, annotations.
/// A layer: media type, digest, size, annotations.
type Layer = (String, Digest, u64, BTreeMap<String, String>);

fn layers_of(manifest: &Value) -> Result<Vec<Layer>> {
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let mt = l["mediaType"].as_str().unwrap_or("").to_string();
        let d: Digest = l["digest"].as_str().ok_or_else(|| anyhow!("a layer without a digest"))?.parse()?;
        let size = l["size"].as_u64().ok_or_else(|| anyhow!("layer {d} has no size"))?;
        let ann = l["annotations"]
            .as_object()
            .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        out.push((mt, d, size, ann));
    }
    Ok(out)
}

fn pull(a: &OciPullArgs, cx: &Ctx) -> CmdResult {
    let r = Reference::parse(&a.reference)?;
    let what = a.reference.as_str();
    let out = &a.output;
    if out.exists() {
        let empty = fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !out.is_dir() || (!empty && !a.force) {
            bail!("{}: exists and is not an empty directory (--force replaces it)", out.display());
        }
    }
    let reg = registry(&r.registry, &a.conn)?;
    let (bytes, ct) = reg.get_manifest(&r.repository, &r.reference())?;
    let digest = Digest::of(&bytes);
    if let Some(want) = &r.digest
        && *want != digest
    {
        bail!("{what}: the registry sent a manifest hashing to {digest}");
    }
    let mt = oci::media_type_of(&bytes, ct.as_deref())?;
    if mt != OCI_MANIFEST && mt != oci::DOCKER_MANIFEST {
        bail!("{what}: a {mt}, not an artifact manifest");
    }
    let manifest: Value = serde_json::from_slice(&bytes).with_context(|| format!("{what}: the manifest"))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let blobs = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempdir_in(&parent)?;
    let store = Store::open(blobs.path())?;
    let staged = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempdir_in(&parent)?;
    let mut files = Vec::new();
    for (mt, d, size, ann) in layers_of(&manifest)? {
        reg.fetch_blob(&r.repository, &d, Some(size), &store)?;
        if artifact::is_archive(&mt, &ann) {
            artifact::extract(store.open_blob(&d)?, &mt, staged.path(), what)?;
        } else {
            let title = ann.get(TITLE).ok_or_else(|| anyhow!("{what}: layer {d} ({mt}) has no title to name it"))?;
            let rel = crate::relpath::RelPath::new(title)
                .map_err(|e| anyhow!("{what}: unsafe layer title `{title}`: {e}"))?;
            let dest = staged.path().join(rel.as_str());
            if dest.exists() {
                bail!("{what}: two layers are named `{title}`");
            }
            if let Some(p) = dest.parent() {
                fs::create_dir_all(p)?;
            }
            fs::copy(store.layout().blob(&d), &dest).with_context(|| format!("writing {}", dest.display()))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))?;
            fs::File::open(&dest).and_then(|f| f.sync_all()).with_context(|| format!("writing {}", dest.display()))?;
        }
        files.push(json!({"digest": d.to_string(), "mediaType": mt, "size": size}));
    }
    // Everything checked and extracted, and on disk: swap it in.
    for e in walkdir::WalkDir::new(staged.path()).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_dir())
    {
        crate::store::atomic::sync_dir(e.path())?;
    }
    let staged = staged.keep();
    let old = if out.exists() {
        let aside = parent.join(format!("{TEMP_PREFIX}{}{TEMP_SUFFIX}", uuid::Uuid::new_v4().simple()));
        crate::store::atomic::rename(out, &aside).with_context(|| format!("moving {} aside", out.display()))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = crate::store::atomic::rename(&staged, out) {
        if let Some(o) = &old {
            let _ = crate::store::atomic::rename(o, out);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("renaming into {}", out.display()));
    }
    crate::store::atomic::sync_dir(&parent)?;
    if let Some(o) = old {
        fs::remove_dir_all(&o).with_context(|| format!("removing the old {}", o.display()))?;
    }
    let j = json!({"ref": a.reference, "digest": digest.to_string(), "output": out, "layers": files});
    cx.printer.data(&j, || format!("{digest}\n"));
    cx.printer.info(format!("pulled {what} into {}", out.display()));
    Ok(ExitStatus::Success)
}

/// Semantic versions first (a leading `v` allowed), in version order; the rest after, by name.
pub fn sort_tags(tags: &mut [String]) {
    let ver = |t: &str| semver::Version::parse(t.strip_prefix('v').unwrap_or(t)).ok();
    tags.sort_by(|a, b| match (ver(a), ver(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
}

fn tags(a: &OciTagsArgs, cx: &Ctx) -> CmdResult {
    let (host, repo) = repository_of(&a.repository)?;
    let reg = registry(&host, &a.conn)?;
    let mut tags = reg.tags(&repo)?;
    sort_tags(&mut tags);
    cx.printer.data(&json!({"repository": a.repository, "tags": tags}), || tags.join("\n"));
    Ok(ExitStatus::Success)
}

/// The manifests whose subject is `digest`: the referrers API, else the `sha256-<hex>` tag.
fn referrers_of(reg: &Registry, repo: &str, digest: &Digest) -> Result<Vec<Value>> {
    let index = match reg.referrers(repo, digest, None)? {
        Some((bytes, _)) => Some(bytes),
        None => reg.find_manifest(repo, &format!("sha256-{}", digest.hex()))?.map(|(b, _)| b),
    };
    let Some(bytes) = index else { return Ok(Vec::new()) };
    let v: Value = serde_json::from_slice(&bytes).context("the referrers index")?;
    Ok(v["manifests"].as_array().cloned().unwrap_or_default())
}

fn inspect(a: &OciRefArgs, cx: &Ctx) -> CmdResult {
    let r = Reference::parse(&a.reference)?;
    let reg = registry(&r.registry, &a.conn)?;
    let (bytes, ct) = reg.get_manifest(&r.repository, &r.reference())?;
    let digest = Digest::of(&bytes);
    let mt = oci::media_type_of(&bytes, ct.as_deref())?;
    let manifest: Value = serde_json::from_slice(&bytes)?;
    let referrers = referrers_of(&reg, &r.repository, &digest)?;
    let j = json!({"ref": a.reference, "digest": digest.to_string(), "mediaType": mt, "size": bytes.len(),
                   "manifest": manifest, "referrers": referrers});
    cx.printer.data(&j, || {
        let mut s = format!("{}\ndigest: {digest}\nmediaType: {mt}\n", a.reference);
        if let Some(t) = manifest["artifactType"].as_str() {
            s += &format!("artifactType: {t}\n");
        }
        if let Some(o) = manifest["annotations"].as_object() {
            s += "annotations:\n";
            for (k, v) in o {
                s += &format!("  {k}: {}\n", v.as_str().unwrap_or(""));
            }
        }
        if let Ok(layers) = layers_of(&manifest) {
            s += "layers:\n";
            for (mt, d, size, ann) in layers {
                let t = ann.get(TITLE).map(|t| format!(" {t}")).unwrap_or_default();
                s += &format!("  {d} {size} {mt}{t}\n");
            }
        }
        s += &format!("referrers: {}\n", referrers.len());
        for m in &referrers {
            s += &format!("  {} {}\n", m["digest"].as_str().unwrap_or(""), m["artifactType"].as_str().unwrap_or(""));
        }
        s
    });
    Ok(ExitStatus::Success)
}

/// The dependency tree of one artifact version, resolved by `mirror`'s rule.
fn tree(a: &OciRefArgs, cx: &Ctx) -> CmdResult {
    let r = Reference::parse(&a.reference)?;
    let Some(tag) = r.tag.clone() else { bail!("artifact {}: `oci tree` needs a tag", a.reference) };
    let version = crate::extensions::tag_version(&tag)
        .ok_or_else(|| anyhow!("artifact {}: the tag `{tag}` is not a version", a.reference))?;
    let (_tmp, store) = temp_store()?;
    let insecure = a.conn.insecure;
    let index = crate::source::artifacts::RegistryIndex::new(&store, move |host: &str| Registry::new(host, insecure));
    let root = crate::extensions::Root {
        repository: format!("{}/{}", r.registry, r.repository),
        range: crate::extensions::Range::exact(&tag, &version),
    };
    let res = crate::extensions::resolve(&[root], "requested", &index)?;
    let j = json!({"ref": a.reference, "tree": crate::extensions::tree_json(&res)});
    cx.printer.data(&j, || crate::extensions::tree_text(&res));
    Ok(ExitStatus::Success)
}

fn list(a: &OciListArgs, cx: &Ctx) -> CmdResult {
    let reg = registry(a.registry.trim_end_matches('/'), &a.conn)?;
    let mut repos = reg.catalog()?;
    if let Some(ns) = &a.namespace {
        let prefix = format!("{}/", ns.trim_end_matches('/'));
        repos.retain(|r| r.starts_with(&prefix));
    }
    repos.sort();
    cx.printer.data(&json!({"registry": a.registry, "repositories": repos}), || repos.join("\n"));
    Ok(ExitStatus::Success)
}

/// Copy one manifest (an index with its children) and its blobs; returns its digest and
/// the bytes copied.
#[allow(clippy::too_many_arguments)]
fn copy_manifest(
    src: &Registry,
    srepo: &str,
    dst: &Registry,
    drepo: &str,
    reference: &str,
    tag: Option<&str>,
    store: &Store,
    same_host: bool,
) -> Result<(Digest, u64)> {
    let (bytes, ct) = src.get_manifest(srepo, reference)?;
    let digest = Digest::of(&bytes);
    if let Ok(want) = reference.parse::<Digest>() {
        ensure!(
            want == digest,
            "{}/{srepo}@{want}: the registry answered a manifest whose digest is {digest}",
            src.host
        );
    }
    let mt = oci::media_type_of(&bytes, ct.as_deref())?;
    let v: Value = serde_json::from_slice(&bytes)?;
    let mut blobs = Vec::new();
    if oci::is_index(&mt) {
        for m in v["manifests"].as_array().into_iter().flatten() {
            let d = m["digest"].as_str().ok_or_else(|| anyhow!("an index entry without a digest"))?;
            copy_manifest(src, srepo, dst, drepo, d, None, store, same_host)?;
        }
    } else {
        for c in [&v["config"]].into_iter().chain(v["layers"].as_array().into_iter().flatten()) {
            if let (Some(d), Some(n)) = (c["digest"].as_str(), c["size"].as_u64()) {
                blobs.push((d.parse::<Digest>()?, n));
            }
        }
    }
    let mut copied = 0;
    for (d, n) in blobs {
        if dst.has_blob(drepo, &d)? {
            continue;
        }
        if same_host && srepo != drepo && dst.push_blob(drepo, &d, n, store, Some(srepo), 64 << 20).unwrap_or(false) {
            continue;
        }
        src.fetch_blob(srepo, &d, Some(n), store)?;
        dst.push_blob(drepo, &d, n, store, None, 64 << 20)?;
        copied += n;
    }
    let at = tag.map(str::to_string).unwrap_or_else(|| digest.to_string());
    dst.put_manifest(drepo, &at, &mt, &bytes)?;
    Ok((digest, copied))
}

/// For a registry without the referrers API: the `sha256-<hex>` tag's index, holding
/// `referrers` as well as what it held.
fn fallback_tag(reg: &Registry, repo: &str, subject: &Digest, referrers: &[Value]) -> Result<()> {
    let tag = format!("sha256-{}", subject.hex());
    let mut index: Value = match reg.find_manifest(repo, &tag)? {
        Some((b, _)) => serde_json::from_slice(&b).with_context(|| format!("{repo}:{tag}: not JSON"))?,
        None => json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": []}),
    };
    ensure!(index.is_object(), "{repo}:{tag} is not an image index, so it cannot list referrers");
    let mut entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let before = entries.len();
    for m in referrers {
        if !entries.iter().any(|e| e["digest"] == m["digest"]) {
            entries.push(m.clone());
        }
    }
    if entries.len() == before {
        return Ok(());
    }
    index["manifests"] = Value::Array(entries);
    reg.put_manifest(repo, &tag, oci::OCI_INDEX, &serde_json::to_vec(&index)?)
}

fn copy(a: &OciCopyArgs, cx: &Ctx) -> CmdResult {
    let s = Reference::parse(&a.source)?;
    let d = match Reference::parse(&a.destination) {
        Ok(d) => d,
        Err(_) => {
            let (host, repo) = repository_of(&a.destination)?;
            Reference { registry: host, repository: repo, tag: s.tag.clone(), digest: None }
        }
    };
    let src = registry(&s.registry, &a.conn)?;
    let dst = registry(&d.registry, &a.conn)?;
    dst.check(&d.repository)?;
    let (_tmp, store) = temp_store()?;
    let same = s.registry == d.registry;
    let (digest, mut bytes) =
        copy_manifest(&src, &s.repository, &dst, &d.repository, &s.reference(), d.tag.as_deref(), &store, same)?;
    let mut carried = Vec::new();
    let referrers = referrers_of(&src, &s.repository, &digest)?;
    for m in &referrers {
        let Some(rd) = m["digest"].as_str() else { continue };
        let (rd, n) = copy_manifest(&src, &s.repository, &dst, &d.repository, rd, None, &store, same)?;
        bytes += n;
        carried.push(rd.to_string());
    }
    if !referrers.is_empty() && dst.referrers(&d.repository, &digest, None)?.is_none() {
        fallback_tag(&dst, &d.repository, &digest, &referrers)?;
    }
    let j = json!({"source": a.source, "destination": a.destination, "digest": digest.to_string(),
                   "referrers": carried, "bytes_copied": bytes});
    cx.printer.data(&j, || digest.to_string());
    cx.printer.info(format!("copied {} to {} with {} referrer(s)", a.source, a.destination, carried.len()));
    Ok(ExitStatus::Success)
}

fn delete(a: &OciRefArgs, cx: &Ctx) -> CmdResult {
    let r = Reference::parse(&a.reference)?;
    let reg = registry(&r.registry, &a.conn)?;
    let digest = match &r.digest {
        Some(d) => *d,
        None => reg
            .manifest_digest(&r.repository, &r.reference())?
            .ok_or_else(|| anyhow!("{}: no such manifest", a.reference))?,
    };
    let status = reg.delete_manifest(&r.repository, &digest.to_string())?;
    match status.as_u16() {
        200..=299 => {}
        404 => bail!("{}: no such manifest ({digest})", a.reference),
        400 | 405 => bail!(
            "{}: registry {} refuses deletes ({status}); enable them in its configuration",
            a.reference,
            r.registry
        ),
        _ => bail!("{}: the registry answered {status} to the delete", a.reference),
    }
    cx.printer.data(&json!({"ref": a.reference, "digest": digest.to_string(), "deleted": true}), || {
        format!("deleted {digest}")
    });
    Ok(ExitStatus::Success)
}

fn login(a: &OciLoginArgs, cx: &Ctx) -> CmdResult {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    let file = match &a.authfile {
        Some(f) => f.clone(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => Path::new(&d).join("config.json"),
            None => {
                let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("neither DOCKER_CONFIG nor HOME is set"))?;
                Path::new(&home).join(".docker/config.json")
            }
        },
    };
    // Check the credentials before writing them.
    login_check(&a.host, &a.username, &password, a.conn.insecure)?;
    let mut config: Value = match fs::read(&file) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}: not JSON", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if !config.is_object() {
        bail!("{}: not a JSON object", file.display());
    }
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", a.username));
    config["auths"][&a.host] = json!({"auth": auth});
    if let Some(p) = file.parent() {
        fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    let mut f = AtomicFile::new(&file).with_context(|| format!("writing {}", file.display()))?;
    f.set_permissions(0o600)?;
    use std::io::Write;
    f.file().write_all(&serde_json::to_vec_pretty(&config)?)?;
    f.commit().with_context(|| format!("writing {}", file.display()))?;
    cx.printer.data(&json!({"host": a.host, "authfile": file}), String::new);
    cx.printer.info(format!("logged in to {}; credentials in {}", a.host, file.display()));
    Ok(ExitStatus::Success)
}

/// `GET /v2/` with the new credentials (Basic, or the token flow the registry names).
fn login_check(host: &str, user: &str, password: &str, insecure: bool) -> Result<()> {
    let scheme = if insecure { "http" } else { "https" };
    let net = crate::net::Net::new(&crate::net::NetOptions::from_env()?)?;
    let url = format!("{scheme}://{host}/v2/");
    let resp = net.client().get(&url).send().with_context(|| format!("registry {host}"))?;
    if resp.status().is_success() {
        return Ok(());
    }
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        bail!("registry {host} answers {} at /v2/: is it an OCI registry?", resp.status());
    }
    let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (scheme_name, params) = challenge.split_once(' ').unwrap_or((&challenge, ""));
    let ok = if scheme_name.eq_ignore_ascii_case("bearer") {
        let realm = params
            .split(',')
            .find_map(|p| p.trim().strip_prefix("realm=").map(|r| r.trim_matches('"').to_string()))
            .ok_or_else(|| anyhow!("registry {host}: bearer challenge without a realm"))?;
        let service =
            params.split(',').find_map(|p| p.trim().strip_prefix("service=").map(|r| r.trim_matches('"').to_string()));
        let mut u = reqwest::Url::parse(&realm)?;
        if let Some(s) = service {
            u.query_pairs_mut().append_pair("service", &s);
        }
        net.client().get(u).basic_auth(user, Some(password)).send()?.status().is_success()
    } else {
        net.client().get(&url).basic_auth(user, Some(password)).send()?.status().is_success()
    };
    if !ok {
        bail!("registry {host} refused the credentials of `{user}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_first_in_order() {
        let mut t: Vec<String> =
            ["latest", "1.10.0", "v1.2.0", "1.2.0-rc1", "dev", "0.9.1"].iter().map(|s| s.to_string()).collect();
        super::sort_tags(&mut t);
        assert_eq!(t, ["0.9.1", "1.2.0-rc1", "v1.2.0", "1.10.0", "dev", "latest"]);
    }
}
