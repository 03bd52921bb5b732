//! Starts and stops the real server binary, small client helpers, and the one set of
//! waiting helpers the tests use: poll for an event with a deadline, never sleep and hope.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// A server under test: a `sundial serve` process (for kill -9, signals and restarts), or
/// a [`sundial::server::Server`] started in this process on its own runtime (cheaper; for
/// the tests that need no process of their own).
pub struct TestServer {
    pub http: SocketAddr,
    pub pg: SocketAddr,
    pub data_dir: PathBuf,
    child: Option<Child>,
    in_process: Option<InProcess>,
    extra: Vec<String>,
}

/// A server running on a runtime thread of its own, shut down (in order) on drop.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TestServer {
    /// Starts a server in this process (`Server::start` on port 0, self-scraping off)
    /// with its data in `data_dir`; `configure` adjusts the configuration first.
    pub fn in_process(
        data_dir: &Path,
        configure: impl FnOnce(&mut sundial::config::Config),
    ) -> TestServer {
        Self::in_process_with_clock(data_dir, configure, Arc::new(sundial::clock::SystemClock))
    }

    /// Like [`TestServer::in_process`], reading time from `clock` (scrapes, alert
    /// schedules and evaluations, default write timestamps).
    pub fn in_process_with_clock(
        data_dir: &Path,
        configure: impl FnOnce(&mut sundial::config::Config),
        clock: Arc<dyn sundial::clock::Clock>,
    ) -> TestServer {
        let mut config = sundial::config::Config {
            data_dir: data_dir.to_path_buf(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            pg_addr: "127.0.0.1:0".parse().unwrap(),
            self_scrape: false,
            ..Default::default()
        };
        configure(&mut config);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = match sundial::server::Server::start_with_clock(config, clock).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((server.http_addr, server.pg_addr)));
                let _ = stop_rx.await;
                server.shutdown().await;
            });
        });
        let (http, pg) = ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start")
            .expect("server start");
        TestServer {
            http,
            pg,
            data_dir: data_dir.to_path_buf(),
            child: None,
            in_process: Some(InProcess {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            extra: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("a `sundial serve` process (not an in-process server)")
            .id()
    }

    fn process(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("a `sundial serve` process (not an in-process server)")
    }

    /// Starts a server on fresh ports with its data in `data_dir`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`TestServer::start`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::spawn(data_dir, extra, env, None)
    }

    /// Like [`TestServer::start`], with `RLIMIT_AS` set to `bytes` in the server (as
    /// `prlimit --as` does).
    pub fn start_with_address_space(data_dir: &Path, extra: &[&str], bytes: u64) -> TestServer {
        Self::spawn(data_dir, extra, &[], Some(bytes))
    }

    fn spawn(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        address_space: Option<u64>,
    ) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sundial"));
        if let Some(bytes) = address_space {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(
                [("--http-addr", "127.0.0.1:0"), ("--pg-addr", "127.0.0.1:0")]
                    .into_iter()
                    .filter(|(flag, _)| !extra.contains(flag))
                    .flat_map(|(flag, addr)| [flag, addr]),
            )
            .args(extra)
            .env("SUNDIAL_LOG", "info")
            .env_remove("SUNDIAL_CONFIG")
            // Tests see only the data they write; `self_monitoring` turns this back on.
            .env("SUNDIAL_NO_SELF_SCRAPE", "true")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sundial");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("sundial is ready")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line.clone());
                }
                if std::env::var_os("SUNDIAL_TEST_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not become ready");
        let field = |name: &str| -> SocketAddr {
            let start =
                ready.find(&format!("{name}=")).expect("addr in ready line") + name.len() + 1;
            ready[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        TestServer {
            http: field("http_addr"),
            pg: field("pg_addr"),
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
            in_process: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `kill -9`, then start again on the same data directory.
    pub fn crash_and_restart(mut self) -> TestServer {
        self.process().kill().expect("kill -9");
        self.process().wait().unwrap();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        TestServer::start(&self.data_dir, &extra)
    }

    /// `kill -9` and wait for the process to be gone.
    pub fn kill(mut self) {
        self.process().kill().expect("kill -9");
        self.process().wait().unwrap();
    }

    /// SIGTERM (graceful: flushes), then start again.
    pub fn restart(mut self) -> TestServer {
        self.terminate();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        TestServer::start(&self.data_dir, &extra)
    }

    /// Sends a signal (`HUP`, …) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(name)
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then wait (at most 60 s) for the process to exit: its exit status and how
    /// long it took from the signal.
    pub fn stop(mut self) -> (std::process::ExitStatus, Duration) {
        let sent = std::time::Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        loop {
            if let Some(status) = self.process().try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < Duration::from_secs(60),
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        for _ in 0..300 {
            if self.process().try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop on SIGTERM");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// POSTs a body and returns the status and body text.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .expect("HTTP request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// A sample of the server's `/metrics` (`name{labels}` as exposed), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
            rest.trim().parse().ok()
        })
    }

    /// A tokio-postgres connection to `db`.
    pub async fn pg(&self, db: &str) -> tokio_postgres::Client {
        self.try_pg(db).await.expect("postgres connect")
    }

    pub async fn try_pg(&self, db: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let conn_str = format!(
            "host={} port={} user=tester dbname={db}",
            self.pg.ip(),
            self.pg.port()
        );
        let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Runs `psql -X -A -t -c sql` against `db` and returns stdout (errors panic).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_raw(db, sql, &["-A", "-t"]);
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn psql_raw(&self, db: &str, sql: &str, flags: &[&str]) -> std::process::Output {
        Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.pg.ip().to_string())
            .arg("-p")
            .arg(self.pg.port().to_string())
            .args(["-U", "tester", "-d", db])
            .args(flags)
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("run psql (install postgresql-client)")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // An in-process server shuts down when `in_process` drops.
        self.in_process.take();
    }
}

/// `SELECT count(*)` as an integer.
pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// The SQLSTATE of a database error (or the error's text when it is not one).
pub fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The server's message of a database error (or the error's text when it is not one).
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// A port nothing listens on right now (for neighbours and servers that need a fixed one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 100 ms until it answers `Some`; fails the test after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `ok` until it holds; fails the test after `secs`.
pub async fn until(what: &str, secs: u64, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !ok().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the scalar answer of `sql` until `ok` accepts it (30 s at most); returns it.
pub async fn eventually(
    pg: &tokio_postgres::Client,
    sql: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    wait_for(30, sql, || async {
        scalar(pg, sql).await.filter(|v| ok(v))
    })
    .await
}

/// Waits until the count `sql` answers has grown by `n` — say `n` more scrapes of a
/// target, counted in its `up` table: an event to wait on instead of a fixed time.
pub async fn grows_by(pg: &tokio_postgres::Client, sql: &str, n: i64) {
    let base: i64 = scalar(pg, sql)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eventually(pg, sql, |v| v.parse::<i64>().is_ok_and(|c| c >= base + n)).await;
}

/// The first column of the first row of `sql`, as text (`None` on error or no rows).
pub async fn scalar(pg: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let rows = pg.simple_query(sql).await.ok()?;
    rows.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

/// Every file under `dir` (recursively) whose extension is `ext`, sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_with_extension(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A Postgres v3 startup packet for user `u` and database `db`, for tests that speak the
/// protocol on a raw socket.
pub fn startup_packet(db: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    body.extend_from_slice(format!("user\0u\0database\0{db}\0\0").as_bytes());
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}
