//! What drivers check at connect time and ask on their own.

use crate::harness::TestServer;
use sundial::error::SqlState;

#[tokio::test]
async fn server_parameters_version_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    // psql shows the ParameterStatus values it received.
    let out = server.psql("sundial", "\\echo :SERVER_VERSION_NAME :SERVER_VERSION_NUM");
    assert!(out.starts_with("16.6 (Sundial"), "{out}");
    assert!(out.trim().ends_with("160006"), "{out}");
    let c = server.pg("sundial").await;
    let v: String = c.query_one("SELECT version()", &[]).await.unwrap().get(0);
    assert!(v.starts_with("PostgreSQL 16.6"), "{v}");
    let row = c
        .query_one(
            "SELECT current_setting('server_version_num')::int / 100 AS version, current_setting('DateStyle')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1600);
    assert_eq!(row.get::<_, &str>(1), "ISO, MDY");
    assert!(
        c.simple_query("SELECT current_setting('no_such_thing')")
            .await
            .is_err()
    );
    // What SQLAlchemy and others ask with SHOW.
    let iso = c
        .simple_query("SHOW TRANSACTION ISOLATION LEVEL")
        .await
        .unwrap();
    let value = iso.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("read committed"));
    let v: String = c
        .query_one("SHOW server_version_num", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "160006");
    let v: String = c
        .query_one("SELECT set_config('TimeZone', 'UTC', false)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "UTC");
    // asyncpg's pool reset and psycopg/SQLAlchemy savepoints are accepted.
    c.simple_query("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
        .await
        .unwrap();
    c.batch_execute("BEGIN; SAVEPOINT sp; SELECT 1; RELEASE SAVEPOINT sp; SAVEPOINT sp2; ROLLBACK TO SAVEPOINT sp2; COMMIT")
        .await
        .unwrap();
    // An empty query and a comment-only query succeed without rows (EmptyQueryResponse).
    for q in [";", "-- ping"] {
        let msgs = c.simple_query(q).await.unwrap();
        assert!(
            !msgs
                .iter()
                .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))),
            "{q}"
        );
    }
}

/// information_schema in PostgreSQL's shape: what Grafana's query builder and ORMs read.
#[tokio::test]
async fn information_schema_uses_postgres_type_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let lp = "cpu,host=a usage=1.5,n=2i,u=3u,ok=t,msg=\"x\" 1\n";
    assert_eq!(server.post("/write?db=g", lp).await.0, 204);
    let c = server.pg("g").await;
    let rows = c
        .query(
            "SELECT column_name, data_type, udt_name, ordinal_position, is_nullable \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'cpu' \
             ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String, i32, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let want = [
        ("time", "timestamp with time zone", "timestamptz", 1, "NO"),
        ("host", "text", "text", 2, "YES"),
        ("msg", "text", "text", 3, "YES"),
        ("n", "bigint", "int8", 4, "YES"),
        ("ok", "boolean", "bool", 5, "YES"),
        ("u", "numeric", "numeric", 6, "YES"),
        ("usage", "double precision", "float8", 7, "YES"),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2.as_str(), g.3, g.4.as_str()),
            w
        );
    }
    let tables = c
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].get::<_, &str>(0), "cpu");
    let schemas = server.psql(
        "g",
        "SELECT schema_name FROM information_schema.schemata ORDER BY 1",
    );
    assert!(schemas.contains("public"), "{schemas}");
    // psql's own catalog commands still work, and do not list information_schema tables.
    let dt = server.psql("g", "\\dt");
    assert_eq!(dt.trim(), "public|cpu|table|postgres", "{dt}");
    let dt_plus = server.psql("g", "\\dt+");
    assert!(
        dt_plus.starts_with("public|cpu|table|postgres|permanent"),
        "{dt_plus}"
    );
    let d = server.psql("g", "\\d cpu");
    assert!(d.contains("usage|double precision"), "{d}");
    server.psql("g", "\\df");
    let dn = server.psql("g", "\\dn");
    assert!(dn.contains("public"), "{dn}");
    // \l lists every database; \dt still only this one's tables.
    assert_eq!(server.post("/write?db=other", "mem v=1 1\n").await.0, 204);
    let l = server.psql("g", "\\l");
    for db in ["g|", "other|", "sundial|"] {
        assert!(
            l.lines().any(|line| line.starts_with(db)),
            "{db} missing from {l}"
        );
    }
    assert_eq!(server.psql("g", "\\dt").trim(), "public|cpu|table|postgres");
    assert!(
        c.query("SELECT * FROM other.public.mem", &[])
            .await
            .is_err()
    );
}

