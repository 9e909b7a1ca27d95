//! The ledger: what happened to a store, for operators and auditors.
//!
//! One SQLite database per store (`<store>/ledger.sqlite`) and one per factory cache
//! (`<cache>/ledger.sqlite`), in WAL mode so readers (`airlock history`, `airlock status`)
//! never wait for a writer. It records every export, verify, import, promotion, policy
//! decision and annotation: who (user, host), when (RFC 3339, UTC), which bundle (name,
//! version, manifest digest), which signer key, which targets, and each artifact's result
//! (`added`, `present`, `updated`, `refused` with the reason).
//!
//! An import is written as `started` before it changes anything and finished as
//! `completed`, `failed` or `refused`. A run killed with -9 never finishes: it reads as
//! `interrupted` once no live process is behind it, and the next import into the store
//! (which holds the store's lock, so no other import can be running) writes it down as
//! such. Writers hold the store's lock (a verification, which changes nothing else, waits
//! for it only briefly and otherwise relies on SQLite's own locking); the schema is
//! versioned in `schema_migrations`,
//! and each migration runs once, in a transaction.
//!
//! Annotations (`staged=true`) are events, never edits of the bundle: setting or removing
//! a key adds a row, and the current value of a key is its newest row.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::receipt::ImportedBundle;

/// The database file in a store or cache.
pub const FILE_NAME: &str = "ledger.sqlite";

/// Each migration, in order; its index + 1 is the schema version it brings.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    env TEXT,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    bundle_name TEXT,
    bundle_version TEXT,
    manifest TEXT,
    signer TEXT,
    targets TEXT NOT NULL DEFAULT '[]',
    source TEXT,
    detail TEXT
);
CREATE INDEX runs_manifest ON runs (manifest);
CREATE INDEX runs_started ON runs (started);
CREATE TABLE run_artifacts (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    location TEXT NOT NULL,
    purl TEXT,
    reason TEXT
);
CREATE INDEX run_artifacts_run ON run_artifacts (run_id);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    manifest TEXT NOT NULL,
    bundle_name TEXT NOT NULL,
    bundle_version TEXT NOT NULL,
    env TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL,
    value TEXT,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX annotations_manifest ON annotations (manifest);
",
    r"
CREATE TABLE bundle_blobs (
    manifest TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (manifest, digest)
) WITHOUT ROWID;
",
    r"
CREATE TABLE import_records (
    manifest TEXT NOT NULL,
    target TEXT NOT NULL,
    prints TEXT NOT NULL,
    recorded TEXT NOT NULL,
    PRIMARY KEY (manifest, target)
) WITHOUT ROWID;
CREATE TABLE record_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
);
",
];

/// Who is acting: the user and host every row names.
#[derive(Debug, Clone, Serialize)]
pub struct Who {
    pub user: String,
    pub host: String,
}

impl Who {
    /// This process's user (`$USER`, else the password entry of its uid) and host name.
    pub fn current() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(user_from_passwd)
            .unwrap_or_else(|| "unknown".into());
        Self { user, host: host_name() }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
    })
}

/// Now, as the ledger writes times: RFC 3339, UTC, to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The bundle a row is about.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BundleRef {
    pub name: String,
    pub version: String,
    pub manifest: String,
}

impl BundleRef {
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// What one artifact's run did.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactResult {
    pub kind: String,
    pub name: String,
    /// `added`, `present`, `updated`, `forced`, `pushed`, `exported`, `refused`, `freed`,
    /// or for a refresh of `airlock watch`, `changed` or `failed` (an upstream entry).
    pub action: String,
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A run as it starts: what is known before the work.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub op: String,
    pub env: Option<String>,
    pub bundle: Option<BundleRef>,
    pub signer: Option<String>,
    pub targets: Vec<String>,
    pub source: Option<String>,
}

/// Which runs to read; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only runs of this kind (`import`, `export`, `watch`, ...).
    pub op: Option<String>,
    pub env: Option<String>,
    /// RFC 3339 UTC, to the second.
    pub since: Option<String>,
    /// A bundle name, or `<name>-<version>`.
    pub bundle: Option<String>,
    /// An artifact's name or purl (with or without its `@version`, or its `:ref`).
    pub artifact: Option<String>,
}

