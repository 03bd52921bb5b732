//! What drivers check at connect time and ask on their own.

use crate::harness::TestServer;

#[tokio::test]
async fn server_parameters_version_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
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
