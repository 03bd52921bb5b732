//! Scrape throughput: many local exposition endpoints whose values change every scrape,
//! scraped every second by Sundial (the release `sundial` binary, a separate process) and
//! then by Prometheus 2.42 (Debian's, a separate process) from the same endpoints. For
//! each: samples stored per second (Sundial: `count(*)` of the scraped table; Prometheus:
//! `prometheus_tsdb_head_samples_appended_total` from its /metrics) and process CPU per
//! 1 000 samples.
//!
//! Run: `cargo bench --bench scrape` (`--endpoints N --series N --secs N`). Under
//! `cargo test` it runs a small Sundial-only smoke version.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{arg, cpu_secs, free_port};

/// A server process the bench runs; killed when dropped, or when the bench itself is
/// interrupted (SIGINT, SIGTERM), so no server is left running on its own.
struct Proc(Child);

/// The pids of the running [`Proc`]s.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// The bench's data directory, removed when the bench is interrupted too.
static DATA_DIR: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

impl Proc {
    fn new(child: Child) -> Proc {
        CHILDREN.lock().unwrap().push(child.id());
        Proc(child)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        CHILDREN.lock().unwrap().retain(|pid| *pid != self.0.id());
    }
}

/// Kills the running [`Proc`]s, removes the data directory and exits when the bench is
/// interrupted.
async fn kill_children_on_interrupt() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for pid in CHILDREN.lock().unwrap().iter() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    if let Some(dir) = DATA_DIR.lock().unwrap().take() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(130);
}

/// Digits of each rendered value: fixed width, so a scrape rewrites them in place.
const VALUE_DIGITS: usize = 12;

/// An exposition endpoint with `series` counters that grow on every scrape. The body is
/// rendered once; each answer rewrites the fixed-width values in place, so the endpoints
/// cost little of the machine the scrapers share.
async fn endpoint(id: u64, series: u64, tick: Arc<AtomicU64>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut body = String::from("# TYPE bench_requests_total counter\n");
    let mut offsets = Vec::with_capacity(series as usize);
    for s in 0..series {
        body.push_str(&format!(
            "bench_requests_total{{endpoint=\"{id}\",series=\"{s}\"}} "
        ));
        offsets.push(body.len());
        body.push_str(&"0".repeat(VALUE_DIGITS));
        body.push('\n');
    }
    let template = Arc::new((body.into_bytes(), offsets));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tick = tick.clone();
            let template = template.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut body = template.0.clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                loop {
                    // One request per read (keep-alive), answered with fresh values.
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let n = tick.fetch_add(1, Ordering::Relaxed);
                    for (s, at) in template.1.iter().enumerate() {
                        let mut v = n * 7 + s as u64;
                        for d in body[*at..*at + VALUE_DIGITS].iter_mut().rev() {
                            *d = b'0' + (v % 10) as u8;
                            v /= 10;
                        }
                    }
                    if sock.write_all(head.as_bytes()).await.is_err()
                        || sock.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn sundial_samples(pg: &tokio_postgres::Client) -> u64 {
    pg.simple_query("SELECT count(*) FROM bench_requests_total")
        .await
        .ok()
        .and_then(|rows| {
            rows.into_iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                _ => None,
            })
        })
        .unwrap_or(0)
}

