//! Inputs a client controls cannot lose, hide or widen anything: each test here is a
//! defect that was real (a DELETE widened by LIMIT, a rollback that did not undo, a name
//! that wedged flushing, a snappy bomb, durations that wrapped), driven through the real
//! server and its real clients.

use sundial::error::SqlState;

use crate::harness::{TestServer, code, count, scalar};

async fn rows_of(server: &TestServer, db: &str, lines: &str) -> tokio_postgres::Client {
    let (status, body) = server
        .post(&format!("/write?db={db}"), lines.to_string())
        .await;
    assert_eq!(status, 204, "{body}");
    server.pg(db).await
}

/// DELETE takes exactly its WHERE clause: what the tombstone cannot express is refused
/// (LIMIT, subqueries, other columns), never widened to every row of the tag.
#[tokio::test]
async fn delete_refuses_what_it_cannot_express_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let c = rows_of(
        &server,
        "d",
        "cpu,host=a v=1i 1\ncpu,host=a v=2i 2\ncpu,host=b v=3i 3\n",
    )
    .await;
    for sql in [
        "DELETE FROM cpu WHERE host = 'a' LIMIT 1",
        "DELETE FROM cpu WHERE host IN (SELECT host FROM cpu WHERE v = 3)",
        "DELETE FROM cpu WHERE host = 'a' AND v = 1",
        "DELETE FROM cpu WHERE host = 'a' ORDER BY time LIMIT 1",
    ] {
        let e = c.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            code(&e),
            SqlState::FEATURE_NOT_SUPPORTED.code(),
            "{sql}: {e:?}"
        );
    }
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu").await,
        3,
        "nothing deleted"
    );
    // What it can express it does exactly.
    c.simple_query("DELETE FROM cpu WHERE host = 'a' AND time <= '1970-01-01T00:00:00.000000001Z'")
        .await
        .unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 2);
}

/// Sundial's writing statements take effect at once, so inside a transaction block they
/// are refused (25001) instead of surviving a ROLLBACK; DISCARD ALL resets the session.
#[tokio::test]
async fn transactions_and_discard_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let c = rows_of(&server, "t", "cpu,host=a v=1i 1\ncpu,host=b v=2i 2\n").await;
    c.simple_query("BEGIN").await.unwrap();
    let e = c
        .simple_query("DELETE FROM cpu WHERE host = 'a'")
        .await
        .expect_err("DELETE in a transaction block");
    assert_eq!(code(&e), SqlState::ACTIVE_SQL_TRANSACTION.code(), "{e:?}");
    c.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 2);
    for sql in ["DROP TABLE cpu", "CREATE DATABASE x", "DROP DATABASE t"] {
        c.simple_query("BEGIN").await.unwrap();
        let e = c.simple_query(sql).await.expect_err(sql);
        assert_eq!(code(&e), SqlState::ACTIVE_SQL_TRANSACTION.code(), "{sql}");
        c.simple_query("ROLLBACK").await.unwrap();
    }
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 2);
    // Outside a block they run.
    c.simple_query("DELETE FROM cpu WHERE host = 'a'")
        .await
        .unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 1);

    c.simple_query("SET TimeZone = 'Europe/Berlin'")
        .await
        .unwrap();
    c.simple_query("SET application_name = 'pooled'")
        .await
        .unwrap();
    c.simple_query("DISCARD ALL").await.unwrap();
    let tz = crate::harness::scalar(&c, "SHOW TimeZone").await;
    assert_eq!(tz.as_deref(), Some("UTC"), "DISCARD ALL resets TimeZone");
    let app = crate::harness::scalar(&c, "SHOW application_name").await;
    assert_eq!(
        app.as_deref(),
        Some(""),
        "DISCARD ALL resets application_name"
    );
}

/// A name too long to be a file name is refused at write time (the line, with the
/// limit), so flushing, DELETE and DROP keep working for everything else.
#[tokio::test]
async fn over_long_names_are_refused_and_flushing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let long = "m".repeat(300);
    let wide = "é".repeat(90); // 180 bytes, 540 once encoded
    let body = format!(
        "ok,host=a v=1i 1\n{long},host=a v=1i 2\nok,{long}=a v=1i 3\nok,host=a {long}=1i 4\n{wide} v=1 5\n"
    );
    let (status, text) = server.post("/write?db=names", body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(rejected_lines(&text), [2, 3, 4, 5], "{text}");
    assert!(text.contains("too long"), "{text}");
    let (status, text) = server
        .post(&format!("/write?db={}", "d".repeat(300)), "m v=1 1\n")
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("too long"), "{text}");
    let c = server.pg("names").await;
    let e = c
        .simple_query(&format!("CREATE DATABASE {}", "x".repeat(300)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), SqlState::NAME_TOO_LONG.code(), "{e:?}");
    // DELETE and DROP flush first: they work, so flushing does.
    c.simple_query("DELETE FROM ok WHERE host = 'a'")
        .await
        .unwrap();
    c.simple_query("DROP TABLE ok").await.unwrap();
    let e = c.simple_query("SELECT * FROM ok").await.unwrap_err();
    assert_eq!(code(&e), SqlState::UNDEFINED_TABLE.code());
}