/// One recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub op: String,
    pub status: String,
    pub env: Option<String>,
    pub user: String,
    pub host: String,
    pub pid: i64,
    pub started: String,
    pub finished: Option<String>,
    pub bundle: Option<BundleRef>,
    pub signer: Option<String>,
    pub targets: Vec<String>,
    pub source: Option<String>,
    pub detail: Option<String>,
    pub artifacts: Vec<ArtifactResult>,
}

/// One annotation's current value.
#[derive(Debug, Clone, Serialize)]
pub struct Annotation {
    pub bundle: BundleRef,
    pub env: String,
    pub key: String,
    pub value: String,
    pub user: String,
    pub host: String,
    pub at: String,
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    who: Who,
}

impl Ledger {
    /// Open (creating if needed) the ledger in directory `dir` (a store or a cache).
    /// `legacy` lists what a store imported before it had a ledger; it is read once,
    /// when the ledger is created, and each entry becomes a completed import.
    pub fn open(dir: &Path, legacy: impl FnOnce() -> Result<Vec<ImportedBundle>>) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).with_context(|| format!("opening the ledger {}", path.display()))?;
        let mut ledger = Self { conn, path, who: Who::current() };
        ledger.setup(legacy).with_context(|| format!("opening the ledger {}", ledger.path.display()))?;
        Ok(ledger)
    }

    /// Open an existing ledger to read it; `None` if the directory has none.
    pub fn open_existing(dir: &Path) -> Result<Option<Self>> {
        if !dir.join(FILE_NAME).is_file() {
            return Ok(None);
        }
        match Self::open(dir, || Ok(Vec::new())) {
            Ok(l) => Ok(Some(l)),
            // A store this user may only read (an auditor, a read-only mount): read it as it is.
            Err(e) => {
                let path = dir.join(FILE_NAME);
                let conn =
                    Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|_| e)?;
                Ok(Some(Self { conn, path, who: Who::current() }))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn setup(&mut self, legacy: impl FnOnce() -> Result<Vec<ImportedBundle>>) -> Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(30))?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
        )?;
        let have: i64 =
            self.conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
        if have as usize > MIGRATIONS.len() {
            anyhow::bail!(
                "schema version {have} is newer than this airlock knows ({}): upgrade airlock",
                MIGRATIONS.len()
            );
        }
        let mut legacy = Some(legacy);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(have as usize) {
            let version = i as i64 + 1;
            let tx = self.conn.transaction()?;
            // Another process may have migrated meanwhile: the transaction sees its result.
            let done: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| {
                    r.get(0)
                })?;
            if done {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.execute("INSERT INTO schema_migrations (version, applied) VALUES (?1, ?2)", params![version, now()])?;
            if let (0, Some(legacy)) = (i, legacy.take()) {
                for b in legacy()? {
                    let when = b.imported.clone().unwrap_or_default();
                    tx.execute(
                        "INSERT INTO runs (op, status, user, host, pid, started, finished, bundle_name, \
                         bundle_version, manifest, source) VALUES ('import', 'completed', 'unknown', 'unknown', 0, \
                         ?1, ?1, ?2, ?3, ?4, 'imported.json')",
                        params![when, b.name, b.version.unwrap_or_default(), b.manifest.to_string()],
                    )?;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// Record a run as started; returns its id.
    pub fn begin(&self, run: &NewRun) -> Result<i64> {
        self.insert(run, "started", None).with_context(|| format!("writing to the ledger {}", self.path.display()))
    }

    fn insert(&self, run: &NewRun, status: &str, finished: Option<&str>) -> Result<i64> {
        let b = run.bundle.clone().unwrap_or_default();
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        self.conn.execute(
            "INSERT INTO runs (op, status, env, user, host, pid, started, finished, bundle_name, bundle_version, \
             manifest, signer, targets, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                run.op,
                status,
                run.env,
                self.who.user,
                self.who.host,
                std::process::id(),
                now(),
                finished,
                opt(&b.name),
                opt(&b.version),
                opt(&b.manifest),
                run.signer,
                serde_json::to_string(&run.targets)?,
                run.source,
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Name the bundle (and its signer) of a started run, once it has verified.
    pub fn set_bundle(&self, id: i64, bundle: &BundleRef, signer: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET bundle_name = ?2, bundle_version = ?3, manifest = ?4, signer = ?5 WHERE id = ?1",
                params![id, bundle.name, bundle.version, bundle.manifest, signer],
            )
            .with_context(|| format!("writing to the ledger {}", self.path.display()))?;
        Ok(())
    }

    /// Finish a started run with its status, detail (an error, the failed rules) and
    /// per-artifact results, in one transaction.
    pub fn finish(&self, id: i64, status: &str, detail: Option<&str>, artifacts: &[ArtifactResult]) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.unchecked_transaction()?;
        insert_artifacts(&tx, id, artifacts)?;
        tx.execute(
            "UPDATE runs SET status = ?2, finished = ?3, detail = ?4 WHERE id = ?1",
            params![id, status, now(), detail],
        )?;
        tx.commit().with_context(|| format!("writing to the ledger {}", path.display()))
    }

    /// Record a run that starts and finishes at once (verify, export, a policy decision).
    pub fn record(
        &self,
        run: &NewRun,
        status: &str,
        detail: Option<&str>,
        artifacts: &[ArtifactResult],
    ) -> Result<i64> {
        let id = self.begin(run)?;
        self.finish(id, status, detail, artifacts)?;
        Ok(id)
    }

    /// Remember the blobs a bundle names (what `airlock gc` keeps while the bundle is
    /// retained).
    pub fn set_blobs(&self, manifest: &str, digests: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare("INSERT OR IGNORE INTO bundle_blobs (manifest, digest) VALUES (?1, ?2)")?;
            for d in digests {
                stmt.execute(params![manifest, d])?;
            }
        }
        tx.commit().with_context(|| format!("writing to the ledger {}", self.path.display()))
    }

    /// The store's own secret for the keyed prints of imported bundles
    /// ([`crate::bundle::fingerprint`]): 32 random bytes, made on first use.
    pub fn record_key(&self) -> Result<Vec<u8>> {
        let have: Option<Vec<u8>> =
            self.conn.query_row("SELECT key FROM record_key WHERE id = 1", [], |r| r.get(0)).optional()?;
        if let Some(k) = have {
            return Ok(k);
        }
        let key: [u8; 32] = rand::random();
        self.conn
            .execute("INSERT OR IGNORE INTO record_key (id, key) VALUES (1, ?1)", params![key.to_vec()])
            .with_context(|| format!("writing to the ledger {}", self.path.display()))?;
        Ok(self.conn.query_row("SELECT key FROM record_key WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Remember that the bundle with `manifest` was imported in full into `target`, read
    /// from files with these prints (JSON): what lets the same bundle be answered from
    /// the record next time.
    pub fn set_import_record(&self, manifest: &str, target: &str, prints: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO import_records (manifest, target, prints, recorded) VALUES (?1, ?2, ?3, ?4)",
                params![manifest, target, prints, now()],
            )
            .with_context(|| format!("writing to the ledger {}", self.path.display()))?;
        Ok(())
    }

    /// The prints recorded for a full import of `manifest` into `target`.
    pub fn import_record(&self, manifest: &str, target: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT prints FROM import_records WHERE manifest = ?1 AND target = ?2",
                params![manifest, target],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The blobs recorded for a bundle; `None` when it was imported before they were.
    pub fn blobs_of(&self, manifest: &str) -> Result<Option<Vec<String>>> {
        let mut stmt = self.conn.prepare("SELECT digest FROM bundle_blobs WHERE manifest = ?1")?;
        let v: Vec<String> = stmt.query_map([manifest], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok((!v.is_empty()).then_some(v))
    }

    /// Write down every started import or promotion as interrupted. Only for a caller
    /// that holds the store's lock: then none of them can still be running.
    pub fn mark_interrupted(&self) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE runs SET status = 'interrupted' WHERE status = 'started' AND op IN ('import', 'promote')",
            [],
        )?)
    }

    /// Every run, oldest first, with its artifacts. A started run whose process is gone
    /// reads as `interrupted`.
    pub fn runs(&self) -> Result<Vec<Run>> {
        self.runs_where(&Filter::default())
    }

    /// The runs that pass `filter`, oldest first, with their artifacts; the filter is
    /// applied by SQLite, so a long history is not read to answer a narrow question.
    pub fn runs_where(&self, filter: &Filter) -> Result<Vec<Run>> {
        let mut cond = vec!["1 = 1".to_string()];
        let mut args: Vec<String> = Vec::new();
        let arg = |args: &mut Vec<String>, v: &str| {
            args.push(v.to_string());
            format!("?{}", args.len())
        };
        if let Some(op) = &filter.op {
            let p = arg(&mut args, op);
            cond.push(format!("op = {p}"));
        }
        if let Some(env) = &filter.env {
            let p = arg(&mut args, env);
            cond.push(format!("env = {p}"));
        }
        if let Some(since) = &filter.since {
            let p = arg(&mut args, since);
            cond.push(format!("started >= {p}"));
        }
        if let Some(b) = &filter.bundle {
            let p = arg(&mut args, b);
            cond.push(format!("(bundle_name = {p} OR bundle_name || '-' || bundle_version = {p})"));
        }
        if let Some(a) = &filter.artifact {
            let p = arg(&mut args, a);
            let q = arg(&mut args, &format!("{a}:%"));
            let r = arg(&mut args, &format!("{a}@%"));
            cond.push(format!(
                "id IN (SELECT run_id FROM run_artifacts WHERE name = {p} OR purl = {p} OR name LIKE {q} OR purl LIKE {r})"
            ));
        }
        let cond = cond.join(" AND ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, op, status, env, user, host, pid, started, finished, bundle_name, bundle_version, manifest, \
             signer, targets, source, detail FROM runs WHERE {cond} ORDER BY id"
        ))?;
        let mut runs: Vec<Run> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                let name: Option<String> = r.get(9)?;
                let bundle = name.map(|name| -> rusqlite::Result<BundleRef> {
                    Ok(BundleRef {
                        name,
                        version: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                        manifest: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                    })
                });
                let targets: String = r.get(13)?;
                Ok(Run {
                    id: r.get(0)?,
                    op: r.get(1)?,
                    status: r.get(2)?,
                    env: r.get(3)?,
                    user: r.get(4)?,
                    host: r.get(5)?,
                    pid: r.get(6)?,
                    started: r.get(7)?,
                    finished: r.get(8)?,
                    bundle: bundle.transpose()?,
                    signer: r.get(12)?,
                    targets: serde_json::from_str(&targets).unwrap_or_default(),
                    source: r.get(14)?,
                    detail: r.get(15)?,
                    artifacts: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT run_id, kind, name, action, location, purl, reason FROM run_artifacts \
             WHERE run_id IN (SELECT id FROM runs WHERE {cond}) ORDER BY rowid"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ArtifactResult {
                    kind: r.get(1)?,
                    name: r.get(2)?,
                    action: r.get(3)?,
                    location: r.get(4)?,
                    purl: r.get(5)?,
                    reason: r.get(6)?,
                },
            ))
        })?;
        let mut index = std::collections::HashMap::new();
        for (i, run) in runs.iter().enumerate() {
            index.insert(run.id, i);
        }
        for row in rows {
            let (id, a) = row?;
            if let Some(&i) = index.get(&id) {
                runs[i].artifacts.push(a);
            }
        }
        let me = host_name();
        for run in &mut runs {
            if run.status == "started" && !(run.host == me && process_alive(run.pid)) {
                run.status = "interrupted".into();
            }
        }
        Ok(runs)
    }

    /// Set (`Some`) or remove (`None`) an annotation of a bundle.
    pub fn annotate(&self, bundle: &BundleRef, env: &str, key: &str, value: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO annotations (manifest, bundle_name, bundle_version, env, key, value, user, host, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    bundle.manifest,
                    bundle.name,
                    bundle.version,
                    env,
                    key,
                    value,
                    self.who.user,
                    self.who.host,
                    now()
                ],
            )
            .with_context(|| format!("writing to the ledger {}", self.path.display()))?;
        Ok(())
    }

    /// The current annotations of a manifest: each (env, key)'s newest row, unless it
    /// removed the key.
    pub fn annotations(&self, manifest: &str) -> Result<Vec<Annotation>> {
        let mut stmt = self.conn.prepare(
            "SELECT bundle_name, bundle_version, env, key, value, user, host, at FROM annotations a \
             WHERE manifest = ?1 AND id = (SELECT MAX(id) FROM annotations b \
             WHERE b.manifest = a.manifest AND b.env = a.env AND b.key = a.key) ORDER BY env, key",
        )?;
        let rows = stmt.query_map([manifest], |r| {
            Ok((
                BundleRef { name: r.get(0)?, version: r.get(1)?, manifest: manifest.to_string() },
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (bundle, env, key, value, user, host, at) = row?;
            if let Some(value) = value {
                out.push(Annotation { bundle, env, key, value, user, host, at });
            }
        }
        Ok(out)
    }

    /// The bundle a name (`<name>-<version>`) or manifest digest stands for, as this
    /// ledger knows it: the newest run that names it.
    pub fn find_bundle(&self, what: &str) -> Result<Option<BundleRef>> {
        let row = self
            .conn
            .query_row(
                "SELECT bundle_name, bundle_version, manifest FROM runs WHERE manifest IS NOT NULL AND \
                 (manifest = ?1 OR bundle_name || '-' || bundle_version = ?1) ORDER BY id DESC LIMIT 1",
                [what],
                |r| Ok(BundleRef { name: r.get(0)?, version: r.get(1)?, manifest: r.get(2)? }),
            )
            .optional()?;
        Ok(row)
    }
}

fn insert_artifacts(tx: &rusqlite::Transaction<'_>, id: i64, artifacts: &[ArtifactResult]) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO run_artifacts (run_id, kind, name, action, location, purl, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in artifacts {
        stmt.execute(params![id, a.kind, a.name, a.action, a.location, a.purl, a.reason])?;
    }
    Ok(())
}

fn process_alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Does `text` match the glob `pattern` (`*` any run, `?` one character)? The matcher
/// the Debian include/exclude patterns use, checked against globset in tests/prop.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    crate::debian::resolve::glob(pattern, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("pkg:pypi/*", "pkg:pypi/requests@2.0"));
        assert!(glob_match("*", ""));
        assert!(glob_match("pkg:*/evil*", "pkg:deb/debian/evil-tool@1"));
        assert!(!glob_match("pkg:pypi/*", "pkg:deb/x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
    }

    #[test]
    fn runs_annotations_and_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), || Ok(Vec::new())).unwrap();
        let b = BundleRef { name: "b".into(), version: "1".into(), manifest: "sha256:00".into() };
        let run = NewRun { op: "import".into(), bundle: Some(b.clone()), ..Default::default() };
        let id = l.begin(&run).unwrap();
        assert_eq!(l.runs().unwrap()[0].status, "started", "this process is alive");
        let a = ArtifactResult {
            kind: "file".into(),
            name: "x".into(),
            action: "added".into(),
            location: "here".into(),
            purl: None,
            reason: None,
        };
        l.finish(id, "completed", None, &[a]).unwrap();
        l.annotate(&b, "staging", "staged", Some("true")).unwrap();
        l.annotate(&b, "staging", "staged", None).unwrap();
        l.annotate(&b, "staging", "qa", Some("ok")).unwrap();
        drop(l);
        // Reopening runs no migration twice and keeps everything.
        let l = Ledger::open(dir.path(), || panic!("legacy history is read only when the ledger is made")).unwrap();
        let runs = l.runs().unwrap();
        assert_eq!((runs.len(), runs[0].status.as_str(), runs[0].artifacts.len()), (1, "completed", 1));
        let notes = l.annotations("sha256:00").unwrap();
        assert_eq!(notes.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["qa"]);
        assert_eq!(l.find_bundle("b-1").unwrap().unwrap().manifest, "sha256:00");
    }
}
