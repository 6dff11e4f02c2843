//! The shard's memory of the batches it wrote most recently, so that fetches
//! of the tail never touch the disk and never copy record bytes.
//!
//! One cache per shard, shared by every partition log on it, under one
//! budget (`tail_cache_bytes`). The appender inserts each batch after its
//! O_DIRECT write completed, with the offsets the log gave it (the same
//! bytes the file holds), so the cache only ever holds data below the high
//! watermark. When the budget is exceeded the oldest batches of the shard go
//! first, whichever partition they belong to: a partition written long ago
//! is served from disk, a busy one from memory.
//!
//! A read names its end bound (the high watermark, or for read_committed
//! the last stable offset) and gets only batches that end below it: the
//! cache holds written batches of open transactions too, which a
//! read_committed fetch must not see yet.
//!
//! Invariants: per partition, cached batches are a contiguous suffix of its
//! log (each starts right after the previous one ends); `used_bytes` is the
//! exact sum of the cached batches' lengths and is at most the budget after
//! every insert.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    rc::Rc,
};

use bytes::Bytes;

/// Identifies a partition log within one shard's cache.
pub type LogId = u64;

struct CachedBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

#[derive(Default)]
struct Inner {
    budget_bytes: usize,
    used_bytes: usize,
    next_log_id: LogId,
    /// Insertion order across partitions: (log, base offset), oldest first.
    /// May hold entries already dropped by `forget` or a gap; skipped.
    order: VecDeque<(LogId, i64)>,
    logs: HashMap<LogId, VecDeque<CachedBatch>>,
}

/// Batches found in the cache for a read.
pub struct CacheHit {
    pub batches: Vec<Bytes>,
    pub bytes: usize,
    /// The offset after the last batch returned; the fetch offset when none
    /// is.
    pub next_offset: i64,
}

pub struct TailCache {
    inner: RefCell<Inner>,
}

impl TailCache {
    pub fn new(budget_bytes: usize) -> Rc<TailCache> {
        Rc::new(TailCache {
            inner: RefCell::new(Inner {
                budget_bytes,
                ..Default::default()
            }),
        })
    }

    /// A new partition log's identity in this cache.
    pub fn register(&self) -> LogId {
        let mut inner = self.inner.borrow_mut();
        inner.next_log_id += 1;
        let id = inner.next_log_id;
        inner.logs.insert(id, VecDeque::new());
        id
    }

    /// Drops everything of `log` (the partition was removed).
    pub fn forget(&self, log: LogId) {
        let mut inner = self.inner.borrow_mut();
        if let Some(batches) = inner.logs.remove(&log) {
            inner.used_bytes -= batches.iter().map(|b| b.bytes.len()).sum::<usize>();
        }
        inner.order.retain(|(id, _)| *id != log);
    }

    /// Drops the batches of `log` that end below `offset` (the log start
    /// offset moved past them). Their entries in `order` are skipped later.
    pub fn evict_below(&self, log: LogId, offset: i64) {
        let mut inner = self.inner.borrow_mut();
        let Some(batches) = inner.logs.get_mut(&log) else {
            return;
        };
        let mut dropped = 0;
        while batches.front().is_some_and(|b| b.last_offset < offset) {
            dropped += batches.pop_front().map_or(0, |b| b.bytes.len());
        }
        inner.used_bytes -= dropped;
    }

