//! `airlock watch`: a long-running process that turns upstream changes (webhooks, polls,
//! `POST /sync`) into refreshes and signed delta bundles.
//!
//! Calls go one way: the HTTP handlers and the pollers only queue triggers; one worker
//! takes them, after a quiet period (debounce), and runs one refresh at a time
//! ([`refresh::refresh`], blocking, on its own thread). Everything watch remembers lives
//! under `<out>/.watch/`, written atomically: the history (JSON lines), the delivery IDs
//! seen, and the last bundle made.

pub mod entries;
pub mod hooks;
pub mod poll;
pub mod refresh;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use entries::Key;
use refresh::{Config, Outcome};

use crate::printer::Printer;
use crate::spec::Spec;
use crate::store::atomic;

/// How many delivery IDs are remembered, and history records kept.
const DELIVERIES_KEPT: usize = 10_000;
const HISTORY_KEPT: usize = 10_000;

/// The secrets, from the environment or a secrets file.
#[derive(Default)]
pub struct Secrets {
    pub github: Option<String>,
    pub gitlab: Option<String>,
    pub bitbucket: Option<String>,
    pub registry: Option<String>,
    pub sync: Option<String>,
}

impl Secrets {
    /// Read AIRLOCK_WATCH_* from `file` (`NAME=value` lines, `#` comments), then from the
    /// environment, which wins.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        if let Some(f) = file {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading secrets file {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((k, v)) = line.split_once('=') else {
                    anyhow::bail!("secrets file {} line {}: not NAME=value", f.display(), n + 1);
                };
                let v = v.trim().trim_matches('"');
                found.insert(k.trim().to_string(), v.to_string());
            }
        }
        let get = |name: &str| std::env::var(name).ok().or_else(|| found.get(name).cloned()).filter(|v| !v.is_empty());
        Ok(Self {
            github: get("AIRLOCK_WATCH_GITHUB_SECRET"),
            gitlab: get("AIRLOCK_WATCH_GITLAB_TOKEN"),
            bitbucket: get("AIRLOCK_WATCH_BITBUCKET_SECRET"),
            registry: get("AIRLOCK_WATCH_REGISTRY_TOKEN"),
            sync: get("AIRLOCK_WATCH_TOKEN"),
        })
    }
}

/// What started (part of) a refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `github`, `gitlab`, `bitbucket`, `registry`, `sync` or `poll`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// The entries it concerns; none means every entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Key>>,
    pub at: String,
}

/// One refresh, as `/history` and `history.jsonl` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: u64,
    pub triggers: Vec<Trigger>,
    pub started: String,
    pub seconds: f64,
    /// `bundle`, `unchanged` or `failed`.
    pub result: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Default)]