/// A snappy body that would decompress past the body limit is refused (413, naming the
/// limit) before it is decompressed.
#[tokio::test]
async fn remote_write_bombs_are_refused_by_their_decoded_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| c.http.max_body_bytes = 1 << 20);
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 16 << 20])
        .unwrap();
    assert!(bomb.len() < 1 << 20, "the body itself is within the limit");
    let (status, text) = server.post("/api/v1/write", bomb).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("1048576"), "names the limit: {text}");
    assert_eq!(server.post("/write?db=d", "m v=1 1\n").await.0, 204);
}

/// Durations from clients are bounded and checked: a TTL that once wrapped negative
/// (and hid every row), an EVERY that overflowed into a hot loop, a backtest over
/// centuries — each refused with 22023 before anything runs.
#[tokio::test]
async fn durations_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let c = rows_of(&server, "sundial", "cpu,host=a v=99i 1\n").await;
    for sql in [
        "ALTER TABLE cpu SET (ttl = '10000000000000000000s')",
        "CREATE DATABASE forever WITH (ttl = '300 years')",
        "CREATE ALERT a EVERY '300 years' AS SELECT 1 AS value",
        "CREATE ALERT a EVERY '20 years' AS SELECT 1 AS value",
        "CREATE ALERT a FOR '11 years' AS SELECT 1 AS value",
        "SELECT * FROM alert_backtest_query('SELECT 1 AS value', '1s', '0s', \
         '1700-01-01T00:00:00Z', '2260-01-01T00:00:00Z')",
        "SELECT * FROM alert_backtest_query('SELECT 1 AS value', \
         INTERVAL '2000000000 months', '0s', '2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z')",
    ] {
        let e = c.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            code(&e),
            SqlState::INVALID_PARAMETER_VALUE.code(),
            "{sql}: {e:?}"
        );
    }
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu").await,
        1,
        "no row hidden"
    );
    c.simple_query("ALTER TABLE cpu SET (ttl = '200 years')")
        .await
        .unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 1);
}

/// Client bytes in a setting never panic the session: a non-ASCII TimeZone is a 22023
/// and the connection goes on.
#[tokio::test]
async fn non_ascii_settings_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let c = server.pg("sundial").await;
    for zone in ["1é9", "+1é9", "é", "+٣٠:٠٠", "Europe/Bérlin"] {
        let e = c
            .simple_query(&format!("SET TimeZone = '{zone}'"))
            .await
            .expect_err(zone);
        assert_eq!(
            code(&e),
            SqlState::INVALID_PARAMETER_VALUE.code(),
            "{zone}: {e:?}"
        );
    }
    assert_eq!(
        crate::harness::scalar(&c, "SELECT 1").await.as_deref(),
        Some("1")
    );
}

/// Bound parameters of Sundial's own statements are their values, quoted as literals
/// (never spliced as SQL), and checked; the extended protocol's row limit per Execute
/// (a portal's `max_rows`) is honoured.
#[tokio::test]
async fn bound_parameters_and_portal_row_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let lines: String = (0..10)
        .map(|i| format!("cpu,host={} v={i}i {}\n", ["a", "b"][i % 2], i + 1))
        .collect();
    let mut c = rows_of(&server, "d", &lines).await;
    // A quote in the value is part of the value, not SQL.
    let n = c
        .execute("DELETE FROM cpu WHERE host = $1", &[&"a' OR host <> 'x"])
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 10);
    c.execute("DELETE FROM cpu WHERE host = $1", &[&"a"])
        .await
        .unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 5);
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE host = 'b'").await,
        5
    );
    // Typed by the client: an integer (sent binary) where a time in nanoseconds goes.
    use tokio_postgres::types::Type;
    let typed = c
        .prepare_typed(
            "DELETE FROM cpu WHERE host = $1 AND time <= to_timestamp_nanos($2)",
            &[Type::TEXT, Type::INT8],
        )
        .await
        .unwrap();
    c.execute(&typed, &[&"b", &4i64]).await.unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 3);
    let e = c
        .execute("DELETE FROM cpu WHERE host = $1 AND host = $2", &[&"b"])
        .await
        .expect_err("a missing parameter");
    assert!(!e.to_string().is_empty());
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 3);

    // max_rows: three Executes of at most 2 rows each, then the end.
    c.simple_query("CREATE DATABASE IF NOT EXISTS d")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT v FROM cpu ORDER BY time", &[])
        .await
        .unwrap();
    let mut chunks = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 2).await.unwrap();
        if rows.is_empty() {
            break;
        }
        chunks.push(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>());
    }
    assert_eq!(chunks, vec![vec![5, 7], vec![9]]);
    tx.commit().await.unwrap();
}

/// The line numbers a 400 names.
fn rejected_lines(text: &str) -> Vec<i64> {
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line_number"].as_i64().unwrap())
        .collect()
}

