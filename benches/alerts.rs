//! Alert evaluation at scale: N alerts with `EVERY '10 seconds'`, each its own query (a
//! different host and threshold) over the 100-host TSBS-style `cpu` table while it is
//! being written to (one row per host every 10 s, at the current time). Each run reports
//! evaluations per second, process CPU per evaluation, evaluation latency and missed
//! evaluations; runs grow N until evaluations are missed. A probe alert (`FOR '0s'`,
//! webhook) measures the delay from a row's arrival to its notification.
//!
//! Run: `cargo bench --bench alerts` (`--alerts 1000,2000,4000 --secs 40 --trials 3`).
//! Under `cargo test` it runs a small smoke version (1 s interval, few alerts).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sundial::config::Config;
use sundial::devops::{self, Options};
use sundial::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{arg, arg_text, cpu_secs, now_ns};

async fn sql(pg: &tokio_postgres::Client, q: &str) -> Vec<Vec<String>> {
    pg.simple_query(q)
        .await
        .expect(q)
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Sums of (evaluations, missed, failures) over the load alerts.
async fn counters(pg: &tokio_postgres::Client) -> (i64, i64, i64) {
    let r = sql(
        pg,
        "SELECT sum(evaluations), sum(missed), sum(failures) FROM system.alert_rules WHERE name LIKE 'load_%'",
    )
    .await;
    let v = |i: usize| r[0][i].parse::<i64>().unwrap_or(0);
    (v(0), v(1), v(2))
}

/// A webhook receiver that notes when each notification arrived.
async fn receiver(arrivals: Arc<Mutex<Vec<(Instant, String)>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = sock.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .to_ascii_lowercase()
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            arrivals.lock().push((Instant::now(), body));
                            break;
                        }
                    }
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}/probe")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let counts: Vec<usize> = arg_text("--alerts")
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| {
            if full {
                vec![1000, 2000, 4000]
            } else {
                vec![20]
            }
        });
    let every: u64 = if full { 10 } else { 1 };
    let secs: u64 = arg("--secs", if full { 40 } else { 3 });
    let trials: usize = arg("--trials", if full { 3 } else { 1 });
    let hosts = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            pg_addr: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let server = Server::start(config).await.expect("start");
        let write_url = format!("http://{}/write?db=sundial", server.http_addr);
        let http = reqwest::Client::new();
        // Five minutes of history, then a row per host every 10 s at the current time.
        let history: String = devops::generate(&Options {
            hosts,
            steps: 30,
            start_nanos: now_ns() - 300_000_000_000,
            ..Options::default()
        })
        .collect();
        let r = http.post(&write_url).body(history).send().await.expect("load");
        assert_eq!(r.status().as_u16(), 204);
        let writing = Arc::new(AtomicBool::new(true));
        let writer = {
            let (writing, http, url) = (writing.clone(), http.clone(), write_url.clone());
            tokio::spawn(async move {
                let mut seed = 1;
                while writing.load(Ordering::SeqCst) {
                    let body: String = devops::generate(&Options {
                        hosts,
                        steps: 1,
                        seed,
                        start_nanos: now_ns(),
                        ..Options::default()
                    })
                    .collect();
                    seed += 1;
                    let _ = http.post(&url).body(body).send().await;
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            })
        };
        let (pg, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=bench dbname=sundial", server.pg_addr.port()),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(conn);
        println!(
            "{hosts} hosts written every 10 s; alerts EVERY '{every} seconds', one per host and threshold; {} logical CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        let mut created = 0;
        let mut probed = false;
        for n in counts {
            let t = Instant::now();
            while created < n {
                let i = created;
                pg.batch_execute(&format!(
                    "CREATE ALERT load_{i} EVERY '{every} seconds' FOR '30 seconds' AS \
                     SELECT hostname, avg(usage_user) AS value FROM cpu \
                     WHERE hostname = 'host_{}' AND time > now() - INTERVAL '1 minute' \
                     GROUP BY hostname HAVING avg(usage_user) > {}",
                    i % hosts,
                    40 + (i * 7) % 60
                ))
                .await
                .expect("create alert");
                created += 1;
            }
            println!("\n{n} alerts (created in {:.1} s)", t.elapsed().as_secs_f64());
            // Let one interval pass so every alert is on its schedule, then measure.
            tokio::time::sleep(Duration::from_secs(every + 1)).await;
            let (e0, m0, f0) = counters(&pg).await;
            let c0 = cpu_secs("self");
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let (e1, m1, f1) = counters(&pg).await;
            let cpu = cpu_secs("self") - c0;
            let wall = t0.elapsed().as_secs_f64();
            let evals = (e1 - e0).max(1);
            let lat = sql(
                &pg,
                "SELECT approx_percentile_cont(last_duration_ms, 0.5), approx_percentile_cont(last_duration_ms, 0.99), max(last_duration_ms) \
                 FROM system.alert_rules WHERE name LIKE 'load_%'",
            )
            .await;
            println!(
                "  {:.0} evaluations/s (expected {:.0}), missed {}, failed {}",
                evals as f64 / wall,
                n as f64 / every as f64,
                m1 - m0,
                f1 - f0
            );
            println!(
                "  process CPU {:.2} cores = {:.3} ms CPU per evaluation (incl. writer and this client)",
                cpu / wall,
                cpu * 1e3 / evals as f64
            );
            println!(
                "  evaluation latency ms: p50 {} p99 {} max {}",
                lat[0][0], lat[0][1], lat[0][2]
            );

            if !probed {
                probed = true;
                let arrivals = Arc::new(Mutex::new(Vec::new()));
                let url = receiver(arrivals.clone()).await;
                pg.batch_execute(&format!(
                    "CREATE ALERT probe EVERY '{every} seconds' FOR '0s' NOTIFY WEBHOOK '{url}' AS \
                     SELECT hostname, max(usage_user) AS value FROM cpu \
                     WHERE hostname = 'probe' AND time > now() - INTERVAL '{} seconds' \
                     GROUP BY hostname HAVING max(usage_user) > 90",
                    every
                ))
                .await
                .expect("probe");
                let mut delays = Vec::new();
                for trial in 0..trials {
                    // Start at varying points of the interval.
                    tokio::time::sleep(Duration::from_millis(1300 * trial as u64 % (every * 1000))).await;
                    let before = arrivals.lock().len();
                    let written = Instant::now();
                    let r = http
                        .post(&write_url)
                        .body(format!("cpu,hostname=probe usage_user=99i {}\n", now_ns()))
                        .send()
                        .await
                        .expect("probe write");
                    assert_eq!(r.status().as_u16(), 204);
                    let deadline = Instant::now() + Duration::from_secs(every * 3 + 5);
                    loop {
                        let got = arrivals
                            .lock()
                            .iter()
                            .skip(before)
                            .find(|(_, b)| b.contains("\"status\":\"firing\""))
                            .map(|(t, _)| *t);
                        if let Some(t) = got {
                            delays.push(t.duration_since(written).as_secs_f64());
                            break;
                        }
                        assert!(Instant::now() < deadline, "probe notification did not arrive");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // Wait for it to resolve before the next trial.
                    let deadline = Instant::now() + Duration::from_secs(every * 4 + 5);
                    while !arrivals.lock().iter().skip(before).any(|(_, b)| b.contains("\"status\":\"resolved\"")) {
                        assert!(Instant::now() < deadline, "probe did not resolve");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                println!(
                    "  data arrival → webhook notification (FOR '0s', EVERY '{every} seconds'): {} s",
                    delays.iter().map(|d| format!("{d:.2}")).collect::<Vec<_>>().join(", ")
                );
            }
        }
        writing.store(false, Ordering::SeqCst);
        writer.abort();
        server.shutdown().await;
    });
}
