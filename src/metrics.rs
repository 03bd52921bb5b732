//! Self-monitoring: Sundial's own metrics, in the Prometheus text format at `/metrics`
//! with a `sundial_` prefix, and scraped by Sundial itself by default (job `sundial`), so a
//! new user has data to query at once. Each server owns one [`Metrics`] that its
//! subsystems record into; [`render`] adds the storage engine's own counters and gauges,
//! read at scrape time. Imports nothing above `storage`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::storage::Engine;

use crate::storage::stats::BUCKETS;
pub use crate::storage::stats::Histogram;

/// Counters by a label value.
#[derive(Debug, Default)]
pub struct Labeled(Mutex<BTreeMap<String, u64>>);

impl Labeled {
    pub fn add(&self, label: &str, n: u64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(label.to_string()).or_insert(0) += n;
        }
    }

    fn snapshot(&self) -> Vec<(String, u64)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// Writes `h` as a Prometheus histogram (cumulative buckets, `_sum`, `_count`).
fn render_histogram(h: &Histogram, out: &mut String, name: &str, labels: &str) {
    let snap = h.snapshot();
    let mut cumulative = 0;
    let sep = if labels.is_empty() { "" } else { "," };
    for (b, n) in BUCKETS.iter().zip(snap.buckets) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
    }
    let count = snap.count;
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", snap.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Everything a server counts about itself (besides the storage engine's own
/// [`crate::storage::Stats`]). Each server has its own, shared by its subsystems, so
/// several servers in one process count apart.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Rows stored, by protocol (`line_protocol`, `remote_write`, `graphite`, `scrape`).
    pub rows_ingested: Labeled,
    /// Request bytes received, by protocol.
    pub bytes_ingested: Labeled,
    /// Rows or lines refused, by reason (`parse`, `schema`).
    pub write_errors: Labeled,
    /// Statements answered, by protocol.
    pub queries: Labeled,
    pub postgres_query_latency: Histogram,
    pub alert_evaluations: AtomicU64,
    pub alert_evaluation_failures: AtomicU64,
    pub alert_notification_failures: AtomicU64,
    /// Scrapes, by job; failed ones too.
    pub scrapes: Labeled,
    pub scrape_failures: Labeled,
    /// The query memory pool's size in bytes (0: unlimited), set at start.
    pub query_memory_limit: AtomicU64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labeled(out: &mut String, name: &str, label: &str, kind: &str, help: &str, l: &Labeled) {
    family(out, name, kind, help);
    for (v, n) in l.snapshot() {
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(out, "{name}{{{label}=\"{v}\"}} {n}");
    }
}

/// The Prometheus text exposition of a server's metrics and its engine's.
pub fn render(m: &Metrics, engine: &Engine) -> String {
    let s = engine.stats();
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    };
    labeled(
        &mut out,
        "sundial_rows_ingested_total",
        "protocol",
        "counter",
        "Rows stored, by protocol.",
        &m.rows_ingested,
    );
    labeled(
        &mut out,
        "sundial_bytes_ingested_total",
        "protocol",
        "counter",
        "Request bytes received, by protocol.",
        &m.bytes_ingested,
    );
    labeled(
        &mut out,
        "sundial_write_errors_total",
        "reason",
        "counter",
        "Lines or rows refused, by reason.",
        &m.write_errors,
    );
    family(
        &mut out,
        "sundial_wal_fsync_seconds",
        "histogram",
        "WAL fsync latency.",
    );
    render_histogram(&s.wal_fsync, &mut out, "sundial_wal_fsync_seconds", "");
    labeled(
        &mut out,
        "sundial_queries_total",
        "protocol",
        "counter",
        "Statements answered, by protocol.",
        &m.queries,
    );
    family(
        &mut out,
        "sundial_query_duration_seconds",
        "histogram",
        "Time to plan and start a Postgres statement.",
    );
    render_histogram(
        &m.postgres_query_latency,
        &mut out,
        "sundial_query_duration_seconds",
        "protocol=\"postgres\"",
    );
    for (name, help, value) in [
        (
            "sundial_alert_evaluations_total",
            "Alert evaluations run.",
            &m.alert_evaluations,
        ),
        (
            "sundial_alert_evaluation_failures_total",
            "Alert evaluations that failed or timed out.",
            &m.alert_evaluation_failures,
        ),
        (
            "sundial_alert_notification_failures_total",
            "Alert deliveries that failed after retries.",
            &m.alert_notification_failures,
        ),
    ] {
        counter(&mut out, name, help, value.load(Ordering::Relaxed));
    }
    labeled(
        &mut out,
        "sundial_scrapes_total",
        "job",
        "counter",
        "Scrapes, by job.",
        &m.scrapes,
    );
    labeled(
        &mut out,
        "sundial_scrape_failures_total",
        "job",
        "counter",
        "Failed scrapes, by job.",
        &m.scrape_failures,
    );
    let (tables, segments, buffered) = engine.footprint();
    family(
        &mut out,
        "sundial_buffer_bytes",
        "gauge",
        "Bytes held in memory buffers before flushing.",
    );
    let _ = writeln!(out, "sundial_buffer_bytes {buffered}");
    family(
        &mut out,
        "sundial_write_buffer_limit_bytes",
        "gauge",
        "storage.max_buffer_bytes: unflushed bytes past which writes get 503.",
    );
    let _ = writeln!(
        out,
        "sundial_write_buffer_limit_bytes {}",
        engine.config().max_buffer_bytes
    );
    family(
        &mut out,
        "sundial_query_memory_limit_bytes",
        "gauge",
        "query_memory_limit: memory all queries share (0: unlimited).",
    );
    let _ = writeln!(
        out,
        "sundial_query_memory_limit_bytes {}",
        m.query_memory_limit
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    family(&mut out, "sundial_segments", "gauge", "Segment files.");
    let _ = writeln!(out, "sundial_segments {segments}");
    family(
        &mut out,
        "sundial_tables",
        "gauge",
        "Tables in all databases.",
    );
    let _ = writeln!(out, "sundial_tables {tables}");
    family(
        &mut out,
        "sundial_unflushed_tables",
        "gauge",
        "Tables whose buffers cannot be written as segments (see system.unflushed_tables).",
    );
    let _ = writeln!(
        out,
        "sundial_unflushed_tables {}",
        engine.unflushed_tables().len()
    );
    family(
        &mut out,
        "sundial_quarantined_files",
        "gauge",
        "Damaged WAL records and segment files set aside (see system.quarantine).",
    );
    let _ = writeln!(
        out,
        "sundial_quarantined_files {}",
        engine.quarantined().len()
    );
    for (name, help, value) in [
        (
            "sundial_flushes_total",
            "Buffer flushes to segments.",
            &s.flushes,
        ),
        (
            "sundial_flush_failures_total",
            "Table flushes that failed (the rows stay buffered and in the WAL).",
            &s.flush_failures,
        ),
        (
            "sundial_segment_bytes_read_total",
            "Segment bytes read by queries.",
            &s.segment_bytes_read,
        ),
        (
            "sundial_segments_pruned_total",
            "Segments skipped by time pruning.",
            &s.segments_pruned,
        ),
        (
            "sundial_blocks_skipped_total",
            "Series blocks skipped unread because their statistics rule out the query's value conditions.",
            &s.blocks_skipped,
        ),
    ] {
        counter(&mut out, name, help, value.load(Ordering::Relaxed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_micros(300));
        h.observe(std::time::Duration::from_millis(20));
        let mut out = String::new();
        render_histogram(&h, &mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count 2\n"), "{out}");
        assert_eq!(out.lines().count(), 15);
    }
}
