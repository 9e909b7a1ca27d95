//! Python packages end to end: a fixture index (fixtures/make-python-fixture.py) served by
//! nginx as the upstream; mirror -> export -> verify -> import; then real `pip install`
//! from the imported index (through `airlock serve` and through plain nginx), uploads into
//! a real pypiserver, and the failures a user must see clearly.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::nginx::Nginx;
use crate::common::server::{Server, TOKEN};
use crate::common::{TestContext, require, root, sh};

/// The host's Python (`3.11`) and CPU (`x86_64`): pip installs for this environment.
fn host() -> (String, String) {
    require("python3");
    let py = sh(Path::new("."), "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'");
    let arch = sh(Path::new("."), "uname -m");
    (py.trim().to_string(), arch.trim().to_string())
}

fn other_arch(arch: &str) -> &'static str {
    if arch == "aarch64" { "x86_64" } else { "aarch64" }
}

/// nginx serving the fixture index at `/pypi/simple/`.
fn upstream(cx: &TestContext) -> Nginx {
    let nginx = Nginx::start(&cx.path("upstream"));
    let out = nginx.root.join("pypi");
    let status = Command::new("python3")
        .arg(root().join("fixtures/make-python-fixture.py"))
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "make-python-fixture.py failed");
    nginx
}

/// The demo index carries no build backend: these specs carry runtime closures only
/// (python_resolve.rs tests build requirements).
fn py_spec(cx: &TestContext, index: &str, requirements: &[&str], extra: &str) -> std::path::PathBuf {
    let (py, arch) = host();
    let extra = format!("    build-requirements: false\n{extra}");
    let reqs: Vec<String> = requirements.iter().map(|r| format!("'{r}'")).collect();
    cx.spec(&format!(
        "name: py\nversion: \"1\"\npython:\n  - index: {index}\n    requirements: [{}]\n    pythons: [\"{py}\"]\n    platforms: [manylinux_2_28_{arch}, manylinux_2_28_{}]\n{extra}",
        reqs.join(", "),
        other_arch(&arch)
    ))
}

/// `pip install --only-binary :all:` from `index` alone, into `target`.
fn pip_install(index: &str, target: &Path, reqs: &[&str]) -> Output {
    require("python3");
    Command::new("python3")
        .args(["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"])
        .args(["--index-url", index, "--only-binary", ":all:", "--target"])
        .arg(target)
        .args(reqs)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap()
}

/// The distributions pip installed into `target`: `name-version`.
fn installed(target: &Path) -> BTreeSet<String> {
    std::fs::read_dir(target)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".dist-info").map(str::to_string))
        .collect()
}

fn locked_files(lock: &Path) -> BTreeSet<String> {
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(lock).unwrap()).unwrap();
    lock["python"].as_array().unwrap().iter().map(|p| p["filename"].as_str().unwrap().to_string()).collect()
}

