//! The systems under test: each started here as its own process(es) on free ports in a
//! scratch directory, loaded, queried and stopped, with the peak memory of its process
//! tree sampled throughout.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Data;
use super::queries::Query;
use crate::common::free_port;

/// Address-space limit for every server process (the machine has 24 GiB).
const ADDRESS_SPACE: &str = "--as=12884901888";

/// Row count and the sum of every numeric value (timestamps excluded) of a result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fingerprint {
    pub rows: u64,
    pub sum: f64,
}

impl Fingerprint {
    pub fn agrees(&self, other: &Fingerprint) -> bool {
        self.rows == other.rows && (self.sum - other.sum).abs() <= 1e-6 * self.sum.abs().max(1.0)
    }
    pub fn describe(&self) -> String {
        format!("{} rows/{:.6}", self.rows, self.sum)
    }
}

/// A server process and the sampler of its tree's peak PSS.
pub struct Proc {
    child: Child,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn pss_bytes(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn descendants(pid: u32, out: &mut Vec<u32>) {
    out.push(pid);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            descendants(child, out);
        }
    }
}

impl Proc {
    fn spawn(mut command: Command) -> Proc {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (pid, p, s) = (child.id(), peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let mut pids = Vec::new();
                descendants(pid, &mut pids);
                let total: u64 = pids.into_iter().map(pss_bytes).sum();
                p.fetch_max(total, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Proc { child, peak, stop }
    }

    /// Sends `signal`, waits for the exit; the peak PSS seen.
    fn finish(mut self, signal: &str) -> u64 {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub enum Peer {
    Sundial {
        binary: PathBuf,
        proc: Option<Proc>,
        peak: u64,
        dir: PathBuf,
        http: String,
        client: Option<tokio_postgres::Client>,
    },
    Postgres {
        proc: Option<Proc>,
        client: Option<tokio_postgres::Client>,
    },
    Influx {
        proc: Option<Proc>,
        dir: PathBuf,
        url: String,
    },
    DuckDb {
        proc: Option<Proc>,
        stdin: std::process::ChildStdin,
        stdout: BufReader<std::process::ChildStdout>,
    },
}

fn start_sundial(binary: &Path, dir: &Path) -> (Proc, String, String) {
    let mut command = Command::new("prlimit");
    command
        .arg(ADDRESS_SPACE)
        .arg("--")
        .arg(binary)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
            "--no-self-scrape",
        ])
        .env("SUNDIAL_LOG", "warn,sundial::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut proc = Proc::spawn(command);
    let (http, pg) = crate::common::ready_addresses(&mut proc.child);
    (proc, http, pg)
}

async fn pg_connect(config: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(config, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn uid_gid(user: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .expect("uid")
    };
    (id("-u"), id("-g"))
}

/// Runs `command` as the `postgres` user when this process is root (initdb refuses root).
fn as_postgres(command: &mut Command) {
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = uid_gid("postgres");
        command.uid(uid).gid(gid);
    }
}

fn pg_bin(name: &str) -> PathBuf {
    Path::new("/usr/lib/postgresql/15/bin").join(name)
}

fn du(path: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if m.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0)
    } else {
        m.len()
    }
}

/// Posts every body to `url` from `writers` concurrent writers; rows/s.
async fn ingest(url: &str, data: &Data, writers: usize) -> f64 {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.to_string());
            let bodies = data.bodies.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let r = client
                        .post(&url)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("write");
                    let status = r.status();
                    assert!(
                        status.is_success(),
                        "write {status}: {}",
                        r.text().await.unwrap_or_default()
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    data.rows as f64 / t.elapsed().as_secs_f64()
}

/// A Postgres-protocol cell as a number, if it is one.
struct Num(Option<f64>);

impl<'a> tokio_postgres::types::FromSql<'a> for Num {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        let be = |n: usize| -> Result<[u8; 8], Box<dyn std::error::Error + Sync + Send>> {
            let mut b = [0u8; 8];
            b[8 - n..].copy_from_slice(raw.get(..n).ok_or("short value")?);
            Ok(b)
        };
        Ok(Num(Some(match *ty {
            Type::INT2 => i16::from_be_bytes(be(2)?[6..].try_into()?) as f64,
            Type::INT4 => i32::from_be_bytes(be(4)?[4..].try_into()?) as f64,
            Type::INT8 => i64::from_be_bytes(be(8)?) as f64,
            Type::FLOAT4 => f32::from_be_bytes(be(4)?[4..].try_into()?) as f64,
            Type::FLOAT8 => f64::from_be_bytes(be(8)?),
            Type::NUMERIC => numeric(raw).ok_or("bad numeric")?,
            _ => return Ok(Num(None)),
        })))
    }
    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Num(None))
    }
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// PostgreSQL's binary NUMERIC: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric(raw: &[u8]) -> Option<f64> {
    let word = |i: usize| {
        raw.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i16, word(2)?);
    if sign == 0xC000 {
        return Some(f64::NAN);
    }
    let mut v = 0.0;
    for i in 0..ndigits {
        v += word(4 + i)? as f64 * 10_000f64.powi(weight as i32 - i as i32);
    }
    Some(if sign == 0x4000 { -v } else { v })
}

