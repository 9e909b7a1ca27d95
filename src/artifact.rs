//! Directories as OCI artifacts: packing one into a deterministic layer, and extracting a
//! pulled layer safely.
//!
//! The layer is a tar of the directory's entries in byte order of their paths, with
//! zeroed times and owners and fixed modes (0755 for directories and executables, 0644
//! otherwise), gzip-compressed with no timestamp, so the same content always gives the
//! same digest. Extraction refuses any entry that could land outside the target: absolute
//! paths, `..`, links pointing out, writes through links, devices and FIFOs.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::digest::Digest;
use crate::relpath::RelPath;
use crate::store::Store;

pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_BYTES: &[u8] = b"{}";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const SOURCE: &str = "org.opencontainers.image.source";
/// ORAS marks a layer that is a packed directory with this annotation.
pub const ORAS_UNPACK: &str = "io.deis.oras.content.unpack";

/// Pack `dir` into a gzip'd tar layer in `store`: its digest and size.
pub fn pack(dir: &Path, store: &Store) -> Result<(Digest, u64)> {
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).follow_links(false) {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let rel = e.path().strip_prefix(dir).expect("under dir");
        let name = rel.to_str().with_context(|| format!("{}: the path is not UTF-8", e.path().display()))?;
        RelPath::new(name).with_context(|| format!("{}", e.path().display()))?;
        entries.push((name.to_string(), e.path().to_path_buf(), e.file_type()));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let w = store.writer()?;
    let gz = flate2::GzBuilder::new().mtime(0).write(w, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, path, ft) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), io::empty())?;
        } else if ft.is_symlink() {
            let target = fs::read_link(path).with_context(|| format!("reading the link {}", path.display()))?;
            if !link_stays_inside(Path::new(name), &target) {
                bail!("{}: the symbolic link points outside the directory ({})", path.display(), target.display());
            }
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            tar.append_link(&mut h, name, &target)?;
        } else if ft.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let f = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            let meta = f.metadata()?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 });
            h.set_size(meta.len());
            tar.append_data(&mut h, name, f).with_context(|| format!("packing {}", path.display()))?;
        } else {
            bail!("{}: not a file, directory or symbolic link", path.display());
        }
    }
    let gz = tar.into_inner()?;
    let w = gz.finish()?;
    w.commit(None, &format!("the layer of {}", dir.display()))
}