    /// Caches a batch just written to `log`.
    pub fn insert(&self, log: LogId, base_offset: i64, last_offset: i64, bytes: Bytes) {
        let mut inner = self.inner.borrow_mut();
        let budget = inner.budget_bytes;
        let Some(batches) = inner.logs.get_mut(&log) else {
            return;
        };
        let contiguous = batches
            .back()
            .is_none_or(|last| last.last_offset + 1 == base_offset);
        let dropped: usize = if contiguous || batches.is_empty() {
            0
        } else {
            batches.drain(..).map(|b| b.bytes.len()).sum()
        };
        let fits = bytes.len() <= budget;
        let dropped = if fits {
            dropped
        } else {
            // Too big to cache: the suffix would have a hole, so drop it all.
            dropped + batches.drain(..).map(|b| b.bytes.len()).sum::<usize>()
        };
        let added = if fits {
            let length = bytes.len();
            batches.push_back(CachedBatch {
                base_offset,
                last_offset,
                bytes,
            });
            length
        } else {
            0
        };
        inner.used_bytes = inner.used_bytes - dropped + added;
        if fits {
            inner.order.push_back((log, base_offset));
        }
        inner.evict_to_budget();
        debug_assert!(inner.used_bytes <= inner.budget_bytes);
    }

    /// Whole cached batches of `log` from `fetch_offset` that end below
    /// `end_offset` (the read's isolation bound: high watermark or last
    /// stable offset), within `max_bytes` (the first may exceed it when
    /// `first_batch_may_exceed`). None when the cache does not reach back to
    /// `fetch_offset`: read the disk.
    pub fn read(
        &self,
        log: LogId,
        fetch_offset: i64,
        end_offset: i64,
        max_bytes: usize,
        first_batch_may_exceed: bool,
    ) -> Option<CacheHit> {
        let inner = self.inner.borrow();
        let batches = inner.logs.get(&log)?;
        let first = batches.front()?;
        if fetch_offset < first.base_offset {
            return None;
        }
        let start = batches.partition_point(|b| b.last_offset < fetch_offset);
        let mut hit = CacheHit {
            batches: Vec::new(),
            bytes: 0,
            next_offset: fetch_offset,
        };
        for batch in batches.range(start..) {
            if batch.last_offset >= end_offset {
                break;
            }
            let length = batch.bytes.len();
            if hit.bytes + length > max_bytes && (!hit.batches.is_empty() || !first_batch_may_exceed) {
                break;
            }
            hit.bytes += length;
            hit.batches.push(batch.bytes.clone());
            hit.next_offset = batch.last_offset + 1;
            if hit.bytes >= max_bytes {
                break;
            }
        }
        Some(hit)
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.borrow().used_bytes
    }

    pub fn budget_bytes(&self) -> usize {
        self.inner.borrow().budget_bytes
    }
}

