//! One refresh: mirror the entries concerned (each on its own, so one failing upstream
//! fails only itself), merge them into the lock, and export a signed differential bundle
//! into `--out` through a temporary directory beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::entries::{self, Key};
use crate::bundle::writer::Compression;
use crate::cli::{ExportArgs, MirrorArgs};
use crate::commands::Ctx;
use crate::lock::{LOCK_MEDIA_TYPE, Lock};
use crate::net::NetOptions;
use crate::printer::Printer;
use crate::progress::Reporter;
use crate::spec::Spec;
use crate::store::atomic;

/// The prefix of the temporary directories refreshes build in, inside `--out`.
pub const TMP_PREFIX: &str = ".watch-tmp-";

pub struct Config {
    pub spec: PathBuf,
    pub lock: PathBuf,
    pub cache: PathBuf,
    pub out: PathBuf,
    pub since: Option<PathBuf>,
    pub since_receipt: Option<String>,
    pub key: Option<PathBuf>,
    pub compression: Compression,
    pub split: Option<u64>,
    pub net: NetOptions,
    pub config_dir: PathBuf,
}

/// What a refresh did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The entries mirrored again.
    pub refreshed: Vec<Key>,
    /// Those whose locked identity changed.
    pub changed: Vec<Key>,
    /// Those whose upstream failed, with the error; they keep what the lock held.
    pub failed: BTreeMap<Key, String>,
    /// The bundle written (`<name>-<version>`), if any.
    pub bundle: Option<String>,
    /// Its files, in `--out`.
    pub files: Vec<String>,
    /// What it is differential on: a bundle file name, `receipt:<site>`, or none (full).
    pub base: Option<String>,
    /// Why the refresh failed as a whole (the spec would not load, the export failed).
    pub error: Option<String>,
}

/// Remove what a killed refresh left in `out`.
pub fn remove_leftovers(out: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(out) else { return Ok(removed) };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            std::fs::remove_dir_all(e.path()).with_context(|| format!("removing {}", e.path().display()))?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}

/// A bundle version from the clock: `[<spec version>.]YYYYMMDD.HHMMSS`.
fn version_now(spec_version: Option<&str>) -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let stamp = format!("{}.{}", &digits[..8], &digits[8..14]);
    match spec_version {
        Some(v) => format!("{v}.{stamp}"),
        None => stamp,
    }
}

fn quiet_ctx(config_dir: &Path) -> Ctx {
    Ctx {
        printer: Printer { quiet: true, json: false },
        reporter: Reporter::new(true),
        config_dir: config_dir.to_path_buf(),
    }
}

