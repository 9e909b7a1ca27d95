//! Import into a remote raw repository over HTTP PUT with Basic auth (nginx WebDAV here,
//! Nexus raw-hosted at a site).

use crate::common::nginx::{Nginx, PASSWORD, USER};
use crate::common::{Locked, TestContext};

/// The fixtures' bundle, and nginx with an empty WebDAV raw repository at `/upload/`.
fn fixture_bundle_and_nginx() -> (TestContext, std::path::PathBuf, Nginx, Locked) {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    let nginx = Nginx::start(&cx.path("nginx"));
    let locked = Locked::of(&spec);
    (cx, bundle, nginx, locked)
}

#[test]
fn import_uploads_files_and_skips_them_the_second_time() {
    let (cx, bundle, nginx, locked) = fixture_bundle_and_nginx();
    let url = nginx.url("/upload/files/");
    let auth = [("AIRLOCK_RAW_USERNAME", USER), ("AIRLOCK_RAW_PASSWORD", PASSWORD)];
    let r = cx.run_env(&["--json", "import", bundle.to_str().unwrap(), "--raw-url", &url], &auth).ok().json();
    let files = |action: &str| {
        r["artifacts"].as_array().unwrap().iter().filter(|a| a["kind"] == "file" && a["action"] == action).count()
    };
    assert_eq!(files("added"), locked.files);
    let served = nginx.root.join("upload/files");
    assert_eq!(
        std::fs::read(served.join("bin/arm64/tool-2.3")).unwrap(),
        std::fs::read(crate::common::root().join("fixtures/files/tool-2.3-arm64")).unwrap()
    );
    let again = cx.run_env(&["--json", "import", bundle.to_str().unwrap(), "--raw-url", &url], &auth).ok().json();
    assert_eq!(again["added"], 0);
    assert_eq!(again["present"], locked.added(), "files, git refs, images, Python files, Debian packages");
}

#[test]
fn wrong_credentials_and_conflicts_change_nothing() {
    let (cx, bundle, nginx, _) = fixture_bundle_and_nginx();
    let url = nginx.url("/upload/files/");
    let args = ["import", bundle.to_str().unwrap(), "--raw-url", &url];
    cx.run_env(&args, &[("AIRLOCK_RAW_USERNAME", USER), ("AIRLOCK_RAW_PASSWORD", "nope")])
        .fails(2, "401 Unauthorized (check the raw target's username and password)");
    let served = nginx.root.join("upload/files");
    std::fs::create_dir_all(served.join("licenses")).unwrap();
    std::fs::write(served.join("licenses/NOTICE.txt"), b"someone else's\n").unwrap();
    cx.run_env(&args, &[("AIRLOCK_RAW_USERNAME", USER), ("AIRLOCK_RAW_PASSWORD", PASSWORD)])
        .fails(2, "already holds other content");
    assert!(!served.join("src").exists(), "nothing was uploaded");
    assert_eq!(std::fs::read(served.join("licenses/NOTICE.txt")).unwrap(), b"someone else's\n");
}
