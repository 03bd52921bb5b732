//! Arrival order: one series' rows written ascending, descending and shuffled through
//! the storage engine (batches of 5 000 points, as HTTP writes bring them), then the
//! WAL replayed on reopen. Reports each order's time and its ratio to ascending: any
//! order should cost about the same (no per-row insertion into a vector).
//!
//! Run: `cargo bench --bench arrival_order` (200 000 rows; `-- --rows N` to resize).
//! Under `cargo test` it runs on 5 000 rows.

use std::time::{Duration, Instant};

use sundial::storage::{Engine, Point, StorageConfig, Value, WriteOptions};

mod common;

fn points(order: &[i64]) -> Vec<Point> {
    order
        .iter()
        .map(|&t| Point {
            table: "cpu".into(),
            tags: vec![("host".into(), "a".into())],
            fields: vec![("usage".into(), Value::Float(t as f64))],
            time: 1_700_000_000_000_000_000 + t * 1_000_000_000,
        })
        .collect()
}

/// Writes `order` in batches and returns (write time, replay time).
fn run(order: &[i64]) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig {
        flush_threshold_bytes: usize::MAX,
        ..StorageConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let engine = Engine::open(dir.path(), config.clone()).expect("open");
    let start = Instant::now();
    for chunk in order.chunks(5_000) {
        let opts = WriteOptions {
            accept_partial: false,
            sync: false,
        };
        rt.block_on(engine.write("db", points(chunk), opts))
            .expect("write");
    }
    let wrote = start.elapsed();
    // Drop without a flush: the rows stay in the WAL for the replay.
    drop(engine);
    let start = Instant::now();
    let engine = Engine::open(dir.path(), config).expect("reopen");
    let replayed = start.elapsed();
    let rows: usize = engine
        .database("db")
        .and_then(|d| d.table("cpu"))
        .map(|t| t.state.read().active.rows())
        .unwrap_or(0);
    assert_eq!(rows, order.len(), "every row replayed");
    engine.shutdown();
    (wrote, replayed)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: i64 = common::arg("--rows", if full { 200_000 } else { 5_000 });
    let ascending: Vec<i64> = (0..n).collect();
    let descending: Vec<i64> = (0..n).rev().collect();
    // A fixed shuffle (xorshift), the same every run.
    let mut shuffled = ascending.clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut base = None;
    println!("{n} rows of one series, batches of 5000");
    println!(
        "{:<11} {:>10} {:>8} {:>10} {:>8}",
        "order", "write", "ratio", "replay", "ratio"
    );
    for (name, order) in [
        ("ascending", &ascending),
        ("descending", &descending),
        ("shuffled", &shuffled),
    ] {
        // Best of three: the machine is shared.
        let (w, r) = (0..3)
            .map(|_| run(order))
            .min_by_key(|(w, r)| *w + *r)
            .expect("three runs");
        let (bw, br) = *base.get_or_insert((w, r));
        println!(
            "{name:<11} {:>8.1}ms {:>8.2} {:>8.1}ms {:>8.2}",
            w.as_secs_f64() * 1e3,
            w.as_secs_f64() / bw.as_secs_f64(),
            r.as_secs_f64() * 1e3,
            r.as_secs_f64() / br.as_secs_f64()
        );
    }
}
