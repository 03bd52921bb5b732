//! Pull collection against a real `prometheus-node-exporter` (Debian's, started here on a
//! free port): samples become tables with `job`, `instance` and static labels, metric
//! relabeling drops series, and each target gets `up` and the scrape's own series; a dead
//! target is `up` 0. A real Prometheus remote-writes what it scrapes from the same
//! exporter, and both routes store the same series.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestServer, eventually, free_port, grows_by, scalar};

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn node_exporter() -> (Exporter, u16) {
    let port = free_port();
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prometheus-node-exporter (scripts/test.sh installs it)");
    let exporter = Exporter(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await
            && r.status().is_success()
        {
            return (exporter, port);
        }
        assert!(Instant::now() < deadline, "node exporter did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn scrapes_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let (_exporter, port) = node_exporter().await;
    let dead = free_port();
    let config = dir.path().join("sundial.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[scrape_configs]]
job_name = "node"
scrape_interval = "1s"
scrape_timeout = "1s"

[[scrape_configs.static_configs]]
targets = ["127.0.0.1:{port}"]
labels = {{ env = "test" }}

[[scrape_configs.metric_relabel_configs]]
source_labels = ["__name__"]
regex = "go_.*"
action = "drop"

[[scrape_configs]]
job_name = "gone"
scrape_interval = "1s"

[[scrape_configs.static_configs]]
targets = ["127.0.0.1:{dead}"]
"#
        ),
    )
    .unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let pg = server.pg("sundial").await;
    let instance = format!("127.0.0.1:{port}");
    eventually(
        &pg,
        &format!("SELECT value FROM up WHERE job = 'node' AND instance = '{instance}' AND env = 'test' ORDER BY time DESC LIMIT 1"),
        |v| v == "1",
    )
    .await;
    let cpu = eventually(
        &pg,
        &format!("SELECT count(DISTINCT mode) FROM node_cpu_seconds_total WHERE job = 'node' AND instance = '{instance}'"),
        |v| v.parse::<i64>().unwrap_or(0) >= 3,
    )
    .await;
    assert!(cpu.parse::<i64>().unwrap() >= 3, "{cpu}");
    // The scrape's own series: everything parsed, fewer kept (go_* dropped).
    let scraped: f64 = eventually(
        &pg,
        "SELECT max(value) FROM scrape_samples_scraped WHERE job = 'node'",
        |v| !v.is_empty(),
    )
    .await
    .parse()
    .unwrap();
    let kept: f64 = scalar(
        &pg,
        "SELECT max(value) FROM scrape_samples_post_metric_relabeling WHERE job = 'node'",
    )
    .await
    .unwrap()
    .parse()
    .unwrap();
    assert!(
        scraped > 100.0 && kept < scraped,
        "scraped {scraped}, kept {kept}"
    );
    let duration: f64 = scalar(
        &pg,
        "SELECT max(value) FROM scrape_duration_seconds WHERE job = 'node'",
    )
    .await
    .unwrap()
    .parse()
    .unwrap();
    assert!(duration > 0.0 && duration < 1.0, "{duration}");
    let go = pg.simple_query("SELECT count(*) FROM go_goroutines").await;
    assert!(go.is_err(), "go_* series were dropped by metric relabeling");
    // A dead target is down.
    eventually(
        &pg,
        &format!("SELECT value FROM up WHERE job = 'gone' AND instance = '127.0.0.1:{dead}' ORDER BY time DESC LIMIT 1"),
        |v| v == "0",
    )
    .await;
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus 2.42 (Debian's) scrapes node_exporter and remote-writes to Sundial,
/// which scrapes the same node_exporter itself: both store the same series.
#[tokio::test]
async fn prometheus_remote_write_matches_own_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let (_exporter, port) = node_exporter().await;
    let config = dir.path().join("sundial.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape_configs]]\njob_name = \"direct\"\nscrape_interval = \"1s\"\n\
             [[scrape_configs.static_configs]]\ntargets = [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: via_prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            server.http
        ),
    )
    .unwrap();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prometheus (scripts/test.sh installs it)");
    let _prom = Prometheus(prom);
    let pg = server.pg("sundial").await;
    eventually(
        &pg,
        "SELECT count(*) FROM up WHERE job = 'via_prometheus' AND value = 1",
        |v| v.parse::<i64>().unwrap_or(0) >= 2,
    )
    .await;
    eventually(
        &pg,
        "SELECT count(*) FROM node_cpu_seconds_total WHERE job = 'via_prometheus'",
        |v| v.parse::<i64>().unwrap_or(0) > 0,
    )
    .await;
    // The same series by both routes: (cpu, mode) pairs and a gauge's label set.
    let series = |job: &str| {
        format!(
            "SELECT string_agg(cpu || '/' || mode, ',' ORDER BY cpu, mode) FROM \
             (SELECT DISTINCT cpu, mode FROM node_cpu_seconds_total WHERE job = '{job}')"
        )
    };
    let direct = eventually(&pg, &series("direct"), |v| !v.is_empty()).await;
    let remote = scalar(&pg, &series("via_prometheus")).await.unwrap();
    assert_eq!(direct, remote);
    let instances = scalar(
        &pg,
        "SELECT count(DISTINCT instance) FROM node_cpu_seconds_total",
    )
    .await
    .unwrap();
    assert_eq!(instances, "1", "both routes name the instance the same");
    // A body that is not snappy+protobuf is a 400 with the reason, not a 5xx.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", server.http))
        .body("not a write request")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("snappy"));
}

