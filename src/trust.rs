//! The trusted keys: one minisign public key per file, in two separate lists.
//!
//! - `<config-dir>/trusted/<KEYID>.pub`: bundle signers. `verify` and `import` accept a
//!   bundle only when it is signed by one of them.
//! - `<config-dir>/trusted-sites/<KEYID>.pub`: site keys. `export --since-receipt` accepts
//!   a site's receipt only when it is signed by one of them.
//!
//! The lists are kept apart so that a key trusted for one role is never accepted for the
//! other: a site key cannot sign bundles, a factory key cannot vouch for a site's state.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::bundle::sign::{KeyId, PublicKey};
use crate::store::atomic;

pub struct TrustStore {
    dir: PathBuf,
    /// `--site` for the site list: how `airlock trust` is told which list to use.
    flag: &'static str,
}

impl TrustStore {
    /// The keys whose bundles verify and import accept.
    pub fn new(config_dir: &Path) -> Self {
        Self { dir: config_dir.join("trusted"), flag: "" }
    }

    /// The site keys whose receipts the factory accepts.
    pub fn sites(config_dir: &Path) -> Self {
        Self { dir: config_dir.join("trusted-sites"), flag: " --site" }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn keys(&self) -> Result<Vec<PublicKey>> {
        let mut keys = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "pub") {
                keys.push(PublicKey::load(&p)?);
            }
        }
        Ok(keys)
    }

    /// The trusted keys plus keys named on the command line.
    pub fn keys_with(&self, extra: &[PathBuf]) -> Result<Vec<PublicKey>> {
        let mut keys = self.keys()?;
        for p in extra {
            keys.push(PublicKey::load(p)?);
        }
        Ok(keys)
    }

    pub fn add(&self, key: &PublicKey) -> Result<PathBuf> {
        let p = self.dir.join(format!("{}.pub", key.id()));
        atomic::write(&p, key.text().as_bytes()).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    pub fn remove(&self, id: &KeyId) -> Result<()> {
        let p = self.dir.join(format!("{id}.pub"));
        if !p.exists() {
            bail!("key {id} is not trusted (see `airlock trust list{}`)", self.flag);
        }
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))
    }
}
