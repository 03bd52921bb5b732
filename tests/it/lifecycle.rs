//! Data lifecycle through SQL: DELETE (tombstones), retention TTLs, DROP TABLE/DATABASE,
//! CREATE DATABASE.

use sundial::error::SqlState;

use crate::harness::{TestServer, code, count};

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[tokio::test]
async fn delete_hides_rows_at_once_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let body: String = (0..10)
        .flat_map(|i| {
            ["a", "b"].map(|h| format!("cpu,host={h} v={i}i {}\n", 1_451_606_400 + i * 60))
        })
        .collect();
    assert_eq!(server.post("/write?db=d&precision=s", body).await.0, 204);
    let c = server.pg("d").await;
    // Extended protocol: the driver reads the row count from the command tag.
    let n = c
        .execute(
            "DELETE FROM cpu WHERE host = 'a' AND time >= '2016-01-01T00:03:00Z' AND time < '2016-01-01T00:06:00Z'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE host = 'a'").await,
        7
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE host = 'b'").await,
        10
    );
    // Not representable as a tombstone: refused, nothing deleted.
    let e = c
        .execute("DELETE FROM cpu WHERE v > 5", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), SqlState::FEATURE_NOT_SUPPORTED.code());
    let e = c.execute("DELETE FROM nope", &[]).await.unwrap_err();
    assert_eq!(code(&e), SqlState::UNDEFINED_TABLE.code());

    let server = server.crash_and_restart();
    let c = server.pg("d").await;
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE host = 'a'").await,
        7
    );
    // Rows written after the DELETE are not hidden by it.
    assert_eq!(
        server
            .post("/write?db=d&precision=s", "cpu,host=a v=99i 1451606640\n")
            .await
            .0,
        204
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE host = 'a'").await,
        8
    );
    // psql shows the command tag.
    let out = server.psql_raw("d", "DELETE FROM cpu WHERE host = 'b'", &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "DELETE 10");
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, 8);
}

#[tokio::test]
async fn retention_hides_expired_rows_and_deletes_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sundial.toml");
    std::fs::write(&cfg, "[storage]\nflush_interval_secs = 1\n").unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start(&data, &["--config", cfg.to_str().unwrap()]);
    let now = now_nanos();
    let body = format!("m,h=x v=1 1451606400000000000\nm,h=x v=2 {now}\n");
    assert_eq!(server.post("/write?db=r", body).await.0, 204);
    let c = server.pg("r").await;
    assert_eq!(count(&c, "SELECT count(*) FROM m").await, 2);
    c.simple_query("ALTER TABLE m SET (ttl = '30 days')")
        .await
        .unwrap();
    assert_eq!(
        count(&c, "SELECT count(*) FROM m").await,
        1,
        "expired rows are never returned"
    );
    // The flusher writes the 2016 partition, then retention deletes it from disk.
    let old_partition = data.join("dbs/r/m/p1451606400000000000");
    let day = 86_400_000_000_000i64;
    let new_partition = data.join(format!("dbs/r/m/p{}", now.div_euclid(day) * day));
    crate::harness::until("the expired partition to leave the disk", 10, async || {
        new_partition.exists() && !old_partition.exists()
    })
    .await;
    c.simple_query("ALTER TABLE m RESET (ttl)").await.unwrap();
    assert_eq!(
        count(&c, "SELECT count(*) FROM m").await,
        1,
        "deleted data stays deleted"
    );

    // A database TTL applies to tables without their own.
    c.simple_query("CREATE DATABASE short WITH (ttl = '1 hour')")
        .await
        .unwrap();
    let body = format!("m v=1 {}\nm v=2 {now}\n", now - 2 * 3_600_000_000_000);
    assert_eq!(server.post("/write?db=short", body).await.0, 204);
    let s = server.pg("short").await;
    assert_eq!(count(&s, "SELECT count(*) FROM m").await, 1);
    let e = c
        .simple_query("ALTER TABLE m SET (ttl = 'whenever')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), SqlState::INVALID_PARAMETER_VALUE.code());
}

#[tokio::test]
async fn create_and_drop_databases_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let c = server.pg("sundial").await;
    c.simple_query("CREATE DATABASE fresh").await.unwrap();
    let e = c.simple_query("CREATE DATABASE fresh").await.unwrap_err();
    assert_eq!(code(&e), SqlState::DUPLICATE_DATABASE.code());
    c.simple_query("CREATE DATABASE IF NOT EXISTS fresh")
        .await
        .unwrap();
    let f = server.pg("fresh").await;
    assert_eq!(
        server.post("/write?db=fresh", "a v=1 1\nb v=1 1\n").await.0,
        204
    );
    assert_eq!(count(&f, "SELECT count(*) FROM a").await, 1);
    f.simple_query("DROP TABLE a").await.unwrap();
    assert_eq!(
        code(&f.simple_query("SELECT * FROM a").await.unwrap_err()),
        SqlState::UNDEFINED_TABLE.code()
    );
    assert_eq!(
        code(&f.simple_query("DROP TABLE a").await.unwrap_err()),
        SqlState::UNDEFINED_TABLE.code()
    );
    f.simple_query("DROP TABLE IF EXISTS a").await.unwrap();
    assert_eq!(count(&f, "SELECT count(*) FROM b").await, 1);
    assert_eq!(
        code(&f.simple_query("DROP DATABASE fresh").await.unwrap_err()),
        SqlState::OBJECT_IN_USE.code()
    );
    drop(f);
    c.simple_query("DROP DATABASE fresh").await.unwrap();
    let Err(e) = server.try_pg("fresh").await else {
        panic!("dropped database still accepts connections");
    };
    assert_eq!(code(&e), SqlState::INVALID_CATALOG_NAME.code());
    assert!(!dir.path().join("dbs/fresh").exists());
    // Survives a restart: the dropped table and database stay dropped.
    let server = server.crash_and_restart();
    assert!(server.try_pg("fresh").await.is_err());
    // Writing again creates a new, empty database.
    assert_eq!(server.post("/write?db=fresh", "c v=1 1\n").await.0, 204);
    let f = server.pg("fresh").await;
    assert_eq!(
        code(&f.simple_query("SELECT * FROM b").await.unwrap_err()),
        SqlState::UNDEFINED_TABLE.code()
    );
    assert_eq!(count(&f, "SELECT count(*) FROM c").await, 1);
}
