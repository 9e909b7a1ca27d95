//! The bundle: format v1 (see `docs/bundle-format.md` and `bundle-schema/`), its writer,
//! and the one streaming pass that verifies it.

pub mod fingerprint;
pub mod layout;
pub mod manifest;
pub mod provenance;
pub mod reader;
pub mod sbom;
pub mod sign;
pub mod split;
pub mod sums;
pub mod verify;
pub mod writer;

use crate::exit::ExitStatus;

/// Why a bundle was refused. Each kind has its own exit status (docs/exit-codes.md).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BundleError {
    /// The signature is missing, invalid, or by a key that is not trusted.
    #[error("not authentic: {0}")]
    NotAuthentic(String),
    /// Authentic, but bytes are damaged, missing, extra, or unsafe.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Not an airlock bundle at all, or a version this airlock does not read.
    #[error("not a bundle: {0}")]
    NotABundle(String),
    /// The media could not be read.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// The bundle may be fine, but this machine failed to keep what it read (disk full,
    /// permissions in the store).
    #[error("{0}")]
    Local(String),
}

impl BundleError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            BundleError::Corrupt(_) => ExitStatus::Corrupt,
            BundleError::NotAuthentic(_) => ExitStatus::NotAuthentic,
            BundleError::NotABundle(_) | BundleError::Unreadable(_) => ExitStatus::NotABundle,
            BundleError::Local(_) => ExitStatus::Error,
        }
    }

    /// A short word for `--json` output.
    pub fn status_word(&self) -> &'static str {
        match self {
            BundleError::Corrupt(_) => "corrupt",
            BundleError::NotAuthentic(_) => "not-authentic",
            BundleError::NotABundle(_) => "not-a-bundle",
            BundleError::Unreadable(_) => "unreadable",
            BundleError::Local(_) => "error",
        }
    }
}
