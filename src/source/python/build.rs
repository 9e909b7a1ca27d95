//! What building an sdist needs, and learning an sdist's dependencies by building it.
//!
//! - `BuildSystem::of_sdist` reads `[build-system]` from the sdist's `pyproject.toml`
//!   (PEP 517/518), or gives the PEP 517 default (`setuptools>=40.8.0`, `wheel`, the
//!   legacy setuptools backend) for an sdist that has none.
//! - `Hooks` runs the build backend's PEP 517 hooks the way `pip download` does, in an
//!   isolated virtualenv built only from files already fetched for the closure (`pip
//!   install --no-index --find-links`): `get_requires_for_build_wheel`, then
//!   `prepare_metadata_for_build_wheel`, falling back to `build_wheel` and reading the
//!   wheel's METADATA.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};

/// PEP 517's default for a project without `[build-system]`.
pub const DEFAULT_REQUIRES: [&str; 2] = ["setuptools>=40.8.0", "wheel"];
const DEFAULT_BACKEND: &str = "setuptools.build_meta:__legacy__";

#[derive(Debug, Clone, PartialEq)]
pub struct BuildSystem {
    pub requires: Vec<String>,
    pub backend: String,
    pub backend_path: Vec<String>,
}

impl Default for BuildSystem {
    fn default() -> Self {
        Self {
            requires: DEFAULT_REQUIRES.iter().map(|s| s.to_string()).collect(),
            backend: DEFAULT_BACKEND.into(),
            backend_path: Vec::new(),
        }
    }
}

impl BuildSystem {
    /// Parse a `pyproject.toml`; `None` of it (or no `[build-system]`) is the default.
    pub fn parse(pyproject: Option<&str>, what: &str) -> Result<Self> {
        let Some(text) = pyproject else { return Ok(Self::default()) };
        let doc: toml::Table =
            toml::from_str(text).with_context(|| format!("{what}: pyproject.toml does not parse"))?;
        let Some(bs) = doc.get("build-system") else { return Ok(Self::default()) };
        let bs = bs.as_table().ok_or_else(|| anyhow!("{what}: pyproject.toml: [build-system] is not a table"))?;
        let strings = |key: &str| -> Result<Option<Vec<String>>> {
            match bs.get(key) {
                None => Ok(None),
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            anyhow!("{what}: pyproject.toml: build-system.{key} must be a list of strings")
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                Some(_) => bail!("{what}: pyproject.toml: build-system.{key} must be a list of strings"),
            }
        };
        let requires = strings("requires")?.unwrap_or_else(|| Self::default().requires);
        let backend = match bs.get("build-backend") {
            Some(v) => v
                .as_str()
                .ok_or_else(|| anyhow!("{what}: pyproject.toml: build-system.build-backend must be a string"))?
                .to_string(),
            None => DEFAULT_BACKEND.into(),
        };
        Ok(Self { requires, backend, backend_path: strings("backend-path")?.unwrap_or_default() })
    }

    /// The build system of an sdist file (`.tar.gz` or `.zip`).
    pub fn of_sdist(path: &Path, filename: &str) -> Result<Self> {
        let text = read_top_member(path, filename, "pyproject.toml")?;
        let text = text.map(|b| String::from_utf8_lossy(&b).into_owned());
        Self::parse(text.as_deref(), filename)
    }
}

