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

/// The WAL files in `data`, oldest first.
fn wal_files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The segment files under `dir`, in name order.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    crate::harness::files_with_extension(dir, "seg")
}

/// A flipped bit in the middle of a WAL file costs that one record: the records after it
/// replay, the damaged bytes are quarantined and listed. A flipped bit in a segment block
/// and a truncated segment are caught by their checksums at start: the segments are
/// quarantined, everything intact is served, nothing damaged is read as data.
#[tokio::test]
async fn damage_is_quarantined_and_the_rest_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &[]);
    // Segments: three flushes (graceful restarts) of table s, one row each.
    for t in 1..=3 {
        let (status, body) = server
            .post("/write?db=sundial", format!("s,k=a v={t} {t}\n"))
            .await;
        assert_eq!(status, 204, "{body}");
        server = server.restart();
    }
    // WAL: five acknowledged writes of table w, one record each, then kill -9.
    for t in 1..=5 {
        let (status, body) = server
            .post("/write?db=sundial", format!("w v={t} {t}\n"))
            .await;
        assert_eq!(status, 204, "{body}");
    }
    server.kill();

    // Flip a bit in the second WAL record's payload.
    let wal = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let second = 8 + 8 + first_len;
    bytes[second + 8 + 5] ^= 0x10;
    std::fs::write(&wal, &bytes).unwrap();
    // Flip a bit in the first segment's first block; cut the second segment short.
    let segs = segment_files(&data.join("dbs"));
    assert_eq!(segs.len(), 3, "{segs:?}");
    let mut seg = std::fs::read(&segs[0]).unwrap();
    seg[10] ^= 0x01;
    std::fs::write(&segs[0], &seg).unwrap();
    let len = std::fs::metadata(&segs[1]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[1])
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let server = TestServer::start(&data, &[]);
    let pg = server.pg("sundial").await;
    let values = async |sql: &str| -> Vec<f64> {
        let rows = pg.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, f64>(0)).collect()
    };
    assert_eq!(
        values("SELECT v FROM w ORDER BY time").await,
        [1.0, 3.0, 4.0, 5.0],
        "the records after the damage replay"
    );
    assert_eq!(
        values("SELECT v FROM s ORDER BY time").await,
        [3.0],
        "only the intact segment is served"
    );
    let listed = pg
        .query(
            "SELECT source, reason FROM system.quarantine ORDER BY source",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let text: Vec<String> = listed
        .iter()
        .map(|r| format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(text.iter().any(|t| t.contains(".wal at byte")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("checksum")), "{text:?}");
    assert_eq!(server.metric("sundial_quarantined_files").await, Some(3.0));
    assert_eq!(segment_files(&data.join("dbs")).len(), 1);
    assert_eq!(
        std::fs::read_dir(data.join("quarantine")).unwrap().count(),
        3
    );
    // Writing on works, and the quarantine survives a restart.
    let (status, _) = server.post("/write?db=sundial", "s,k=a v=4 4\n").await;
    assert_eq!(status, 204);
    drop(pg);
    let server = server.restart();
    let pg = server.pg("sundial").await;
    assert_eq!(count(&pg, "SELECT count(*) FROM s").await, 2);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM system.quarantine").await,
        3
    );
}