/// Sundial serves its own metrics and, by default, scrapes them into `sundial`.
#[tokio::test]
async fn self_monitoring() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with_env(dir.path(), &[], &[("SUNDIAL_NO_SELF_SCRAPE", "false")]);
    let (s, _) = server
        .post("/write?db=app", "cpu,host=a v=1 1\ncpu,host=a v=x 2\n")
        .await;
    assert_eq!(s, 400, "one bad line");
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sundial_rows_ingested_total{protocol=\"line_protocol\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sundial_write_errors_total{reason=\"line_protocol\"} 1"),
        "{text}"
    );
    assert!(text.contains("sundial_wal_fsync_seconds_count "), "{text}");
    assert!(text.contains("sundial_buffer_bytes "), "{text}");
    let pg = server.pg("sundial").await;
    eventually(
        &pg,
        "SELECT max(value) FROM sundial_rows_ingested_total WHERE job = 'sundial' AND protocol = 'line_protocol'",
        |v| v == "1",
    )
    .await;
    eventually(
        &pg,
        "SELECT max(value) FROM up WHERE job = 'sundial'",
        |v| v == "1",
    )
    .await;
}

/// A tiny exposition endpoint answering `probe_value{src="<name>"} 1`.
async fn exposition_server(name: &'static str) -> u16 {
    fixed_http(
        "text/plain; version=0.0.4",
        format!("# TYPE probe_value gauge\nprobe_value{{src=\"{name}\"}} 1\n"),
    )
    .await
}

