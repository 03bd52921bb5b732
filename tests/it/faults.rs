//! Faults inside the server (a table that cannot be flushed, a WAL file with a damaged
//! record, a failing fsync) are contained: nothing acknowledged is lost, the rest of the
//! store goes on, and what is wrong is visible.

use crate::harness::{TestServer, count, scalar};

/// Midnight of 2024-05-01 in ns: one day partition `p<this>`.
const DAY: i64 = 1_714_521_600_000_000_000;

/// A table whose segments cannot be written (a file stands where its partition directory
/// must go) never blocks the others: they flush and accept DELETE; the table is listed in
/// `system.unflushed_tables` and `/metrics`, keeps its rows across `kill -9` and can be
/// dropped, after which it does not come back.
#[tokio::test]
async fn one_table_failing_to_flush_blocks_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("sundial.toml");
    std::fs::write(&cfg, "[storage]\nflush_interval = \"1s\"\n").unwrap();
    let bad_table = data.join("dbs/sundial/bad");
    std::fs::create_dir_all(&bad_table).unwrap();
    std::fs::write(bad_table.join(format!("p{DAY}")), b"in the way").unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let server = TestServer::start(&data, &args);
    let t = DAY + 3_600_000_000_000;
    let (status, body) = server
        .post(
            "/write?db=sundial",
            format!("bad v=1 {t}\ngood v=1 {t}\ngood v=2 {}\n", t + 1),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let pg = server.pg("sundial").await;
    crate::harness::eventually(
        &pg,
        "SELECT string_agg(\"table\", ',') FROM system.unflushed_tables WHERE failures > 0",
        |v| v == "bad",
    )
    .await;
    let why = scalar(&pg, "SELECT last_error FROM system.unflushed_tables")
        .await
        .unwrap();
    assert!(why.contains("Not a directory"), "{why}");
    assert_eq!(server.metric("sundial_unflushed_tables").await, Some(1.0));
    // The good table reached its segments, so DELETE (which flushes first) works on it.
    assert!(server.metric("sundial_segments").await.unwrap() >= 1.0);
    let deleted = pg
        .execute(
            &format!("DELETE FROM good WHERE time > to_timestamp_nanos({t})"),
            &[],
        )
        .await;
    assert!(deleted.is_ok(), "{deleted:?}");
    assert_eq!(count(&pg, "SELECT count(*) FROM good").await, 1);
    // DELETE on the table that cannot flush is refused, not half done.
    let refused = pg.execute("DELETE FROM bad", &[]).await.unwrap_err();
    let refused = refused.as_db_error().expect("a database error");
    assert!(
        refused.message().contains("cannot be flushed"),
        "{refused:?}"
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM bad").await, 1);

    // kill -9: the rows of the table that never reached a segment come back from the WAL
    // the checkpoint kept for it, and the good table's rows are there once.
    drop(pg);
    let server = server.crash_and_restart();
    let pg = server.pg("sundial").await;
    assert_eq!(count(&pg, "SELECT count(*) FROM bad").await, 1);
    assert_eq!(count(&pg, "SELECT count(*) FROM good").await, 1);

    pg.batch_execute("DROP TABLE bad").await.unwrap();
    assert_eq!(
        count(&pg, "SELECT count(*) FROM system.unflushed_tables").await,
        0
    );
    drop(pg);
    let server = server.crash_and_restart();
    let pg = server.pg("sundial").await;
    let tables = scalar(
        &pg,
        "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await;
    assert_eq!(tables.as_deref(), Some("good"), "a dropped table came back");
    assert_eq!(count(&pg, "SELECT count(*) FROM good").await, 1);
}
