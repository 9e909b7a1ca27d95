//! Git repositories: one bare cache repository per URL, refs selected by name or pattern
//! against what the remote advertises, fetched with git itself. Refs deleted upstream are
//! pruned from the cache; a ref that moved other than forward since the last lock is
//! reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::digest::Digest;
use crate::git;
use crate::lock::LockedGit;
use crate::net::{self, Failure, NetOptions};
use crate::spec::{GitEntry, ref_matches};

pub struct GitSource {
    /// `<cache>/git`: one bare repository per upstream URL.
    pub root: PathBuf,
    /// The spec's directory: a relative local path in `url:` is relative to it.
    pub spec_dir: PathBuf,
    /// Retries and timeouts, as for downloads.
    pub net: NetOptions,
}

impl GitSource {
    /// Run a git command that talks to the remote, retrying as downloads do, but not
    /// when git's own words say another attempt cannot help ([`permanent`]).
    fn with_retries(&self, what: &str, f: impl Fn() -> Result<String>) -> Result<String> {
        net::retry(&self.net, what, || {
            f().map_err(|e| if permanent(&format!("{e:#}")) { Failure::permanent(e) } else { Failure::transient(e) })
        })
    }

    /// `-c` settings for a command that talks to the remote: over HTTP, a transfer slower
    /// than 1 byte/s for the idle timeout is abandoned, as airlock's own downloads are.
    fn network_args(&self) -> Vec<String> {
        vec![
            "-c".into(),
            "http.lowSpeedLimit=1".into(),
            "-c".into(),
            format!("http.lowSpeedTime={}", self.net.timeout.as_secs().max(1)),
        ]
    }
}

