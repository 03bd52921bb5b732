//! `sundial agent` against the real server: Telegraf-shaped host metrics arrive, and
//! while the server is down (kill -9) they wait in the spool and are replayed, in order,
//! when it is back on the same address.

use std::process::{Child, Command, Stdio};

use crate::harness::{TestServer, free_port, scalar, until};

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spooled(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "lp"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn agent_pushes_and_spools_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let server = TestServer::start(&data, &["--http-addr", &addr]);
    let spool = dir.path().join("spool");
    let _agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_sundial"))
            .args([
                "agent",
                "--url",
                &format!("http://{addr}"),
                "--interval",
                "1s",
            ])
            .arg("--spool-dir")
            .arg(&spool)
            .args(["--host", "test-host"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pg = server.pg("sundial").await;
    until("the agent's first rows", 20, async || {
        scalar(
            &pg,
            "SELECT count(*) FROM cpu WHERE host = 'test-host' AND cpu = 'cpu-total'",
        )
        .await
        .is_some_and(|v| v != "0")
    })
    .await;
    for sql in [
        "SELECT max(total) FROM mem WHERE host = 'test-host'",
        "SELECT max(n_cpus) FROM system WHERE host = 'test-host'",
        "SELECT count(*) FROM net WHERE host = 'test-host'",
        "SELECT max(usage_user + usage_system + usage_idle) FROM cpu WHERE host = 'test-host'",
    ] {
        let v = scalar(&pg, sql).await.unwrap_or_default();
        assert!(v.parse::<f64>().unwrap_or(0.0) > 0.0, "{sql}: {v:?}");
    }
    drop(pg);
    // Down: batches pile up in the spool.
    server.kill();
    let down_at = chrono::Utc::now();
    until("batches spooled while the server is down", 20, async || {
        spooled(&spool) >= 2
    })
    .await;
    let back_at = chrono::Utc::now();
    let server = TestServer::start(&data, &["--http-addr", &addr]);
    until("the spool to drain", 20, async || spooled(&spool) == 0).await;
    let pg = server.pg("sundial").await;
    let during = scalar(
        &pg,
        &format!(
            "SELECT count(*) FROM system WHERE host = 'test-host' AND time > '{}' AND time < '{}'",
            down_at.to_rfc3339(),
            back_at.to_rfc3339()
        ),
    )
    .await
    .unwrap();
    assert!(
        during.parse::<i64>().unwrap() >= 2,
        "rows from while it was down: {during}"
    );
}
