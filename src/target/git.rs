//! Git repositories into bare repositories in the store (`<store>/git/<name>.git`, what
//! `airlock serve` will serve), and from there, optionally, pushed to the site's git
//! remotes. Refs change only as the site allows: branches fast-forward, tags never move,
//! unless `--git-allow-force`. A missing prerequisite is reported before any ref changes.
//!
//! Planning changes nothing in the store, as git's own `receive-pack` quarantine does:
//! a bundle's objects are unpacked into a temporary object directory under
//! `<store>/tmp/` (the repository's objects reachable through
//! `GIT_ALTERNATE_OBJECT_DIRECTORIES`, ref updates forbidden by `GIT_QUARANTINE_PATH`),
//! or, for a repository the store does not have yet, into a whole new bare repository
//! there. Loading moves the objects in (packs before their indexes, so git never sees
//! half a pack), or renames the new repository into place, then changes every ref of the
//! repository in one atomic transaction. A failed or unfinished run leaves the temporary
//! directory, which is removed then or by the next run; undoing a loaded repository sets
//! its refs and HEAD back and takes the moved objects out again.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::bundle::manifest::{Artifact, Kind};
use crate::bundle::verify::VerifiedBundle;
use crate::git;
use crate::progress::Reporter;
use crate::store::{Store, TempDir, atomic, hook, missing_dirs, remove_empty_dirs};

use super::{Journal, Placed, Target};

const ZERO: &str = "0000000000000000000000000000000000000000";

pub struct StoreGit<'a> {
    pub store: &'a Store,
    pub allow_force: bool,
}

pub struct GitPlan {
    repos: Vec<RepoPlan>,
}

/// Where a repository's new objects wait for the load.
enum Staged {
    /// A repository the store does not have yet, built whole at `work`.
    NewRepo { _tmp: TempDir, work: PathBuf },
    /// New objects for an existing repository, in a quarantine object directory.
    Objects { _tmp: TempDir, objects: PathBuf },
}

struct RepoPlan {
    name: String,
    repo: PathBuf,
    /// None when the repository already has every object the bundle's refs name.
    staged: Option<Staged>,
    head: Option<String>,
    /// (ref, current value, new value, action)
    changes: Vec<(String, Option<String>, String, &'static str)>,
}

fn git_artifacts(bundle: &VerifiedBundle) -> impl Iterator<Item = &Artifact> {
    bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Git)
}

/// git run in one repository, optionally with a quarantine object directory.
struct Git {
    dir: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
}

impl Git {
    fn plain(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), env: Vec::new() }
    }

    /// Objects are written to `objects`; the repository's own are read through it;
    /// git refuses to update a ref.
    fn quarantined(dir: &Path, objects: &Path) -> Self {
        let env = vec![
            ("GIT_OBJECT_DIRECTORY", objects.to_path_buf()),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", dir.join("objects")),
            ("GIT_QUARANTINE_PATH", objects.to_path_buf()),
        ];
        Self { dir: dir.to_path_buf(), env }
    }

    fn command(&self) -> Command {
        let mut c = git::command(Some(&self.dir));
        c.env_remove("GIT_OBJECT_DIRECTORY").env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES");
        c.env_remove("GIT_QUARANTINE_PATH");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        git::run_command(self.command(), args, None)
    }

    fn rev_parse(&self, rev: &str) -> Option<String> {
        self.run(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{object}}")])
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Which of `oids` the repository has (through the quarantine, if any): one process
    /// for all of them.
    fn existing(&self, oids: &[&String]) -> Result<std::collections::HashSet<String>> {
        git::existing_objects_with(self.command(), oids)
    }

    fn is_ancestor(&self, a: &str, b: &str) -> bool {
        self.command()
            .args(["merge-base", "--is-ancestor", a, b])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn refs(&self) -> Result<BTreeMap<String, String>> {
        let out = self.run(&["for-each-ref", "--format=%(objectname) %(refname)", "refs/"])?;
        Ok(out.lines().filter_map(|l| l.split_once(' ')).map(|(o, n)| (n.to_string(), o.to_string())).collect())
    }

    /// HEAD's symbolic target, if it is symbolic.
    fn head(&self) -> Option<String> {
        self.run(&["symbolic-ref", "--quiet", "HEAD"]).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }
}

/// Change refs in one atomic transaction: (ref, expected old value or None for a ref
/// that must not exist, new value or None to delete).
fn transaction(repo: &Path, updates: &[(&str, Option<&str>, Option<&str>)]) -> Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut tx = String::from("start\n");
    for (r, old, new) in updates {
        // One line per command: a ref or id with a newline would add commands.
        crate::names::git_ref(r)?;
        for id in [old, new].into_iter().flatten() {
            crate::names::object_id(id)?;
        }
        match new {
            Some(n) => tx.push_str(&format!("update {r} {n} {}\n", old.unwrap_or(ZERO))),
            None => tx.push_str(&format!("delete {r} {}\n", old.unwrap_or(ZERO))),
        }
    }
    tx.push_str("prepare\ncommit\n");
    git::run(Some(repo), &["update-ref", "--stdin"], Some(&tx)).map(drop)
}

