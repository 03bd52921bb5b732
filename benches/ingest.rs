//! End-to-end storage benchmark on the TSBS-style devops workload, loaded over HTTP into a
//! real server (in-process, port 0):
//!
//! - ingest rate (lines/s and values/s, WAL fsynced before each 204);
//! - bytes/value: growth of the data directory (`du -sb`: segments, index, WAL) after a
//!   flush, a compaction and a restart, divided by the number of values;
//! - bytes read by a full scan vs a one-host one-hour aggregate (the series index and
//!   per-series blocks should make the latter read ≤ 1/50 of the former).
//!
//! Run: `cargo bench --bench ingest` (100 hosts x 24 h, integer values as TSBS writes them);
//! `cargo bench --bench ingest -- --float` for full-precision float values;
//! `--hosts N --steps N` to resize. Under `cargo test` it runs a small smoke version.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sundial::config::Config;
use sundial::devops::{self, Options};
use sundial::query::QueryEngine;
use sundial::server::Server;

mod common;
use common::arg;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn du(path: &Path) -> u64 {
    let m = std::fs::symlink_metadata(path).expect("metadata");
    if m.is_dir() {
        std::fs::read_dir(path)
            .expect("read_dir")
            .map(|e| du(&e.expect("entry").path()))
            .sum::<u64>()
    } else {
        m.len()
    }
}

async fn scan_bytes(q: &QueryEngine, sql: &str) -> (u64, f64) {
    let stats = q.storage().stats();
    let ctx = q.context("bench").expect("db");
    let before = stats.segment_bytes_read.load(Ordering::Relaxed);
    let t = Instant::now();
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert!(!batches.is_empty());
    (
        stats.segment_bytes_read.load(Ordering::Relaxed) - before,
        t.elapsed().as_secs_f64(),
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let float_values = std::env::args().any(|a| a == "--float");
    let opts = Options {
        hosts: arg("--hosts", 100),
        steps: arg("--steps", if full { 8640 } else { 30 }),
        float_values,
        ..Options::default()
    };
    let n_lines = opts.hosts * opts.steps;
    let n_values = n_lines * devops::FIELDS.len();
    // One request per 50 timestamps (5 000 lines for 100 hosts).
    let requests: Vec<String> = devops::generate(&opts)
        .collect::<Vec<_>>()
        .chunks(50)
        .map(|c| c.concat())
        .collect();
    let body_bytes: usize = requests.iter().map(String::len).sum();
    println!(
        "workload: {} hosts x {} steps = {n_lines} lines, {n_values} values ({}), {body_bytes} bytes of line protocol in {} requests",
        opts.hosts,
        opts.steps,
        if float_values { "float" } else { "integer" },
        requests.len()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            pg_addr: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let server = Server::start(config.clone()).await.expect("start");
        let empty = du(dir.path());
        let url = format!("http://{}/write?db=bench", server.http_addr);
        let t = Instant::now();
        let client = reqwest::Client::new();
        let mut inflight = Vec::new();
        for body in requests {
            let (client, url) = (client.clone(), url.clone());
            inflight.push(tokio::spawn(async move {
                let r = client.post(&url).body(body).send().await.expect("post");
                assert_eq!(r.status().as_u16(), 204);
            }));
            if inflight.len() == 4 {
                inflight.remove(0).await.expect("join");
            }
        }
        for h in inflight {
            h.await.expect("join");
        }
        let secs = t.elapsed().as_secs_f64();
        println!("process RSS after the load (server, client and generated data): {:.0} MB", rss_mb());
        println!(
            "ingest over HTTP: {:.0} lines/s, {:.0} values/s, {:.1} MB/s of line protocol ({secs:.1} s)",
            n_lines as f64 / secs,
            n_values as f64 / secs,
            body_bytes as f64 / secs / 1e6
        );
        let engine = server.engine().clone();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || {
            engine.flush().expect("flush");
            engine.compact(2).expect("compact");
        })
        .await
        .expect("join");
        println!("flush + compaction: {:.2} s", t.elapsed().as_secs_f64());
        server.shutdown().await;

        let server = Server::start(config).await.expect("restart");
        let grown = du(dir.path()) - empty;
        println!(
            "data directory growth after compaction and restart: {grown} bytes = {:.3} bytes/value",
            grown as f64 / n_values as f64
        );
        let q = QueryEngine::new(server.engine().clone());
        let (full_bytes, full_secs) = scan_bytes(&q, "SELECT max(usage_user), min(usage_idle) FROM cpu").await;
        let (one_bytes, one_secs) = scan_bytes(
            &q,
            "SELECT max(usage_user), min(usage_idle) FROM cpu WHERE hostname = 'host_7' \
             AND time >= '2016-01-01T12:00:00Z' AND time < '2016-01-01T13:00:00Z'",
        )
        .await;
        println!(
            "full scan (2 columns): {full_bytes} bytes read in {:.1} ms; one host, one hour: {one_bytes} bytes in {:.1} ms = 1/{:.0} of the full scan",
            full_secs * 1e3,
            one_secs * 1e3,
            full_bytes as f64 / one_bytes.max(1) as f64
        );
        let (all_bytes, all_secs) = scan_bytes(&q, "SELECT count(*), max(usage_user), max(usage_system), max(usage_idle), max(usage_nice), max(usage_iowait), max(usage_irq), max(usage_softirq), max(usage_steal), max(usage_guest), max(usage_guest_nice) FROM cpu").await;
        println!(
            "full scan (all 10 fields): {all_bytes} bytes read and decoded in {:.1} ms: {:.2} GB/s of values ({:.0} values/s)",
            all_secs * 1e3,
            (n_values * 8) as f64 / all_secs / 1e9,
            n_values as f64 / all_secs
        );
        server.shutdown().await;
    });
}
