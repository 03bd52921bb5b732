//! Memory per active series: RSS growth of the storage engine holding N series (one point
//! each, three tags, one field), measured from `/proc/self/status`.
//!
//! Run: `cargo bench --bench series_memory` (1 M series; `-- --series N` to resize).

use sundial::storage::{Engine, Point, StorageConfig, Value, WriteOptions};

fn rss_bytes() -> u64 {
    // Return freed memory to the OS first, so RSS counts what is live.
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--series")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 10_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig {
        flush_threshold_bytes: usize::MAX,
        ..StorageConfig::default()
    };
    let engine = Engine::open(dir.path(), config).expect("open");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let before = rss_bytes();
    rt.block_on(async {
        for start in (0..n).step_by(10_000) {
            let points = (start..(start + 10_000).min(n))
                .map(|i| Point {
                    table: "node_load1".into(),
                    tags: vec![
                        (
                            "instance".into(),
                            format!("10.{}.{}.{}:9100", i >> 16, (i >> 8) & 255, i & 255),
                        ),
                        ("job".into(), "node".into()),
                        ("region".into(), format!("r{}", i % 10)),
                    ],
                    fields: vec![("value".into(), Value::Float(i as f64 * 0.01))],
                    time: 1_700_000_000_000_000_000,
                })
                .collect();
            let opts = WriteOptions {
                accept_partial: true,
                sync: false,
            };
            engine.write("bench", points, opts).await.expect("write");
        }
    });
    let buffered = rss_bytes();
    engine.flush().expect("flush");
    let flushed = rss_bytes();
    println!("{n} active series");
    println!(
        "  with one buffered point each: {:.0} bytes of RSS per series",
        (buffered.saturating_sub(before)) as f64 / n as f64
    );
    println!(
        "  after the flush (registry, tag index, segment footers; heap trimmed): {:.0} bytes per series",
        (flushed.saturating_sub(before)) as f64 / n as f64
    );
    engine.shutdown();
}
