//! Property tests: airlock's parsers and checks on generated input, against real oracles
//! where one exists (Python's `packaging` for PEP 440), and for no panic and bounded
//! memory on arbitrary and hostile input.
//!
//! Memory is measured with a counting global allocator (`peak_alloc`: the counting needs
//! `unsafe impl GlobalAlloc`, which this crate forbids in its own code). The counters are
//! process-wide, so every test here runs under [`serial`]: under `cargo test` (one
//! process, many threads) no other test allocates while one measures.

#![allow(clippy::disallowed_methods)] // tests write fixtures directly

use std::sync::{Mutex, MutexGuard};

#[global_allocator]
static ALLOCATOR: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

mod globs;
mod parsers;
mod pep440;

/// Hold for the whole of a test: one test at a time in this binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Run `f`; return what it returns and the most it had allocated at once (bytes above
/// what was live before it started). Call under [`serial`].
pub fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let out = f();
    (out, ALLOCATOR.peak_usage().saturating_sub(before))
}
