//! Shared test scaffolding: an isolated airlock environment per test, helpers that run the
//! real binary, and checks every test relies on (schema validation of what export writes).

#![allow(dead_code)]

pub mod apt;
pub mod daemon;
pub mod gitd;
pub mod http;
pub mod nginx;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod snapshot;
pub mod tarhack;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail loudly when a tool the test needs is missing: tests never skip silently.
pub fn require(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
    assert!(
        found,
        "`{tool}` is not installed: run scripts/test.sh (it installs the test dependencies) or apt-get install it"
    );
}

/// One isolated airlock world: its own config (keys, trust), cache and store.
pub struct TestContext {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Assert a failure with `code`, reported on exactly one stderr line containing `needle`.
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "wrong exit status\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(lines[0].contains(needle), "error does not mention `{needle}`:\n{}", lines[0]);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl TestContext {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config(&self) -> PathBuf {
        self.path("config")
    }
    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }
    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.path("home"))
            .env("AIRLOCK_CONFIG_DIR", self.config())
            .env("AIRLOCK_CACHE_DIR", self.cache())
            .env("AIRLOCK_STORE", self.store());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.args(args).output().unwrap())
    }

    /// Generate an unencrypted key pair and trust it.
    pub fn key(&self) -> PathBuf {
        self.run(&["key", "generate", "--no-password", "--trust"]).ok();
        self.config().join("keys/airlock.pub")
    }

    /// Copy the bundled fixtures (spec + files) into this context; returns the spec path.
    /// The fixtures carry Debian packages, so the site's apt signing key is made too.
    pub fn fixtures(&self) -> PathBuf {
        let dest = self.path("spec");
        copy_dir(&root().join("fixtures"), &dest);
        let _ = std::fs::remove_file(dest.join("airlock.lock"));
        if !self.config().join("keys/apt.key").exists() {
            self.run(&["key", "apt", "generate", "--no-password"]).ok();
        }
        dest.join("airlock.yaml")
    }

    /// Write a spec into this context; returns its path.
    pub fn spec(&self, yaml: &str) -> PathBuf {
        let p = self.path("spec/airlock.yaml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, yaml).unwrap();
        p
    }

    pub fn mirror(&self, spec: &Path) -> Run {
        self.run(&["mirror", "-f", spec.to_str().unwrap()])
    }

    /// mirror + export with extra export args; returns the export's output directory.
    /// Every manifest and lock written is validated against bundle-schema/.
    pub fn bundle(&self, spec: &Path, out: &str, extra: &[&str]) -> PathBuf {
        self.mirror(spec).ok();
        let lock = spec.with_extension("lock");
        validate_json(&lock, "lock.schema.json");
        let out_dir = self.path(out);
        let mut args = vec!["export", "--lock", lock.to_str().unwrap(), "-o", out_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args).ok();
        let unpacked = self.path(&format!("{out}.unpacked-manifest"));
        let bundle = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".airlock") || p.to_string_lossy().ends_with(".airlock.001"))
            .expect("export wrote a bundle");
        let stream = if bundle.to_string_lossy().ends_with(".001") {
            let mut parts: Vec<_> = std::fs::read_dir(&out_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e.len() == 3 && e.to_string_lossy().chars().all(|c| c.is_ascii_digit()))
                })
                .collect();
            parts.sort();
            parts.iter().flat_map(|p| std::fs::read(p).unwrap()).collect()
        } else {
            std::fs::read(&bundle).unwrap()
        };
        let manifest = tarhack::members(&tarhack::plain(&stream)).into_iter().next().expect("a first member");
        assert_eq!(manifest.0, "manifest.json");
        std::fs::write(&unpacked, &manifest.1).unwrap();
        validate_json(&unpacked, "manifest.schema.json");
        out_dir
    }

    /// Files under the store's raw repository and blob directory (what import changed).
    pub fn store_files(&self) -> Vec<String> {
        let mut v: Vec<_> = walkdir::WalkDir::new(self.store())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(self.store()).unwrap().to_string_lossy().into_owned())
            .filter(|p| p.starts_with("repository/") || p.starts_with("blobs/"))
            .collect();
        v.sort();
        v
    }
}

/// What a lock holds, counted as airlock reports a bundle made from it: the bundle has one
/// artifact per file, git repository, image, Python file and Debian package, and a first
/// import adds each file, git ref, image, Python file and Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub files: usize,
    pub git: usize,
    pub git_refs: usize,
    pub images: usize,
    pub python: usize,
    pub debian: usize,
}

impl Locked {
    /// The lock `airlock mirror` wrote beside `spec`.
    #[track_caller]
    pub fn of(spec: &Path) -> Self {
        let lock = airlock::lock::Lock::load(&spec.with_extension("lock")).unwrap();
        Self {
            files: lock.artifacts.len(),
            git: lock.git.len(),
            git_refs: lock.git.iter().map(|g| g.refs.len()).sum(),
            images: lock.images.len(),
            python: lock.python.len(),
            debian: lock.debian.iter().map(|d| d.packages.len()).sum(),
        }
    }

    /// The artifacts of a bundle of the whole lock.
    pub fn artifacts(&self) -> usize {
        self.files + self.git + self.images + self.python + self.debian
    }

    /// What a first import of such a bundle adds.
    pub fn added(&self) -> usize {
        self.files + self.git_refs + self.images + self.python + self.debian
    }
}

/// Validate a JSON file against a schema in bundle-schema/.
#[track_caller]
pub fn validate_json(file: &Path, schema: &str) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("bundle-schema").join(schema)).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<_> = validator.iter_errors(&v).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{} does not match {schema}: {errors:?}", file.display());
}

pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Run a shell command in `dir`, asserting success; returns stdout.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> String {
    let o = Command::new("bash").arg("-euo").arg("pipefail").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(
        o.status.success(),
        "`{script}` failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
