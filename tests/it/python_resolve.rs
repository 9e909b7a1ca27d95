//! The Python resolver against pip itself: generated indexes
//! (fixtures/make-python-resolve-fixture.py) served by nginx, airlock's choices compared
//! with `pip install --dry-run --report` for the same environment; conflicts explained;
//! and sdists that must build at the site, carried with their build requirements and
//! installed offline with `pip install --no-binary` from `airlock serve`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::nginx::Nginx;
use crate::common::server::Server;
use crate::common::{TestContext, require, root, sh};

/// nginx serving a generated index at `/pypi/simple/`; the case's roots and constraints.
fn upstream(cx: &TestContext, kind: &str, extra: &[&str]) -> (Nginx, Vec<String>, Vec<String>) {
    require("python3");
    let nginx = Nginx::start(&cx.path("upstream"));
    let out = nginx.root.join("pypi");
    let status = Command::new("python3")
        .arg(root().join("fixtures/make-python-resolve-fixture.py"))
        .arg(kind)
        .arg(&out)
        .args(extra)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "make-python-resolve-fixture.py {kind} failed");
    let case: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("case.json")).unwrap()).unwrap();
    let strings = |k: &str| case[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    (nginx, strings("roots"), strings("constraints"))
}

fn quoted(v: &[String]) -> String {
    v.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", ")
}

/// A spec resolving `roots` under `constraints` (written beside it) for every pair.
fn spec(
    cx: &TestContext,
    index: &str,
    roots: &[String],
    constraints: &[String],
    pythons: &[&str],
    platforms: &[&str],
    extra: &str,
) -> PathBuf {
    std::fs::create_dir_all(cx.path("spec")).unwrap();
    std::fs::write(cx.path("spec/constraints.txt"), constraints.join("\n") + "\n").unwrap();
    cx.spec(&format!(
        "name: py\nversion: \"1\"\npython:\n  - index: {index}\n    requirements: [{}]\n    constraints: [constraints.txt]\n    pythons: [{}]\n    platforms: [{}]\n{extra}",
        quoted(roots),
        pythons.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", "),
        platforms.join(", "),
    ))
}

/// `(project, version)` pairs.
type Picks = BTreeSet<(String, String)>;

/// What pip would install for (python, platform): `(project, version)` from its report.
fn pip_report(
    cx: &TestContext,
    index: &str,
    roots: &[String],
    constraints: &Path,
    python: &str,
    platform: &str,
) -> BTreeSet<(String, String)> {
    require("python3");
    let report = cx.path(&format!("report-{python}-{platform}.json"));
    let mut c = Command::new("python3");
    c.args(["-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--no-cache-dir"])
        .args(["--disable-pip-version-check", "--no-input", "--only-binary=:all:", "--index-url", index])
        .args(["--python-version", python])
        .arg("--report")
        .arg(&report)
        .arg("-c")
        .arg(constraints);
    for p in airlock::pypi::expand_platform(platform).unwrap() {
        c.args(["--platform", &p]);
    }
    let out = c.args(roots).env("PIP_CONFIG_FILE", "/dev/null").env_remove("PIP_EXTRA_INDEX_URL").output().unwrap();
    assert_ok(&out, "pip install --dry-run --report");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    report["install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let m = &i["metadata"];
            (airlock::pypi::normalize(m["name"].as_str().unwrap()), m["version"].as_str().unwrap().to_string())
        })
        .collect()
}

