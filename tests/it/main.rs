#![allow(clippy::disallowed_methods)] // tests write fixtures directly
//! Integration tests: the real `airlock` binary, run in an isolated context, against real
//! tools (minisign, sha256sum, zstd, tar) and real servers on loopback (nginx).

mod common;

mod aptly;
mod artifacts;
mod debian;
mod debian_suites;
mod diff;
mod env;
mod evidence;
mod git;
mod help;
mod images;
mod installers;
mod interrupt;
mod keys;
mod mirror;
mod names;
mod net;
mod oci;
mod python;
mod python_resolve;
mod raw_http;
mod receipt;
mod referrers;
mod rollback;
mod roundtrip;
mod serve;
mod site;
mod tamper;
mod watch;