/// Does a link at `at` (relative) to `target` resolve, lexically, inside the root?
fn link_stays_inside(at: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = at.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// The annotations `manifest.yaml` at the top of `dir` gives, if there is one.
pub fn manifest_annotations(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join("manifest.yaml");
    let mut out = BTreeMap::new();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: yaml_serde::Value =
        yaml_serde::from_slice(&bytes).with_context(|| format!("{}: not valid YAML", path.display()))?;
    for (field, key) in [("name", TITLE), ("version", VERSION), ("created", CREATED), ("source", SOURCE)] {
        match v.get(field) {
            None | Some(yaml_serde::Value::Null) => {}
            Some(yaml_serde::Value::String(s)) => {
                out.insert(key.to_string(), s.clone());
            }
            Some(yaml_serde::Value::Number(n)) => {
                out.insert(key.to_string(), n.to_string());
            }
            Some(_) => bail!("{}: `{field}` must be a string", path.display()),
        }
    }
    Ok(out)
}

/// Is a layer of this media type (and annotations) a tar to extract, rather than a file?
pub fn is_archive(media_type: &str, annotations: &BTreeMap<String, String>) -> bool {
    media_type == LAYER_GZIP
        || media_type == LAYER_ZSTD
        || annotations.get(ORAS_UNPACK).is_some_and(|v| v == "true")
        || (media_type == LAYER_TAR && !annotations.contains_key(TITLE))
}

/// The tar stream of a layer `blob` compressed as `media_type` says (gzip, zstd or none).
fn decoder(blob: fs::File, media_type: &str) -> Result<Box<dyn Read>> {
    Ok(if media_type.ends_with("+gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(blob)))
    } else if media_type.ends_with("+zstd") {
        Box::new(zstd::Decoder::new(blob)?)
    } else {
        Box::new(io::BufReader::new(blob))
    })
}

/// Extract the tar `blob` (compressed as `media_type` says) into `root`, refusing
/// anything that could escape it. `what` names the artifact in errors.
pub fn extract(blob: fs::File, media_type: &str, root: &Path, what: &str) -> Result<()> {
    let mut ar = tar::Archive::new(decoder(blob, media_type)?);
    for e in ar.entries().with_context(|| format!("{what}: reading the layer"))? {
        let mut e = e.with_context(|| format!("{what}: reading the layer"))?;
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = e.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let mut name = shown.trim_end_matches('/').to_string();
        while let Some(rest) = name.strip_prefix("./") {
            name = rest.to_string();
        }
        if name.is_empty() || name == "." {
            continue;
        }
        let rel = RelPath::new(&name).map_err(|err| anyhow::anyhow!("{what}: unsafe entry `{shown}`: {err}"))?;
        let dest = root.join(rel.as_str());
        check_no_link_on_the_way(root, Path::new(rel.as_str()), what, &shown)?;
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
                }
                if fs::symlink_metadata(&dest).is_ok() {
                    bail!("{what}: entry `{shown}` appears twice in the layer");
                }
                let mode = e.header().mode().unwrap_or(0o644);
                let mut f = fs::File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
                io::copy(&mut e, &mut f).with_context(|| format!("{what}: extracting `{shown}`"))?;
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(fs::Permissions::from_mode(if mode & 0o111 != 0 { 0o755 } else { 0o644 }))?;
                // On disk before the directory is renamed into place.
                f.sync_all().with_context(|| format!("writing {}", dest.display()))?;
            }
            tar::EntryType::Symlink => {
                let target = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                if !link_stays_inside(Path::new(rel.as_str()), &target) {
                    bail!("{what}: unsafe entry `{shown}`: a symbolic link pointing outside ({})", target.display());
                }
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p)?;
                }
                std::os::unix::fs::symlink(&target, &dest).with_context(|| format!("creating {}", dest.display()))?;
            }
            tar::EntryType::Link => {
                let target = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                let t =
                    target.to_str().and_then(|t| RelPath::new(t.trim_start_matches("./")).ok()).ok_or_else(|| {
                        anyhow::anyhow!("{what}: unsafe entry `{shown}`: a hard link to {}", target.display())
                    })?;
                check_no_link_on_the_way(root, Path::new(t.as_str()), what, &shown)?;
                let src = root.join(t.as_str());
                if !fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
                    bail!("{what}: entry `{shown}` is a hard link to `{t}`, which is not a file extracted before it");
                }
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p)?;
                }
                fs::copy(&src, &dest).with_context(|| format!("creating {}", dest.display()))?;
            }
            other => bail!("{what}: unsafe entry `{shown}`: {other:?} entries are not extracted"),
        }
    }
    Ok(())
}

/// The bytes of the regular file `name` at the top of the tar `blob` (compressed as
/// `media_type` says), if the layer has one; refused when larger than `max`.
pub fn read_entry(blob: fs::File, media_type: &str, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let mut ar = tar::Archive::new(decoder(blob, media_type)?);
    for e in ar.entries().context("reading the layer")? {
        let mut e = e.context("reading the layer")?;
        let raw = e.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw);
        if path.trim_start_matches("./") != name || e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        if e.size() > max {
            bail!("`{name}` in the layer is {} bytes, more than the {max} airlock reads", e.size());
        }
        let mut out = Vec::new();
        e.read_to_end(&mut out).with_context(|| format!("reading `{name}` from the layer"))?;
        return Ok(Some(out));
    }
    Ok(None)
}

/// Refuse to write `rel` when one of its parent directories, inside `root`, is a link.
fn check_no_link_on_the_way(root: &Path, rel: &Path, what: &str, shown: &str) -> Result<()> {
    let mut p = PathBuf::from(root);
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        p.push(c);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("{what}: unsafe entry `{shown}`: it would be written through the link `{}`", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_and_out() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a/b"), Path::new("c")));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("b"), Path::new("/etc/passwd")));
        assert!(!link_stays_inside(Path::new("b"), Path::new("../b")));
    }
}
