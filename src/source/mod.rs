//! Sources: the connected side's only contact with the network. A source turns one spec
//! entry into a locked identity and puts its bytes into the cache (a [`Store`]), checking
//! every byte against the digest that named it.

pub mod artifacts;
pub mod debian;
pub mod file;
pub mod git;
pub mod oci;
pub mod python;
pub mod referrer;

use crate::lock::LockedArtifact;
use crate::store::Store;

pub trait Source: Sync {
    type Entry: Sync;
    /// Resolve `entry` to an immutable identity and fetch its bytes into `store`.
    /// `previous` is the entry's record in the existing lock, if any.
    fn lock(
        &self,
        entry: &Self::Entry,
        previous: Option<&LockedArtifact>,
        store: &Store,
    ) -> anyhow::Result<LockedArtifact>;
}
