//! Starts and stops the real server binary, and small client helpers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `sundial serve` process.
pub struct TestServer {
    pub http: SocketAddr,
    pub pg: SocketAddr,
    pub data_dir: PathBuf,
    child: Child,
    extra: Vec<String>,
}

impl TestServer {
    /// Starts a server on fresh ports with its data in `data_dir`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`TestServer::start`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sundial"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(if extra.contains(&"--http-addr") {
                &["--pg-addr", "127.0.0.1:0"][..]
            } else {
                &["--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"][..]
            })
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
            child,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `kill -9`, then start again on the same data directory.
    pub fn crash_and_restart(mut self) -> TestServer {
        self.child.kill().expect("kill -9");
        self.child.wait().unwrap();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        TestServer::start(&self.data_dir, &extra)
    }

    /// `kill -9` and wait for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().unwrap();
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
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..300 {
            if self.child.try_wait().unwrap().is_some() {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `SELECT count(*)` as an integer.
pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// A port nothing listens on right now (for neighbours and servers that need a fixed one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first column of the first row of `sql`, as text (`None` on error or no rows).
pub async fn scalar(pg: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let rows = pg.simple_query(sql).await.ok()?;
    rows.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}
