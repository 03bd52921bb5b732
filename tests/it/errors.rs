//! Bad input gets a clear error: HTTP 4xx with line numbers, SQLSTATEs over Postgres.

use crate::harness::{TestServer, count};
use sundial::error::SqlState;

#[tokio::test]
async fn partial_writes_store_good_lines_and_name_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let body = "cpu,host=a v=1i 1\n\
                this is not line protocol\n\
                # a comment\n\
                cpu,host=b v=2i 2\n\
                cpu,host=c v=2.5 3\n\
                cpu,host=d v=4i 4\n";
    let (status, text) = server.post("/api/v3/write_lp?db=d", body).await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], "partial write of line protocol occurred");
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{text}");
    assert_eq!(data[0]["line_number"], 2);
    assert_eq!(data[0]["original_line"], "this is not line protocol");
    assert_eq!(data[1]["line_number"], 5);
    assert!(
        data[1]["error_message"]
            .as_str()
            .unwrap()
            .contains("type float"),
        "{text}"
    );
    let c = server.pg("d").await;
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 3);

    // accept_partial=false stores nothing.
    let (status, text) = server
        .post(
            "/api/v3/write_lp?db=d&accept_partial=false",
            "cpu,host=e v=5i 5\ncpu v=\n",
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 3);
    let (status, _) = server
        .post(
            "/api/v3/write_lp?db=d&accept_partial=false",
            "cpu,host=e v=5i 5\ncpu,host=f v=1.0 6\n",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 3);

    // The v1 and v2 endpoints report the same way.
    let (status, text) = server
        .post("/write?db=d", "cpu,host=g v=6i 7\ncpu,host=h v=\"s\" 8\n")
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("\"line_number\":2"), "{text}");
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 4);

    // Many bad lines: the first 100 are listed with the count of all, so the answer
    // stays small however many there are; the good lines are stored.
    let body = "bad line\n".repeat(50_000) + "cpu,host=z v=9i 9\n";
    let (status, text) = server.post("/write?db=d", body).await;
    assert_eq!(status, 400);
    assert!(text.len() < 20_000, "{} bytes", text.len());
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["data"].as_array().unwrap().len(), 100);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("50000 lines were rejected"),
        "{}",
        json["error"]
    );
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 5);
}

#[tokio::test]
async fn http_request_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |c| c.http.max_body_bytes = 1000);
    let (s, body) = server.post("/write", "m v=1").await;
    assert_eq!(s, 400);
    assert!(body.contains("db"), "{body}");
    // Request errors carry the SQLSTATE of their kind, as the Postgres endpoint would.
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["sqlstate"],
        SqlState::INVALID_PARAMETER_VALUE.code(),
        "{body}"
    );
    let (s, _) = server.post("/api/v2/write?org=o", "m v=1").await;
    assert_eq!(s, 400);
    let (s, _) = server.post("/api/v3/write_lp", "m v=1").await;
    assert_eq!(s, 400);
    let (s, body) = server
        .post("/write?db=d&precision=fortnights", "m v=1")
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("precision"), "{body}");
    let (s, _) = server.post("/write?db=d", "m v=1 ".repeat(300)).await;
    assert_eq!(s, 413);
    let resp = reqwest::Client::new()
        .post(server.url("/write?db=d"))
        .header("Content-Encoding", "gzip")
        .body("definitely not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // A gzip bomb is refused by its decoded size.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'#'; 100_000]).unwrap();
    let resp = reqwest::Client::new()
        .post(server.url("/write?db=d"))
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["sqlstate"], SqlState::PROGRAM_LIMIT_EXCEEDED.code());
    let resp = reqwest::Client::new()
        .post(server.url("/write?db=d"))
        .header("Content-Encoding", "br")
        .body("m v=1 1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // Timestamps that overflow nanoseconds are a line error, not a crash.
    let (s, body) = server
        .post("/write?db=d&precision=h", "m v=1 9223372036854775807")
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = server.post("/write?db=d", "m v=1 1").await;
    assert_eq!(s, 204, "the server is still fine");
}

#[tokio::test]
async fn sql_errors_carry_sqlstates() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let (s, _) = server.post("/write?db=d", "cpu v=1 1").await;
    assert_eq!(s, 204);
    let Err(err) = server.try_pg("no_such_db").await else {
        panic!("unknown database must fail");
    };
    let db_err = err.as_db_error().expect("a server error");
    assert_eq!(db_err.code().code(), SqlState::INVALID_CATALOG_NAME.code());
    assert!(
        db_err.message().contains("sundial") && db_err.message().contains("d"),
        "{}",
        db_err.message()
    );

    let c = server.pg("d").await;
    let code = |e: tokio_postgres::Error| e.as_db_error().map(|d| d.code().code().to_string());
    let e = c.simple_query("SELECT * FROM nope").await.unwrap_err();
    assert_eq!(code(e).as_deref(), Some(SqlState::UNDEFINED_TABLE.code()));
    let e = c.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(code(e).as_deref(), Some(SqlState::SYNTAX_ERROR.code()));
    let e = c.query("SELECT nope FROM cpu", &[]).await.unwrap_err();
    assert_eq!(code(e).as_deref(), Some(SqlState::UNDEFINED_COLUMN.code()));
    // The connection is still usable after errors.
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 1);

    let out = server.psql_raw("d", "SELECT * FROM nope", &["-v", "VERBOSITY=verbose"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(SqlState::UNDEFINED_TABLE.code()));
}