async fn pg_run(
    client: &tokio_postgres::Client,
    q: &Query,
    runs: usize,
) -> Result<(Fingerprint, Vec<f64>), String> {
    let mut times = Vec::new();
    let mut first = None;
    for _ in 0..runs {
        let t = Instant::now();
        let rows = client
            .query(q.sql.as_str(), &[])
            .await
            .map_err(|e| format!("{e:?}"))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if first.is_none() {
            let mut f = Fingerprint {
                rows: rows.len() as u64,
                sum: 0.0,
            };
            for row in &rows {
                for i in 0..row.len() {
                    if let Num(Some(v)) = row.try_get::<_, Num>(i).map_err(|e| e.to_string())? {
                        f.sum += v;
                    }
                }
            }
            first = Some(f);
        }
    }
    Ok((first.unwrap_or_default(), times))
}

fn influx_fingerprint(body: &serde_json::Value) -> Result<Fingerprint, String> {
    let result = &body["results"][0];
    if let Some(e) = result["error"].as_str().or(body["error"].as_str()) {
        return Err(e.to_string());
    }
    let mut f = Fingerprint::default();
    for series in result["series"].as_array().into_iter().flatten() {
        let columns = series["columns"].as_array().cloned().unwrap_or_default();
        for row in series["values"].as_array().into_iter().flatten() {
            f.rows += 1;
            for (i, v) in row.as_array().into_iter().flatten().enumerate() {
                if columns.get(i).and_then(|c| c.as_str()) == Some("time") {
                    continue;
                }
                if let Some(n) = v.as_f64() {
                    f.sum += n;
                }
            }
        }
    }
    Ok(f)
}

const INFLUX_CONFIG: &str = r#"reporting-disabled = true
bind-address = "127.0.0.1:RPC_PORT"
[meta]
  dir = "DIR/meta"
[data]
  dir = "DIR/data"
  wal-dir = "DIR/wal"
  query-log-enabled = false
[coordinator]
  query-timeout = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:HTTP_PORT"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
"#;

