//! The Graphite plaintext listener: plain and tagged lines over TCP, mapped by templates,
//! bad lines skipped without losing the good ones.

use tokio::io::AsyncWriteExt;

use crate::harness::{TestServer, free_port};

#[tokio::test]
async fn graphite_lines_become_rows() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("sundial.toml");
    std::fs::write(
        &config,
        format!(
            "[graphite]\nlisten = \"127.0.0.1:{port}\"\nseparator = \"_\"\n\
             templates = [\"servers.* .host.measurement.field\", \"measurement.measurement.field*\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    sock.write_all(
        b"servers.web1.cpu.idle 98.5 1714557600\n\
          servers.web2.cpu.idle 97 1714557600\n\
          this line is bad\n\
          servers.web1.cpu.system;dc=eu 1.5 1714557610\n\
          app.http.requests.count 3 1714557600\n",
    )
    .await
    .unwrap();
    sock.shutdown().await.unwrap();
    let pg = server.pg("sundial").await;
    let rows = crate::harness::wait_for(20, "the graphite rows", || async {
        pg.query(
            "SELECT host, idle, system, dc FROM cpu ORDER BY time, host",
            &[],
        )
        .await
        .ok()
        .filter(|rows| rows.len() == 3)
    })
    .await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{:?}|{:?}|{:?}",
                r.get::<_, String>(0),
                r.get::<_, Option<f64>>(1),
                r.get::<_, Option<f64>>(2),
                r.get::<_, Option<String>>(3)
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "web1|Some(98.5)|None|None",
            "web2|Some(97.0)|None|None",
            "web1|None|Some(1.5)|Some(\"eu\")",
        ]
    );
    let app = pg
        .query_one("SELECT requests_count FROM app_http", &[])
        .await
        .unwrap();
    assert_eq!(app.get::<_, f64>(0), 3.0);
}

/// A line longer than the limit is skipped (it never grows the buffer past it), and the
/// lines around it are stored.
#[tokio::test]
async fn over_long_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = TestServer::in_process(dir.path(), |c| c.graphite.listen = Some(addr));
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"before 1 1714557600\n").await.unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..8 {
        sock.write_all(&chunk).await.unwrap();
    }
    sock.write_all(b" 1 1714557600\nafter 2 1714557600\n")
        .await
        .unwrap();
    sock.shutdown().await.unwrap();
    let pg = server.pg("sundial").await;
    for table in ["before", "after"] {
        crate::harness::eventually(&pg, &format!("SELECT count(*) FROM {table}"), |v| v == "1")
            .await;
    }
    let tables = crate::harness::scalar(
        &pg,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await;
    assert_eq!(tables.as_deref(), Some("2"), "the long line stored nothing");
}
