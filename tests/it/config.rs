//! Configuration precedence: defaults < TOML file < SUNDIAL_* environment < flags.

use crate::harness::TestServer;

#[tokio::test]
async fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sundial.toml");
    std::fs::write(&cfg, "[http]\nmax_body_bytes = 100\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let data = dir.path().join("data");
    let body = "m v=1 1\n".repeat(30); // 240 bytes

    let server = TestServer::start(&data, &["--config", cfg]);
    assert_eq!(
        server.post("/write?db=d", body.clone()).await.0,
        413,
        "file sets the limit"
    );
    drop(server);

    let server = TestServer::start_with_env(
        &data,
        &["--config", cfg],
        &[("SUNDIAL_MAX_BODY_BYTES", "1000")],
    );
    assert_eq!(
        server.post("/write?db=d", body.clone()).await.0,
        204,
        "environment beats file"
    );
    drop(server);

    let server = TestServer::start_with_env(
        &data,
        &["--config", cfg, "--max-body-bytes", "50"],
        &[("SUNDIAL_MAX_BODY_BYTES", "1000")],
    );
    assert_eq!(
        server.post("/write?db=d", body).await.0,
        413,
        "flag beats environment"
    );
}

#[test]
fn bad_config_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "unknown_key = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown_key"), "{err}");
}

/// Addresses may name a host (`localhost:0`), and `sundial generate devops` writes TSBS'
/// devops data that the server takes as it is.
#[tokio::test]
async fn host_names_and_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &["--http-addr", "localhost:0", "--pg-addr", "localhost:0"],
    );
    assert!(server.http.ip().is_loopback() && server.pg.ip().is_loopback());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(["generate", "devops", "--hosts", "3", "--hours", "1"])
        .output()
        .expect("run sundial generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        lines.lines().count(),
        3 * 360,
        "3 hosts every 10 s for an hour"
    );
    let (status, text) = server.post("/write?db=devops", lines).await;
    assert_eq!(status, 204, "{text}");
    let pg = server.pg("devops").await;
    let row = pg
        .query_one("SELECT count(*), count(DISTINCT hostname) FROM cpu", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1080, 3));
}