#[track_caller]
fn assert_pip_ok(out: &Output) {
    assert!(
        out.status.success(),
        "pip failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn closure_installs_with_pip_from_the_imported_index() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx);
    let (py, arch) = host();
    let spec = py_spec(&cx, &up.url("/pypi/simple"), &["aldemo-app", "aldemo-srconly"], "");
    let out = cx.bundle(&spec, "out", &[]);

    // The closure for the target environments, and nothing else.
    let files = locked_files(&spec.with_extension("lock"));
    let cp = format!("cp{}", py.replace('.', ""));
    let mut want: BTreeSet<String> = [
        "aldemo_app-2.0-py3-none-any.whl",
        "aldemo_extra-1.0-py3-none-any.whl",
        "aldemo_speedup-1.0-py3-none-any.whl",
        "aldemo_lib-1.1-py3-none-any.whl",
        "aldemo_srconly-1.0.tar.gz",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for a in [arch.as_str(), other_arch(&arch)] {
        want.insert(format!("aldemo_native-1.0-{cp}-{cp}-manylinux_2_17_{a}.manylinux2014_{a}.whl"));
    }
    if py.as_str() >= "3.10" {
        want.insert("aldemo_new-1.0-py3-none-any.whl".into());
    }
    assert_eq!(files, want, "win32-only, python<3.8, yanked and pre-release files must stay out");

    let bundle = out.join("py-1.airlock");
    cx.run(&["verify", bundle.to_str().unwrap()]).ok();
    let import = cx.run(&["import", "--json", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(import["added"], want.len());

    // pip, through airlock serve (PEP 691 JSON) and through plain nginx (PEP 503 HTML).
    let srv = Server::start(&cx, &[]);
    let target = cx.path("site-packages");
    assert_pip_ok(&pip_install(&srv.url("/repository/pypi/simple/"), &target, &["aldemo-app"]));
    let mut expected: BTreeSet<String> =
        ["aldemo_app-2.0", "aldemo_extra-1.0", "aldemo_lib-1.1", "aldemo_native-1.0", "aldemo_speedup-1.0"]
            .into_iter()
            .map(String::from)
            .collect();
    if py.as_str() >= "3.10" {
        expected.insert("aldemo_new-1.0".into());
    }
    assert_eq!(installed(&target), expected);

    let static_site = Nginx::start(&cx.path("static"));
    std::os::unix::fs::symlink(cx.store().join("repository/pypi"), static_site.root.join("pypi")).unwrap();
    let target2 = cx.path("site-packages-2");
    assert_pip_ok(&pip_install(&static_site.url("/pypi/simple/"), &target2, &["aldemo-app"]));
    assert_eq!(installed(&target2), expected);

    // The JSON page carries hashes, sizes and core metadata that match the files.
    let page = sh(
        cx.dir.path(),
        &format!(
            "curl -sf -H 'Accept: application/vnd.pypi.simple.v1+json' {}",
            srv.url("/repository/pypi/simple/aldemo-app/")
        ),
    );
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let f = &page["files"][0];
    assert_eq!(f["filename"], "aldemo_app-2.0-py3-none-any.whl");
    assert_eq!(f["requires-python"], ">=3.8");
    let sha = f["hashes"]["sha256"].as_str().unwrap();
    let got = sh(
        cx.dir.path(),
        &format!(
            "curl -sf {} | sha256sum",
            srv.url("/repository/pypi/files/aldemo-app/aldemo_app-2.0-py3-none-any.whl")
        ),
    );
    assert!(got.starts_with(sha), "{got} vs {sha}");
    let meta = f["core-metadata"]["sha256"].as_str().unwrap();
    let got = sh(
        cx.dir.path(),
        &format!(
            "curl -sf {} | sha256sum",
            srv.url("/repository/pypi/files/aldemo-app/aldemo_app-2.0-py3-none-any.whl.metadata")
        ),
    );
    assert!(got.starts_with(meta), "{got} vs {meta}");

    // A second bundle adds to the index; the first one's files stay.
    let cx2 = TestContext { dir: tempfile::tempdir().unwrap() };
    std::fs::create_dir_all(cx2.config()).unwrap();
    crate::common::copy_dir(&cx.config(), &cx2.config());
    let spec2 = py_spec(&cx2, &up.url("/pypi/simple"), &["aldemo-app==1.0"], "");
    let out2 = cx2.bundle(&spec2, "out", &["--version", "2"]);
    cx.run(&["import", out2.join("py-2.airlock").to_str().unwrap()]).ok();
    let lib = sh(cx.dir.path(), &format!("curl -sf {}", srv.url("/repository/pypi/simple/aldemo-lib/")));
    assert!(
        lib.contains("aldemo_lib-1.0-py3-none-any.whl") && lib.contains("aldemo_lib-1.1-py3-none-any.whl"),
        "{lib}"
    );
    let target3 = cx.path("site-packages-3");
    assert_pip_ok(&pip_install(&srv.url("/repository/pypi/simple/"), &target3, &["aldemo-app==1.0"]));
    assert!(installed(&target3).contains("aldemo_lib-1.0"));

    // The imported index is itself a PEP 691 upstream: mirroring from it finds the same files.
    let cx3 = TestContext::new();
    let spec3 = py_spec(&cx3, &srv.url("/repository/pypi/simple/"), &["aldemo-app", "aldemo-srconly"], "");
    cx3.mirror(&spec3).ok();
    assert_eq!(locked_files(&spec3.with_extension("lock")), want);
}

#[test]
fn upstream_hash_mismatch_fails_clearly() {
    let cx = TestContext::new();
    let up = upstream(&cx);
    let spec = py_spec(&cx, &up.url("/pypi/simple"), &["aldemo-app"], "");
    // Replace a wheel's bytes after the index recorded its hash.
    let wheel = up.root.join("pypi/files/aldemo_lib-1.1-py3-none-any.whl");
    let mut bytes = std::fs::read(&wheel).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&wheel, bytes).unwrap();
    let run = cx.mirror(&spec).fails(2, "sha256 mismatch for http");
    assert!(run.stderr.contains("aldemo_lib-1.1-py3-none-any.whl"), "{}", run.stderr);
    assert!(!spec.with_extension("lock").exists(), "no lock is written when a file is bad");

    // Core metadata (PEP 658) is checked against the index's hash too.
    let cx2 = TestContext::new();
    let up2 = upstream(&cx2);
    let spec2 = py_spec(&cx2, &up2.url("/pypi/simple"), &["aldemo-app"], "");
    std::fs::write(
        up2.root.join("pypi/files/aldemo_app-2.0-py3-none-any.whl.metadata"),
        b"Metadata-Version: 2.1\nName: aldemo-app\nVersion: 2.0\nRequires-Dist: evil\n",
    )
    .unwrap();
    let run = cx2.mirror(&spec2).fails(2, "aldemo_app-2.0-py3-none-any.whl.metadata: the index says");
    assert!(!run.stderr.contains("evil"));

    // A remote index cannot point the mirror at files of this machine.
    let cx3 = TestContext::new();
    let up3 = upstream(&cx3);
    let secret = cx3.path("secret.tar.gz");
    std::fs::write(&secret, b"not for the index").unwrap();
    let hex = airlock::digest::Digest::of(b"not for the index").hex();
    std::fs::write(
        up3.root.join("pypi/simple/aldemo-srconly/index.html"),
        format!("<a href=\"file://{}#sha256={hex}\">aldemo_srconly-1.0.tar.gz</a>\n", secret.display()),
    )
    .unwrap();
    let spec3 = py_spec(&cx3, &up3.url("/pypi/simple"), &["aldemo-srconly"], "");
    cx3.mirror(&spec3).fails(2, "no index offers project `aldemo-srconly`");
    assert!(!cx3.cache().join("blobs/sha256").join(&hex).exists(), "the local file was not copied");
}

#[test]
fn unsatisfiable_requirement_names_package_environment_and_files() {
    let cx = TestContext::new();
    let up = upstream(&cx);
    let index = up.url("/pypi/simple");
    let spec = cx.spec(&format!(
        "name: py\npython:\n  - index: {index}\n    requirements: [aldemo-native, aldemo-lib]\n    pythons: ['3.12']\n    platforms: [win_arm64]\n    sdist: never\n"
    ));
    let run = cx.mirror(&spec).fails(2, "no file of `aldemo-native` fits cp312-win_arm64");
    assert!(run.stderr.contains("aldemo_native-1.0-cp312-cp312-win_amd64.whl"), "{}", run.stderr);
    assert!(!spec.with_extension("lock").exists());

    // --allow-missing carries the rest and says what it left out.
    let run = cx.run(&["mirror", "--allow-missing", "-f", spec.to_str().unwrap()]).ok();
    assert!(run.stderr.contains("warning") && run.stderr.contains("aldemo-native"), "{}", run.stderr);
    assert_eq!(
        locked_files(&spec.with_extension("lock")),
        BTreeSet::from(["aldemo_lib-1.1-py3-none-any.whl".to_string()])
    );

    // An unknown project is named too.
    let spec = cx.spec(&format!(
        "name: py\npython:\n  - index: {index}\n    requirements: [aldemo-nonexistent]\n    pythons: ['3.12']\n"
    ));
    cx.mirror(&spec).fails(2, "no index offers project `aldemo-nonexistent`");
}

#[test]
fn constraints_in_upper_constraints_style_pin_per_python() {
    let cx = TestContext::new();
    let up = upstream(&cx);
    let (py, _) = host();
    std::fs::create_dir_all(cx.path("spec")).unwrap();
    std::fs::write(
        cx.path("spec/upper-constraints.txt"),
        format!("# pins\naldemo-lib===1.0;python_version=='{py}'\naldemo-lib===1.1;python_version=='3.6'\naldemo-unused===9\n"),
    )
    .unwrap();
    let spec = cx.spec(&format!(
        "name: py\npython:\n  - index: {}\n    requirements: ['aldemo-lib>=1.0']\n    constraints: [upper-constraints.txt]\n    pythons: ['{py}']\n",
        up.url("/pypi/simple")
    ));
    cx.mirror(&spec).ok();
    assert_eq!(
        locked_files(&spec.with_extension("lock")),
        BTreeSet::from(["aldemo_lib-1.0-py3-none-any.whl".to_string()])
    );
    // A constraint the requirements contradict is an error naming both, as a derivation.
    let spec = cx.spec(&format!(
        "name: py\npython:\n  - index: {}\n    requirements: ['aldemo-lib>=1.1']\n    constraints: [upper-constraints.txt]\n    pythons: ['{py}']\n",
        up.url("/pypi/simple")
    ));
    let run = cx.mirror(&spec).fails(2, "the constraints pin aldemo-lib===1.0");
    assert!(run.stderr.contains("the requirements ask for aldemo-lib>=1.1"), "{}", run.stderr);
}

/// A real pypiserver with htpasswd auth, on an ephemeral port.
struct PyPiServer {
    child: std::process::Child,
    port: u16,
}

impl PyPiServer {
    fn start(dir: &Path) -> Self {
        require("pypi-server");
        require("htpasswd");
        std::fs::create_dir_all(dir.join("packages")).unwrap();
        sh(dir, "htpasswd -b -c htpasswd uploader 'upload-pass' 2>/dev/null");
        // Port 0: it takes a free port itself, read back from the kernel.
        let log = dir.join("pypiserver.log");
        let mut child = Command::new("pypi-server")
            .current_dir(dir)
            .args(["run", "-i", "127.0.0.1", "-p", "0", "-P", "htpasswd", "-a", "update"])
            .args(["--disable-fallback", "packages"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("pypi-server starts");
        let port = crate::common::daemon::port_of(&mut child, "pypi-server", &log, std::time::Duration::from_secs(20));
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PyPiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn uploads_into_pypiserver_and_skips_what_it_has() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx);
    let spec = py_spec(&cx, &up.url("/pypi/simple"), &["aldemo-app", "aldemo-srconly"], "");
    let bundle = cx.bundle(&spec, "out", &[]).join("py-1.airlock");
    let pypi = PyPiServer::start(&cx.path("pypiserver"));
    let b = bundle.to_str().unwrap();
    let upload = pypi.url("/");
    let args = ["import", "--json", "--python-upload", upload.as_str(), "--python-username", "uploader", b];

    cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", "wrong")]).fails(2, "check --python-username");
    let first = cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", "upload-pass")]).ok().json();
    let n = locked_files(&spec.with_extension("lock")).len();
    assert_eq!(first["added"], n);
    let target = cx.path("site-packages");
    assert_pip_ok(&pip_install(&pypi.url("/simple/"), &target, &["aldemo-app"]));
    assert!(installed(&target).contains("aldemo_app-2.0"));
    let sdists = std::fs::read_dir(cx.path("pypiserver/packages")).unwrap().count();
    assert_eq!(sdists, n, "every file, sdist included, is on the server");

    let again = cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", "upload-pass")]).ok().json();
    assert_eq!((again["added"].as_u64(), again["present"].as_u64()), (Some(0), Some(n as u64)));
}

#[test]
fn airlock_serve_takes_uploads_from_airlock_import_and_twine() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx);
    let spec = py_spec(&cx, &up.url("/pypi/simple"), &["aldemo-app"], "");
    let bundle = cx.bundle(&spec, "out", &[]).join("py-1.airlock");
    let n = locked_files(&spec.with_extension("lock")).len();

    // The site: an empty store behind airlock serve; the importer only has the URL and a token.
    let site = TestContext::new();
    let srv = Server::start(&site, &[]);
    let upload = srv.url("/repository/pypi/");
    let b = bundle.to_str().unwrap();
    let args = ["import", "--json", "--python-upload", upload.as_str(), "--python-username", "importer", b];
    cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", "not-the-token")]).fails(2, "401");
    let first = cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", TOKEN)]).ok().json();
    assert_eq!(first["added"], n);
    let again = cx.run_env(&args, &[("AIRLOCK_PYTHON_PASSWORD", TOKEN)]).ok().json();
    assert_eq!(again["present"], n, "a second import finds every file there");
    let target = cx.path("site-packages");
    assert_pip_ok(&pip_install(&srv.url("/repository/pypi/simple/"), &target, &["aldemo-app"]));
    assert!(installed(&target).contains("aldemo_app-2.0"));

    // twine, the stock client.
    require("twine");
    let wheel = up.root.join("pypi/files/aldemo_win-1.0-py3-none-any.whl");
    let twine = |password: &str| {
        Command::new("twine")
            .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url", &upload])
            .args(["-u", "__token__", "-p", password])
            .arg(&wheel)
            .env("HOME", cx.path("home"))
            .output()
            .unwrap()
    };
    assert!(!twine("wrong-token-value").status.success());
    let out = twine(TOKEN);
    assert!(
        out.status.success(),
        "twine: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let page = sh(cx.dir.path(), &format!("curl -sf {}", srv.url("/repository/pypi/simple/aldemo-win/")));
    assert!(page.contains("aldemo_win-1.0-py3-none-any.whl#sha256=") && page.contains("data-core-metadata"), "{page}");
    let root = sh(cx.dir.path(), &format!("curl -sf {}", srv.url("/repository/pypi/simple/")));
    assert!(root.contains("aldemo-win") && root.contains("aldemo-app"), "{root}");
    // The same file again is a conflict (409, which `airlock import` and pypiserver-aware
    // clients read as "already there"); the index is unchanged.
    let again = twine(TOKEN);
    assert!(!again.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    assert!(said.contains("409 Conflict"), "{said}");
    // A form whose sha256_digest does not match its file is refused, and nothing appears.
    let code = sh(
        cx.dir.path(),
        &format!(
            "curl -s -o /dev/null -w '%{{http_code}}' -u x:{TOKEN} -F ':action=file_upload' -F 'sha256_digest={}' -F 'name=aldemo-legacy' -F 'content=@{}' {upload}",
            "0".repeat(64),
            up.root.join("pypi/files/aldemo_legacy-1.0-py3-none-any.whl").display()
        ),
    );
    assert_eq!(code, "400");
    assert_eq!(
        sh(
            cx.dir.path(),
            &format!("curl -s -o /dev/null -w '%{{http_code}}' {}", srv.url("/repository/pypi/simple/aldemo-legacy/"))
        ),
        "404"
    );
}

#[test]
fn a_version_given_up_stops_constraining() {
    // aldemo-app 2.0 is chosen first and asks for aldemo-lib>=1.1; aldemo-plugin, found a
    // round later, needs aldemo-app<2, whose 1.0 asks for aldemo-lib<1.1. What 2.0 asked
    // must not linger, or aldemo-lib would look unsatisfiable.
    let cx = TestContext::new();
    let up = upstream(&cx);
    let spec = py_spec(&cx, &up.url("/pypi/simple"), &["aldemo-app", "aldemo-plugin"], "");
    cx.mirror(&spec).ok();
    let files = locked_files(&spec.with_extension("lock"));
    assert!(files.contains("aldemo_app-1.0-py3-none-any.whl"), "{files:?}");
    assert!(files.contains("aldemo_lib-1.0-py3-none-any.whl"), "{files:?}");
    assert!(!files.contains("aldemo_app-2.0-py3-none-any.whl") && !files.contains("aldemo_lib-1.1-py3-none-any.whl"));
}
