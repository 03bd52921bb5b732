//! The client matrix: psql, tokio-postgres (text and binary), psycopg 3, asyncpg, pgjdbc and
//! node-postgres, each connecting plain and with TLS + SCRAM-SHA-256, discovering tables
//! and columns, running a time-bucketed aggregate with a bound timestamptz parameter, and
//! round-tripping a timestamp; and Grafana's SQL through lib/pq and pgx (Go). The drivers
//! are installed by `scripts/test.sh` (a Python venv from PyPI, node-postgres from npm,
//! Debian's pgjdbc, Java and Go packages); a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use sundial::error::SqlState;
use tokio_rustls::rustls;

use crate::harness::TestServer;

const DATA: &str = "cpu,hostname=a usage_user=20,usage_system=1.5 1714557600000000000\n\
                    cpu,hostname=b usage_user=30.25,usage_system=2 1714557660123456000\n\
                    cpu,hostname=a usage_user=40,usage_system=3 1714557900000000000\n";

const USER: &str = "grafana";
const PASSWORD: &str = "s3cret pass";

/// A test CA and a server certificate for 127.0.0.1/localhost signed by it.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certs(dir: &Path) -> Certs {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sundial-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// A server with a user and the given auth method, and TLS if `certs` is given.
fn secured(dir: &Path, method: &str, certs: Option<&Certs>) -> TestServer {
    let config = dir.join(format!("{method}.toml"));
    std::fs::write(
        &config,
        format!(
            "[postgres]\nauth_method = \"{method}\"\n[[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
        ),
    )
    .unwrap();
    let data = dir.join(format!("data-{method}"));
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    if let Some(c) = certs {
        args.extend([
            "--tls-cert".to_string(),
            c.cert.display().to_string(),
            "--tls-key".to_string(),
            c.key.display().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start(&data, &args)
}

async fn load(server: &TestServer) {
    let (status, body) = server.post("/write?db=sundial", DATA).await;
    assert_eq!(status, 204, "{body}");
}

fn python() -> PathBuf {
    let venv = std::env::var_os("SUNDIAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sundial-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh, which creates the driver venv",
        python.display()
    );
    python
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs a client program; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run client");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const BUCKETS: &str =
    r#"[["2024-05-01T10:00:00+00:00", 25.125, 2], ["2024-05-01T10:05:00+00:00", 40.0, 1]]"#;

fn check_python_result(out: &str, buckets_keys: &[&str]) {
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(out);
    assert_eq!(v["tables"], serde_json::json!(["cpu"]), "{out}");
    assert_eq!(
        v["columns"][0],
        serde_json::json!(["time", "timestamp with time zone"]),
        "{out}"
    );
    assert_eq!(
        v["columns"][2],
        serde_json::json!(["usage_system", "double precision"]),
        "{out}"
    );
    let buckets: serde_json::Value = serde_json::from_str(BUCKETS).unwrap();
    for k in buckets_keys {
        assert_eq!(v[*k], buckets, "{k}: {out}");
    }
    assert_eq!(v["roundtrip"][0], v["roundtrip"][1], "{out}");
    assert_eq!(v["roundtrip"][0], "2024-05-01T10:00:00+00:00", "{out}");
}

fn psycopg(dsn: &str) {
    let out = run(Command::new(python())
        .arg(clients_dir().join("psycopg_client.py"))
        .arg(dsn));
    check_python_result(&out, &["buckets_text", "buckets_binary"]);
    assert!(out.contains("\"server_version\": 160006"), "{out}");
}

fn asyncpg(dsn: &str) {
    let out = run(Command::new(python())
        .arg(clients_dir().join("asyncpg_client.py"))
        .arg(dsn));
    check_python_result(&out, &["buckets"]);
    assert!(out.contains("\"in_tx\": 3"), "{out}");
    assert!(out.contains("\"pool\": 1"), "{out}");
}

/// Where `scripts/test.sh` installs node-postgres (outside the clone, reused across runs).
fn node_modules() -> PathBuf {
    let dir = std::env::var_os("SUNDIAL_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sundial-node")
        })
        .join("node_modules");
    assert!(
        dir.join("pg").exists(),
        "{} is missing: run scripts/test.sh, which installs node-postgres",
        dir.display()
    );
    dir
}

fn node(url: &str, ca: Option<&Path>) {
    let mut cmd = Command::new("node");
    cmd.arg(clients_dir().join("node_client.js"))
        .arg(url)
        .env("SUNDIAL_NODE_MODULES", node_modules());
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = run(&mut cmd);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["tables"], serde_json::json!(["cpu"]), "{out}");
    assert_eq!(
        v["columns"][0],
        serde_json::json!(["time", "timestamp with time zone"]),
        "{out}"
    );
    assert_eq!(
        v["buckets"],
        serde_json::json!([
            ["2024-05-01T10:00:00.000Z", 25.125, "2"],
            ["2024-05-01T10:05:00.000Z", 40, "1"]
        ]),
        "{out}"
    );
    assert_eq!(v["roundtrip"][0], "2024-05-01T10:00:00.000Z", "{out}");
    assert_eq!(v["roundtrip"][0], v["roundtrip"][1], "{out}");
}

fn jdbc(url: &str, user: &str, password: Option<&str>) {
    let jar = std::env::var("SUNDIAL_PGJDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".to_string());
    assert!(
        Path::new(&jar).exists(),
        "{jar} is missing: scripts/test.sh installs Debian's libpostgresql-jdbc-java"
    );
    let mut cmd = Command::new("java");
    cmd.args(["-cp", &jar])
        .arg(clients_dir().join("JdbcClient.java"))
        .args([url, user]);
    if let Some(p) = password {
        cmd.arg(p);
    }
    let out = run(&mut cmd);
    assert!(out.contains("product=PostgreSQL 16.6 (Sundial"), "{out}");
    assert!(out.contains("tables=[cpu]"), "{out}");
    assert!(
        out.contains(
            "columns=[time:timestamptz, hostname:text, usage_system:float8, usage_user:float8]"
        ),
        "{out}"
    );
    assert!(
        out.contains("buckets=[2024-05-01T10:00Z|25.125|2, 2024-05-01T10:05Z|40.0|1]"),
        "{out}"
    );
    assert!(
        out.contains("roundtrip=2024-05-01T10:00Z|2024-05-01T10:00Z"),
        "{out}"
    );
    assert!(out.contains("in_tx=3"), "{out}");
}

fn psql(conninfo: &str, password: Option<&str>) {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo])
        .args(["-c", "\\dt"])
        .args(["-c", "\\d cpu"])
        .args(["-c", "\\d+ cpu"])
        .args(["-c", "\\l"])
        .args([
            "-c",
            "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user), count(*) \
             FROM cpu WHERE time >= '2024-05-01T10:00:00Z' GROUP BY 1 ORDER BY 1",
        ])
        .args(["-c", "SELECT time, '2024-05-01 10:00:00+00'::timestamptz = time FROM cpu ORDER BY time LIMIT 1"])
        .env("PGCONNECT_TIMEOUT", "10");
    match password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    let out = run(&mut cmd);
    assert!(out.contains("public|cpu|table|"), "{out}");
    assert!(out.contains("time|timestamp with time zone"), "{out}");
    assert!(
        out.contains("usage_user|double precision||||plain|||"),
        "{out}"
    );
    assert!(out.contains("sundial|"), "{out}");
    assert!(!out.contains("postgres|postgres|UTF"), "{out}");
    assert!(
        out.contains("2024-05-01 10:00:00+00|25.125|2\n2024-05-01 10:05:00+00|40|1"),
        "{out}"
    );
    assert!(out.contains("2024-05-01 10:00:00+00|t"), "{out}");
}

