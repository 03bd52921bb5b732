//! Limits on what clients may take: connection slots (53300), query memory (53200), the
//! default statement timeout, and connections that never finish their startup packet or
//! request, which hold nothing and delay nobody.

use sundial::error::SqlState;
use tokio::io::AsyncWriteExt;

use crate::harness::{TestServer, code, count, message, scalar};

/// `postgres.max_connections`: past it PostgreSQL's 53300, a closed connection frees its
/// slot; 300 sockets stuck before their startup packet (on both protocols) hold none.
#[tokio::test]
async fn connection_slots_are_taken_after_startup_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| c.postgres.max_connections = 2);
    let mut stuck = Vec::new();
    for _ in 0..150 {
        let mut pg = tokio::net::TcpStream::connect(server.pg).await.unwrap();
        pg.write_all(&[0, 0, 0]).await.unwrap(); // part of a length, then nothing
        stuck.push(pg);
        let mut http = tokio::net::TcpStream::connect(server.http).await.unwrap();
        http.write_all(b"POST /write?db=sundial HTTP/1.1\r\nContent-Length: 100\r\n\r\nm v=")
            .await
            .unwrap();
        stuck.push(http);
    }
    let a = server.pg("sundial").await;
    let b = server.pg("sundial").await;
    let (status, body) = server.post("/write?db=sundial", "m v=1 1\n").await;
    assert_eq!(status, 204, "{body}");
    let e = server
        .try_pg("sundial")
        .await
        .expect_err("a third connection");
    assert_eq!(code(&e), SqlState::TOO_MANY_CONNECTIONS.code(), "{e:?}");
    assert!(message(&e).contains("max_connections"), "{e:?}");
    assert_eq!(count(&a, "SELECT count(*) FROM m").await, 1);
    drop(a);
    crate::harness::until("a slot to be freed", 10, async || {
        server.try_pg("sundial").await.is_ok()
    })
    .await;
    assert_eq!(count(&b, "SELECT count(*) FROM m").await, 1);
    drop(stuck);
}

/// The server's default `statement_timeout` is each session's, until it sets its own.
#[tokio::test]
async fn the_default_statement_timeout_applies_until_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| {
        c.postgres.statement_timeout = sundial::duration::Duration::from_secs(90)
    });
    let c = server.pg("sundial").await;
    assert_eq!(
        scalar(&c, "SHOW statement_timeout").await.as_deref(),
        Some("90s")
    );
    c.simple_query("SET statement_timeout = 0").await.unwrap();
    assert_eq!(
        scalar(&c, "SHOW statement_timeout").await.as_deref(),
        Some("0")
    );
    c.simple_query("RESET statement_timeout").await.unwrap();
    assert_eq!(
        scalar(&c, "SHOW statement_timeout").await.as_deref(),
        Some("90s")
    );
}

/// A query that needs more than `query_memory_limit` fails with 53200 — a scan too big
/// for the pool before it reads, a sort that cannot spill — and the server goes on.
#[tokio::test]
async fn queries_over_the_memory_limit_fail_with_53200() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| c.query_memory_limit = 1 << 20);
    for chunk in 0..4 {
        let lines: String = (0..25_000)
            .map(|i| {
                let n = chunk * 25_000 + i;
                format!("big,host=h{} v={n}i,s=\"{n:>20}\" {}\n", n % 10, n + 1)
            })
            .collect();
        let (status, body) = server.post("/write?db=sundial", lines).await;
        assert_eq!(status, 204, "{body}");
    }
    let c = server.pg("sundial").await;
    let e = c
        .simple_query("SELECT * FROM big ORDER BY s DESC")
        .await
        .expect_err("over the memory limit");
    assert_eq!(code(&e), SqlState::OUT_OF_MEMORY.code(), "{e:?}");
    assert!(message(&e).contains("memory"), "{e:?}");
    // Small reads of the same table still work, and the server is up.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM big WHERE host = 'h1' AND time <= to_timestamp_nanos(1000)"
        )
        .await,
        100
    );
}

/// A running statement is listed in `system.running_queries` under its connection's pid
/// (`pg_backend_pid()`), and `pg_cancel_backend(pid)` from another connection stops it
/// with 57014; the connection goes on.
#[tokio::test]
async fn running_queries_are_listed_and_cancellable() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let busy = std::sync::Arc::new(server.pg("sundial").await);
    let other = server.pg("sundial").await;
    let pid: i32 = busy
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let other_pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(pid, other_pid, "each connection has its own pid");
    let long = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(x) WHERE x % 7 = 3";
    let running = {
        let busy = busy.clone();
        tokio::spawn(async move { busy.simple_query(long).await })
    };
    let listed = crate::harness::wait_for(30, "the statement to be listed", || async {
        other
            .query_opt(
                "SELECT query FROM system.running_queries WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    })
    .await;
    assert!(listed.contains("generate_series"), "{listed}");
    let cancelled: bool = other
        .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(cancelled);
    let e = running.await.unwrap().expect_err("cancelled");
    assert_eq!(code(&e), SqlState::QUERY_CANCELED.code(), "{e:?}");
    assert_eq!(count(&busy, "SELECT 41 + 1").await, 42);
    let none: bool = other
        .query_one("SELECT pg_cancel_backend(12345)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!none);
}

/// Reads until the peer closes the socket (or `secs` pass); what it sent before closing.
async fn read_until_closed(socket: &mut tokio::net::TcpStream, secs: u64) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// HTTP: headers that do not arrive within `header_read_timeout` (also a keep-alive
/// connection left idle) get the connection closed; a body that stops arriving gets 408
/// with a JSON error, and nothing of it is stored.
#[tokio::test]
async fn http_requests_that_stall_are_closed() {
    use sundial::duration::Duration;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| {
        c.http.header_read_timeout = Duration::from_secs(1);
        c.http.body_read_timeout = Duration::from_secs(1);
    });
    let mut headers = tokio::net::TcpStream::connect(server.http).await.unwrap();
    headers
        .write_all(b"POST /write?db=sundial HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut headers, 10).await.is_some(),
        "half-sent headers keep the connection open"
    );

    let mut body = tokio::net::TcpStream::connect(server.http).await.unwrap();
    body.write_all(
        b"POST /write?db=sundial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nm v=1 1\n",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut body, 10)
        .await
        .expect("an answer and a close");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("stopped arriving"), "{answer}");

    // A keep-alive connection answers requests, then is closed once idle.
    let mut idle = tokio::net::TcpStream::connect(server.http).await.unwrap();
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, 10)
        .await
        .expect("closed when idle");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let pg = server.pg("sundial").await;
    let e = pg
        .simple_query("SELECT count(*) FROM m")
        .await
        .expect_err("no table m");
    assert_eq!(code(&e), "42P01", "{e:?}");
}