/// Run one refresh. `selected` is `None` for everything; entries the lock lacks are
/// always mirrored. `last_bundle` is the bundle file (in `out`) the next one builds on.
pub fn refresh(cfg: &Config, selected: Option<&BTreeSet<Key>>, last_bundle: Option<&str>) -> Outcome {
    let mut outcome = Outcome::default();
    let work = cfg.out.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = run(cfg, selected, last_bundle, &work, &mut outcome) {
        outcome.error = Some(format!("{e:#}"));
    }
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

fn run(
    cfg: &Config,
    selected: Option<&BTreeSet<Key>>,
    last_bundle: Option<&str>,
    work: &Path,
    outcome: &mut Outcome,
) -> Result<()> {
    let spec = Spec::load(&cfg.spec)?;
    let current = if cfg.lock.exists() { Some(Lock::load(&cfg.lock)?) } else { None };
    let mut todo: BTreeSet<Key> = match selected {
        Some(s) => s.iter().filter(|k| entries::keys(&spec).contains(k)).cloned().collect(),
        None => entries::keys(&spec).into_iter().collect(),
    };
    todo.extend(entries::missing_from(&spec, current.as_ref()));
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let cx = quiet_ctx(&cfg.config_dir);
    let mut lock = current.clone().unwrap_or_else(|| Lock {
        media_type: LOCK_MEDIA_TYPE.into(),
        schema_version: 1,
        name: spec.name.clone(),
        version: spec.version.clone(),
        resolved: String::new(),
        artifacts: Vec::new(),
        git: Vec::new(),
        images: Vec::new(),
        python: Vec::new(),
        debian: Vec::new(),
        oci_artifacts: Vec::new(),
    });
    for (n, group) in entries::groups(&todo).into_iter().enumerate() {
        let sub_lock = work.join(format!("mirror-{n}.lock"));
        if let Some(c) = &current {
            // The lock pins a URL file the spec gives no sha256 for; watch follows the
            // URL instead, so a changed file is fetched again.
            let mut seed = c.clone();
            let follow: Vec<String> = spec
                .files
                .iter()
                .filter(|e| e.url.is_some() && e.sha256.is_none() && group.contains(&format!("files:{}", e.path)))
                .map(|e| e.path.to_string())
                .collect();
            seed.artifacts.retain(|a| !follow.iter().any(|f| f == a.name.as_str()));
            seed.save(&sub_lock)?;
        }
        let args = MirrorArgs {
            spec: cfg.spec.clone(),
            lock: Some(sub_lock.clone()),
            cache_dir: Some(cfg.cache.clone()),
            locked: false,
            allow_missing: false,
            jobs: 8,
            retries: cfg.net.retries,
            backoff: cfg.net.backoff,
            timeout: cfg.net.timeout,
            connect_timeout: cfg.net.connect_timeout,
        };
        let narrowed = entries::narrow(&spec, &group);
        let fresh = crate::commands::mirror_spec(&narrowed, &args, &cx).and_then(|_| Lock::load(&sub_lock));
        match fresh {
            Ok(fresh) => {
                entries::merge(&mut lock, &fresh, &group);
                outcome.refreshed.extend(group);
            }
            Err(e) => {
                for k in group {
                    outcome.failed.insert(k, format!("{e:#}"));
                }
            }
        }
    }
    entries::tidy(&mut lock, &spec);
    outcome.changed = entries::keys(&spec)
        .into_iter()
        .filter(|k| current.as_ref().is_none_or(|c| entries::part(c, k) != entries::part(&lock, k)))
        .collect();
    let same = current.as_ref().is_some_and(|c| {
        Lock { resolved: String::new(), ..c.clone() } == Lock { resolved: String::new(), ..lock.clone() }
    });
    if same && last_bundle.is_some() {
        return Ok(());
    }
    if lock.artifacts.is_empty()
        && lock.git.is_empty()
        && lock.images.is_empty()
        && lock.python.is_empty()
        && lock.debian.is_empty()
    {
        anyhow::bail!("nothing to bundle: no entry of {} could be mirrored", cfg.spec.display());
    }
    lock.resolved = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();

    // Export from a copy of the lock (and the spec beside it, for the provenance); the
    // real lock is replaced only once the bundle is in place.
    let lock_name = cfg.lock.file_name().map_or_else(|| "airlock.lock".into(), |n| n.to_os_string());
    let work_lock = work.join(&lock_name);
    lock.save(&work_lock)?;
    if let Ok(bytes) = std::fs::read(&cfg.spec) {
        atomic::write(&work_lock.with_extension("yaml"), &bytes).context("copying the spec")?;
    }
    let mut version = version_now(spec.version.as_deref());
    let exists = |v: &str| {
        let stem = format!("{}-{v}", lock.name);
        std::fs::read_dir(&cfg.out).into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == stem || n.starts_with(&format!("{stem}.airlock"))
        })
    };
    let stamp = version.clone();
    let mut n = 2;
    while exists(&version) {
        version = format!("{stamp}.{n}");
        n += 1;
    }
    let (since, base) = match (&cfg.since_receipt, last_bundle, &cfg.since) {
        (Some(site), _, _) => (None, Some(format!("receipt:{site}"))),
        (None, Some(b), _) => (Some(cfg.out.join(b)), Some(b.to_string())),
        (None, None, Some(p)) => (Some(p.clone()), Some(p.display().to_string())),
        (None, None, None) => (None, None),
    };
    let staged = work.join("bundle");
    let args = ExportArgs {
        lock: work_lock,
        cache_dir: Some(cfg.cache.clone()),
        output: staged.clone(),
        version: Some(version.clone()),
        compression: cfg.compression,
        split: cfg.split,
        since,
        since_receipt: cfg.since_receipt.clone(),
        key: cfg.key.clone(),
        threads: None,
        force: false,
    };
    crate::commands::export(&args, &cx).context("exporting")?;
    let stem = format!("{}-{version}", lock.name);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&staged)?.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    if cfg.split.is_some() {
        // A volume set moves as one directory: all of it appears at once, or none.
        atomic::sync_dir(&staged).with_context(|| format!("syncing {}", staged.display()))?;
        let dest = cfg.out.join(&stem);
        atomic::rename(&staged, &dest).with_context(|| format!("moving {} to {}", staged.display(), dest.display()))?;
        for f in &files {
            let name = f.file_name().expect("a file name").to_string_lossy();
            outcome.files.push(format!("{stem}/{name}"));
        }
    } else {
        for f in &files {
            let name = f.file_name().expect("a file name");
            atomic::rename(f, &cfg.out.join(name))
                .with_context(|| format!("moving {} into {}", f.display(), cfg.out.display()))?;
            outcome.files.push(name.to_string_lossy().into_owned());
        }
    }
    outcome.bundle = Some(stem);
    outcome.base = base;
    lock.save(&cfg.lock)?;
    Ok(())
}

/// How long to wait before polling again: `every`, plus up to 10% random jitter.
pub fn jittered(every: Duration) -> Duration {
    every + every.mul_f64(rand::random::<f64>() * 0.1)
}
