//! The Python index that `airlock import` writes, as every installer in use reads it from
//! `airlock serve`: Debian bookworm's own pip (what `/usr/bin/python3 -m venv` bundles,
//! never upgraded), a current pip, and `uv pip install`; each over PEP 691 JSON (what they
//! ask for) and over PEP 503 HTML (through a proxy that asks for HTML only).
//!
//! The fixture has what tripped old pips: a project whose distribution name is not its
//! normalized name (`a_b` in the wheel file name and `Name: a_b` in METADATA, `a-b` on the
//! index), a dependency spelled `Dep.Two`, and PEP 658 core metadata for every wheel.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use sha2::Digest as _;

use crate::common::nginx::Nginx;
use crate::common::server::Server;
use crate::common::{TestContext, require, sh};

/// A wheel with the given METADATA name (the file name uses its `_` form).
pub(crate) fn wheel(dir: &Path, name: &str, version: &str, requires: &[&str]) -> String {
    let dist = name.replace(['-', '.'], "_").to_ascii_lowercase();
    let filename = format!("{dist}-{version}-py3-none-any.whl");
    let info = format!("{dist}-{version}.dist-info");
    let mut meta = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for r in requires {
        meta.push_str(&format!("Requires-Dist: {r}\n"));
    }
    let members = [
        (format!("{dist}/__init__.py"), format!("VERSION = {version:?}\n")),
        (format!("{info}/METADATA"), meta),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: airlock-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".into(),
        ),
    ];
    let mut record = String::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (path, data) in &members {
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data.as_bytes()));
        record.push_str(&format!("{path},sha256={h},{}\n", data.len()));
        zip.start_file(path.as_str(), opts).unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    zip.start_file(format!("{info}/RECORD"), opts).unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files").join(&filename), bytes).unwrap();
    filename
}

/// A PEP 503 tree (the upstream airlock mirrors from): `files/` and `simple/<project>/`.
fn upstream_index(dir: &Path) {
    let projects =
        [("a-b", wheel(dir, "a_b", "1.0", &["Dep.Two>=1.0"])), ("dep-two", wheel(dir, "Dep.Two", "1.0", &[]))];
    for (project, file) in &projects {
        let sha = airlock::digest::Digest::of(&std::fs::read(dir.join("files").join(file)).unwrap()).hex();
        let page = dir.join("simple").join(project);
        std::fs::create_dir_all(&page).unwrap();
        std::fs::write(
            page.join("index.html"),
            format!(
                "<!DOCTYPE html><html><body><a href=\"../../files/{file}#sha256={sha}\">{file}</a></body></html>\n"
            ),
        )
        .unwrap();
    }
    let links: String = projects.iter().map(|(p, _)| format!("<a href=\"{p}/\">{p}</a>\n")).collect();
    std::fs::write(dir.join("simple/index.html"), format!("<!DOCTYPE html><html><body>{links}</body></html>\n"))
        .unwrap();
}

/// `/usr/bin/python3 -m venv`, as a Debian user makes one: its pip is whatever Debian
/// bundles (23.0.1 on bookworm), not upgraded.
fn debian_venv(dir: &Path) -> PathBuf {
    assert!(
        Path::new("/usr/bin/python3").is_file()
            && Command::new("/usr/bin/python3").args(["-c", "import ensurepip"]).status().unwrap().success(),
        "Debian's python3-venv is not installed: run scripts/test.sh (it installs it) or apt-get install python3-venv"
    );
    let out = Command::new("/usr/bin/python3").arg("-m").arg("venv").arg(dir).output().unwrap();
    assert!(out.status.success(), "python3 -m venv: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("bin/python3")
}

#[derive(Clone, Copy, Debug)]
enum Installer {
    /// pip bundled by `/usr/bin/python3 -m venv`.
    DebianPip,
    /// The pip of the test tools (current).
    Pip,
    Uv,
}

fn install(who: Installer, debian_python: &Path, index: &str, target: &Path, work: &Path) -> Output {
    let mut c = match who {
        Installer::DebianPip | Installer::Pip => {
            let python = match who {
                Installer::DebianPip => debian_python.to_path_buf(),
                _ => {
                    require("pip");
                    PathBuf::from("python3")
                }
            };
            let mut c = Command::new(python);
            c.args(["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"]);
            c.env("PIP_CONFIG_FILE", "/dev/null");
            c
        }
        Installer::Uv => {
            require("uv");
            let mut c = Command::new("uv");
            c.args(["pip", "install", "--no-config", "--python"]).arg(debian_python);
            c.env("UV_CACHE_DIR", work.join("uv-cache")).env("UV_PYTHON_DOWNLOADS", "never");
            c
        }
    };
    c.args(["--index-url", index, "--target"]).arg(target).arg("a-b");
    for v in
        ["PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_INDEX_URL", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX"]
    {
        c.env_remove(v);
    }
    c.output().unwrap()
}

fn installed(target: &Path) -> BTreeSet<String> {
    std::fs::read_dir(target)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".dist-info").map(str::to_string))
        .collect()
}