/// Prometheus' own counter of samples appended to its head block, read from its /metrics.
async fn prometheus_samples(url: &str) -> u64 {
    let Ok(r) = reqwest::get(format!("{url}/metrics")).await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    sundial::scrape::exposition::parse(
        text.as_bytes(),
        sundial::scrape::exposition::Format::Prometheus,
    )
    .unwrap_or_default()
    .iter()
    .filter(|s| s.name == "prometheus_tsdb_head_samples_appended_total")
    .map(|s| s.value)
    .sum::<f64>() as u64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let endpoints: u64 = arg("--endpoints", if full { 100 } else { 2 });
    let series: u64 = arg("--series", if full { 1000 } else { 10 });
    let secs: u64 = arg("--secs", if full { 30 } else { 3 });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(kill_children_on_interrupt());
    rt.block_on(async move {
        let tick = Arc::new(AtomicU64::new(0));
        let mut targets = Vec::new();
        for id in 0..endpoints {
            targets.push(format!("127.0.0.1:{}", endpoint(id, series, tick.clone()).await));
        }
        let dir = tempfile::tempdir().unwrap();
        *DATA_DIR.lock().unwrap() = Some(dir.path().to_path_buf());
        println!(
            "{endpoints} endpoints x {series} series, scraped every 1 s = {} samples/s offered; {secs} s measured",
            endpoints * series
        );

        // Sundial.
        let config = dir.path().join("sundial.toml");
        let list = targets.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
        std::fs::write(
            &config,
            format!(
                "self_scrape = false\n[[scrape_configs]]\njob_name = \"bench\"\nscrape_interval = \"1s\"\n\
                 [[scrape_configs.static_configs]]\ntargets = [{list}]\n"
            ),
        )
        .unwrap();
        let pg_port = free_port();
        let sundial = Proc::new(
            Command::new(env!("CARGO_BIN_EXE_sundial"))
                .arg("serve")
                .arg("--data-dir")
                .arg(dir.path().join("sundial"))
                .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
                .args(["--pg-addr", &format!("127.0.0.1:{pg_port}")])
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sundial"),
        );
        let pg = loop {
            match tokio_postgres::connect(
                &format!("host=127.0.0.1 port={pg_port} user=bench dbname=sundial"),
                tokio_postgres::NoTls,
            )
            .await
            {
                Ok((c, conn)) => {
                    tokio::spawn(conn);
                    break c;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let me = std::process::id().to_string();
        let (s0, c0, t0) = (sundial_samples(&pg).await, cpu_secs(&sundial.0.id().to_string()), Instant::now());
        let e0 = cpu_secs(&me);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        // CPU first: the counting query's own work is not the scraper's.
        let (c1, e1) = (cpu_secs(&sundial.0.id().to_string()), cpu_secs(&me));
        let wall = t0.elapsed().as_secs_f64();
        let s1 = sundial_samples(&pg).await;
        let sundial_rate = (s1 - s0) as f64 / wall;
        println!(
            "sundial:    {:>9.0} samples/s stored (count(*)), {:.2} cores, {:.3} CPU ms per 1000 samples; endpoints {:.2} cores",
            sundial_rate,
            (c1 - c0) / wall,
            (c1 - c0) * 1e6 / (s1 - s0).max(1) as f64,
            (e1 - e0) / wall
        );
        drop(pg);
        drop(sundial);
        if !full {
            assert!(s1 > s0, "Sundial stored scraped samples");
            return;
        }

        // Prometheus, same endpoints.
        let web = free_port();
        let prom_config = dir.path().join("prometheus.yml");
        let list = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        std::fs::write(
            &prom_config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap();
        let prom = Proc::new(
            Command::new("prometheus")
                .arg(format!("--config.file={}", prom_config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("prom").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{web}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus (apt-get install prometheus)"),
        );
        let url = format!("http://127.0.0.1:{web}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (p0, c0, t0) = (prometheus_samples(&url).await, cpu_secs(&prom.0.id().to_string()), Instant::now());
        let e0 = cpu_secs(&me);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (p1, c1, e1) = (prometheus_samples(&url).await, cpu_secs(&prom.0.id().to_string()), cpu_secs(&me));
        let wall = t0.elapsed().as_secs_f64();
        let prom_rate = (p1 - p0) as f64 / wall;
        println!(
            "prometheus: {:>9.0} samples/s appended (tsdb head), {:.2} cores, {:.3} CPU ms per 1000 samples; endpoints {:.2} cores",
            prom_rate,
            (c1 - c0) / wall,
            (c1 - c0) * 1e6 / (p1 - p0).max(1) as f64,
            (e1 - e0) / wall
        );
        println!("sundial / prometheus: {:.2}x", sundial_rate / prom_rate.max(1.0));
    });
}