impl Inner {
    fn evict_to_budget(&mut self) {
        while self.used_bytes > self.budget_bytes {
            let Some((log, base_offset)) = self.order.pop_front() else {
                break;
            };
            let Some(batches) = self.logs.get_mut(&log) else {
                continue;
            };
            if batches.front().is_some_and(|b| b.base_offset == base_offset) {
                if let Some(evicted) = batches.pop_front() {
                    self.used_bytes -= evicted.bytes.len();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An end bound past everything these tests cache (the high watermark
    /// of a log whose batches are all cached).
    const END: i64 = i64::MAX;

    fn batch(length: usize) -> Bytes {
        Bytes::from(vec![7u8; length])
    }

    #[test]
    fn evicting_below_an_offset_frees_the_head_and_keeps_the_suffix() {
        let cache = TailCache::new(1000);
        let log = cache.register();
        cache.insert(log, 0, 4, batch(100));
        cache.insert(log, 5, 9, batch(100));
        cache.evict_below(log, 7);
        assert_eq!(cache.used_bytes(), 100);
        assert!(cache.read(log, 4, END, 1000, true).is_none(), "the head is gone");
        let hit = cache.read(log, 5, END, 1000, true).unwrap();
        assert_eq!((hit.batches.len(), hit.next_offset), (1, 10));
        // Stale order entries do not disturb later evictions.
        cache.insert(log, 10, 10, batch(950));
        assert_eq!(cache.used_bytes(), 950);
    }

    #[test]
    fn reads_stop_before_the_first_batch_that_reaches_the_end_bound() {
        let cache = TailCache::new(1000);
        let log = cache.register();
        cache.insert(log, 0, 4, batch(100));
        cache.insert(log, 5, 9, batch(100));
        cache.insert(log, 10, 10, batch(100));
        // A last stable offset of 5: only the first batch is below it.
        let hit = cache.read(log, 0, 5, 1000, true).unwrap();
        assert_eq!((hit.batches.len(), hit.bytes, hit.next_offset), (1, 100, 5));
        let hit = cache.read(log, 3, 10, 1000, true).unwrap();
        assert_eq!((hit.batches.len(), hit.bytes, hit.next_offset), (2, 200, 10));
        // At the bound, or inside a batch that reaches it: a hit with no data.
        for fetch_offset in [5, 7] {
            let hit = cache.read(log, fetch_offset, 5, 1000, true).unwrap();
            assert_eq!(
                (hit.batches.len(), hit.bytes, hit.next_offset),
                (0, 0, fetch_offset)
            );
        }
        // The bound applies before the first-batch exception.
        assert_eq!(cache.read(log, 5, 10, 1, true).unwrap().bytes, 100);
        assert_eq!(cache.read(log, 5, 9, 1, true).unwrap().bytes, 0);
        assert_eq!(cache.read(log, 0, END, 1000, true).unwrap().next_offset, 11);
    }

    #[test]
    fn reads_hit_only_from_the_cached_suffix_and_respect_max_bytes() {
        let cache = TailCache::new(1000);
        let log = cache.register();
        cache.insert(log, 0, 4, batch(100));
        cache.insert(log, 5, 9, batch(100));
        cache.insert(log, 10, 10, batch(100));
        assert_eq!(cache.used_bytes(), 300);
        let hit = cache.read(log, 7, END, 150, true).unwrap();
        assert_eq!(
            (hit.batches.len(), hit.bytes),
            (1, 100),
            "batch 5..=9 holds offset 7"
        );
        let hit = cache.read(log, 0, END, 50, true).unwrap();
        assert_eq!(hit.bytes, 100, "the first batch may exceed");
        assert_eq!(cache.read(log, 0, END, 50, false).unwrap().bytes, 0);
        assert_eq!(
            cache.read(log, 11, END, 1000, true).unwrap().bytes,
            0,
            "at the high watermark"
        );
    }

    #[test]
    fn eviction_keeps_the_budget_and_drops_the_oldest_across_partitions() {
        let cache = TailCache::new(250);
        let a = cache.register();
        let b = cache.register();
        cache.insert(a, 0, 0, batch(100));
        cache.insert(b, 0, 0, batch(100));
        cache.insert(a, 1, 1, batch(100));
        assert_eq!(cache.used_bytes(), 200);
        assert!(
            cache.read(a, 0, END, 1000, true).is_none(),
            "a's oldest batch was evicted"
        );
        assert_eq!(cache.read(a, 1, END, 1000, true).unwrap().bytes, 100);
        assert_eq!(cache.read(b, 0, END, 1000, true).unwrap().bytes, 100);
        cache.forget(b);
        assert_eq!(cache.used_bytes(), 100);
        assert!(cache.read(b, 0, END, 1000, true).is_none());
    }

    #[test]
    fn a_gap_or_an_oversized_batch_resets_the_partition() {
        let cache = TailCache::new(250);
        let log = cache.register();
        cache.insert(log, 0, 0, batch(100));
        cache.insert(log, 5, 5, batch(100)); // not contiguous
        assert!(cache.read(log, 0, END, 1000, true).is_none());
        assert_eq!(cache.used_bytes(), 100);
        cache.insert(log, 6, 6, batch(300)); // larger than the budget
        assert_eq!(cache.used_bytes(), 0);
        assert!(cache.read(log, 6, END, 1000, true).is_none());
        cache.insert(log, 7, 7, batch(10));
        assert_eq!(cache.read(log, 7, END, 1000, true).unwrap().bytes, 10);
    }
}
