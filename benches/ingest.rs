//! Ingest benchmark: line protocol parsing, and writes through the storage engine (WAL
//! with fsync, buffers) then a flush to segment files, on the TSBS-style devops workload.
//!
//! Run: `cargo bench --bench ingest` (100 hosts x 24 h; `-- --steps N --hosts N --float`).

use std::time::Instant;

use sundial::devops::{self, Options};
use sundial::ingest::line_protocol::{lines, parse_line};
use sundial::ingest::{Precision, to_point};
use sundial::storage::{Engine, StorageConfig, WriteOptions};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // Under `cargo test` (no --bench flag) run a small smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let opts = Options {
        hosts: arg("--hosts", 100),
        steps: arg("--steps", if full { 8640 } else { 20 }),
        float_values: std::env::args().any(|a| a == "--float"),
        ..Options::default()
    };
    let body: String = devops::generate(&opts).collect();
    let n_lines = opts.hosts * opts.steps;
    let n_values = n_lines * devops::FIELDS.len();
    println!(
        "workload: {} lines, {} values, {} bytes of line protocol",
        n_lines,
        n_values,
        body.len()
    );

    let t = Instant::now();
    let mut parsed = 0;
    for (_, line) in lines(body.as_bytes()) {
        parse_line(line).expect("valid");
        parsed += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "parse: {:.0} lines/s, {:.1} MB/s",
        parsed as f64 / secs,
        body.len() as f64 / secs / 1e6
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), StorageConfig::default()).expect("open");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let requests: Vec<Vec<_>> = body
        .as_bytes()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| to_point(parse_line(l).expect("valid"), Precision::Nanosecond, 0).expect("point"))
        .collect::<Vec<_>>()
        .chunks(5000)
        .map(|c| c.to_vec())
        .collect();
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for points in requests {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                engine
                    .write(
                        "bench",
                        points,
                        WriteOptions {
                            accept_partial: true,
                            sync: true,
                        },
                    )
                    .await
                    .expect("write")
            }));
        }
        for t in tasks {
            t.await.expect("join");
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "engine write (WAL fsync + buffer): {:.0} lines/s, {:.0} values/s",
        n_lines as f64 / secs,
        n_values as f64 / secs
    );
    let t = Instant::now();
    engine.flush().expect("flush");
    println!("flush to segments: {:.2} s", t.elapsed().as_secs_f64());
    let seg_bytes: u64 = walk(&dir.path().join("dbs"));
    println!(
        "segment bytes: {} ({:.3} bytes/value)",
        seg_bytes,
        seg_bytes as f64 / n_values as f64
    );
    engine.shutdown();
}

fn walk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let m = e.metadata().expect("metadata");
        total += if m.is_dir() { walk(&e.path()) } else { m.len() };
    }
    total
}