#[test]
fn debian_pip_current_pip_and_uv_install_from_serve_over_json_and_html() {
    let cx = TestContext::new();
    cx.key();
    // The Debian venv takes a few seconds: make it while the bundle is made and imported.
    let venv = cx.path("debian-venv");
    let maker = std::thread::spawn(move || debian_venv(&venv));
    upstream_index(&cx.path("upstream"));
    let py = sh(Path::new("/"), "/usr/bin/python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'");
    let spec = cx.spec(&format!(
        "name: inst\nversion: \"1\"\npython:\n  - index: {}\n    requirements: [\"a-b\"]\n    pythons: [\"{}\"]\n    platforms: [manylinux_2_28_x86_64]\n",
        cx.path("upstream/simple").display(),
        py.trim()
    ));
    let bundle = cx.bundle(&spec, "out", &[]).join("inst-1.airlock");
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    let debian_python = maker.join().unwrap();
    let version = sh(Path::new("/"), &format!("{} -m pip --version", debian_python.display()));
    assert!(version.starts_with("pip 23.0"), "bookworm's venv bundles pip 23.0.1, this one: {version}");

    let srv = Server::start(&cx, &[]);
    let html = Nginx::proxy(&cx.path("html-proxy"), &srv.addr, &[("Accept", "text/html")]);
    let json_index = srv.url("/repository/pypi/simple/");
    let html_index = html.url("/repository/pypi/simple/");

    // What each route answers to what pip asks for: JSON from serve, HTML through the proxy;
    // both name core metadata as PEP 714 says, and only so.
    let accept = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    for (index, content_type, attr) in [
        (&json_index, "application/vnd.pypi.simple.v1+json", "\"core-metadata\""),
        (&html_index, "text/html", "data-core-metadata=\"sha256="),
    ] {
        let page = sh(cx.dir.path(), &format!("curl -sf -D - -H 'Accept: {accept}' {index}a-b/"));
        assert!(page.to_ascii_lowercase().contains(&format!("content-type: {content_type}")), "{page}");
        assert!(page.contains("a_b-1.0-py3-none-any.whl") && page.contains(attr), "{page}");
        assert!(!page.contains("dist-info-metadata"), "a legacy PEP 658 name: {page}");
    }
    // The core metadata named there is served, byte for byte the wheel's METADATA.
    let meta = sh(
        cx.dir.path(),
        &format!("curl -sf {}", srv.url("/repository/pypi/files/a-b/a_b-1.0-py3-none-any.whl.metadata")),
    );
    assert!(meta.contains("Name: a_b\n"), "{meta}");

    let want: BTreeSet<String> = ["a_b-1.0", "dep_two-1.0"].into_iter().map(String::from).collect();
    let runs: Vec<_> = [Installer::DebianPip, Installer::Pip, Installer::Uv]
        .into_iter()
        .flat_map(|who| [(who, "json", json_index.clone()), (who, "html", html_index.clone())])
        .map(|(who, form, index)| {
            let target = cx.path(&format!("site-{who:?}-{form}"));
            let (python, work) = (debian_python.clone(), cx.path(&format!("work-{who:?}-{form}")));
            std::thread::spawn(move || {
                let out = install(who, &python, &index, &target, &work);
                (who, form, out, target)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        let (who, form, out, target) = run.join().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{who:?} over {form} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        } else if installed(&target) != want {
            failures.push(format!("{who:?} over {form} installed {:?}", installed(&target)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
