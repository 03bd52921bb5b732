//! Self-monitoring: Sundial's own metrics, in the Prometheus text format at `/metrics`
//! with a `sundial_` prefix, and scraped by Sundial itself by default (job `sundial`), so a
//! new user has data to query at once. A leaf module: subsystems record into the global
//! [`METRICS`]; [`render`] adds the storage gauges read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::Engine;

/// Counters by a label value.
#[derive(Debug)]
pub struct Labeled(Mutex<BTreeMap<String, u64>>);

impl Labeled {
    const fn new() -> Labeled {
        Labeled(Mutex::new(BTreeMap::new()))
    }

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

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A latency histogram (cumulative on output).
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Everything Sundial counts about itself.
#[derive(Debug)]
pub struct Metrics {
    /// Rows stored, by protocol (`line_protocol`, `remote_write`, `graphite`, `scrape`).
    pub rows_ingested: Labeled,
    /// Request bytes received, by protocol.
    pub bytes_ingested: Labeled,
    /// Rows or lines refused, by reason (`parse`, `schema`).
    pub write_errors: Labeled,
    pub wal_fsync: Histogram,
    /// Statements answered, by protocol.
    pub queries: Labeled,
    pub postgres_query_latency: Histogram,
    pub alert_evaluations: AtomicU64,
    pub alert_evaluation_failures: AtomicU64,
    pub alert_notification_failures: AtomicU64,
    /// Scrapes, by job; failed ones too.
    pub scrapes: Labeled,
    pub scrape_failures: Labeled,
}

/// The process-wide metrics.
pub static METRICS: Metrics = Metrics {
    rows_ingested: Labeled::new(),
    bytes_ingested: Labeled::new(),
    write_errors: Labeled::new(),
    wal_fsync: Histogram::new(),
    queries: Labeled::new(),
    postgres_query_latency: Histogram::new(),
    alert_evaluations: AtomicU64::new(0),
    alert_evaluation_failures: AtomicU64::new(0),
    alert_notification_failures: AtomicU64::new(0),
    scrapes: Labeled::new(),
    scrape_failures: Labeled::new(),
};

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

/// The Prometheus text exposition of all metrics.
pub fn render(engine: &Engine) -> String {
    let m = &METRICS;
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
    m.wal_fsync
        .render(&mut out, "sundial_wal_fsync_seconds", "");
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
    m.postgres_query_latency.render(
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
    family(&mut out, "sundial_segments", "gauge", "Segment files.");
    let _ = writeln!(out, "sundial_segments {segments}");
    family(
        &mut out,
        "sundial_tables",
        "gauge",
        "Tables in all databases.",
    );
    let _ = writeln!(out, "sundial_tables {tables}");
    let s = engine.stats();
    for (name, help, value) in [
        (
            "sundial_flushes_total",
            "Buffer flushes to segments.",
            &s.flushes,
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
        let h = Histogram::new();
        h.observe(std::time::Duration::from_micros(300));
        h.observe(std::time::Duration::from_millis(20));
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count 2\n"), "{out}");
        let parsed = crate::scrape::exposition::parse(
            out.as_bytes(),
            crate::scrape::exposition::Format::Prometheus,
        )
        .unwrap();
        assert_eq!(parsed.len(), 15);
    }
}
