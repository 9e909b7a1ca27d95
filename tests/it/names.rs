//! Hostile names are refused when the spec is loaded, or when a flag is read: before any
//! network, cache or store work, with one line that names the name and the rule.

use crate::common::TestContext;

/// The fixtures spec with one edit per case: each is refused by `mirror` with exit 2, on
/// one line naming the hostile name, and nothing is written (no lock, no cache).
#[test]
fn mirror_refuses_hostile_names_in_the_spec() {
    let cx = TestContext::new();
    let spec = cx.fixtures();
    let good = std::fs::read_to_string(&spec).unwrap();
    let long = "x".repeat(5000);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "    name: hello\n",
            "    name: ../../hello\n".into(),
            "git entry `git/hello.bundle`: `../../hello` is not a valid git repository name: it has `/`",
        ),
        (
            "    name: hello\n",
            "    name: hello\n    refs: [\"refs/heads/x\\nupdate-ref -d refs/heads/main\"]\n".into(),
            "`refs/heads/x\\nupdate-ref -d refs/heads/main` is not a valid git ref name or pattern: it has a newline",
        ),
        (
            "    name: hello\n",
            "    name: hello\n    refs: [refs/heads/../../config]\n".into(),
            "`refs/heads/../../config` is not a valid git ref name or pattern: it has `..`",
        ),
        (
            "    name: hello\n",
            format!("    name: {long}\n"),
            "... (5000 bytes)` is not a valid git repository name: it is longer than 128 bytes",
        ),
        (
            "ref: fixtures.example/hello/hello:1.0",
            "ref: fixtures.example/../hello:1.0".into(),
            "image `fixtures.example/../hello:1.0`: `../hello` is not a valid image repository name",
        ),
        (
            "ref: fixtures.example/hello/hello:1.0",
            "ref: fixtures.example/hello/Hello:1.0".into(),
            "`hello/Hello` is not a valid image repository name: it has `H`",
        ),
        (
            "requirements: [\"aldemo-app\"]",
            "requirements: [\"../aldemo-app\"]".into(),
            "python entry `pypi`: requirement: `../aldemo-app` is not a valid Python project name: it has `/`",
        ),
        (
            "requirements: [\"aldemo-app\"]",
            "requirements: [\"aldemo-app\\n>=1\"]".into(),
            "`aldemo-app\\n>=1` is not a valid Python requirement: it has a newline",
        ),
        ("  - name: pypi\n", "  - name: ../pypi\n".into(), "`../pypi` is not a valid repository name: it has `/`"),
        (
            "packages: [hello-app]",
            "packages: [\"hello-app\\nPackage: evil\"]".into(),
            "`hello-app\\nPackage: evil` is not a valid Debian package name: it has a newline",
        ),
        (
            "suites: [fixtures]",
            "suites: [../../etc]".into(),
            "`../../etc` is not a valid Debian suite: part `..`: it starts with `.`",
        ),
        (
            "path: licenses/NOTICE.txt",
            "path: licenses/.airlock-x.tmp".into(),
            "`licenses/.airlock-x.tmp` is not a valid raw file path: its component `.airlock-x.tmp` starts with `.airlock-`",
        ),
    ];
    for (from, to, needle) in &cases {
        assert_eq!(good.matches(from).count(), 1, "{from:?} is in the fixtures spec once");
        std::fs::write(&spec, good.replacen(from, to, 1)).unwrap();
        let r = cx.mirror(&spec).fails(2, needle);
        assert!(r.stderr.len() < 400, "a long name is cut short: {}", r.stderr);
        assert!(!spec.with_extension("lock").exists(), "{needle}: no lock is written");
        assert!(!cx.cache().join("blobs/sha256").exists(), "{needle}: nothing enters the cache");
    }
}

/// The store's repositories are named by flags: a path there is refused before the media
/// is read or the store is opened.
#[test]
fn import_refuses_hostile_repository_flags() {
    let cx = TestContext::new();
    cx.key();
    let missing = cx.path("never-read.airlock");
    let bundle = missing.to_str().unwrap();
    for (flag, value, needle) in [
        ("--raw-repo", "../x", "--raw-repo `../x` is not a valid repository name: it has `/`"),
        ("--apt-repo", "/etc/apt", "--apt-repo `/etc/apt` is not a valid repository name: it has `/`"),
        ("--python-index", ".hidden", "--python-index `.hidden` is not a valid repository name: it starts with `.`"),
        (
            "--oci-registry",
            "registry.example/Mirror/../x",
            "--oci-registry prefix `Mirror/../x` is not a valid image repository name: it has `M`",
        ),
    ] {
        cx.run(&["import", bundle, flag, value]).fails(2, needle);
        assert!(!cx.store().exists(), "{flag}: the store is not created");
    }
}
