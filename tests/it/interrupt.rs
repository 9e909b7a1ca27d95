//! kill -9 in the middle of an import: the target holds only whole, correct files (or
//! nothing), and running the import again completes it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::TestContext;
use crate::common::registry::noise;

/// Kill the import as soon as `ready` says it is under way, then check and resume.
fn kill_and_resume(ready: impl Fn(&TestContext) -> bool) {
    let cx = TestContext::new();
    cx.key();
    let mut yaml = String::from("name: big\nversion: \"1\"\nfiles:\n");
    std::fs::create_dir_all(cx.path("spec/files")).unwrap();
    let mut expected = Vec::new();
    for i in 0..48 {
        let data = noise(1 << 20, i);
        std::fs::write(cx.path(&format!("spec/files/f{i:02}")), &data).unwrap();
        yaml.push_str(&format!("  - path: data/f{i:02}\n    source: files/f{i:02}\n"));
        expected.push((format!("data/f{i:02}"), data));
    }
    let spec = cx.spec(&yaml);
    let bundle = cx.bundle(&spec, "out", &["--compression", "none"]).join("big-1.airlock");

    let mut child = cx.command().args(["import", bundle.to_str().unwrap()]).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(&cx) {
        assert!(Instant::now() < deadline, "the import never got under way");
        if child.try_wait().unwrap().is_some() {
            break; // finished before we could catch it; still a valid (if weaker) run
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();

    let raw = cx.store().join("repository/raw");
    for (path, data) in &expected {
        if let Ok(have) = std::fs::read(raw.join(path)) {
            assert!(&have == data, "{path} is visible but not whole after kill -9");
        }
    }
    let r = cx.run(&["--json", "import", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"].as_u64().unwrap() + r["present"].as_u64().unwrap(), 48);
    for (path, data) in &expected {
        assert!(&std::fs::read(raw.join(path)).unwrap() == data, "{path} after resuming");
    }
    assert!(!cx.store().join("staging/current").exists(), "the killed import's staging is gone");
}

#[test]
fn kill_during_verification_then_resume() {
    kill_and_resume(|cx| std::fs::read_dir(cx.store().join("staging/current")).is_ok_and(|mut d| d.next().is_some()));
}

#[test]
fn kill_while_loading_then_resume() {
    kill_and_resume(|cx| {
        std::fs::read_dir(cx.store().join("repository/raw/data")).is_ok_and(|mut d| d.next().is_some())
    });
}