struct Pending {
    triggers: Vec<Trigger>,
    all: bool,
    keys: BTreeSet<Key>,
    last: Option<Instant>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Upstream {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    checked: String,
    by: &'static str,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    last_bundle: Option<String>,
    next_id: u64,
}

struct Inner {
    pending: Option<Pending>,
    running: Option<(Vec<Trigger>, String)>,
    history: Vec<Record>,
    deliveries: VecDeque<String>,
    seen: HashSet<String>,
    upstreams: BTreeMap<Key, Upstream>,
    /// Entries whose last mirror failed: every later refresh tries them again.
    failed: BTreeSet<Key>,
    saved: Saved,
}

struct Shared {
    cfg: Config,
    state_dir: PathBuf,
    secrets: Secrets,
    max_body: usize,
    debounce: Duration,
    printer: Printer,
    inner: Mutex<Inner>,
    /// Held while `.watch/deliveries.json` is written.
    writing: Mutex<()>,
    wake: Notify,
    stopping: AtomicBool,
}

/// Record a refresh in the factory cache's ledger, beside the export that wrote its
/// bundle, so `airlock history --watch` shows the refreshes offline.
fn record_in_ledger(cache: &Path, out: &Path, rec: &Record) -> Result<()> {
    use crate::ledger::{ArtifactResult, Filter, Ledger, NewRun};
    let store = crate::store::Store::open(cache)?;
    // A cache has no imports from before the ledger to take over.
    let ledger = Ledger::open(cache, || Ok(Vec::new()))?;
    let _lock = store
        .lock_within(Duration::from_secs(30))?
        .ok_or_else(|| anyhow::anyhow!("the cache {} stayed locked", cache.display()))?;
    let bundle = match &rec.outcome.bundle {
        // The export that just wrote it is the cache's newest.
        Some(id) => ledger
            .runs_where(&Filter { op: Some("export".into()), ..Filter::default() })?
            .pop()
            .and_then(|r| r.bundle)
            .filter(|b| &b.id() == id),
        None => None,
    };
    let triggers: Vec<String> = rec
        .triggers
        .iter()
        .map(|t| match &t.delivery {
            Some(d) => format!("{} {d}", t.source),
            None => t.source.clone(),
        })
        .collect();
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let run = NewRun {
        op: "watch".into(),
        env: None,
        bundle,
        signer: None,
        targets: rec.outcome.files.iter().map(|f| out.join(f).display().to_string()).collect(),
        source: Some(format!("triggered by {}", triggers.join(", "))),
    };
    let entry = |key: &str, action: &str, reason: Option<&String>| {
        let (kind, name) = key.split_once(':').unwrap_or(("entry", key));
        ArtifactResult {
            kind: kind.to_string(),
            name: name.to_string(),
            action: action.to_string(),
            location: String::new(),
            purl: None,
            reason: reason.cloned(),
        }
    };
    let mut artifacts: Vec<ArtifactResult> = rec.outcome.changed.iter().map(|k| entry(k, "changed", None)).collect();
    artifacts.extend(rec.outcome.failed.iter().map(|(k, e)| entry(k, "failed", Some(e))));
    let (status, detail) = match (&rec.outcome.error, &rec.outcome.bundle) {
        (Some(e), _) => ("failed", e.clone()),
        (None, Some(b)) => ("completed", format!("wrote {b}")),
        (None, None) => ("completed", "nothing changed upstream".to_string()),
    };
    ledger.record(&run, status, Some(&detail), &artifacts)?;
    Ok(())
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// One log line on stderr: `<time> watch <event> key=value ...`, values quoted when
/// they hold spaces.
fn log(printer: Printer, event: &str, fields: &[(&str, String)]) {
    let mut line = format!("{} watch {event}", now());
    for (k, v) in fields {
        if v.is_empty() || v.contains([' ', '"', '=']) {
            line.push_str(&format!(" {k}={v:?}"));
        } else {
            line.push_str(&format!(" {k}={v}"));
        }
    }
    printer.info(line);
}

pub struct WatchOptions {
    pub cfg: Config,
    pub listen: std::net::SocketAddr,
    pub secrets: Secrets,
    pub max_body: u64,
    pub debounce: Duration,
    pub poll: Option<Duration>,
    pub poll_kind: Vec<(String, Duration)>,
}

/// Run until SIGTERM or SIGINT.
pub fn run(opts: WatchOptions, printer: Printer) -> Result<()> {
    let out = &opts.cfg.out;
    let state_dir = out.join(".watch");
    std::fs::create_dir_all(&state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    // One watch per output directory: another's temporary directory is no leftover.
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir.join("lock"))
        .with_context(|| format!("opening {}", state_dir.join("lock").display()))?;
    if held.try_lock().is_err() {
        anyhow::bail!("another `airlock watch` is writing into {}", out.display());
    }
    for p in refresh::remove_leftovers(out)? {
        log(printer, "leftover.removed", &[("path", p.display().to_string())]);
    }
    let spec = Spec::load(&opts.cfg.spec)?;
    let all = entries::keys(&spec);
    for k in spec.watch.kinds.keys() {
        if !entries::KINDS.contains(&k.as_str()) {
            anyhow::bail!(
                "{}: `watch.kinds.{k}` is not a kind: files, git, images, python or debian",
                opts.cfg.spec.display()
            );
        }
    }
    for k in spec.watch.entries.keys() {
        if !all.contains(k) {
            anyhow::bail!(
                "{}: `watch.entries` names `{k}`, which is no entry of the spec (entries: {})",
                opts.cfg.spec.display(),
                all.join(", ")
            );
        }
    }
    let history = read_history(&state_dir.join("history.jsonl"))?;
    let deliveries: VecDeque<String> = match std::fs::read(state_dir.join("deliveries.json")) {
        Ok(b) => serde_json::from_slice(&b).context("reading .watch/deliveries.json")?,
        Err(_) => VecDeque::new(),
    };
    let saved: Saved = match std::fs::read(state_dir.join("state.json")) {
        Ok(b) => serde_json::from_slice(&b).context("reading .watch/state.json")?,
        Err(_) => Saved::default(),
    };
    let saved = Saved {
        // A bundle the operator moved away is no base: the next one is built on `--since`, or full.
        last_bundle: saved.last_bundle.filter(|b| out.join(b).is_file()),
        ..saved
    };
    let seen = deliveries.iter().cloned().collect();
    let shared = Arc::new(Shared {
        state_dir,
        secrets: opts.secrets,
        max_body: usize::try_from(opts.max_body).unwrap_or(usize::MAX),
        debounce: opts.debounce,
        printer,
        inner: Mutex::new(Inner {
            pending: None,
            running: None,
            history,
            deliveries,
            seen,
            upstreams: BTreeMap::new(),
            failed: BTreeSet::new(),
            saved,
        }),
        writing: Mutex::new(()),
        wake: Notify::new(),
        stopping: AtomicBool::new(false),
        cfg: opts.cfg,
    });
    // A blocking HTTP client is built, and dropped for the last time, outside the runtime.
    crate::net::install_tls_provider();
    let poller = Arc::new(poll::Poller::new(&shared.cfg.net)?);
    let kept = poller.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        log(printer, "listening", &[("addr", addr.to_string()), ("out", shared.cfg.out.display().to_string())]);
        // For machines: where it listens, on stdout (the log line says it on stderr).
        printer.data(&json!({"listening": format!("http://{addr}"), "out": shared.cfg.out}), String::new);
        let worker = tokio::spawn(worker(shared.clone()));
        let mut pollers = Vec::new();
        let spec = Arc::new(spec);
        for key in entries::keys(&spec) {
            let kind = entries::kind_of(&key);
            // Flags first, then the spec's `watch:` section, the narrowest setting winning in each.
            let every = opts
                .poll_kind
                .iter()
                .rev()
                .find(|(k, _)| k == kind)
                .map(|(_, d)| *d)
                .or(opts.poll)
                .or_else(|| spec.watch.entries.get(&key).copied())
                .or_else(|| spec.watch.kinds.get(kind).copied())
                .or(spec.watch.poll);
            if let Some(every) = every {
                pollers.push(tokio::spawn(poll_loop(shared.clone(), poller.clone(), spec.clone(), key, every)));
            }
        }
        let app = router(shared.clone());
        axum::serve(listener, app).with_graceful_shutdown(shutdown()).await.context("serving")?;
        log(printer, "stopping", &[]);
        shared.stopping.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        for p in pollers {
            p.abort();
        }
        worker.await.context("the refresh worker")?;
        log(printer, "stopped", &[]);
        Ok(())
    });
    drop(rt);
    drop(kept);
    drop(held);
    result
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn read_history(path: &Path) -> Result<Vec<Record>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), n + 1)))
        .collect()
}

