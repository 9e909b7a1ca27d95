//! Where output goes: data on stdout (a table, or JSON with `--json`), messages on stderr
//! (silenced by `--quiet`). Nothing else in airlock prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

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
    pub fn data<T: Serialize>(&self, json: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(json).expect("serializable"));
        } else {
            let text = human();
            if !text.is_empty() {
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }

    /// The one-line error for a failed command.
    pub fn error(&self, err: &anyhow::Error) {
        eprintln!("error: {err:#}");
    }
}