/// Whether git's error says the remote will not serve this at all (it is not there, not
/// exported, refuses the credentials, or its host name does not resolve), as opposed to
/// a network failure worth another attempt.
pub fn permanent(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    if m.contains("temporary failure in name resolution") {
        return false;
    }
    [
        "repository not exported",
        "access denied",
        "repository not found",
        "not found",
        "does not appear to be a git repository",
        "not a git repository",
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
        "couldn't find remote ref",
        "returned error: 401",
        "returned error: 403",
        "returned error: 404",
        "returned error: 410",
        "name or service not known",
        "could not resolve host",
        "no address associated with hostname",
        "nodename nor servname",
        "certificate",
        "is not supported",
        "unsupported protocol",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// What git should be given for `url`: URLs and `host:path` as written, local paths
/// (absolute, or relative to the spec) as absolute paths.
pub fn fetch_url(spec_dir: &Path, url: &str) -> String {
    let scp_like = url.find(':').is_some_and(|c| !url[..c].contains('/'));
    if url.contains("://") || scp_like || Path::new(url).is_absolute() {
        return url.to_string();
    }
    std::path::absolute(spec_dir.join(url)).map_or_else(|_| url.to_string(), |p| p.display().to_string())
}

/// The result of locking one repository, with what the operator should hear about.
pub struct GitLocked {
    pub locked: LockedGit,
    pub warnings: Vec<String>,
}

impl GitSource {
    /// The cache repository for `url`.
    pub fn repo_for(root: &Path, url: &str) -> PathBuf {
        root.join(format!("{}.git", &Digest::of(url.as_bytes()).hex()[..24]))
    }

    pub fn lock(&self, entry: &GitEntry, previous: Option<&LockedGit>) -> Result<GitLocked> {
        let name = entry.name();
        let url = &fetch_url(&self.spec_dir, &entry.url);
        let repo = Self::repo_for(&self.root, &entry.url);
        git::init_bare(&repo)?;

        // What the remote has, and which of it the spec selects.
        let advertised = self.with_retries(&format!("git repository `{name}`: listing refs of {url}"), || {
            let mut args = self.network_args();
            args.extend(["ls-remote".into(), "--symref".into(), url.clone()]);
            git::run(None, &args, None)
        })?;
        let mut remote_head = None;
        let mut remote_head_oid = None;
        let mut remote: BTreeMap<String, String> = BTreeMap::new();
        for line in advertised.lines() {
            if let Some(sym) = line.strip_prefix("ref: ") {
                if let Some((target, "HEAD")) = sym.split_once('\t') {
                    remote_head = Some(target.to_string());
                }
                continue;
            }
            if let Some((oid, "HEAD")) = line.split_once('\t') {
                remote_head_oid = Some(oid.to_string());
                continue;
            }
            if let Some((oid, refname)) = line.split_once('\t')
                && refname.starts_with("refs/")
                && !refname.ends_with("^{}")
                && crate::names::git_ref(refname).is_ok()
            {
                remote.insert(refname.to_string(), oid.to_string());
            }
        }
        let patterns = entry.patterns();
        let mut warnings = Vec::new();
        for p in &patterns {
            if !remote.keys().any(|r| ref_matches(p, r)) {
                if p.contains('*') {
                    warnings.push(format!("git repository `{name}`: no ref of {url} matches `{p}`"));
                } else {
                    bail!("git repository `{name}`: {url} has no ref `{p}`");
                }
            }
        }
        let selected: BTreeMap<String, String> = remote
            .iter()
            .filter(|(r, _)| patterns.iter().any(|p| ref_matches(p, r)))
            .map(|(r, o)| (r.clone(), o.clone()))
            .collect();
        if selected.is_empty() {
            bail!("git repository `{name}`: no ref of {url} matches {patterns:?}");
        }

        // Fetch exactly those refs, forced: the cache mirrors upstream; the site decides
        // whether to accept a rewrite.
        let refspecs: String = selected.keys().map(|r| format!("+{r}:{r}\n")).collect();
        self.with_retries(&format!("git repository `{name}`: fetching from {url}"), || {
            let mut args = self.network_args();
            args.extend(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--stdin", url].map(String::from));
            git::run(Some(&repo), &args, Some(&refspecs))
        })?;

        // Prune refs deleted upstream. Refs merely not selected stay: another spec may share
        // this cache and carry them.
        let cached = git::refs(&repo)?;
        let stale: String =
            cached.keys().filter(|r| !remote.contains_key(*r)).map(|r| format!("delete {r}\n")).collect();
        if !stale.is_empty() {
            git::run(Some(&repo), &["update-ref", "--stdin"], Some(&stale))?;
        }
        let now = git::refs(&repo)?;
        for (r, oid) in &selected {
            if now.get(r) != Some(oid) {
                bail!("git repository `{name}`: {r} moved while it was fetched; run `airlock mirror` again");
            }
        }

        if let Some(prev) = previous {
            for (r, old) in &prev.refs {
                match selected.get(r) {
                    None if remote.contains_key(r) => {
                        warnings
                            .push(format!("git repository `{name}`: {r} is no longer carried: the spec dropped it"));
                    }
                    None => warnings.push(format!("git repository `{name}`: {r} was deleted upstream (was {old})")),
                    Some(new) if new == old => {}
                    Some(new) if r.starts_with("refs/tags/") => {
                        warnings
                            .push(format!("git repository `{name}`: tag {r} was moved upstream from {old} to {new}"));
                    }
                    Some(new) => {
                        if git::rev_parse(&repo, old).is_some() && !git::is_ancestor(&repo, old, new) {
                            warnings.push(format!(
                                "git repository `{name}`: {r} was force-pushed upstream ({old} -> {new}); \
                                 sites import it only with --git-allow-force"
                            ));
                        }
                    }
                }
            }
        }

        // HEAD's branch: as the remote names it, or (a bundle or a dumb server names none)
        // the carried branch at HEAD's commit, main or master first.
        let head = remote_head.filter(|h| selected.contains_key(h)).or_else(|| {
            let oid = remote_head_oid?;
            let at_head: Vec<&String> =
                selected.iter().filter(|(r, o)| r.starts_with("refs/heads/") && **o == oid).map(|(r, _)| r).collect();
            ["refs/heads/main", "refs/heads/master"]
                .iter()
                .find(|p| at_head.iter().any(|r| r == *p))
                .map(|p| p.to_string())
                .or_else(|| at_head.first().map(|r| r.to_string()))
        });
        if let Some(h) = &head {
            git::run(Some(&repo), &["symbolic-ref", "HEAD", h], None)?;
        }
        Ok(GitLocked { locked: LockedGit { name, upstream: entry.url.clone(), head, refs: selected }, warnings })
    }
}

/// A git bundle made for export, stored as a blob in the cache.
pub struct MadeBundle {
    pub digest: Digest,
    pub size: u64,
    /// The commits the bundle's header names as prerequisites.
    pub prerequisites: Vec<String>,
}

/// Write the standard git bundle for `locked` into `store`: every locked ref (and HEAD),
/// or with `base`, only what is new since those refs (an incremental bundle whose
/// prerequisites are the base's commits). `None` when nothing changed since `base`.
/// One pack thread, so the same cache gives the same bytes.
pub fn make_bundle(
    root: &Path,
    locked: &LockedGit,
    base: Option<&BTreeMap<String, String>>,
    store: &crate::store::Store,
) -> Result<Option<MadeBundle>> {
    let name = &locked.name;
    let repo = GitSource::repo_for(root, &locked.upstream);
    let now = git::refs(&repo)
        .with_context(|| format!("git repository `{name}`: the cache has no copy; run `airlock mirror`"))?;
    for (r, oid) in &locked.refs {
        if now.get(r) != Some(oid) {
            bail!("git repository `{name}`: the cache's {r} is not the locked {oid}; run `airlock mirror`");
        }
    }
    if let Some(b) = base
        && locked.refs.iter().all(|(r, oid)| b.get(r) == Some(oid))
    {
        return Ok(None);
    }
    let mut args: Vec<String> = locked.refs.keys().cloned().collect();
    if locked.head.is_some() {
        args.push("HEAD".into());
    }
    if let Some(b) = base {
        let mut old: Vec<&String> = b.values().collect();
        old.sort();
        old.dedup();
        // Only objects the cache has can be excluded (a force-push may have dropped some).
        let present = git::existing_objects(&repo, &old)?;
        args.extend(old.iter().filter(|o| present.contains(o.as_str())).map(|o| format!("^{o}")));
    }
    let mut child = git::command(Some(&repo))
        .args(["-c", "pack.threads=1", "bundle", "create", "--quiet", "-", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running git bundle create")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = args.join("\n") + "\n";
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let mut stdout = child.stdout.take().expect("piped");
    let inserted = store.insert(&mut stdout, None, &format!("the git bundle of `{name}`"));
    let _ = writer.join();
    let out = child.wait_with_output().context("running git bundle create")?;
    if !out.status.success() {
        let why = git::last_words(&out.stderr);
        if why.contains("empty bundle") {
            return Ok(None);
        }
        bail!("git repository `{name}`: git bundle create failed: {why}");
    }
    let (digest, size) = inserted?;
    let prerequisites = read_prerequisites(&mut store.open_blob(&digest)?)?;
    Ok(Some(MadeBundle { digest, size, prerequisites }))
}

/// The `-<oid>` lines of a git bundle's header.
pub fn read_prerequisites(r: &mut dyn std::io::Read) -> Result<Vec<String>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // The header ends at the first empty line; it is small, but never read past 16 MiB.
    while head.len() < (16 << 20) && r.read(&mut byte)? == 1 {
        head.push(byte[0]);
        if head.ends_with(b"\n\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    if !text.starts_with("# v2 git bundle") && !text.starts_with("# v3 git bundle") {
        bail!("not a git bundle");
    }
    Ok(text.lines().filter_map(|l| l.strip_prefix('-')).filter_map(|l| l.split(' ').next()).map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::permanent;

    #[test]
    fn git_failures_that_another_attempt_cannot_cure() {
        for m in [
            "`git ls-remote --symref git://h/x` failed: fatal: remote error: access denied or repository not exported: /x",
            "fatal: repository 'https://git.mirror.example/x/' not found",
            "fatal: unable to access 'https://git.mirror.example/x/': The requested URL returned error: 403",
            "fatal: could not read Username for 'https://git.mirror.example': terminal prompts disabled",
            "fatal: unable to look up git.mirror.example (port 9418) (Name or service not known)",
            "fatal: '/srv/x' does not appear to be a git repository",
        ] {
            assert!(permanent(m), "{m}");
        }
        for m in [
            "fatal: unable to connect to 127.0.0.1: Connection refused",
            "fatal: unable to access 'https://git.mirror.example/x/': The requested URL returned error: 503",
            "fatal: unable to look up git.mirror.example (port 9418) (Temporary failure in name resolution)",
            "error: RPC failed; curl 18 transfer closed with outstanding read data remaining",
        ] {
            assert!(!permanent(m), "{m}");
        }
    }
}
