//! Default locations, each overridable by a flag or an environment variable:
//!
//! | what | flag | variable | default |
//! |---|---|---|---|
//! | keys and trusted keys | `--config-dir` | `AIRLOCK_CONFIG_DIR` | `$XDG_CONFIG_HOME/airlock`, `~/.config/airlock` |
//! | mirror cache | `--cache-dir` | `AIRLOCK_CACHE_DIR` | `$XDG_CACHE_HOME/airlock`, `~/.cache/airlock` |
//! | import store | `--store` | `AIRLOCK_STORE` | `$XDG_DATA_HOME/airlock/store`, `~/.local/share/airlock/store` |

use std::path::PathBuf;

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from).join(fallback),
    }
}

pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("airlock")
}

pub fn cache_dir() -> PathBuf {
    xdg("XDG_CACHE_HOME", ".cache").join("airlock")
}

pub fn store_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("airlock").join("store")
}
