//! Time, injected: the server reads a [`Clock`] so tests can control it.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i64;

    /// The longest real time a loop waiting on this clock may sleep before it looks
    /// again: a second for the system clock; a manual clock, which can jump at any
    /// moment, is looked at often so a test's step is seen at once.
    fn max_sleep(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> i64 {
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(nanos: i64) -> ManualClock {
        ManualClock(AtomicI64::new(nanos))
    }

    pub fn set(&self, nanos: i64) {
        self.0.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn max_sleep(&self) -> std::time::Duration {
        std::time::Duration::from_millis(10)
    }
}

/// FNV-1a: a small, stable 64-bit hash (schedule offsets, file names, fingerprints, shards).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stable offset of `name` within an interval of `every_ns` (FNV-1a of the name), so
/// that periodic work (alert evaluations, scrapes) spreads over the interval.
pub fn offset(name: &str, every_ns: i64) -> i64 {
    (fnv1a(name.bytes()) % every_ns.max(1) as u64) as i64
}

/// The first slot (a multiple of `every_ns` plus `offset_ns`) strictly after `t`.
/// Saturating: an interval longer than the time left in `i64` gives `i64::MAX` (never).
pub fn next_after(t: i64, every_ns: i64, offset_ns: i64) -> i64 {
    let every_ns = every_ns.max(1);
    let base = t
        .saturating_sub(offset_ns)
        .div_euclid(every_ns)
        .saturating_mul(every_ns)
        .saturating_add(offset_ns);
    if base > t {
        base
    } else {
        base.saturating_add(every_ns)
    }
}
