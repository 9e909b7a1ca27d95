//! A small in-memory cache of whole blobs for `GET /v2/<name>/blobs/<digest>`.
//!
//! Blobs are content-addressed: the bytes under a digest never change, so a copy in memory
//! is never stale. A blob can still be deleted (`airlock gc`), so every answer from the
//! cache first checks, with one `stat` on the request's worker (no trip to the blocking
//! pool), that the file is still there with the same size; a blob that is gone is dropped
//! from the cache and answered 404.
//!
//! Bounded: only blobs of at most [`MAX_ENTRY`] bytes, at most [`MAX_TOTAL`] bytes in all;
//! the oldest entries go first when a new one needs room.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Bytes;

use crate::digest::Digest;

/// The largest blob kept (the size up to which a file is read in one trip anyway).
pub const MAX_ENTRY: u64 = 64 * 1024;
/// The cache's budget, in blob bytes.
pub const MAX_TOTAL: usize = 32 << 20;

#[derive(Default)]
pub struct BlobCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Digest, Bytes>,
    /// Insertion order, oldest first (may name digests already removed).
    order: VecDeque<Digest>,
    total: usize,
}

impl BlobCache {
    pub fn get(&self, d: &Digest) -> Option<Bytes> {
        self.inner.lock().unwrap().map.get(d).cloned()
    }

    /// Keep `bytes` as the blob `d` (which the caller read from the store).
    pub fn insert(&self, d: Digest, bytes: Bytes) {
        if bytes.len() as u64 > MAX_ENTRY {
            return;
        }
        let mut c = self.inner.lock().unwrap();
        if c.map.contains_key(&d) {
            return;
        }
        while c.total + bytes.len() > MAX_TOTAL {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(b) = c.map.remove(&old) {
                c.total -= b.len();
            }
        }
        c.total += bytes.len();
        c.order.push_back(d);
        c.map.insert(d, bytes);
        // Removed entries leave their digest in `order`: compact when it grows too long.
        if c.order.len() > 2 * c.map.len() + 64 {
            let Inner { map, order, .. } = &mut *c;
            order.retain(|d| map.contains_key(d));
        }
    }

    pub fn remove(&self, d: &Digest) {
        let mut c = self.inner.lock().unwrap();
        if let Some(b) = c.map.remove(d) {
            c.total -= b.len();
        }
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.inner.lock().unwrap().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_entry_size_and_total() {
        let c = BlobCache::default();
        let big = Bytes::from(vec![0u8; MAX_ENTRY as usize + 1]);
        c.insert(Digest::of(&big), big.clone());
        assert!(c.get(&Digest::of(&big)).is_none());
        let n = MAX_TOTAL / MAX_ENTRY as usize + 10;
        let digests: Vec<Digest> = (0..n)
            .map(|i| {
                let mut b = vec![0u8; MAX_ENTRY as usize];
                b[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let d = Digest::of(&b);
                c.insert(d, Bytes::from(b));
                d
            })
            .collect();
        assert!(c.total() <= MAX_TOTAL);
        assert!(c.get(&digests[0]).is_none(), "the oldest went first");
        assert!(c.get(&digests[n - 1]).is_some());
        c.remove(&digests[n - 1]);
        assert!(c.get(&digests[n - 1]).is_none());
        assert!(c.total() <= MAX_TOTAL - MAX_ENTRY as usize);
    }
}