impl Shared {
    fn enqueue(&self, t: Trigger) {
        {
            let mut inner = self.inner.lock().expect("not poisoned");
            let p = inner.pending.get_or_insert_with(Pending::default);
            match &t.entries {
                None => p.all = true,
                Some(k) => p.keys.extend(k.iter().cloned()),
            }
            p.last = Some(Instant::now());
            p.triggers.push(t.clone());
        }
        log(
            self.printer,
            "trigger",
            &[
                ("source", t.source.clone()),
                ("delivery", t.delivery.clone().unwrap_or_default()),
                ("entries", t.entries.map_or_else(|| "all".into(), |e| e.join(","))),
            ],
        );
        self.wake.notify_one();
    }

    /// Remember delivery IDs; false if all of them were seen before.
    fn remember(&self, ids: &[String]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(true);
        }
        // Writes of the file are ordered by `writing`; the state stays free meanwhile.
        let _writing = self.writing.lock().expect("not poisoned");
        let bytes = {
            let mut inner = self.inner.lock().expect("not poisoned");
            if ids.iter().all(|i| inner.seen.contains(i)) {
                return Ok(false);
            }
            for i in ids {
                if inner.seen.insert(i.clone()) {
                    inner.deliveries.push_back(i.clone());
                }
            }
            while inner.deliveries.len() > DELIVERIES_KEPT {
                if let Some(old) = inner.deliveries.pop_front() {
                    inner.seen.remove(&old);
                }
            }
            serde_json::to_vec(&inner.deliveries)?
        };
        atomic::write(&self.state_dir.join("deliveries.json"), &bytes).context("writing .watch/deliveries.json")?;
        Ok(true)
    }

    fn save(&self, history: &[Record], saved: &Saved) -> Result<()> {
        let start = history.len().saturating_sub(HISTORY_KEPT);
        let mut text = String::new();
        for r in &history[start..] {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        atomic::write(&self.state_dir.join("history.jsonl"), text.as_bytes())
            .context("writing .watch/history.jsonl")?;
        atomic::write(&self.state_dir.join("state.json"), &serde_json::to_vec_pretty(saved)?)
            .context("writing .watch/state.json")
    }
}