/// The cardinality guard and the column limits answer like a partial write: the lines
/// that would pass a limit are refused (400 naming the line and the limit), the rest are
/// stored, and series that exist stay writable. A restart (replay) keeps all of them.
#[tokio::test]
async fn series_and_column_limits_refuse_the_lines_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let configure = |c: &mut sundial::config::Config| {
        c.storage.max_series_per_table = 3;
        c.storage.max_series_per_database = 5;
        c.storage.max_columns_per_table = 4;
        c.storage.max_tags_per_point = 2;
    };
    let server = TestServer::in_process(dir.path(), configure);
    let lines: String = (0..4)
        .map(|i| format!("cpu,host=h{i} v=1 {}\n", i + 1))
        .collect();
    let (status, text) = server.post("/write?db=card", lines).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(rejected_lines(&text), [4], "{text}");
    assert!(text.contains("max_series_per_table"), "{text}");
    // Existing series still take points, repeated ones in a batch count once.
    let (status, text) = server
        .post(
            "/write?db=card",
            "cpu,host=h0 v=2 10\ncpu,host=h0 v=3 11\ncpu,host=h2 v=2 12\n",
        )
        .await;
    assert_eq!(status, 204, "{text}");
    // Two more series fit the database, the third does not.
    let lines = "mem,host=a v=1 1\nmem,host=b v=1 2\nmem,host=b v=2 3\nmem,host=c v=1 4\n";
    let (status, text) = server.post("/write?db=card", lines).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(rejected_lines(&text), [4], "{text}");
    assert!(text.contains("max_series_per_database"), "{text}");
    // Other databases have their own budget.
    let (status, text) = server.post("/write?db=other", "mem,host=c v=1 4\n").await;
    assert_eq!(status, 204, "{text}");
    // Columns and tags per line.
    let (status, text) = server
        .post(
            "/write?db=other",
            "wide a=1,b=2,c=3 1\nwide,t=1 a=1,b=2,c=3,d=4 2\nwide,x=1,y=2,z=3 a=1 3\n",
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(rejected_lines(&text), [2, 3], "{text}");
    assert!(text.contains("max_columns_per_table"), "{text}");
    assert!(text.contains("3 tags: at most 2"), "{text}");
    let c = server.pg("card").await;
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 6);
    assert_eq!(count(&c, "SELECT count(*) FROM mem").await, 3);
    let dir_path = dir.path().to_path_buf();
    drop(c);
    drop(server);
    let server = TestServer::in_process(&dir_path, configure);
    let c = server.pg("card").await;
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 6);
    assert_eq!(count(&c, "SELECT count(*) FROM mem").await, 3);
}

/// A frontend message whose lengths exceed its body (the fuzzer found that pgwire's
/// decoder panics on this `Bind`) gets FATAL 08P01 and a closed connection, as from
/// PostgreSQL; other sessions and new connections go on.
#[tokio::test]
async fn malformed_protocol_messages_get_08p01() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let other = server.pg("sundial").await;
    let hex = "420000001a000100000001000100010000000400230007315f30303000010000";
    let bind: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // A Bind with a huge parameter length, then a Parse whose body claims more than it has.
    let parse = b"P\x00\x00\x00\x08s\x00\xff\xff".to_vec();
    for malformed in [bind, parse] {
        let mut raw = tokio::net::TcpStream::connect(server.pg).await.unwrap();
        raw.write_all(&crate::harness::startup_packet("sundial"))
            .await
            .unwrap();
        raw.write_all(&malformed).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            raw.read_to_end(&mut answer),
        )
        .await
        .expect("the server closes the connection")
        .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("08P01"), "{text}");
        assert!(text.contains("invalid message format"), "{text}");
    }
    assert_eq!(scalar(&other, "SELECT 1").await.as_deref(), Some("1"));
    server.pg("sundial").await;
}

/// A chain of thousands of operators parses into a tree too deep to walk: it is refused
/// with 54001 (before, `… OR …` × 5000 overflowed a stack and aborted the server), and
/// the longest chain admitted runs — in the debug build too.
#[tokio::test]
async fn statements_too_deep_to_plan_get_54001_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let (status, body) = server.post("/write?db=sundial", "m,h=a v=1 1\n").await;
    assert_eq!(status, 204, "{body}");
    let pg = server.pg("sundial").await;
    let ors = |n: usize| {
        format!(
            "SELECT count(*) FROM m WHERE {}",
            vec!["v = 1"; n].join(" OR ")
        )
    };
    for sql in [ors(5000), format!("SELECT {}", vec!["1"; 20_000].join("+"))] {
        let e = pg.simple_query(&sql).await.expect_err("too deep");
        assert_eq!(code(&e), SqlState::STATEMENT_TOO_COMPLEX.code(), "{e:?}");
        let e = pg.prepare(&sql).await.expect_err("too deep when prepared");
        assert_eq!(code(&e), SqlState::STATEMENT_TOO_COMPLEX.code(), "{e:?}");
    }
    assert_eq!(count(&pg, &ors(500)).await, 1);
    let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let sql = format!("SELECT count(*) FROM m WHERE v IN ({})", list.join(","));
    assert_eq!(count(&pg, &sql).await, 1);
}