/// `<top>/<member>` from an sdist, if it is there.
pub fn read_top_member(path: &Path, filename: &str, member: &str) -> Result<Option<Vec<u8>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {filename}"))?;
    if filename.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{filename} is not a zip archive"))?;
        let name = (0..zip.len())
            .filter_map(|i| zip.name_for_index(i)?.ok().map(|n| n.to_string()))
            .find(|n| n.split('/').nth(1) == Some(member) && n.matches('/').count() == 1);
        let Some(name) = name else { return Ok(None) };
        let mut out = Vec::new();
        zip.by_name(&name)?.take(16 << 20).read_to_end(&mut out)?;
        return Ok(Some(out));
    }
    if !filename.ends_with(".tar.gz") && !filename.ends_with(".tgz") {
        return Ok(None);
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().with_context(|| format!("{filename} is not a tar.gz"))? {
        let mut entry = entry.with_context(|| format!("reading {filename}"))?;
        let p = entry.path().with_context(|| format!("reading {filename}"))?.to_path_buf();
        let comps: Vec<_> = p.components().collect();
        if comps.len() == 2 && comps[1].as_os_str() == member {
            let mut out = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut out).with_context(|| format!("reading {filename}"))?;
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// The script that calls a backend's hooks in the sdist's unpacked tree.
const HOOK_SCRIPT: &str = r#"
import importlib, json, os, sys, tarfile, tempfile, zipfile
mode, sdist, out = sys.argv[1], sys.argv[2], sys.argv[3]
backend_name = os.environ["AIRLOCK_BACKEND"]
backend_path = json.loads(os.environ["AIRLOCK_BACKEND_PATH"])
work = tempfile.mkdtemp(prefix="airlock-hook-")
if sdist.endswith(".zip"):
    zipfile.ZipFile(sdist).extractall(work)
else:
    with tarfile.open(sdist) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(work, filter="data")
        else:
            t.extractall(work)
top = os.listdir(work)
src = os.path.join(work, top[0]) if len(top) == 1 else work
os.chdir(src)
sys.path[:0] = [os.path.join(src, p) for p in backend_path]
mod, _, attr = backend_name.partition(":")
backend = importlib.import_module(mod)
for part in attr.split(".") if attr else []:
    backend = getattr(backend, part)
if mode == "requires":
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    with open(out, "w") as f:
        json.dump(list(hook(None)) if hook else [], f)
else:
    meta_dir = tempfile.mkdtemp(prefix="airlock-meta-")
    hook = getattr(backend, "prepare_metadata_for_build_wheel", None)
    data = None
    if hook is not None:
        d = hook(meta_dir, None)
        with open(os.path.join(meta_dir, d, "METADATA"), "rb") as f:
            data = f.read()
    else:
        wheel_dir = tempfile.mkdtemp(prefix="airlock-wheel-")
        w = backend.build_wheel(wheel_dir, None, None)
        z = zipfile.ZipFile(os.path.join(wheel_dir, w))
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        data = z.read(name)
    with open(out, "wb") as f:
        f.write(data)
"#;

/// Runs PEP 517 hooks on this machine, with a virtualenv per set of build requirements.
pub struct Hooks {
    /// The interpreter named in the spec or `AIRLOCK_PYTHON`, else `python3`.
    pub python: String,
    work: tempfile::TempDir,
    /// `major.minor` -> the interpreter that has it (or why none does).
    interpreters: Mutex<HashMap<String, Result<PathBuf, String>>>,
    venvs: Mutex<HashMap<String, PathBuf>>,
    count: std::sync::atomic::AtomicUsize,
}

impl Hooks {
    pub fn new(python: Option<&str>) -> Result<Self> {
        let python = python
            .map(str::to_string)
            .or_else(|| std::env::var("AIRLOCK_PYTHON").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "python3".into());
        let work = tempfile::Builder::new().prefix("airlock-build-").tempdir().context("creating a build directory")?;
        Ok(Self { python, work, interpreters: Mutex::default(), venvs: Mutex::default(), count: Default::default() })
    }

    /// An interpreter of `minor` (`3.11`): the configured one if it is that version, else
    /// `python3.11` from PATH.
    pub fn interpreter(&self, minor: &str) -> Result<PathBuf, String> {
        if let Some(r) = self.interpreters.lock().expect("not poisoned").get(minor) {
            return r.clone();
        }
        let version_of = |cmd: &str| -> Option<String> {
            let out = Command::new(cmd)
                .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let found = match version_of(&self.python) {
            Some(v) if v == minor => Ok(PathBuf::from(&self.python)),
            have => {
                let alt = format!("python{minor}");
                if version_of(&alt).as_deref() == Some(minor) {
                    Ok(PathBuf::from(alt))
                } else {
                    Err(match have {
                        Some(v) => format!("`{}` is Python {v} and no `python{minor}` is on PATH", self.python),
                        None => format!("`{}` does not run and no `python{minor}` is on PATH", self.python),
                    })
                }
            }
        };
        self.interpreters.lock().expect("not poisoned").insert(minor.to_string(), found.clone());
        found
    }

    /// A virtualenv of `python` holding `requirements`, installed from `files` alone
    /// (`(path, filename)` of wheels and sdists already checked against the index).
    pub fn venv(&self, python: &Path, requirements: &[String], files: &[(PathBuf, String)]) -> Result<PathBuf> {
        let mut key_parts: Vec<String> = requirements.to_vec();
        key_parts.extend(files.iter().map(|(_, f)| f.clone()));
        key_parts.sort();
        let key = format!("{}\n{}", python.display(), key_parts.join("\n"));
        if let Some(v) = self.venvs.lock().expect("not poisoned").get(&key) {
            return Ok(v.clone());
        }
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.work.path().join(format!("env-{n}"));
        let links = self.work.path().join(format!("links-{n}"));
        std::fs::create_dir_all(&links).with_context(|| format!("creating {}", links.display()))?;
        for (path, name) in files {
            let from = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
            std::os::unix::fs::symlink(&from, links.join(name)).with_context(|| format!("linking {name}"))?;
        }
        // A virtualenv without pip takes 0.1 s where ensurepip takes seconds: the
        // interpreter's own pip installs into it (`pip --python`), when it has one.
        let own_pip = Command::new(python)
            .args(["-m", "pip", "--version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut c = Command::new(python);
        c.arg("-m").arg("venv");
        if own_pip {
            c.arg("--without-pip");
        }
        run(c.arg(&dir), "creating a virtualenv for a build hook")?;
        let py = dir.join("bin/python");
        if !requirements.is_empty() {
            let mut c = Command::new(if own_pip { python } else { py.as_path() });
            c.args(["-m", "pip"]);
            if own_pip {
                c.arg("--python").arg(&py);
            }
            c.args(["install", "--no-index", "--no-cache-dir", "--disable-pip-version-check", "-q"])
                .arg("--find-links")
                .arg(&links)
                .args(requirements)
                .env("PIP_CONFIG_FILE", "/dev/null")
                .env_remove("PIP_INDEX_URL")
                .env_remove("PIP_EXTRA_INDEX_URL")
                .env_remove("PIP_FIND_LINKS");
            run(
                &mut c,
                &format!("installing the build requirements {} (from the fetched files only)", requirements.join(", ")),
            )?;
        }
        self.venvs.lock().expect("not poisoned").insert(key, py.clone());
        Ok(py)
    }

    /// Run one hook (`requires` or `metadata`) of `system`'s backend on `sdist` with `venv_python`.
    pub fn run_hook(&self, venv_python: &Path, system: &BuildSystem, sdist: &Path, mode: &str) -> Result<Vec<u8>> {
        let script = self.work.path().join("hook.py");
        if !script.exists() {
            crate::store::atomic::write(&script, HOOK_SCRIPT.as_bytes())?;
        }
        let out = tempfile::NamedTempFile::new_in(self.work.path())?;
        // The hook unpacks the sdist (and may build a wheel) in temporary directories of
        // its own: they go here, and are removed with it.
        let tmp = tempfile::TempDir::new_in(self.work.path())?;
        let mut c = Command::new(venv_python);
        c.arg(&script)
            .env("TMPDIR", tmp.path())
            .arg(mode)
            .arg(sdist)
            .arg(out.path())
            .env("AIRLOCK_BACKEND", &system.backend)
            .env("AIRLOCK_BACKEND_PATH", serde_json::to_string(&system.backend_path)?)
            .env("PYTHONNOUSERSITE", "1")
            .env("PIP_NO_INDEX", "1")
            .env_remove("PYTHONPATH");
        run(&mut c, &format!("the build backend `{}` ({mode} hook)", system.backend))?;
        std::fs::read(out.path()).with_context(|| format!("reading what the {mode} hook wrote"))
    }
}

fn run(c: &mut Command, what: &str) -> Result<()> {
    let out = c.stdin(Stdio::null()).output().with_context(|| format!("{what}: cannot start {:?}", c.get_program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        bail!("{what} failed ({}): {tail}", out.status);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_system_defaults_and_parses() {
        assert_eq!(BuildSystem::parse(None, "x").unwrap(), BuildSystem::default());
        assert_eq!(BuildSystem::parse(Some("[project]\nname='x'\n"), "x").unwrap().requires, DEFAULT_REQUIRES);
        let b = BuildSystem::parse(
            Some("[build-system]\nrequires = [\"mybackend>=1\"]\nbuild-backend = \"mybackend\"\nbackend-path = [\".\"]\n"),
            "x",
        )
        .unwrap();
        assert_eq!(
            (b.requires, b.backend.as_str(), b.backend_path),
            (vec!["mybackend>=1".into()], "mybackend", vec![".".into()])
        );
        let err =
            format!("{:#}", BuildSystem::parse(Some("[build-system]\nrequires = 'x'\n"), "x-1.0.tar.gz").unwrap_err());
        assert!(err.contains("x-1.0.tar.gz") && err.contains("list of strings"), "{err}");
    }
}