/// Order in which quarantined files move in: loose objects, then each pack before the
/// files that make git use it (its index last), as git's own quarantine migrates.
fn move_priority(rel: &Path) -> u8 {
    let name = rel.to_string_lossy();
    if !name.starts_with("pack/") {
        return 0;
    }
    match rel.extension().and_then(OsStr::to_str) {
        Some("keep") => 1,
        Some("pack") => 2,
        Some("rev") => 3,
        Some("idx") => 5,
        _ => 4,
    }
}

/// Move every file of the quarantine `from` into the object directory `to`, skipping
/// what is already there. Returns the files moved in, in order, and the directories
/// created, deepest first.
fn migrate(from: &Path, to: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(from).ok().map(Path::to_path_buf))
        .collect();
    files.sort_by_key(|rel| (move_priority(rel), rel.clone()));
    let (mut moved, mut dirs) = (Vec::new(), Vec::new());
    for rel in files {
        let dest = to.join(&rel);
        if dest.exists() {
            continue;
        }
        dirs.extend(missing_dirs(&dest));
        atomic::rename(&from.join(&rel), &dest).with_context(|| format!("moving objects into {}", to.display()))?;
        moved.push(dest);
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    Ok((moved, dirs))
}

impl StoreGit<'_> {
    fn plan_repo(&self, a: &Artifact, bundle: &VerifiedBundle) -> Result<RepoPlan> {
        let name = &a.name;
        let repo = self.store.git_repo(name);
        let exists = repo.join("HEAD").is_file();
        let base = || {
            bundle.manifest.base.as_ref().map_or_else(|| "its base bundle".to_string(), |b| format!("`{}`", b.label()))
        };
        if !exists && a.blobs.is_empty() {
            bail!(
                "git repository `{name}`: this bundle carries no new objects for it (unchanged since {}); \
                 import {} first. No ref was changed",
                base(),
                base()
            );
        }
        if !exists && !a.prerequisites.is_empty() {
            bail!(
                "git repository `{name}`: this incremental bundle needs commits the site does not have \
                 ({}); import {} first. No ref was changed",
                a.prerequisites.join(", "),
                base()
            );
        }
        let mut staged = None;
        let mut git = Git::plain(&repo);
        if !exists {
            let tmp = self.store.temp_dir()?;
            let work = tmp.path().join("repo.git");
            git::init_bare(&work)?;
            git = Git::plain(&work);
            staged = Some(Staged::NewRepo { _tmp: tmp, work });
        }
        let wanted: Vec<&String> = a.refs.iter().flatten().map(|(_, oid)| oid).collect();
        let have_all = exists && {
            let have = git.existing(&wanted)?;
            wanted.iter().all(|oid| have.contains(*oid))
        };
        if let (Some(d), false) = (a.blobs.first(), have_all) {
            let file = self.store.blob_path_for_tool(d);
            let verify = git.command().arg("bundle").arg("verify").arg("--quiet").arg(&file).output()?;
            if !verify.status.success() {
                let why = git::last_words(&verify.stderr);
                if why.contains("prerequisite") {
                    bail!(
                        "git repository `{name}`: the repository lacks commits this incremental bundle builds on \
                         ({}); import {} first. No ref was changed",
                        a.prerequisites.join(", "),
                        base()
                    );
                }
                bail!("git repository `{name}`: git rejects the bundle: {why}");
            }
            if exists {
                let tmp = self.store.temp_dir()?;
                let objects = tmp.path().join("objects");
                fs::create_dir_all(objects.join("pack")).with_context(|| format!("creating {}", objects.display()))?;
                git = Git::quarantined(&repo, &objects);
                staged = Some(Staged::Objects { _tmp: tmp, objects });
            }
            git.run(&["bundle".as_ref(), "unbundle".as_ref(), file.as_os_str()])
                .with_context(|| format!("git repository `{name}`: unpacking the bundle"))?;
        }
        let current = git.refs()?;
        let present = git.existing(&wanted)?;
        let mut changes = Vec::new();
        for (r, new) in a.refs.iter().flatten() {
            if !present.contains(new) {
                bail!("git repository `{name}`: {r} points at {new}, which neither the bundle nor the repository has");
            }
            let old = current.get(r).cloned();
            let action = match &old {
                None => "added",
                Some(o) if o == new => "present",
                Some(o) if r.starts_with("refs/tags/") => {
                    if !self.allow_force {
                        bail!(
                            "git repository `{name}`: tag {r} is {o} here and {new} in the bundle; tags are never \
                             moved unless --git-allow-force. No ref was changed"
                        );
                    }
                    "forced"
                }
                Some(o) if git.is_ancestor(o, new) => "updated",
                Some(o) => {
                    if !self.allow_force {
                        bail!(
                            "git repository `{name}`: {r} would go from {o} to {new}, which is not a fast-forward \
                             (history was rewritten upstream); pass --git-allow-force to accept it. No ref was changed"
                        );
                    }
                    "forced"
                }
            };
            changes.push((r.clone(), old, new.clone(), action));
        }
        Ok(RepoPlan { name: name.clone(), repo, staged, head: a.head.clone(), changes })
    }

    /// Load a repository the store does not have: refs and HEAD in the staged one, which
    /// then appears whole at its place.
    fn load_new<'a>(&self, p: &RepoPlan, work: &Path, journal: &mut Journal<'a>, items: Vec<Placed>) -> Result<()> {
        let name = &p.name;
        let updates: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.3 != "present")
            .map(|(r, _, n, _)| (r.as_str(), None, Some(n.as_str())))
            .collect();
        transaction(work, &updates).with_context(|| format!("git repository `{name}`: setting its refs"))?;
        if let Some(h) = &p.head {
            git::run(Some(work), &["symbolic-ref", "HEAD", h], None)?;
        }
        // Keep the repository servable over dumb HTTP as well.
        git::run(Some(work), &["update-server-info"], None)?;
        hook::pause("git-ready");
        let dirs = missing_dirs(&p.repo);
        if let Some(parent) = p.repo.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        atomic::rename(work, &p.repo).with_context(|| format!("git repository `{name}`: moving it into place"))?;
        let repo = p.repo.clone();
        journal.record(items, move || {
            fs::remove_dir_all(&repo).with_context(|| format!("removing {}", repo.display()))?;
            remove_empty_dirs(&dirs);
            Ok(())
        });
        Ok(())
    }

    /// Load into a repository the store has: objects in, then every ref at once.
    fn load_existing<'a>(
        &self,
        p: &RepoPlan,
        objects: Option<&Path>,
        journal: &mut Journal<'a>,
        items: Vec<Placed>,
    ) -> Result<()> {
        let name = &p.name;
        let repo = p.repo.clone();
        if let Some(objects) = objects {
            let (moved, dirs) = migrate(objects, &repo.join("objects"))
                .with_context(|| format!("git repository `{name}`: moving the bundle's objects in"))?;
            let r = repo.clone();
            // Objects no ref reaches change nothing a client sees; taken out again all the same.
            journal.record(Vec::new(), move || {
                for f in moved.iter().rev() {
                    let _ = fs::remove_file(f);
                }
                remove_empty_dirs(&dirs);
                git::run(Some(&r), &["update-server-info"], None).map(drop)
            });
        }
        hook::pause("git-ready");
        let plain = Git::plain(&repo);
        let old_head = plain.head();
        let updates: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.3 != "present")
            .map(|(r, o, n, _)| (r.as_str(), o.as_deref(), Some(n.as_str())))
            .collect();
        transaction(&repo, &updates)
            .with_context(|| format!("git repository `{name}`: updating refs (none was changed)"))?;
        let undo: Vec<(String, Option<String>, String)> = p
            .changes
            .iter()
            .filter(|c| c.3 != "present")
            .map(|(r, o, n, _)| (r.clone(), o.clone(), n.clone()))
            .collect();
        let (r, head_before) = (repo.clone(), old_head.clone());
        journal.record(items, move || {
            let back: Vec<_> =
                undo.iter().map(|(rf, old, new)| (rf.as_str(), Some(new.as_str()), old.as_deref())).collect();
            transaction(&r, &back)?;
            let g = Git::plain(&r);
            if let Some(h) = &head_before
                && g.head().as_ref() != Some(h)
            {
                git::run(Some(&r), &["symbolic-ref", "HEAD", h], None)?;
            }
            git::run(Some(&r), &["update-server-info"], None).map(drop)
        });
        if let Some(h) = &p.head
            && plain.rev_parse(old_head.as_deref().unwrap_or("HEAD")).is_none()
        {
            // HEAD names a branch the repository does not have (as in a new repository).
            git::run(Some(&repo), &["symbolic-ref", "HEAD", h], None)?;
        }
        git::run(Some(&repo), &["update-server-info"], None)?;
        Ok(())
    }
}

