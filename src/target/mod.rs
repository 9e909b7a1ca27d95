//! Targets: where `airlock import` loads each kind of artifact. Every kind has the
//! embedded store as its default and real servers as alternatives. A target first plans
//! (what is missing, what conflicts) without changing anything, then loads; resuming an
//! interrupted import is planning again.

pub mod apt;
pub mod git;
pub mod oci;
pub mod python;
pub mod raw;

use serde::Serialize;

use crate::bundle::verify::VerifiedBundle;
use crate::progress::Reporter;

/// What one artifact's import did.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub kind: String,
    pub name: String,
    /// `added`, `present` (already there with the same content), `updated` (a git ref
    /// moved forward), `forced` (a git ref rewritten, with --git-allow-force) or `pushed`.
    pub action: &'static str,
    pub location: String,
}

pub trait Target {
    type Plan;
    /// Decide what must change; refuse conflicts before anything is written.
    fn plan(&self, bundle: &VerifiedBundle) -> anyhow::Result<Self::Plan>;
    /// Apply the plan. On failure, undo what this call added.
    fn load(&self, plan: Self::Plan, bundle: &VerifiedBundle, reporter: &Reporter) -> anyhow::Result<Vec<Placed>>;
}