async fn count(pg: &tokio_postgres::Client, sql: &str) -> i64 {
    scalar(pg, sql)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// file_sd targets follow their file; the config file is re-read when it changes and on
/// SIGHUP.
#[tokio::test]
async fn file_sd_and_config_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (
        exposition_server("one").await,
        exposition_server("two").await,
    );
    let targets = dir.path().join("targets-a.json");
    std::fs::write(
        &targets,
        format!(r#"[{{"targets": ["127.0.0.1:{one}"], "labels": {{"group": "a"}}}}]"#),
    )
    .unwrap();
    let config = dir.path().join("sundial.toml");
    let base = format!(
        "[[scrape_configs]]\njob_name = \"fs\"\nscrape_interval = \"1s\"\n\
         [[scrape_configs.file_sd_configs]]\nfiles = [\"{}/targets-*\"]\n",
        dir.path().display()
    );
    std::fs::write(&config, &base).unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let pg = server.pg("sundial").await;
    eventually(
        &pg,
        &format!("SELECT count(*) FROM probe_value WHERE job = 'fs' AND instance = '127.0.0.1:{one}' AND \"group\" = 'a' AND src = 'one'"),
        |v| v != "0",
    )
    .await;
    // The file changes: target two (YAML this time) replaces target one.
    std::fs::remove_file(&targets).unwrap();
    std::fs::write(
        dir.path().join("targets-b.yml"),
        format!("- targets: ['127.0.0.1:{two}']\n  labels:\n    group: b\n"),
    )
    .unwrap();
    eventually(
        &pg,
        &format!("SELECT count(*) FROM probe_value WHERE instance = '127.0.0.1:{two}' AND \"group\" = 'b'"),
        |v| v != "0",
    )
    .await;
    // Two scrapes of target two later, a scrape of one in flight at the change has
    // landed; two more later, one has had its chances to be scraped again.
    let two_up = format!("SELECT count(*) FROM up WHERE instance = '127.0.0.1:{two}'");
    grows_by(&pg, &two_up, 2).await;
    let one_sql = format!("SELECT count(*) FROM probe_value WHERE instance = '127.0.0.1:{one}'");
    let before = count(&pg, &one_sql).await;
    grows_by(&pg, &two_up, 2).await;
    assert_eq!(
        count(&pg, &one_sql).await,
        before,
        "target one is no longer scraped"
    );

    // The config file changes: a new job starts.
    std::fs::write(
        &config,
        format!(
            "{base}[[scrape_configs]]\njob_name = \"added\"\nscrape_interval = \"1s\"\n\
             [[scrape_configs.static_configs]]\ntargets = [\"127.0.0.1:{one}\"]\n"
        ),
    )
    .unwrap();
    eventually(
        &pg,
        "SELECT count(*) FROM probe_value WHERE job = 'added'",
        |v| v != "0",
    )
    .await;

    // SIGHUP: a change whose modification time is hidden (written aside, given the old
    // time, renamed over) is picked up on the signal.
    let mtime = std::fs::metadata(&config).unwrap().modified().unwrap();
    let since = mtime.duration_since(std::time::UNIX_EPOCH).unwrap();
    let aside = dir.path().join("sundial.toml.new");
    std::fs::write(
        &aside,
        format!(
            "{base}[[scrape_configs]]\njob_name = \"hup\"\nscrape_interval = \"1s\"\n\
             [[scrape_configs.static_configs]]\ntargets = [\"127.0.0.1:{two}\"]\n"
        ),
    )
    .unwrap();
    let touched = Command::new("touch")
        .arg("-d")
        .arg(format!("@{}.{:09}", since.as_secs(), since.subsec_nanos()))
        .arg(&aside)
        .status()
        .unwrap();
    assert!(touched.success());
    std::fs::rename(&aside, &config).unwrap();
    assert_eq!(
        std::fs::metadata(&config).unwrap().modified().unwrap(),
        mtime
    );
    // The config file is checked every second: two scrapes of the running job span at
    // least one check, which must not see the hidden change.
    grows_by(&pg, "SELECT count(*) FROM up WHERE job = 'added'", 2).await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM probe_value WHERE job = 'hup'").await,
        0
    );
    server.signal("HUP");
    eventually(
        &pg,
        "SELECT count(*) FROM probe_value WHERE job = 'hup'",
        |v| v != "0",
    )
    .await;
}

/// An endpoint answering every request with `body`.
async fn fixed_http(content_type: &'static str, body: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    port
}

/// A server on `dir` running `config` (written to `dir/sundial.toml`), and a client of
/// its database `sundial`.
async fn serve_config(dir: &std::path::Path, config: &str) -> (TestServer, tokio_postgres::Client) {
    let path = dir.join("sundial.toml");
    std::fs::write(&path, config).unwrap();
    let server = TestServer::start(&dir.join("data"), &["--config", path.to_str().unwrap()]);
    let pg = server.pg("sundial").await;
    (server, pg)
}

