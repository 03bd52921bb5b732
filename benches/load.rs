//! Load: C concurrent Postgres clients query while W writers ingest line protocol over
//! HTTP, for a bounded time, against a `sundial serve` process with its memory limits
//! set. Reports queries and rows per second, p50/p99/max latency of each, errors (there
//! must be none) and the server's RSS (sampled, and its peak) against the limits.
//!
//! Run: `cargo bench --bench load` (`--clients 200 --writers 20 --secs 30`; the server
//! runs under `prlimit --as` of 8 GiB). Under `cargo test` it runs a small smoke version.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{arg, now_ns};

/// `VmRSS` or `VmHWM` of `pid`, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut latencies: Vec<Duration>, secs: f64, per: &str, n: u64) {
    latencies.sort();
    println!(
        "{name:8} {:>9.0} {per}/s  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  ({} requests)",
        n as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len()
    );
}

/// Starts `sundial serve` under an address-space limit; its pid, HTTP and Postgres addresses.
fn start_server(dir: &std::path::Path, config: &str) -> (std::process::Child, String, String) {
    let cfg = dir.join("sundial.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new("prlimit")
        .arg("--as=8589934592")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_sundial"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"])
        .env("SUNDIAL_NO_SELF_SCRAPE", "true")
        .env("SUNDIAL_LOG", "warn,sundial::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prlimit sundial serve");
    let (http, pg) = common::ready_addresses(&mut child);
    (child, http, pg)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let clients: usize = arg("--clients", if full { 200 } else { 20 });
    let writers: usize = arg("--writers", if full { 20 } else { 2 });
    let secs: u64 = arg("--secs", if full { 30 } else { 3 });
    let buffer_mib: u64 = arg("--buffer-mib", 256);
    let query_mib: u64 = arg("--query-mib", 1024);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "query_memory_limit = {}\n[storage]\nmax_buffer_bytes = {}\n[postgres]\nmax_connections = {}\n",
        query_mib << 20,
        buffer_mib << 20,
        clients + 10
    );
    let (mut child, http, pg) = start_server(dir.path(), &config);
    let pid = child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Some data to query from the start: 100 hosts, one row a second for 10 minutes.
        let start = now_ns() - 600_000_000_000;
        let client = reqwest::Client::new();
        for chunk in 0..10 {
            let body: String = (0..6000)
                .map(|i| {
                    let n = chunk * 6000 + i;
                    format!(
                        "cpu,hostname=host_{} usage_user={}i,usage_system={}i {}\n",
                        n % 100,
                        n % 97,
                        n % 13,
                        start + (n / 100) as i64 * 1_000_000_000
                    )
                })
                .collect();
            let r = client
                .post(format!("http://{http}/write?db=load"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 204);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicU64::new(0));
        let rows_written = Arc::new(AtomicU64::new(0));
        let mut query_tasks = Vec::new();
        for c in 0..clients {
            let (pg, stop, errors) = (pg.clone(), stop.clone(), errors.clone());
            query_tasks.push(tokio::spawn(async move {
                let url = format!("host={} port={} user=load dbname=load", &pg[..pg.rfind(':').unwrap()], &pg[pg.rfind(':').unwrap() + 1..]);
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                let queries = [
                    format!("SELECT max(usage_user) FROM cpu WHERE hostname = 'host_{}' AND time > now() - INTERVAL '5 minutes'", c % 100),
                    "SELECT hostname, avg(usage_user) FROM cpu WHERE time > now() - INTERVAL '1 minute' GROUP BY hostname ORDER BY 2 DESC LIMIT 5".to_string(),
                    "SELECT count(*) FROM cpu".to_string(),
                    format!("SELECT date_trunc('minute', time) AS m, max(usage_system) FROM cpu WHERE hostname = 'host_{}' GROUP BY 1 ORDER BY 1 DESC LIMIT 3", (c * 7) % 100),
                ];
                let mut latencies = Vec::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if let Err(e) = client.simple_query(&queries[i % queries.len()]).await {
                        eprintln!("query failed: {e:?}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(started.elapsed());
                    i += 1;
                }
                latencies
            }));
        }
        let mut write_tasks = Vec::new();
        for w in 0..writers {
            let (http, stop, errors, rows) = (http.clone(), stop.clone(), errors.clone(), rows_written.clone());
            write_tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies = Vec::new();
                let mut batch = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let now = now_ns();
                    let body: String = (0..1000u64)
                        .map(|i| {
                            format!(
                                "cpu,hostname=host_{},writer=w{w} usage_user={}i,usage_system={}i {}\n",
                                i % 100,
                                (batch + i) % 100,
                                i % 7,
                                now + i as i64
                            )
                        })
                        .collect();
                    let started = Instant::now();
                    match client.post(format!("http://{http}/write?db=load")).body(body).send().await {
                        Ok(r) if r.status().as_u16() == 204 => {
                            rows.fetch_add(1000, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            eprintln!("write answered {}: {}", r.status(), r.text().await.unwrap_or_default());
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("write failed: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.push(started.elapsed());
                    batch += 1;
                }
                latencies
            }));
        }
        let started = Instant::now();
        let mut peak_sampled = 0;
        while started.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            peak_sampled = peak_sampled.max(status_bytes(pid, "VmRSS:"));
        }
        stop.store(true, Ordering::SeqCst);
        let mut query_latencies = Vec::new();
        for t in query_tasks {
            query_latencies.extend(t.await.unwrap());
        }
        let mut write_latencies = Vec::new();
        for t in write_tasks {
            write_latencies.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let queries = query_latencies.len() as u64;
        println!("load: {clients} Postgres clients, {writers} writers, {elapsed:.1} s; limits: max_buffer_bytes {buffer_mib} MiB, query_memory_limit {query_mib} MiB, address space 8 GiB");
        summary("queries", query_latencies, elapsed, "queries", queries);
        summary("writes", write_latencies, elapsed, "rows", rows_written.load(Ordering::Relaxed));
        let peak = status_bytes(pid, "VmHWM:");
        println!(
            "server RSS: peak {} MiB (sampled max {} MiB); errors: {}",
            peak >> 20,
            peak_sampled >> 20,
            errors.load(Ordering::Relaxed)
        );
        assert_eq!(errors.load(Ordering::Relaxed), 0, "requests failed under load");
        assert!(
            peak < (buffer_mib + query_mib + 1024) << 20,
            "RSS {} MiB is past the configured limits plus 1 GiB",
            peak >> 20
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
