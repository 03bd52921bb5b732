//! What the engine counts about itself: plain atomics that tests read directly and that
//! self-monitoring renders at `/metrics`. Storage records here and imports nothing above
//! it; the `metrics` module reads these.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters the engine keeps, for tests and self-monitoring.
#[derive(Debug, Default)]
pub struct Stats {
    pub segments_read: AtomicU64,
    pub segments_pruned: AtomicU64,
    pub segment_bytes_read: AtomicU64,
    /// Series blocks a scan skipped without reading them, because their statistics
    /// showed that no row could pass the query's value predicates.
    pub blocks_skipped: AtomicU64,
    pub flushes: AtomicU64,
    /// Tables that failed to flush, summed over checkpoints.
    pub flush_failures: AtomicU64,
    pub wal_syncs: AtomicU64,
    /// WAL commits that failed (a write or fsync error): their writes were refused.
    pub wal_failures: AtomicU64,
    /// Latency of each WAL fsync.
    pub wal_fsync: Histogram,
}

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A latency histogram over [`BUCKETS`] (counts per bucket, not cumulative).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket of [`BUCKETS`] (those above the last bucket are only in
    /// `count`).
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
