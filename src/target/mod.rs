//! Targets: where `airlock import` loads each kind of artifact. Every kind has the
//! embedded store as its default and real servers as alternatives.
//!
//! An import is one transaction over all its targets:
//! - every target plans first (what is missing, what conflicts), changing nothing anyone
//!   can see, so a conflict anywhere stops the import with every target as it was;
//! - then each loads, recording each change in the [`Journal`] as it makes it, with how
//!   to undo it;
//! - if any target (or the receipt) fails, the import undoes the journal, newest change
//!   first, and reports what was undone and what stayed: a change a remote accepted for
//!   good (a git push, a Python upload) cannot be undone, and an undo that fails (a
//!   registry gone away) leaves its change in place. Content named only by its digest
//!   (blobs, manifests pushed by digest, git objects no ref reaches) may stay: nothing
//!   any client resolves by name points at it.
//!
//! A killed import undoes nothing; it leaves each target consistent (content before the
//! names that point at it) and the next run resumes it: resuming is planning again.

pub mod apt;
pub mod aptly;
pub mod git;
pub mod nexus_apt;
pub mod oci;
pub mod python;
pub mod raw;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::progress::Reporter;

/// What one artifact's import did.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub kind: String,
    pub name: String,
    /// `added`, `present` (already there with the same content), `updated` (a git ref
    /// moved forward, an image tag moved), `forced` (a git ref rewritten, with
    /// --git-allow-force) or `pushed`.
    pub action: &'static str,
    pub location: String,
}

pub trait Target {
    type Plan;
    /// Decide what must change; refuse conflicts. Changes nothing anyone can see.
    fn plan(&self, bundle: &VerifiedBundle) -> anyhow::Result<Self::Plan>;
    /// Apply the plan, recording each change in `journal` as soon as it is made, so that
    /// the import can undo it when this target or a later one fails.
    fn load<'a>(
        &'a self,
        plan: Self::Plan,
        bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> anyhow::Result<Vec<Placed>>;
}

type UndoFn<'a> = Box<dyn FnOnce() -> anyhow::Result<()> + 'a>;

enum Undo<'a> {
    By(UndoFn<'a>),
    Never(String),
}

struct Change<'a> {
    items: Vec<Placed>,
    undo: Undo<'a>,
}

/// The changes an import has made so far, oldest first, each with how to undo it.
#[derive(Default)]
pub struct Journal<'a> {
    changes: Vec<Change<'a>>,
}

impl<'a> Journal<'a> {
    /// A change made, and the function that takes it back.
    pub fn record(&mut self, items: Vec<Placed>, undo: impl FnOnce() -> anyhow::Result<()> + 'a) {
        self.changes.push(Change { items, undo: Undo::By(Box::new(undo)) });
    }

    /// A change that cannot be taken back, and why.
    pub fn record_final(&mut self, items: Vec<Placed>, why: impl Into<String>) {
        self.changes.push(Change { items, undo: Undo::Never(why.into()) });
    }

    /// Undo every change, newest first.
    pub fn roll_back(self) -> Rollback {
        let mut r = Rollback::default();
        for c in self.changes.into_iter().rev() {
            let why = match c.undo {
                Undo::By(f) => match f() {
                    Ok(()) => {
                        r.undone.extend(c.items);
                        continue;
                    }
                    Err(e) => format!("undoing it failed: {e:#}"),
                },
                Undo::Never(why) => why,
            };
            r.stayed.extend(c.items.into_iter().map(|placed| Stayed { placed, reason: why.clone() }));
        }
        r.undone.reverse();
        r.stayed.reverse();
        r
    }
}

/// A change that stayed after a failed import.
#[derive(Debug, Clone, Serialize)]
pub struct Stayed {
    #[serde(flatten)]
    pub placed: Placed,
    pub reason: String,
}

/// What undoing a failed import's journal did.
#[derive(Debug, Default, Serialize)]
pub struct Rollback {
    /// The changes taken back, as they had been reported.
    #[serde(rename = "rolledBack")]
    pub undone: Vec<Placed>,
    /// The changes that stayed, each with the reason.
    pub stayed: Vec<Stayed>,
}

impl Rollback {
    /// One clause for the error line: what was undone, counted by kind, and each change
    /// that stayed, grouped by reason.
    pub fn summary(&self) -> String {
        let total = self.undone.len() + self.stayed.len();
        if total == 0 {
            return "nothing had been changed".to_string();
        }
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.undone {
            *kinds.entry(p.kind.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let counts = if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) };
        if self.stayed.is_empty() {
            return if total == 1 {
                format!("rolled back the one change this run had made{counts}")
            } else {
                format!("rolled back all {total} changes this run had made{counts}")
            };
        }
        let mut by_reason: Vec<(&str, Vec<String>)> = Vec::new();
        for st in &self.stayed {
            let item = format!("{} {} at {}", st.placed.kind, st.placed.name, st.placed.location);
            match by_reason.iter_mut().find(|(r, _)| *r == st.reason) {
                Some((_, v)) => v.push(item),
                None => by_reason.push((&st.reason, vec![item])),
            }
        }
        let groups: Vec<String> = by_reason.into_iter().map(|(r, v)| format!("{} ({r})", v.join(", "))).collect();
        format!(
            "rolled back {} of the {total} changes this run had made{counts}; these stayed: {}",
            self.undone.len(),
            groups.join("; ")
        )
    }
}

/// A blob that `what` needs is neither in the bundle nor in the store: the bundle is
/// differential on a base this store never imported.
pub fn missing_base_blob(bundle: &VerifiedBundle, d: &Digest, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "blob {d} for {what} is neither in this bundle nor in the store: import the base bundle `{}` first",
        bundle.manifest.base.as_ref().map_or_else(|| "?".to_string(), crate::bundle::manifest::Base::label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(kind: &str, name: &str) -> Placed {
        Placed { kind: kind.into(), name: name.into(), action: "added", location: "here".into() }
    }

    #[test]
    fn rolls_back_newest_first_and_reports_what_stayed() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut j = Journal::default();
        j.record(vec![placed("file", "a"), placed("file", "b")], || {
            order.borrow_mut().push("files");
            Ok(())
        });
        j.record(vec![placed("image", "x:1")], || {
            order.borrow_mut().push("tag");
            anyhow::bail!("registry gone")
        });
        j.record_final(vec![placed("git", "r:refs/heads/main")], "pushed");
        let r = j.roll_back();
        assert_eq!(*order.borrow(), ["tag", "files"]);
        assert_eq!(r.undone.len(), 2);
        assert_eq!(r.stayed.len(), 2);
        assert_eq!(
            r.summary(),
            "rolled back 2 of the 4 changes this run had made (2 file); these stayed: image x:1 at here \
             (undoing it failed: registry gone); git r:refs/heads/main at here (pushed)"
        );
        assert_eq!(Journal::default().roll_back().summary(), "nothing had been changed");
    }
}
