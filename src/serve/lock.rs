//! The store's write lock, as `airlock import` takes it: an exclusive `flock` on
//! `<store>/.import.lock`. Every write the server makes to a repository (a raw file, a
//! Python upload and its pages, a blob or manifest, a git push) holds it, so a write never
//! interleaves with an import or with another write. An import holds it for its whole run:
//! a write waits up to `--write-lock-wait`, then is answered `503` with `Retry-After`.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Held while a write is made; released on drop.
pub struct WriteLock {
    _file: File,
}

/// Take the lock, waiting up to `wait`. `None` when it stayed held that long. Blocking:
/// call it from `spawn_blocking`.
pub fn acquire(store_root: &Path, wait: Duration) -> io::Result<Option<WriteLock>> {
    let file = File::create(store_root.join(".import.lock"))?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(WriteLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Seconds a client is told to wait when the store stays locked.
const RETRY_AFTER: &str = "10";

/// `503` with `Retry-After`: an import (or another write) holds the store.
pub fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER)],
        "an import into the store is running; try again later\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_a_bounded_time_for_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), Duration::ZERO).unwrap().expect("free");
        let started = Instant::now();
        assert!(acquire(dir.path(), Duration::from_millis(200)).unwrap().is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(held);
        assert!(acquire(dir.path(), Duration::ZERO).unwrap().is_some());
    }
}