impl Peer {
    pub async fn start(system: &str, dir: &Path) -> Peer {
        match system {
            "sundial" => Peer::start_sundial(PathBuf::from(env!("CARGO_BIN_EXE_sundial")), dir),
            // Another build of Sundial, to compare two in one run: `NAME=PATH`.
            other if other.contains('=') => {
                let (_, path) = other.split_once('=').unwrap();
                Peer::start_sundial(PathBuf::from(path), dir)
            }
            "postgres" => {
                let pgdata = dir.join("pg");
                std::fs::create_dir(&pgdata).unwrap();
                if unsafe { libc::geteuid() } == 0 {
                    let (uid, gid) = uid_gid("postgres");
                    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
                    std::os::unix::fs::chown(&pgdata, Some(uid), Some(gid)).unwrap();
                }
                let mut initdb = Command::new(pg_bin("initdb"));
                initdb.arg("-D").arg(&pgdata).args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]);
                as_postgres(&mut initdb);
                let out = initdb
                    .output()
                    .expect("initdb (apt-get install postgresql-15)");
                assert!(
                    out.status.success(),
                    "initdb: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let port = free_port();
                let mut command = Command::new("prlimit");
                command
                    .arg(ADDRESS_SPACE)
                    .arg("--")
                    .arg(pg_bin("postgres"))
                    .arg("-D")
                    .arg(&pgdata)
                    .args(["-p", &port.to_string(), "-k"])
                    .arg(&pgdata)
                    .args([
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "shared_buffers=1GB",
                    ])
                    .args(["-c", "work_mem=64MB", "-c", "max_wal_size=4GB"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                as_postgres(&mut command);
                let proc = Proc::spawn(command);
                let config = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
                let deadline = Instant::now() + Duration::from_secs(60);
                let client = loop {
                    match pg_connect(&config).await {
                        Ok(c) => break c,
                        Err(e) if Instant::now() > deadline => panic!("postgres: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                };
                Peer::Postgres {
                    proc: Some(proc),
                    client: Some(client),
                }
            }
            "influxdb" => {
                let port = free_port();
                let config = INFLUX_CONFIG
                    .replace("DIR", &dir.display().to_string())
                    .replace("RPC_PORT", &free_port().to_string())
                    .replace("HTTP_PORT", &port.to_string());
                let path = dir.join("influxdb.conf");
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("prlimit");
                command
                    .arg(ADDRESS_SPACE)
                    .arg("--")
                    .arg("influxd")
                    .arg("-config")
                    .arg(&path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let proc = Proc::spawn(command);
                let url = format!("http://127.0.0.1:{port}");
                let http = reqwest::Client::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !http
                    .get(format!("{url}/ping"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    assert!(
                        Instant::now() < deadline,
                        "influxd did not start (apt-get install influxdb)"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let r = http
                    .post(format!("{url}/query"))
                    .form(&[("q", "CREATE DATABASE bench")])
                    .send()
                    .await
                    .expect("create database");
                assert!(r.status().is_success());
                Peer::Influx {
                    proc: Some(proc),
                    dir: dir.to_path_buf(),
                    url,
                }
            }
            "duckdb" => {
                let script = dir.join("duckdb_peer.py");
                std::fs::write(&script, include_str!("duckdb_peer.py")).unwrap();
                let python = std::env::var("SUNDIAL_BENCH_VENV")
                    .map(|v| format!("{v}/bin/python"))
                    .unwrap_or_else(|_| "python3".into());
                let mut command = Command::new(python);
                command
                    .arg("-u")
                    .arg(&script)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped());
                let mut proc = Proc::spawn(command);
                let stdin = proc.child.stdin.take().unwrap();
                let stdout = BufReader::new(proc.child.stdout.take().unwrap());
                Peer::DuckDb {
                    proc: Some(proc),
                    stdin,
                    stdout,
                }
            }
            other => panic!("unknown system {other} (sundial, duckdb, postgres, influxdb)"),
        }
    }

    fn start_sundial(binary: PathBuf, dir: &Path) -> Peer {
        let (proc, http, _) = start_sundial(&binary, dir);
        Peer::Sundial {
            binary,
            proc: Some(proc),
            peak: 0,
            dir: dir.to_path_buf(),
            http,
            client: None,
        }
    }

    fn duckdb_call(&mut self, request: serde_json::Value) -> serde_json::Value {
        let Peer::DuckDb { stdin, stdout, .. } = self else {
            unreachable!()
        };
        writeln!(stdin, "{request}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).expect("duckdb answer");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("duckdb peer said {line:?}: {e} (pip install duckdb)"))
    }

    /// Loads the data; a description of how fast.
    pub async fn load(&mut self, data: &Data, writers: usize) -> String {
        match self {
            Peer::Sundial { http, .. } => {
                let rate = ingest(
                    &format!("http://{http}/write?db=bench&precision=ns"),
                    data,
                    writers,
                )
                .await;
                format!("ingest {rate:.0} rows/s ({writers} writers, durable acks)")
            }
            Peer::Influx { url, .. } => {
                let rate =
                    ingest(&format!("{url}/write?db=bench&precision=ns"), data, writers).await;
                format!("ingest {rate:.0} rows/s ({writers} writers, durable acks)")
            }
            Peer::Postgres { client, .. } => {
                let client = client.as_ref().unwrap();
                let fields: Vec<String> = sundial::devops::FIELDS
                    .iter()
                    .map(|f| format!("{f} BIGINT"))
                    .collect();
                client
                    .batch_execute(&format!(
                        "CREATE TABLE cpu (time TIMESTAMPTZ NOT NULL, hostname TEXT, region TEXT, \
                         datacenter TEXT, rack TEXT, os TEXT, arch TEXT, team TEXT, service TEXT, \
                         service_version TEXT, service_environment TEXT, {})",
                        fields.join(", ")
                    ))
                    .await
                    .unwrap();
                let t = Instant::now();
                let sink = client
                    .copy_in("COPY cpu FROM STDIN (FORMAT csv, HEADER true)")
                    .await
                    .unwrap();
                let file = tokio::fs::read(&data.csv).await.unwrap();
                use futures::SinkExt;
                let mut sink = Box::pin(sink);
                for chunk in file.chunks(1 << 20) {
                    sink.send(bytes::Bytes::copy_from_slice(chunk))
                        .await
                        .unwrap();
                }
                sink.as_mut().finish().await.unwrap();
                let copy = t.elapsed().as_secs_f64();
                let t = Instant::now();
                client
                    .batch_execute("CREATE INDEX ON cpu (hostname, time)")
                    .await
                    .unwrap();
                client.batch_execute("VACUUM ANALYZE cpu").await.unwrap();
                format!(
                    "COPY {:.0} rows/s, index + VACUUM ANALYZE {:.1} s",
                    data.rows as f64 / copy,
                    t.elapsed().as_secs_f64()
                )
            }
            Peer::DuckDb { .. } => {
                let answer =
                    self.duckdb_call(serde_json::json!({"load": data.csv, "memory_limit": "6GB"}));
                let ms = answer["ms"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("duckdb load: {answer}"));
                format!(
                    "CSV load {:.0} rows/s (in memory)",
                    data.rows as f64 / (ms / 1000.0)
                )
            }
        }
    }

    /// Brings the system to its resting state for queries; the bytes it stores, if known.
    pub async fn ready_for_queries(&mut self) -> Option<u64> {
        match self {
            Peer::Sundial {
                binary,
                proc,
                peak,
                dir,
                client,
                http,
            } => {
                // A restart: buffers flushed to segments on the way down, replayed state up.
                *peak = proc.take().unwrap().finish("-TERM");
                let bytes = du(&dir.join("data"));
                let (p, h, pg) = start_sundial(binary, dir);
                *proc = Some(p);
                *http = h;
                let (host, port) = pg.rsplit_once(':').unwrap();
                *client = Some(
                    pg_connect(&format!(
                        "host={host} port={port} user=sundial dbname=bench"
                    ))
                    .await
                    .expect("connect to sundial"),
                );
                Some(bytes)
            }
            Peer::Postgres { client, .. } => {
                let row = client
                    .as_ref()
                    .unwrap()
                    .query_one("SELECT pg_total_relation_size('cpu')", &[])
                    .await
                    .unwrap();
                Some(row.get::<_, i64>(0) as u64)
            }
            Peer::Influx { dir, .. } => Some(du(&dir.join("data")) + du(&dir.join("wal"))),
            Peer::DuckDb { .. } => None,
        }
    }

    /// Runs `q` `runs` times; the first run's fingerprint and every run's milliseconds.
    pub async fn run(&mut self, q: &Query, runs: usize) -> Result<(Fingerprint, Vec<f64>), String> {
        match self {
            Peer::Sundial { client, .. } | Peer::Postgres { client, .. } => {
                pg_run(client.as_ref().unwrap(), q, runs).await
            }
            Peer::Influx { url, .. } => {
                let http = reqwest::Client::new();
                let mut times = Vec::new();
                let mut first = None;
                for _ in 0..runs {
                    let t = Instant::now();
                    let r = http
                        .get(format!("{url}/query"))
                        .query(&[("db", "bench"), ("epoch", "ns"), ("q", q.influxql.as_str())])
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    let f = influx_fingerprint(&body)?;
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                    first.get_or_insert(f);
                }
                Ok((first.unwrap_or_default(), times))
            }
            Peer::DuckDb { .. } => {
                let answer = self.duckdb_call(serde_json::json!({"sql": q.sql, "runs": runs}));
                if let Some(e) = answer["error"].as_str() {
                    return Err(e.to_string());
                }
                let f = Fingerprint {
                    rows: answer["rows"].as_u64().unwrap_or(0),
                    sum: answer["sum"].as_f64().unwrap_or(0.0),
                };
                let times = answer["ms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|v| v.as_f64())
                    .collect();
                Ok((f, times))
            }
        }
    }

    /// PostgreSQL only: how long returning `q`'s rows takes when they are already a table
    /// (`SELECT *` of a copy of the result), the floor that sending and decoding that many
    /// rows puts under any system answering over the Postgres protocol.
    pub async fn result_floor(&mut self, q: &Query, runs: usize) -> Option<f64> {
        let Peer::Postgres { client, .. } = self else {
            return None;
        };
        let client = client.as_ref()?;
        let copy = format!("CREATE TEMP TABLE result_copy AS {}", q.sql);
        client.batch_execute(&copy).await.ok()?;
        let select = Query {
            name: "floor",
            sql: "SELECT * FROM result_copy".into(),
            influxql: String::new(),
            shape: super::queries::Shape::LastPoint,
        };
        let (_, ms) = pg_run(client, &select, runs + 1).await.ok()?;
        let _ = client.batch_execute("DROP TABLE result_copy").await;
        Some(super::median(&ms[1..]))
    }

    /// Stops the system; the peak PSS of its processes over the whole measurement.
    pub async fn stop(self) -> u64 {
        match self {
            Peer::Sundial {
                proc, peak, client, ..
            } => {
                drop(client);
                proc.map_or(0, |p| p.finish("-TERM")).max(peak)
            }
            Peer::Postgres { proc, client } => {
                drop(client);
                proc.map_or(0, |p| p.finish("-INT"))
            }
            Peer::Influx { proc, .. } => proc.map_or(0, |p| p.finish("-TERM")),
            Peer::DuckDb {
                mut proc, stdin, ..
            } => {
                drop(stdin);
                let mut p = proc.take().unwrap();
                let _ = p.child.wait();
                p.stop.store(true, Ordering::Relaxed);
                p.peak.load(Ordering::Relaxed)
            }
        }
    }
}
