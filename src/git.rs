//! Running the `git` CLI. The connected side always has git, and git's own fetch and
//! `bundle create` are far faster than libgit2's (thin packs, reused deltas), so airlock
//! drives the CLI; this module is the only place that spawns it.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// A `git` command with a stable, non-interactive environment.
pub fn command(repo: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(r) = repo {
        c.arg("-C").arg(r);
    }
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null());
    c
}

/// Run git; return stdout. On failure the error carries git's own last words.
pub fn run<S: AsRef<OsStr>>(repo: Option<&Path>, args: &[S], stdin: Option<&str>) -> Result<String> {
    run_command(command(repo), args, stdin)
}

/// [`run`] with a command built by the caller (from [`command`], with its own environment).
pub fn run_command<S: AsRef<OsStr>>(mut c: Command, args: &[S], stdin: Option<&str>) -> Result<String> {
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child: Child = c.spawn().context("running git (is it installed?)")?;
    // Write stdin from a thread of its own: git may fill its stdout pipe before it has
    // read all of its input.
    let writer = stdin.map(|input| {
        let mut w = child.stdin.take().expect("piped");
        let input = input.to_string();
        std::thread::spawn(move || w.write_all(input.as_bytes()))
    });
    let out = child.wait_with_output().context("running git")?;
    if !out.status.success() {
        // The command as the user would type it: without the `-c key=value` settings.
        let mut words = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned());
        let mut shown: Vec<String> = Vec::new();
        while let Some(w) = words.next() {
            if w == "-c" {
                words.next();
            } else if shown.len() < 3 {
                shown.push(w);
            }
        }
        bail!("`git {}` failed: {}", shown.join(" "), last_words(&out.stderr));
    }
    if let Some(w) = writer {
        w.join().map_err(|_| anyhow::anyhow!("writing to git"))?.context("writing to git")?;
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The meaningful part of git's stderr, on one line.
pub fn last_words(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("hint:")).collect();
    match lines.iter().position(|l| l.starts_with("fatal:") || l.starts_with("error:")) {
        Some(i) => lines[i..].join("; "),
        None => lines.join("; "),
    }
}

/// Is `a` an ancestor of (or equal to) `b` in `repo`?
pub fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    command(Some(repo))
        .args(["merge-base", "--is-ancestor", a, b])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The object `rev` names in `repo`, if any.
pub fn rev_parse(repo: &Path, rev: &str) -> Option<String> {
    run(Some(repo), &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{object}}")], None)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Which of `oids` exist in `repo`, in one `git cat-file --batch-check`.
pub fn existing_objects(repo: &Path, oids: &[&String]) -> Result<std::collections::HashSet<String>> {
    existing_objects_with(command(Some(repo)), oids)
}

/// [`existing_objects`] with a command built by the caller. Only full object ids are
/// looked up (anything else, such as a ref name or a line break, is never "existing").
pub fn existing_objects_with(c: Command, oids: &[&String]) -> Result<std::collections::HashSet<String>> {
    let ids: Vec<&String> = oids.iter().copied().filter(|o| crate::names::object_id(o).is_ok()).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let input: String = ids.iter().map(|o| format!("{o}\n")).collect();
    let out = run_command(c, &["cat-file", "--batch-check=%(objectname)"], Some(&input))?;
    Ok(out.lines().filter(|l| !l.ends_with(" missing")).map(str::to_string).collect())
}

/// Every ref under `refs/` in `repo`: name -> object id.
pub fn refs(repo: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let out = run(Some(repo), &["for-each-ref", "--format=%(objectname) %(refname)", "refs/"], None)?;
    Ok(out.lines().filter_map(|l| l.split_once(' ')).map(|(oid, name)| (name.to_string(), oid.to_string())).collect())
}

/// `git init --bare` unless `repo` already is one.
pub fn init_bare(repo: &Path) -> Result<()> {
    if repo.join("HEAD").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(repo).with_context(|| format!("creating {}", repo.display()))?;
    run(None, &[OsStr::new("init"), OsStr::new("--bare"), OsStr::new("--quiet"), repo.as_os_str()], None)?;
    Ok(())
}

/// What `git http-backend` may do for one request.
#[derive(Debug, Clone, Copy)]
pub struct HttpBackend {
    /// Run receive-pack (a push the server has authorized).
    pub push: bool,
    /// Let a push rewrite history or delete refs.
    pub allow_force: bool,
}

impl HttpBackend {
    /// `git http-backend`, the CGI program behind git's smart HTTP, over the bare
    /// repositories under `project_root` (`repo` is the one this request is for). The
    /// caller adds the CGI variables of the request (`REQUEST_METHOD`, `PATH_INFO`,
    /// `QUERY_STRING`, `CONTENT_TYPE`, `GIT_PROTOCOL`, ...) and pipes the body.
    ///
    /// upload-pack serves clones and fetches, shallow and partial (`--filter`) ones too,
    /// over protocol v2. receive-pack runs only when `push`, and then only fast-forwards
    /// and never deletes unless `allow_force`; after a push git updates the dumb-HTTP
    /// files (`receive.updateServerInfo`). Only the configuration given here applies: not
    /// the system's, nor the serving user's.
    pub fn command(&self, project_root: &Path, repo: &Path) -> Command {
        let mut c = command(None);
        c.arg("http-backend")
            .env("GIT_PROJECT_ROOT", project_root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_CONFIG_PARAMETERS");
        let flag = |b: bool| if b { "true" } else { "false" };
        let repo = repo.to_string_lossy();
        let config = [
            ("http.uploadpack", "true"),
            ("http.receivepack", flag(self.push)),
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("receive.denyNonFastForwards", flag(!self.allow_force)),
            ("receive.denyDeletes", flag(!self.allow_force)),
            ("receive.updateServerInfo", "true"),
            // The repository may belong to the user that imports, not the one that serves.
            ("safe.directory", &*repo),
        ];
        c.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            c.env(format!("GIT_CONFIG_KEY_{i}"), k).env(format!("GIT_CONFIG_VALUE_{i}"), v);
        }
        c
    }
}