/// What airlock chose for one environment label, from the lock.
fn airlock_choice(lock: &serde_json::Value, label: &str) -> BTreeSet<(String, String)> {
    lock["python"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["chosenFor"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with(&format!("{label}: ")))
        })
        .map(|p| (p["project"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
        .collect()
}

fn read_lock(spec: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap()
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn backtracks_to_the_release_pip_picks() {
    let cx = TestContext::new();
    let (up, roots, constraints) = upstream(&cx, "backtrack", &[]);
    let index = up.url("/pypi/simple/");
    let spec = spec(&cx, &index, &roots, &constraints, &["3.11"], &["manylinux_2_28_x86_64"], "");
    cx.mirror(&spec).ok();
    let lock = read_lock(&spec);
    let ours = airlock_choice(&lock, "cp311-manylinux_2_28_x86_64");
    let pips = pip_report(&cx, &index, &roots, &cx.path("spec/constraints.txt"), "3.11", "manylinux_2_28_x86_64");
    assert_eq!(ours, pips);
    assert!(ours.contains(&("glance".into(), "31.0.0".into())), "the newest glance needs a newer futurist: {ours:?}");
}

#[test]
fn an_unsatisfiable_set_shows_its_derivation() {
    let cx = TestContext::new();
    let (up, _, constraints) = upstream(&cx, "backtrack", &[]);
    let spec = spec(&cx, &up.url("/pypi/simple/"), &["glance>=32".into()], &constraints, &["3.11"], &["any"], "");
    let run = cx.mirror(&spec).fails(2, "no set of versions satisfies the requirements for cp311-any");
    for step in [
        "the requirements ask for glance>=32",
        "glance 32.0.0 needs futurist>=3.2.1",
        "the constraints pin futurist===3.0.0",
        "so glance 32.0.0 cannot be used",
    ] {
        assert!(run.stderr.contains(step), "missing `{step}`:\n{}", run.stderr);
    }
    assert!(!spec.with_extension("lock").exists());
    // --json: the same derivation, one step per item.
    let run = cx.run(&["--json", "mirror", "-f", spec.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    let v = run.json();
    assert_eq!(v["python"]["environment"], "cp311-any");
    let steps: Vec<&str> = v["python"]["derivation"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(steps.iter().any(|s| s.contains("the constraints pin futurist===3.0.0")), "{steps:?}");
}

#[test]
fn a_random_index_resolves_as_pip_does_in_every_environment() {
    let cx = TestContext::new();
    let (up, roots, constraints) = upstream(&cx, "random", &["--seed", "5", "--projects", "64"]);
    let projects =
        std::fs::read_dir(up.root.join("pypi/simple")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
    assert!(projects >= 60, "{projects} projects");
    let index = up.url("/pypi/simple/");
    let (pythons, platforms) = (["3.11", "3.12"], ["manylinux_2_28_x86_64", "manylinux_2_17_aarch64"]);
    let spec = spec(&cx, &index, &roots, &constraints, &pythons, &platforms, "    sdist: never\n");
    cx.mirror(&spec).ok();
    let lock = read_lock(&spec);
    let c = cx.path("spec/constraints.txt");
    let pips: Vec<((String, String), Picks)> = std::thread::scope(|s| {
        let handles: Vec<_> = pythons
            .iter()
            .flat_map(|py| platforms.iter().map(move |pl| (*py, *pl)))
            .map(|(py, pl)| {
                let (cx, index, roots, c) = (&cx, &index, &roots, &c);
                s.spawn(move || ((py.to_string(), pl.to_string()), pip_report(cx, index, roots, c, py, pl)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut differ = 0;
    for ((py, pl), pip) in &pips {
        let label = format!("cp{}-{pl}", py.replace('.', ""));
        let ours = airlock_choice(&lock, &label);
        assert_eq!(&ours, pip, "{label}");
        differ += usize::from(pips.iter().any(|(_, other)| other != pip));
    }
    assert!(differ > 0, "the environments should not all resolve alike");
}

/// setuptools and wheel, downloaded once by scripts/test.sh (pinned).
fn build_wheels() -> PathBuf {
    let dir = root().join("target/test-tools/wheels");
    let have = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert!(have >= 2, "{} lacks setuptools and wheel: run scripts/test.sh (it downloads them once)", dir.display());
    dir
}

fn host() -> (String, String) {
    let py = sh(Path::new("."), "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'");
    (py.trim().to_string(), sh(Path::new("."), "uname -m").trim().to_string())
}

#[test]
fn sdists_carry_their_build_requirements_and_install_offline() {
    let cx = TestContext::new();
    cx.key();
    let wheels = build_wheels();
    let (up, roots, _) = upstream(&cx, "build", &["--wheels", wheels.to_str().unwrap()]);
    let (py, arch) = host();
    let platform = format!("manylinux_2_28_{arch}");
    let spec = spec(&cx, &up.url("/pypi/simple/"), &roots, &[], &[&py], &[&platform], "");
    let out = cx.bundle(&spec, "out", &[]);
    let lock = read_lock(&spec);
    let role = |project: &str| -> Option<String> {
        let p = lock["python"].as_array().unwrap().iter().find(|p| p["project"] == project)?;
        Some(p["role"].as_str().unwrap_or("runtime").to_string())
    };
    for p in ["mybackend", "mybackend-helper", "setuptools", "wheel"] {
        assert_eq!(role(p).as_deref(), Some("build"), "{p}");
    }
    for p in ["aldemo-built", "aldemo-legacy-src", "aldemo-dynamic", "aldemo-dep"] {
        assert_eq!(role(p).as_deref(), Some("runtime"), "{p}");
    }
    let dep = lock["python"].as_array().unwrap().iter().find(|p| p["project"] == "aldemo-dep").unwrap();
    assert!(dep["chosenFor"][0].as_str().unwrap().contains("from aldemo-dynamic 1.0"), "{dep}");

    cx.run(&["import", out.join("py-1.airlock").to_str().unwrap()]).ok();
    drop(up); // offline from here: only the served index remains
    let srv = Server::start(&cx, &[]);
    let target = cx.path("site-packages");
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"])
        .args(["--index-url", &srv.url("/repository/pypi/simple/")])
        .args(["--no-binary", "aldemo-built,aldemo-legacy-src,aldemo-dynamic", "--target"])
        .arg(&target)
        .args(&roots)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert_ok(&out, "pip install --no-binary from airlock serve");
    let installed: BTreeSet<String> = std::fs::read_dir(&target)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".dist-info").map(str::to_string))
        .collect();
    for d in ["aldemo_built-1.0", "aldemo_legacy_src-1.0", "aldemo_dynamic-1.0", "aldemo_dep-1.0"] {
        assert!(installed.contains(d), "{d} not in {installed:?}");
    }
}

#[test]
fn dynamic_metadata_off_or_without_a_python_says_so_once() {
    let cx = TestContext::new();
    let (up, _, _) = upstream(&cx, "build", &["--wheels", build_wheels().to_str().unwrap()]);
    let index = up.url("/pypi/simple/");
    let roots = vec!["aldemo-dynamic".to_string()];
    let spec1 = spec(
        &cx,
        &index,
        &roots,
        &[],
        &["3.11"],
        &["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"],
        "    prepare-metadata: false\n",
    );
    let run = cx.mirror(&spec1).ok();
    assert_eq!(run.stderr.matches("aldemo_dynamic-1.0.tar.gz").count(), 1, "one warning per mirror:\n{}", run.stderr);
    assert!(run.stderr.contains("prepare-metadata: false"), "{}", run.stderr);
    assert!(!read_lock(&spec1)["python"].as_array().unwrap().iter().any(|p| p["project"] == "aldemo-dep"));

    // A target no interpreter here has: the error names the sdist and what to set.
    let spec2 = spec(&cx, &index, &roots, &[], &["3.99"], &["any"], "");
    let run = cx.mirror(&spec2).fails(2, "aldemo_dynamic-1.0.tar.gz");
    assert!(run.stderr.contains("python3.99") && run.stderr.contains("AIRLOCK_PYTHON"), "{}", run.stderr);
}

#[test]
fn an_index_that_is_down_shows_the_root_cause() {
    let cx = TestContext::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let index = format!("http://127.0.0.1:{port}/simple/");
    let spec = spec(&cx, &index, &["glance".into()], &[], &["3.11"], &["any"], "");
    let run = cx.run(&["mirror", "--retries", "0", "-f", spec.to_str().unwrap()]);
    let run = run.fails(2, "glance");
    assert!(run.stderr.to_lowercase().contains("connection refused"), "{}", run.stderr);
}