async fn worker(sh: Arc<Shared>) {
    loop {
        // Wait for a trigger, then for a quiet period after the last one.
        loop {
            if sh.stopping.load(Ordering::SeqCst) {
                return;
            }
            let last = sh.inner.lock().expect("not poisoned").pending.as_ref().and_then(|p| p.last);
            match last {
                None => sh.wake.notified().await,
                Some(last) => {
                    let wait = sh.debounce.saturating_sub(last.elapsed());
                    if wait.is_zero() {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = sh.wake.notified() => {}
                    }
                }
            }
        }
        let (pending, last_bundle, retry) = {
            let mut inner = sh.inner.lock().expect("not poisoned");
            let p = inner.pending.take().unwrap_or_default();
            inner.running = Some((p.triggers.clone(), now()));
            (p, inner.saved.last_bundle.clone(), inner.failed.clone())
        };
        let selected = (!pending.all).then(|| pending.keys.iter().chain(&retry).cloned().collect::<BTreeSet<Key>>());
        log(
            sh.printer,
            "refresh.start",
            &[
                ("triggers", pending.triggers.len().to_string()),
                (
                    "entries",
                    selected.as_ref().map_or_else(|| "all".into(), |s| s.iter().cloned().collect::<Vec<_>>().join(",")),
                ),
            ],
        );
        let started = Instant::now();
        let started_at = now();
        let sh2 = sh.clone();
        let outcome =
            tokio::task::spawn_blocking(move || refresh::refresh(&sh2.cfg, selected.as_ref(), last_bundle.as_deref()))
                .await
                .unwrap_or_else(|e| Outcome {
                    error: Some(format!("the refresh panicked: {e}")),
                    ..Outcome::default()
                });
        let seconds = started.elapsed().as_secs_f64();
        let result = if outcome.error.is_some() {
            "failed"
        } else if outcome.bundle.is_some() {
            "bundle"
        } else {
            "unchanged"
        };
        // The state's lock is held in this block only, never across an await.
        let (record, history, saved) = {
            let mut inner = sh.inner.lock().expect("not poisoned");
            for k in &outcome.refreshed {
                inner.failed.remove(k);
                inner.upstreams.insert(k.clone(), Upstream { ok: true, error: None, checked: now(), by: "refresh" });
            }
            for (k, e) in &outcome.failed {
                inner.failed.insert(k.clone());
                inner
                    .upstreams
                    .insert(k.clone(), Upstream { ok: false, error: Some(e.clone()), checked: now(), by: "refresh" });
                log(sh.printer, "upstream.failed", &[("entry", k.clone()), ("error", e.clone())]);
            }
            if let Some(b) = outcome.files.iter().find(|f| f.ends_with(".airlock") || f.ends_with(".airlock.001")) {
                inner.saved.last_bundle = Some(b.clone());
            }
            let id = inner.saved.next_id + 1;
            inner.saved.next_id = id;
            log(
                sh.printer,
                "refresh.done",
                &[
                    ("id", id.to_string()),
                    ("result", result.into()),
                    ("bundle", outcome.bundle.clone().unwrap_or_default()),
                    ("changed", outcome.changed.join(",")),
                    ("failed", outcome.failed.keys().cloned().collect::<Vec<_>>().join(",")),
                    ("seconds", format!("{seconds:.2}")),
                    ("error", outcome.error.clone().unwrap_or_default()),
                ],
            );
            let record =
                Record { id, triggers: pending.triggers, started: started_at, seconds, result: result.into(), outcome };
            inner.history.push(record.clone());
            let excess = inner.history.len().saturating_sub(HISTORY_KEPT);
            inner.history.drain(..excess);
            inner.running = None;
            (record, inner.history.clone(), inner.saved.clone())
        };
        // The disk work (fsync, SQLite) runs without the state's lock and off the async
        // workers, so `/status`, `/healthz` and the hooks keep answering meanwhile. Only
        // this worker writes these files, one refresh at a time.
        let sh2 = sh.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = record_in_ledger(&sh2.cfg.cache, &sh2.cfg.out, &record) {
                log(sh2.printer, "ledger.error", &[("error", format!("{e:#}"))]);
            }
            if let Err(e) = sh2.save(&history, &saved) {
                log(sh2.printer, "state.error", &[("error", format!("{e:#}"))]);
            }
        })
        .await;
    }
}