/// Postgres: a connection that does not authenticate within `authentication_timeout`,
/// or sits idle past `idle_session_timeout`, is closed; one that keeps working is not.
#[tokio::test]
async fn postgres_connections_that_stall_or_idle_are_closed() {
    use sundial::duration::Duration;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| {
        c.postgres.authentication_timeout = Duration::from_secs(1);
        c.postgres.idle_session_timeout = Duration::from_secs(2);
        c.postgres.max_connections = 3;
    });
    let mut silent = tokio::net::TcpStream::connect(server.pg).await.unwrap();
    let started = std::time::Instant::now();
    assert!(read_until_closed(&mut silent, 10).await.is_some());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let idle = server.pg("sundial").await;
    let busy = server.pg("sundial").await;
    for _ in 0..12 {
        busy.simple_query("SELECT 1").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(idle.is_closed() || idle.simple_query("SELECT 1").await.is_err());
    busy.simple_query("SELECT 1")
        .await
        .expect("a working session stays open");
    // The idle one gave its slot back.
    let _a = server.pg("sundial").await;
    let _b = server.pg("sundial").await;
    drop((_a, _b, busy));

    // As PostgreSQL does, the session is told why: FATAL 57P05, then the close (retried
    // while the slots just given back are still being freed).
    let packet = crate::harness::startup_packet("sundial");
    let mut said = String::new();
    for _ in 0..50 {
        let mut raw = tokio::net::TcpStream::connect(server.pg).await.unwrap();
        raw.write_all(&packet).await.unwrap();
        said = read_until_closed(&mut raw, 10)
            .await
            .expect("closed when idle");
        if !said.contains("53300") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(said.contains("57P05"), "{said}");
    assert!(said.contains("idle-session timeout"), "{said}");
}

/// Started under `prlimit --as=8G`, the server sizes its query memory (half) and write
/// buffers (a quarter) from that limit rather than from the host's RAM, and serves.
#[tokio::test]
async fn memory_limits_are_sized_from_the_address_space_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_address_space(dir.path(), &[], 8 << 30);
    assert_eq!(
        server.metric("sundial_query_memory_limit_bytes").await,
        Some((4u64 << 30) as f64)
    );
    assert_eq!(
        server.metric("sundial_write_buffer_limit_bytes").await,
        Some((2u64 << 30) as f64)
    );
    let (status, body) = server.post("/write?db=sundial", "m v=1 1\n").await;
    assert_eq!(status, 204, "{body}");
    let pg = server.pg("sundial").await;
    assert_eq!(count(&pg, "SELECT count(*) FROM m").await, 1);
}

/// A sort bigger than query memory spills to temporary files, and those are bounded by
/// `query_spill_limit`: past it the query fails with 53400 (PostgreSQL's answer to
/// `temp_file_limit`) instead of filling the disk; with more room the same query answers.
#[tokio::test]
async fn spilling_is_bounded_by_query_spill_limit() {
    let sql = "SELECT s FROM (SELECT x, x::text || '-padding-padding-padding' AS s \
               FROM generate_series(1, 2000000) AS t(x)) q ORDER BY s OFFSET 1999999";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| {
        c.query_memory_limit = 32 << 20;
        c.query_spill_limit = 1 << 20;
    });
    let c = server.pg("sundial").await;
    let e = c.simple_query(sql).await.expect_err("over the spill limit");
    assert_eq!(
        code(&e),
        SqlState::CONFIGURATION_LIMIT_EXCEEDED.code(),
        "{e:?}"
    );
    assert!(message(&e).contains("query_spill_limit"), "{e:?}");
    assert_eq!(scalar(&c, "SELECT 1").await.as_deref(), Some("1"));

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| {
        c.query_memory_limit = 256 << 20;
        c.query_spill_limit = 1 << 30;
    });
    let c = server.pg("sundial").await;
    let rows = c.simple_query(sql).await.expect("room to spill");
    let tokio_postgres::SimpleQueryMessage::Row(row) = &rows[1] else {
        panic!("{rows:?}")
    };
    assert_eq!(row.get(0), Some("999999-padding-padding-padding"));
}
