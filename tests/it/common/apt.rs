//! apt-get with a private configuration: its own sources, state, cache, keyrings and an
//! empty dpkg status, so nothing of this machine's apt is read or changed.

use std::path::{Path, PathBuf};

/// Make `dir` an apt root for `sources` (a sources.list text), with `native` as the
/// architecture and `foreign` as extra ones; returns its `apt.conf` (for `APT_CONFIG`).
pub fn private(dir: &Path, sources: &str, native: &str, foreign: &[&str]) -> PathBuf {
    for sub in ["state/lists/partial", "cache/archives/partial", "parts", "trusted.d", "log", "prefs.d"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("status"), "").unwrap();
    std::fs::write(dir.join("sources.list"), sources).unwrap();
    let arches: String = std::iter::once(native).chain(foreign.iter().copied()).map(|a| format!("\"{a}\"; ")).collect();
    let conf = format!(
        r#"Dir::Etc::sourcelist "{d}/sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::parts "{d}/parts";
Dir::Etc::preferencesparts "{d}/prefs.d";
Dir::Etc::trusted "{d}/trusted.gpg";
Dir::Etc::trustedparts "{d}/trusted.d";
Dir::State "{d}/state";
Dir::State::status "{d}/status";
Dir::Cache "{d}/cache";
Dir::Log "{d}/log";
Debug::NoLocking "1";
APT::Sandbox::User "root";
APT::Architecture "{native}";
APT::Architectures {{ {arches}}};
Acquire::Languages "none";
"#,
        d = dir.display()
    );
    let path = dir.join("apt.conf");
    std::fs::write(&path, conf).unwrap();
    path
}