async fn poll_loop(sh: Arc<Shared>, poller: Arc<poll::Poller>, spec: Arc<Spec>, key: Key, every: Duration) {
    let mut last: Option<String> = None;
    loop {
        tokio::time::sleep(refresh::jittered(every)).await;
        let (p, s, k) = (poller.clone(), spec.clone(), key.clone());
        let r = tokio::task::spawn_blocking(move || p.fingerprint(&s, &k)).await;
        let r = r.map_err(anyhow::Error::from).and_then(|r| r);
        match r {
            Ok(fp) => {
                let retry = {
                    let mut inner = sh.inner.lock().expect("not poisoned");
                    inner.upstreams.insert(key.clone(), Upstream { ok: true, error: None, checked: now(), by: "poll" });
                    inner.failed.contains(&key)
                };
                let changed = last.as_ref().is_some_and(|l| *l != fp);
                last = Some(fp);
                if changed || retry {
                    sh.enqueue(Trigger {
                        source: "poll".into(),
                        delivery: None,
                        entries: Some(vec![key.clone()]),
                        at: now(),
                    });
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                log(sh.printer, "poll.failed", &[("entry", key.clone()), ("error", msg.clone())]);
                sh.inner
                    .lock()
                    .expect("not poisoned")
                    .upstreams
                    .insert(key.clone(), Upstream { ok: false, error: Some(msg), checked: now(), by: "poll" });
            }
        }
    }
}

fn router(sh: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/status", get(status))
        .route("/history", get(history))
        .route("/sync", post(sync))
        .route("/hooks/{provider}", post(hook))
        .with_state(sh)
}

fn answer(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

fn refuse(code: StatusCode, msg: impl Into<String>) -> Response {
    answer(code, json!({"error": msg.into()}))
}

async fn read_body(sh: &Shared, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Response> {
    let too_big = || refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} bytes", sh.max_body));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > sh.max_body as u64) {
        return Err(too_big());
    }
    axum::body::to_bytes(body, sh.max_body).await.map_err(|_| too_big())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn head<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn status(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.inner.lock().expect("not poisoned");
    let unreachable: Vec<&Key> = inner.upstreams.iter().filter(|(_, u)| !u.ok).map(|(k, _)| k).collect();
    answer(
        StatusCode::OK,
        json!({
            "state": if inner.running.is_some() { "refreshing" } else if inner.pending.is_some() { "waiting" } else { "idle" },
            "running": inner.running.as_ref().map(|(t, at)| json!({"triggers": t, "started": at})),
            "pending": inner.pending.as_ref().map(|p| json!({
                "triggers": p.triggers,
                "entries": if p.all { json!("all") } else { json!(p.keys) },
            })),
            "lastBundle": inner.saved.last_bundle,
            "lastRefresh": inner.history.last(),
            "refreshes": inner.saved.next_id,
            "unreachable": unreachable,
            "upstreams": inner.upstreams,
        }),
    )
}

async fn history(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.inner.lock().expect("not poisoned");
    answer(StatusCode::OK, serde_json::to_value(&inner.history).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    entries: Vec<String>,
}

async fn sync(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_body(&sh, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !sh.secrets.sync.as_deref().is_some_and(|t| hooks::token_ok(t, bearer(&headers))) {
        return refuse(StatusCode::UNAUTHORIZED, "POST /sync needs `Authorization: Bearer` with AIRLOCK_WATCH_TOKEN");
    }
    let req: SyncBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        SyncBody { entries: Vec::new() }
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not {{\"entries\": [...]}}: {e}")),
        }
    };
    let entries = if req.entries.is_empty() {
        None
    } else {
        let spec = match Spec::load(&sh.cfg.spec) {
            Ok(s) => s,
            Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        };
        match entries::select(&spec, &req.entries) {
            Ok(k) => Some(k.into_iter().collect::<Vec<_>>()),
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        }
    };
    sh.enqueue(Trigger { source: "sync".into(), delivery: None, entries: entries.clone(), at: now() });
    answer(StatusCode::ACCEPTED, json!({"queued": true, "entries": entries.map_or_else(|| json!("all"), |e| json!(e))}))
}

async fn hook(
    State(sh): State<Arc<Shared>>,
    UrlPath(provider): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !matches!(provider.as_str(), "github" | "gitlab" | "bitbucket" | "registry") {
        return refuse(StatusCode::NOT_FOUND, format!("no hook `{provider}`: github, gitlab, bitbucket or registry"));
    }
    let bytes = match read_body(&sh, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let s = &sh.secrets;
    let (authentic, delivery, what) = match provider.as_str() {
        "github" => (
            s.github
                .as_deref()
                .is_some_and(|k| hooks::hmac_ok(k.as_bytes(), &bytes, head(&headers, "x-hub-signature-256"))),
            head(&headers, "x-github-delivery"),
            "a valid X-Hub-Signature-256 (AIRLOCK_WATCH_GITHUB_SECRET)",
        ),
        "gitlab" => (
            s.gitlab.as_deref().is_some_and(|t| hooks::token_ok(t, head(&headers, "x-gitlab-token"))),
            head(&headers, "x-gitlab-event-uuid"),
            "X-Gitlab-Token (AIRLOCK_WATCH_GITLAB_TOKEN)",
        ),
        "bitbucket" => (
            s.bitbucket
                .as_deref()
                .is_some_and(|k| hooks::hmac_ok(k.as_bytes(), &bytes, head(&headers, "x-hub-signature"))),
            head(&headers, "x-request-uuid"),
            "a valid X-Hub-Signature (AIRLOCK_WATCH_BITBUCKET_SECRET)",
        ),
        _ => (
            s.registry.as_deref().is_some_and(|t| hooks::token_ok(t, bearer(&headers))),
            None,
            "`Authorization: Bearer` with AIRLOCK_WATCH_REGISTRY_TOKEN",
        ),
    };
    if !authentic {
        log(sh.printer, "hook.refused", &[("hook", provider.clone()), ("why", "signature".into())]);
        return refuse(StatusCode::UNAUTHORIZED, format!("/hooks/{provider} needs {what}"));
    }
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let (changes, ids) = match provider.as_str() {
        "github" => (hooks::github(head(&headers, "x-github-event").unwrap_or(""), &body), Vec::new()),
        "gitlab" => (hooks::gitlab(head(&headers, "x-gitlab-event").unwrap_or(""), &body), Vec::new()),
        "bitbucket" => (hooks::bitbucket(head(&headers, "x-event-key").unwrap_or(""), &body), Vec::new()),
        _ => hooks::registry(&body),
    };
    let ids: Vec<String> =
        delivery.map(str::to_string).into_iter().chain(ids).map(|i| format!("{provider}:{i}")).collect();
    match sh.remember(&ids) {
        Ok(true) => {}
        Ok(false) => {
            log(
                sh.printer,
                "hook.refused",
                &[("hook", provider.clone()), ("why", "replay".into()), ("delivery", ids.join(","))],
            );
            return refuse(StatusCode::UNAUTHORIZED, format!("delivery {} was received before", ids.join(", ")));
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
    let spec = match Spec::load(&sh.cfg.spec) {
        Ok(s) => s,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    };
    let matched: Vec<Key> = hooks::matching(&spec, &changes).into_iter().collect();
    if !matched.is_empty() {
        sh.enqueue(Trigger {
            source: provider.clone(),
            delivery: delivery.map(str::to_string),
            entries: Some(matched.clone()),
            at: now(),
        });
    }
    answer(StatusCode::ACCEPTED, json!({"matched": matched}))
}
