//! Exit statuses, documented in docs/exit-codes.md. "The check said no" is not
//! "something broke": scripts and Zuul jobs can tell a damaged bundle from a forged one,
//! and both from a typo on the command line.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done.
    Success,
    /// 1: the bundle is authentic but damaged: a blob, member, volume or size is wrong.
    Corrupt,
    /// 2: an error: bad arguments or configuration, network, disk, a target that refused.
    Error,
    /// 3: the bundle is not authentic: bad, missing or untrusted signature.
    NotAuthentic,
    /// 4: not an airlock bundle, or unreadable media.
    NotABundle,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(match s {
            ExitStatus::Success => 0,
            ExitStatus::Corrupt => 1,
            ExitStatus::Error => 2,
            ExitStatus::NotAuthentic => 3,
            ExitStatus::NotABundle => 4,
        })
    }
}