/// tokio-postgres: binary results through the extended protocol, text through the simple.
async fn tokio_pg(client: &tokio_postgres::Client) {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&"public"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["cpu"]);
    let start = system_time(1_714_557_600);
    let rows = client
        .query(
            "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user) AS v, count(*) AS n \
             FROM cpu WHERE time >= $1 GROUP BY 1 ORDER BY 1",
            &[&start],
        )
        .await
        .unwrap();
    let got: Vec<(std::time::SystemTime, f64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            (system_time(1_714_557_600), 25.125, 2),
            (system_time(1_714_557_900), 40.0, 1)
        ]
    );
    let echo: std::time::SystemTime = client
        .query_one("SELECT $1::timestamptz", &[&got[0].0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(echo, got[0].0);
    let text = client
        .simple_query("SELECT time, usage_user FROM cpu ORDER BY time LIMIT 2")
        .await
        .unwrap();
    let rows: Vec<String> = text
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(format!("{}|{}", r.get(0).unwrap(), r.get(1).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        rows,
        [
            "2024-05-01 10:00:00+00|20",
            "2024-05-01 10:01:00.123456+00|30.25"
        ]
    );
}

fn system_time(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

async fn tokio_pg_tls(
    server: &TestServer,
    certs: &Certs,
    password: &str,
) -> tokio_postgres::Client {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&certs.ca).unwrap();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let conn_str = format!(
        "host=127.0.0.1 port={} user={USER} password='{password}' dbname=sundial sslmode=require",
        server.pg.port()
    );
    let (client, conn) = tokio_postgres::connect(&conn_str, tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

#[tokio::test]
async fn client_matrix_plain() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    load(&server).await;
    let port = server.pg.port();
    psql(
        &format!("host=127.0.0.1 port={port} user=anyone dbname=sundial sslmode=disable"),
        None,
    );
    tokio_pg(&server.pg("sundial").await).await;
    psycopg(&format!(
        "host=127.0.0.1 port={port} user=anyone dbname=sundial sslmode=disable"
    ));
    asyncpg(&format!(
        "postgresql://anyone@127.0.0.1:{port}/sundial?sslmode=disable"
    ));
    jdbc(
        &format!("jdbc:postgresql://127.0.0.1:{port}/sundial?sslmode=disable"),
        "anyone",
        None,
    );
    node(
        &format!("postgresql://anyone@127.0.0.1:{port}/sundial"),
        None,
    );
    // `psql -l` connects to database `postgres`, as pgAdmin and DBeaver do by default.
    let list = run(Command::new("psql").args([
        "-X",
        "-A",
        "-t",
        "-l",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "anyone",
    ]));
    assert!(list.starts_with("sundial|"), "{list}");
    // Without a certificate, TLS is declined ('N'); a client that demands it fails.
    let out = Command::new("psql")
        .args([
            "-X",
            &format!("host=127.0.0.1 port={port} user=a dbname=sundial sslmode=require"),
            "-c",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not support SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn client_matrix_tls_scram() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let server = secured(dir.path(), "scram-sha-256", Some(&certs));
    load(&server).await;
    let port = server.pg.port();
    // verify-full: the certificate chain and the host name are checked.
    psql(
        &format!(
            "host=127.0.0.1 port={port} user={USER} dbname=sundial sslmode=verify-full sslrootcert={}",
            certs.ca.display()
        ),
        Some(PASSWORD),
    );
    tokio_pg(&tokio_pg_tls(&server, &certs, PASSWORD).await).await;
    psycopg(&format!(
        "host=127.0.0.1 port={port} user={USER} password='{PASSWORD}' dbname=sundial sslmode=verify-full sslrootcert={}",
        certs.ca.display()
    ));
    asyncpg(&format!(
        "postgresql://{USER}:s3cret%20pass@127.0.0.1:{port}/sundial?sslmode=require"
    ));
    jdbc(
        &format!("jdbc:postgresql://127.0.0.1:{port}/sundial?sslmode=require"),
        USER,
        Some(PASSWORD),
    );
    node(
        &format!("postgresql://{USER}:s3cret%20pass@127.0.0.1:{port}/sundial"),
        Some(&certs.ca),
    );
    // A wrong password or an unknown user: FATAL 28P01, as PostgreSQL answers.
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        let out = Command::new("psql")
            .args([
                "-X",
                &format!("host=127.0.0.1 port={port} user={user} dbname=sundial sslmode=require"),
                "-c",
                "SELECT 1",
            ])
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{err}"
        );
    }
}

#[tokio::test]
async fn md5_and_cleartext_passwords() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["md5", "password"] {
        let server = secured(dir.path(), method, None);
        load(&server).await;
        let port = server.pg.port();
        psql(
            &format!("host=127.0.0.1 port={port} user={USER} dbname=sundial"),
            Some(PASSWORD),
        );
        let conn_str =
            format!("host=127.0.0.1 port={port} user={USER} password='wrong' dbname=sundial");
        let err = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
            .await
            .err()
            .expect("wrong password refused");
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some(SqlState::INVALID_PASSWORD.code()),
            "{method}: {err:?}"
        );
    }
}

/// Builds `tests/clients/grafana_client.go` with Debian's Go, lib/pq and pgx v4 (GOPATH
/// mode: the Debian packages put their sources in /usr/share/gocode).
fn grafana_client(dir: &Path) -> PathBuf {
    let bin = dir.join("grafana_client");
    let cache = PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sundial-go");
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(clients_dir().join("grafana_client.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", cache));
    bin
}

/// What Grafana's queries answer on the test data, by both drivers.
const GRAFANA: &[&str] = &[
    "version: INT8 | 1600",
    "timescaledb: TEXT | \n",
    "tables: TEXT | cpu\n",
    "schema_tables: TEXT | cpu\n",
    "schemas: TEXT | public\n",
    "columns: TEXT,TEXT | time,timestamp with time zone; hostname,text; usage_system,double precision; usage_user,double precision\n",
    "variable: TEXT | a; b\n",
    "variable_text_value: TEXT,TEXT | a,a; b,b\n",
    "time_group: FLOAT8,FLOAT8 | 1.7145576e+09,25.125; 1.7145579e+09,40\n",
    "time_bucket: TIMESTAMPTZ,TEXT,FLOAT8 | 2024-05-01T10:00:00Z,a,20; 2024-05-01T10:00:00Z,b,30.25; 2024-05-01T10:05:00Z,a,40\n",
    "epoch: TIMESTAMPTZ,FLOAT8 | 2024-05-01T10:00:00Z,20; 2024-05-01T10:01:00.123456Z,30.25; 2024-05-01T10:05:00Z,40\n",
];

fn grafana(bin: &Path, dsn: &str) {
    for driver in ["pq", "pgx"] {
        let out = run(Command::new(bin).args([driver, dsn]));
        for expected in GRAFANA {
            let expected = if driver == "pgx" {
                // pgx names types in lower case.
                let (name, rest) = expected.split_once(" | ").unwrap();
                format!("{} | {rest}", name.to_lowercase())
            } else {
                expected.to_string()
            };
            assert!(out.contains(&expected), "{driver}: {expected:?} in\n{out}");
        }
    }
}

/// Grafana's PostgreSQL data source: its SQL through lib/pq (simple protocol, text) and
/// pgx (extended protocol, binary, cached statements), plain and over TLS + SCRAM.
#[tokio::test]
async fn grafana_drivers() {
    let dir = tempfile::tempdir().unwrap();
    let bin = grafana_client(dir.path());
    let server = TestServer::start(&dir.path().join("plain"), &[]);
    load(&server).await;
    grafana(
        &bin,
        &format!(
            "host=127.0.0.1 port={} user=grafana dbname=sundial sslmode=disable",
            server.pg.port()
        ),
    );
    let certs = certs(dir.path());
    let server = secured(dir.path(), "scram-sha-256", Some(&certs));
    load(&server).await;
    grafana(
        &bin,
        &format!(
            "host=127.0.0.1 port={} user={USER} password='{PASSWORD}' dbname=sundial sslmode=require",
            server.pg.port()
        ),
    );
}
