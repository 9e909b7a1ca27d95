//! Where output goes: data on stdout (a table, or JSON with `--json`), messages on stderr
//! (silenced by `--quiet`). Nothing else in airlock prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub quiet: bool,
    pub json: bool,
}

impl Printer {
    /// A human message on stderr, unless quiet.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A warning on stderr, always.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        eprintln!("warning: {msg}");
    }

    /// Data for stdout: `json` with `--json`, else the human text (skipped when empty).
    /// A reader that goes away early (`airlock inspect B | head`) is not an error.
    pub fn data<T: Serialize>(&self, json: &T, human: impl FnOnce() -> String) {
        let mut text = if self.json { serde_json::to_string_pretty(json).expect("serializable") } else { human() };
        if text.is_empty() {
            return;
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// The one-line error for a failed command.
    pub fn error(&self, err: &anyhow::Error) {
        eprintln!("error: {err:#}");
    }
}