impl Target for StoreGit<'_> {
    type Plan = GitPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<GitPlan> {
        let repos = git_artifacts(bundle).map(|a| self.plan_repo(a, bundle)).collect::<Result<_>>()?;
        Ok(GitPlan { repos })
    }

    fn load<'a>(
        &'a self,
        plan: GitPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let bar = reporter.items("git", plan.repos.len() as u64);
        let mut placed = Vec::new();
        for p in plan.repos {
            let all: Vec<Placed> = p
                .changes
                .iter()
                .map(|(r, _, new, action)| Placed {
                    kind: "git".into(),
                    name: format!("{}:{r}", p.name),
                    action,
                    location: format!("{} at {new}", p.repo.display()),
                })
                .collect();
            let changed: Vec<Placed> = all.iter().filter(|x| x.action != "present").cloned().collect();
            match &p.staged {
                Some(Staged::NewRepo { work, .. }) => self.load_new(&p, work, journal, changed)?,
                Some(Staged::Objects { objects, .. }) => self.load_existing(&p, Some(objects), journal, changed)?,
                None => self.load_existing(&p, None, journal, changed)?,
            }
            hook::pause("git-refs");
            placed.extend(all);
            bar.inc(1);
        }
        Ok(placed)
    }
}

/// Push what the store's repositories now hold to the site's git remotes, named by a
/// template such as `ssh://gerrit.site.example:29418/{name}`. Atomic per repository;
/// the remote refuses non-fast-forwards and moved tags unless `allow_force`.
pub struct RemoteGit<'a> {
    pub store: &'a Store,
    pub template: String,
    pub allow_force: bool,
}

