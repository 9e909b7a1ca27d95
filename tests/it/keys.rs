//! Keys and trust: minisign-compatible in both directions, secret keys kept private, and
//! passphrase protection as minisign does it.

use std::os::unix::fs::PermissionsExt;

use crate::common::{TestContext, require, sh};

#[test]
fn generated_secret_key_is_private_and_not_overwritten() {
    let cx = TestContext::new();
    cx.run(&["key", "generate", "--no-password"]).ok();
    let sk = cx.config().join("keys/airlock.key");
    assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
    let before = std::fs::read(&sk).unwrap();
    cx.run(&["key", "generate", "--no-password"]).fails(2, "already exists: pass --force");
    assert_eq!(std::fs::read(&sk).unwrap(), before);
    let shown = cx.run(&["--json", "key", "show"]).ok().json();
    assert_eq!(shown["keyId"].as_str().unwrap().len(), 16);
    // Not trusted until asked.
    assert_eq!(cx.run(&["--json", "trust", "list"]).ok().json(), serde_json::json!([]));
    cx.run(&["trust", "add", cx.config().join("keys/airlock.pub").to_str().unwrap()]).ok();
    assert_eq!(cx.run(&["--json", "trust", "list"]).ok().json()[0]["keyId"], shown["keyId"]);
}

#[test]
fn passphrase_protected_key() {
    let cx = TestContext::new();
    let pw = [("AIRLOCK_KEY_PASSWORD", "correct horse")];
    cx.run_env(&["key", "generate", "--trust"], &pw).ok();
    cx.run(&["key", "generate", "--name", "other"]).fails(2, "a passphrase is needed");
    let spec = cx.fixtures();
    cx.mirror(&spec).ok();
    let lock = spec.with_extension("lock");
    let export = |env: &[(&str, &str)]| cx.run_env(&["export", "--lock", lock.to_str().unwrap(), "-o", "out"], env);
    export(&[]).fails(2, "is passphrase-protected: set AIRLOCK_KEY_PASSWORD");
    export(&[("AIRLOCK_KEY_PASSWORD", "wrong")]).fails(2, "wrong password");
    assert!(!cx.path("out/fixtures-1.0.airlock").exists());
    export(&pw).ok();
    cx.run(&["verify", "out/fixtures-1.0.airlock"]).ok();
}

#[test]
fn signs_with_a_key_made_by_minisign() {
    require("minisign");
    let cx = TestContext::new();
    let dir = cx.path("mk");
    std::fs::create_dir_all(&dir).unwrap();
    sh(&dir, "minisign -G -W -p ms.pub -s ms.key");
    cx.run(&["trust", "add", dir.join("ms.pub").to_str().unwrap()]).ok();
    let spec = cx.fixtures();
    cx.mirror(&spec).ok();
    let lock = spec.with_extension("lock");
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", "out", "--key", dir.join("ms.key").to_str().unwrap()])
        .ok();
    cx.run(&["verify", "out/fixtures-1.0.airlock"]).ok();
}
