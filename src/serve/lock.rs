//! The store's write lock, as `airlock import` takes it: an exclusive `flock` on
//! `<store>/.import.lock`. Every write the server makes to a repository (a raw file, a
//! Python upload and its pages, a blob or manifest, a git push) holds it, so a write never
//! interleaves with an import or with another write. An import holds it for its whole run:
//! a write waits up to `--write-lock-wait`, then is answered `503` with `Retry-After`.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::{Store, StoreLock};

/// Take the store's lock, waiting up to `wait`. `None` when it stayed held that long.
/// Blocking: call it from `spawn_blocking`.
pub fn acquire(store: &Store, wait: Duration) -> anyhow::Result<Option<StoreLock>> {
    store.lock_within(wait)
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
        let store = Store::open(dir.path()).unwrap();
        let held = acquire(&store, Duration::ZERO).unwrap().expect("free");
        let started = std::time::Instant::now();
        assert!(acquire(&store, Duration::from_millis(200)).unwrap().is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(held);
        assert!(acquire(&store, Duration::ZERO).unwrap().is_some());
    }
}