/// http_sd_configs: targets from an HTTP endpoint in the file_sd JSON format.
#[tokio::test]
async fn http_sd_targets() {
    let dir = tempfile::tempdir().unwrap();
    let target = exposition_server("via-http").await;
    let sd = fixed_http(
        "application/json",
        format!(r#"[{{"targets": ["127.0.0.1:{target}"], "labels": {{"zone": "z1"}}}}]"#),
    )
    .await;
    let (_server, pg) = serve_config(
        dir.path(),
        &format!(
            "[[scrape_configs]]\njob_name = \"http\"\nscrape_interval = \"1s\"\n\
             [[scrape_configs.http_sd_configs]]\nurl = \"http://127.0.0.1:{sd}/targets\"\nrefresh_interval = \"1s\"\n"
        ),
    )
    .await;
    eventually(
        &pg,
        &format!("SELECT count(*) FROM probe_value WHERE job = 'http' AND instance = '127.0.0.1:{target}' AND zone = 'z1' AND src = 'via-http'"),
        |v| v != "0",
    )
    .await;
}

/// A real ZooKeeper (Debian's `zookeeper`), standalone on a free port.
struct ZooKeeper {
    child: Child,
    port: u16,
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ZooKeeper {
    fn start(data: &std::path::Path) -> ZooKeeper {
        Self::start_on(data, free_port())
    }

    fn start_on(data: &std::path::Path, port: u16) -> ZooKeeper {
        let child = Command::new("java")
            .args([
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                &port.to_string(),
                data.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ZooKeeper (scripts/test.sh installs Debian's zookeeper)");
        let zk = ZooKeeper { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while zk.cli(&["ls", "/"]).is_err() {
            assert!(Instant::now() < deadline, "ZooKeeper did not start");
            std::thread::sleep(Duration::from_millis(300));
        }
        zk
    }

    /// Runs one command with ZooKeeper's own shell, `zkCli.sh`.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("/usr/share/zookeeper/bin/zkCli.sh")
            .args(["-server", &format!("127.0.0.1:{}", self.port)])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || text.contains("Exception") || text.contains("CONNECTING") {
            return Err(text);
        }
        Ok(text)
    }

    fn create(&self, path: &str, data: &str) -> String {
        let text = self
            .cli(&["create", path, data])
            .unwrap_or_else(|e| panic!("zkCli create {path}: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix("Created "))
            .unwrap_or_else(|| panic!("zkCli create {path}: {text}"))
            .trim()
            .to_string()
    }
}

fn member(port: u16, status: &str, shard: u32) -> String {
    format!(
        r#"{{"serviceEndpoint":{{"host":"127.0.0.1","port":{port}}},"additionalEndpoints":{{"admin":{{"host":"127.0.0.1","port":{port}}}}},"status":"{status}","shard":{shard}}}"#
    )
}

/// serverset_sd_configs: members registered in a real ZooKeeper become targets, with
/// their `__meta_serverset_*` labels for relabeling; a new member is picked up and a
/// deleted one stops being scraped, through ZooKeeper's watches; a ZooKeeper restart is
/// survived.
#[tokio::test]
async fn serverset_targets_from_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let zk_data = dir.path().join("zk");
    let zk = ZooKeeper::start(&zk_data);
    let (one, two, three) = (
        exposition_server("zk-one").await,
        exposition_server("zk-two").await,
        exposition_server("zk-three").await,
    );
    zk.create("/aurora", "");
    zk.create("/aurora/prod", "");
    let first = zk.create("/aurora/prod/member_0000000001", &member(one, "ALIVE", 1));
    zk.create("/aurora/prod/member_0000000002", &member(two, "DEAD", 2));
    let (_server, pg) = serve_config(
        dir.path(),
        &format!(
            "[[scrape_configs]]\njob_name = \"aurora\"\nscrape_interval = \"1s\"\n\
             [[scrape_configs.serverset_sd_configs]]\nservers = [\"127.0.0.1:{}\"]\npaths = [\"/aurora/prod\"]\ntimeout = \"6s\"\n\
             [[scrape_configs.relabel_configs]]\nsource_labels = [\"__meta_serverset_status\"]\nregex = \"ALIVE\"\naction = \"keep\"\n\
             [[scrape_configs.relabel_configs]]\nsource_labels = [\"__meta_serverset_shard\"]\ntarget_label = \"shard\"\n\
             [[scrape_configs.relabel_configs]]\nsource_labels = [\"__meta_serverset_endpoint_port_admin\"]\ntarget_label = \"admin_port\"\n",
            zk.port
        ),
    )
    .await;
    eventually(
        &pg,
        &format!(
            "SELECT count(*) FROM probe_value WHERE job = 'aurora' AND instance = '127.0.0.1:{one}' \
             AND shard = '1' AND admin_port = '{one}' AND src = 'zk-one'"
        ),
        |v| v != "0",
    )
    .await;

    // A member that joins is scraped; the DEAD one never is.
    zk.create("/aurora/prod/member_0000000003", &member(three, "ALIVE", 3));
    eventually(
        &pg,
        "SELECT count(*) FROM probe_value WHERE src = 'zk-three' AND shard = '3'",
        |v| v != "0",
    )
    .await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM probe_value WHERE src = 'zk-two'").await,
        0
    );

    // A member that leaves is no longer scraped.
    zk.cli(&["delete", &first]).unwrap();
    let gone = "SELECT count(*) FROM probe_value WHERE src = 'zk-one'";
    let three_up = format!("SELECT count(*) FROM up WHERE instance = '127.0.0.1:{three}'");
    grows_by(&pg, &three_up, 3).await;
    let before = count(&pg, gone).await;
    grows_by(&pg, &three_up, 3).await;
    assert_eq!(
        count(&pg, gone).await,
        before,
        "a deleted member is still scraped"
    );

    // ZooKeeper restarts on the same port: the targets stay meanwhile, and a member
    // registered after the restart is found once the watcher reconnects.
    let port = zk.port;
    drop(zk);
    let scraped = "SELECT count(*) FROM probe_value WHERE src = 'zk-three'";
    // Targets are kept while ZooKeeper is down: they go on being scraped.
    grows_by(&pg, scraped, 2).await;
    let zk = ZooKeeper::start_on(&zk_data, port);
    zk.create("/aurora/prod/member_0000000004", &member(two, "ALIVE", 4));
    eventually(
        &pg,
        "SELECT count(*) FROM probe_value WHERE src = 'zk-two' AND shard = '4'",
        |v| v != "0",
    )
    .await;
}

/// A target that never stops sending: the scrape stops reading at `body_size_limit`
/// (counted as it arrives), fails with `up = 0` at once, not at its timeout, while a
/// target under the limit is scraped.
#[tokio::test]
async fn body_size_limit_is_enforced_while_reading() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endless = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = "endless_metric{k=\"v\"} 1\n".repeat(400);
                while sock.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let small = fixed_http("text/plain", "small_metric 1\n".into()).await;
    let (_server, pg) = serve_config(
        dir.path(),
        &format!(
            "[[scrape_configs]]\njob_name = \"endless\"\nscrape_interval = \"20s\"\nscrape_timeout = \"20s\"\n\
             body_size_limit = \"64KB\"\n\
             [[scrape_configs.static_configs]]\ntargets = [\"127.0.0.1:{endless}\"]\n\
             [[scrape_configs]]\njob_name = \"small\"\nscrape_interval = \"20s\"\nbody_size_limit = 65536\n\
             [[scrape_configs.static_configs]]\ntargets = [\"127.0.0.1:{small}\"]\n"
        ),
    )
    .await;
    // The first scrape comes within one interval (20 s); reading to the timeout (20 s
    // more) would miss the 30 s this waits.
    eventually(&pg, "SELECT value FROM up WHERE job = 'endless'", |v| {
        v == "0"
    })
    .await;
    let took: f64 = scalar(
        &pg,
        "SELECT value FROM scrape_duration_seconds WHERE job = 'endless'",
    )
    .await
    .unwrap()
    .parse()
    .unwrap();
    assert!(took < 10.0, "the scrape read for {took} s");
    eventually(&pg, "SELECT value FROM up WHERE job = 'small'", |v| {
        v == "1"
    })
    .await;
    assert_eq!(
        scalar(
            &pg,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'endless_metric'"
        )
        .await
        .as_deref(),
        Some("0")
    );
}