impl RemoteGit<'_> {
    pub fn check_template(template: &str) -> Result<()> {
        if !template.contains("{name}") {
            bail!("--git-push `{template}` must contain `{{name}}`, the repository's name");
        }
        Ok(())
    }

    /// Each repository pushed is recorded in `journal` as final: a remote that accepted
    /// a push keeps it.
    pub fn push(&self, bundle: &VerifiedBundle, reporter: &Reporter, journal: &mut Journal<'_>) -> Result<Vec<Placed>> {
        let artifacts: Vec<_> = git_artifacts(bundle).collect();
        let bar = reporter.items("push", artifacts.len() as u64);
        let mut placed = Vec::new();
        for a in artifacts {
            let url = self.template.replace("{name}", &a.name);
            let repo = self.store.git_repo(&a.name);
            let plus = if self.allow_force { "+" } else { "" };
            let mut args: Vec<String> = vec!["push".into(), "--atomic".into(), "--porcelain".into(), url.clone()];
            args.extend(a.refs.iter().flatten().map(|(r, _)| format!("{plus}{r}:{r}")));
            let out = git::run(Some(&repo), &args, None).with_context(|| {
                format!("git repository `{}`: pushing to {url} failed, so nothing of it was pushed", a.name)
            })?;
            // `--porcelain`: `<flag>\t<src>:<dst>\t<summary>`, flag `=` for a ref already there.
            let unchanged: Vec<&str> = out
                .lines()
                .filter_map(|l| l.strip_prefix("=\t"))
                .filter_map(|l| l.split('\t').next()?.split_once(':').map(|(_, dst)| dst))
                .collect();
            let pushed: Vec<Placed> = a
                .refs
                .iter()
                .flatten()
                .map(|(r, oid)| Placed {
                    kind: "git".into(),
                    name: format!("{}:{r}", a.name),
                    action: "pushed",
                    location: format!("{url} {oid}"),
                })
                .collect();
            journal.record_final(
                pushed
                    .iter()
                    .filter(|p| !unchanged.iter().any(|u| p.name.ends_with(&format!(":{u}"))))
                    .cloned()
                    .collect(),
                format!("pushed to {url}, which keeps it: airlock never force-pushes to take a push back"),
            );
            placed.extend(pushed);
            bar.inc(1);
        }
        Ok(placed)
    }
}