/// Write buffers have a ceiling: while a table cannot flush, its rows stay buffered, and
/// once they pass `max_buffer_bytes` writes get 503 with `Retry-After` (never an
/// out-of-memory kill); when flushing works again, writes resume by themselves.
#[tokio::test]
async fn full_write_buffers_answer_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let blocker = data.join("dbs/sundial/bad").join(format!("p{DAY}"));
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let server = TestServer::in_process(&data, |c| {
        c.storage.max_buffer_bytes = 16 << 10;
        c.storage.flush_interval = sundial::duration::Duration::from_secs(1);
    });
    let t = DAY + 3_600_000_000_000;
    let lines: String = (0..5000)
        .map(|i| {
            format!(
                "bad,host=h{} msg=\"some text of a log line\" {}\n",
                i % 50,
                t + i
            )
        })
        .collect();
    let (status, body) = server.post("/write?db=sundial", lines).await;
    assert_eq!(status, 204, "{body}");
    let http = reqwest::Client::new();
    let write = || async {
        http.post(server.url("/write?db=sundial"))
            .body(format!("good v=1 {t}\n"))
            .send()
            .await
            .unwrap()
    };
    let pg = server.pg("sundial").await;
    crate::harness::eventually(
        &pg,
        "SELECT count(*) FROM system.unflushed_tables WHERE failures > 0",
        |v| v == "1",
    )
    .await;
    let refused = write().await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let text = refused.text().await.unwrap();
    assert!(text.contains("max_buffer_bytes"), "{text}");
    // Nothing acknowledged was dropped, and queries still answer.
    assert_eq!(count(&pg, "SELECT count(*) FROM bad").await, 5000);
    std::fs::remove_file(&blocker).unwrap();
    crate::harness::until("writes to resume", 30, async || {
        write().await.status() == 204
    })
    .await;
    assert_eq!(count(&pg, "SELECT count(*) FROM bad").await, 5000);
    assert_eq!(count(&pg, "SELECT count(*) FROM good").await, 1);
}

/// A size-limited tmpfs, mounted for one test (the tests run as root) and lazily
/// unmounted when dropped, also when the test fails.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the CI runs as root)"
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// On a full disk writes are refused with 507 and a message saying so, the server stays
/// up and serves what it has, and writing resumes by itself once space returns; every
/// acknowledged write survives `kill -9`.
#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), "6m");
    let data = disk.0.join("data");
    let cfg = dir.path().join("sundial.toml");
    std::fs::write(
        &cfg,
        "[storage]\nflush_interval = \"200ms\"\nflush_threshold_bytes = 262144\n",
    )
    .unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let server = TestServer::start(&data, &args);
    // Leave little room: a ballast file takes most of the disk.
    let ballast = disk.0.join("ballast");
    std::fs::write(&ballast, vec![7u8; 4 << 20]).unwrap();

    // Strings that do not compress, so segments fill the disk as the WAL does.
    let noise = |b: usize, i: i64| -> String {
        let mut x = (b as u64) << 32 | i as u64 | 1;
        (0..5)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect()
    };
    let batch = |b: usize| -> String {
        (0..500)
            .map(|i| format!("m,b={b} v={i}i,pad=\"{}\" {}\n", noise(b, i), DAY + i))
            .collect()
    };
    let mut acked = Vec::new();
    let mut refused = None;
    for b in 0..400 {
        let (status, body) = server.post("/write?db=sundial", batch(b)).await;
        match status {
            204 => acked.push(b),
            507 => {
                refused = Some(body);
                break;
            }
            other => panic!("batch {b}: {other} {body}"),
        }
    }
    let refused = refused.expect("the disk never filled");
    assert!(refused.contains("53100"), "{refused}");
    assert!(
        refused.to_lowercase().contains("space") || refused.contains("full"),
        "{refused}"
    );
    assert!(!acked.is_empty());
    // Still full: still refused, and reads go on.
    let (status, body) = server.post("/write?db=sundial", batch(1000)).await;
    assert_eq!(status, 507, "{body}");
    let pg = server.pg("sundial").await;
    assert_eq!(
        count(&pg, "SELECT count(DISTINCT b) FROM m").await,
        acked.len() as i64
    );

    // Space returns: the next write is stored, with no restart or operator action.
    std::fs::remove_file(&ballast).unwrap();
    crate::harness::until("writes to resume", 30, async || {
        server.post("/write?db=sundial", batch(2000)).await.0 == 204
    })
    .await;
    acked.push(2000);

    let server = server.crash_and_restart();
    let pg = server.pg("sundial").await;
    let stored: std::collections::HashMap<String, i64> = pg
        .query("SELECT b, count(*) FROM m GROUP BY b", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for b in &acked {
        assert_eq!(
            stored.get(&b.to_string()),
            Some(&500),
            "acknowledged batch {b}"
        );
    }
    drop(server);
}