/// The extended protocol as pgx (Grafana 12.4+) and tokio-postgres use it: named statements
/// that persist, `$n` parameters typed by the server, Describe, row limits with
/// PortalSuspended, and the empty and comment-only queries.
#[tokio::test]
async fn extended_protocol_statements_portals_and_empty_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let lines: String = (0..10)
        .map(|i| {
            format!(
                "cpu,hostname=h{} usage_user={i}.5 {}\n",
                i % 2,
                1714557600 + i * 60
            )
        })
        .collect();
    let (status, body) = server.post("/write?db=sundial&precision=s", lines).await;
    assert_eq!(status, 204, "{body}");
    let mut c = server.pg("sundial").await;

    // Grafana 13's schema API queries, with text parameters.
    let schemas = c
        .query(
            "SELECT schema_name FROM information_schema.schemata \
             WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema' \
             ORDER BY schema_name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(schemas.len(), 1);
    let tables = c
        .query(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = $1 AND table_type IN ('BASE TABLE', 'VIEW') ORDER BY table_name",
            &[&"public"],
        )
        .await
        .unwrap();
    assert_eq!(tables[0].get::<_, String>(0), "cpu");
    let columns = c
        .query(
            "SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             ORDER BY ordinal_position",
            &[&"public", &"cpu"],
        )
        .await
        .unwrap();
    let udt: Vec<String> = columns.iter().map(|r| r.get(2)).collect();
    assert_eq!(udt, ["timestamptz", "text", "float8"]);

    // A named statement: described once (parameter and column types), run many times.
    let stmt = c
        .prepare("SELECT hostname, count(*) AS n FROM cpu WHERE usage_user > $1 GROUP BY hostname ORDER BY hostname")
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[tokio_postgres::types::Type::FLOAT8]);
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["hostname", "n"]);
    for (threshold, expected) in [(0.0, 10), (5.0, 5), (100.0, 0)] {
        let rows = c.query(&stmt, &[&threshold]).await.unwrap();
        let total: i64 = rows.iter().map(|r| r.get::<_, i64>(1)).sum();
        assert_eq!(total, expected, "threshold {threshold}");
    }

    // Row limits: a portal read three rows at a time (Execute with max_rows, PortalSuspended).
    let tx = c.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT usage_user FROM cpu ORDER BY time", &[])
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 3).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|r| r.get::<_, f64>(0)));
    }
    tx.commit().await.unwrap();
    assert_eq!(seen, (0..10).map(|i| i as f64 + 0.5).collect::<Vec<_>>());

    // `;` and a comment-only query answer EmptyQueryResponse, not an error.
    for q in [";", "-- ping", "/* ping */"] {
        let msgs = c
            .simple_query(q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e:?}"));
        assert!(
            !msgs
                .iter()
                .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))),
            "{q}"
        );
    }
    // Multi-statement simple queries answer each statement.
    let msgs = c
        .simple_query("SELECT 1; SELECT 2, 3; SET application_name = 'x'")
        .await
        .unwrap();
    let rows = msgs
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(rows, 2);
    let completes: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(completes, [1, 1, 0]);
}

/// CancelRequest (what psql sends on Ctrl-C, and drivers on a timeout): the running query
/// stops with 57014 and the connection stays usable.
#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let client = server.pg("sundial").await;
    let token = client.cancel_token();
    let client = std::sync::Arc::new(client);
    let c = client.clone();
    let slow = tokio::spawn(async move {
        c.simple_query("SELECT count(*) FROM generate_series(1, 5000000000) a")
            .await
    });
    // The statement is counted once it runs (and can be cancelled).
    crate::harness::until("the query to start", 30, async || {
        server
            .metric("sundial_queries_total{protocol=\"postgres\"}")
            .await
            >= Some(1.0)
    })
    .await;
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request sent");
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), slow)
        .await
        .expect("the query stopped after the cancel request")
        .unwrap();
    let err = outcome.expect_err("a cancelled query fails");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some(SqlState::QUERY_CANCELED.code()),
        "{err:?}"
    );
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert_eq!(rows.len(), 3, "the connection still answers: {rows:?}");
}
