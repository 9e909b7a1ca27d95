//! Git repositories into bare repositories in the store (`<store>/git/<name>.git`, what
//! `airlock serve` will serve), and from there, optionally, pushed to the site's git
//! remotes. A bundle's objects are unpacked first; refs change last, all in one atomic
//! transaction per repository, and only as the site allows: branches fast-forward,
//! tags never move, unless `--git-allow-force`. A missing prerequisite is reported before
//! any ref changes.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::bundle::manifest::{Artifact, Kind};
use crate::bundle::verify::VerifiedBundle;
use crate::git;
use crate::progress::Reporter;
use crate::store::Store;

use super::{Placed, Target};

const ZERO: &str = "0000000000000000000000000000000000000000";

pub struct StoreGit<'a> {
    pub store: &'a Store,
    pub allow_force: bool,
}

pub struct GitPlan {
    repos: Vec<RepoPlan>,
}

struct RepoPlan {
    name: String,
    repo: PathBuf,
    /// Created by this import: HEAD is set to the bundle's.
    new: bool,
    head: Option<String>,
    /// (ref, current value, new value, action)
    changes: Vec<(String, Option<String>, String, &'static str)>,
}

fn git_artifacts(bundle: &VerifiedBundle) -> impl Iterator<Item = &Artifact> {
    bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Git)
}

impl StoreGit<'_> {
    fn plan_repo(&self, a: &Artifact, bundle: &VerifiedBundle) -> Result<RepoPlan> {
        let repo = self.store.git_repo(&a.name);
        let exists = repo.join("HEAD").is_file();
        let plan = self.plan_repo_in(a, bundle, &repo, exists);
        if plan.is_err() && !exists {
            // Leave no empty repository behind a refused import.
            let _ = std::fs::remove_dir_all(&repo);
        }
        plan
    }

    fn plan_repo_in(
        &self,
        a: &Artifact,
        bundle: &VerifiedBundle,
        repo: &std::path::Path,
        exists: bool,
    ) -> Result<RepoPlan> {
        let name = &a.name;
        let repo = repo.to_path_buf();
        let base = || {
            bundle
                .manifest
                .base
                .as_ref()
                .map_or_else(|| "its base bundle".to_string(), |b| format!("`{}-{}`", b.name, b.version))
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
        git::init_bare(&repo)?;
        if let Some(d) = a.blobs.first() {
            let file = self.store.blob_path_for_tool(d);
            let verify = git::command(Some(&repo)).arg("bundle").arg("verify").arg("--quiet").arg(&file).output()?;
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
            // Objects only; no ref is touched until every update below is known to be allowed.
            git::run(Some(&repo), &["bundle".as_ref(), "unbundle".as_ref(), file.as_os_str()], None)
                .with_context(|| format!("git repository `{name}`: unpacking the bundle"))?;
        }
        let current = git::refs(&repo)?;
        let mut changes = Vec::new();
        for (r, new) in a.refs.iter().flatten() {
            if git::rev_parse(&repo, new).is_none() {
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
                Some(o) if git::is_ancestor(&repo, o, new) => "updated",
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
        Ok(RepoPlan { name: name.clone(), repo, new: !exists, head: a.head.clone(), changes })
    }
}

impl Target for StoreGit<'_> {
    type Plan = GitPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<GitPlan> {
        let repos = git_artifacts(bundle).map(|a| self.plan_repo(a, bundle)).collect::<Result<_>>()?;
        Ok(GitPlan { repos })
    }

    fn load(&self, plan: GitPlan, _bundle: &VerifiedBundle, reporter: &Reporter) -> Result<Vec<Placed>> {
        let bar = reporter.items("git", plan.repos.len() as u64);
        let mut placed = Vec::new();
        for p in plan.repos {
            let mut tx = String::from("start\n");
            for (r, old, new, action) in &p.changes {
                if *action != "present" {
                    tx.push_str(&format!("update {r} {new} {}\n", old.as_deref().unwrap_or(ZERO)));
                }
            }
            tx.push_str("prepare\ncommit\n");
            git::run(Some(&p.repo), &["update-ref", "--stdin"], Some(&tx))
                .with_context(|| format!("git repository `{}`: updating refs (none was changed)", p.name))?;
            if let Some(h) = &p.head {
                let points_at = git::run(Some(&p.repo), &["symbolic-ref", "--quiet", "HEAD"], None).unwrap_or_default();
                if p.new || git::rev_parse(&p.repo, points_at.trim()).is_none() {
                    git::run(Some(&p.repo), &["symbolic-ref", "HEAD", h], None)?;
                }
            }
            // Keep the repository servable over dumb HTTP as well.
            git::run(Some(&p.repo), &["update-server-info"], None)?;
            for (r, _, new, action) in p.changes {
                placed.push(Placed {
                    kind: "git".into(),
                    name: format!("{}:{r}", p.name),
                    action,
                    location: format!("{} at {new}", p.repo.display()),
                });
            }
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

    pub fn push(&self, bundle: &VerifiedBundle, reporter: &Reporter) -> Result<Vec<Placed>> {
        let artifacts: Vec<_> = git_artifacts(bundle).collect();
        let bar = reporter.items("push", artifacts.len() as u64);
        let mut placed = Vec::new();
        for a in artifacts {
            let url = self.template.replace("{name}", &a.name);
            let repo = self.store.git_repo(&a.name);
            let plus = if self.allow_force { "+" } else { "" };
            let mut args: Vec<String> = vec!["push".into(), "--atomic".into(), "--porcelain".into(), url.clone()];
            args.extend(a.refs.iter().flatten().map(|(r, _)| format!("{plus}{r}:{r}")));
            git::run(Some(&repo), &args, None).with_context(|| {
                format!(
                    "git repository `{}`: pushing to {url} failed, so nothing of it was pushed (the store is \
                     updated and repositories before it were pushed: run the import again to retry)",
                    a.name
                )
            })?;
            placed.extend(a.refs.iter().flatten().map(|(r, oid)| Placed {
                kind: "git".into(),
                name: format!("{}:{r}", a.name),
                action: "pushed",
                location: format!("{url} {oid}"),
            }));
            bar.inc(1);
        }
        Ok(placed)
    }
}
