//! With a tiny flush threshold, data really goes through segment files: the WAL is
//! truncated, and after `kill -9` the rows are read back from segments.

use std::path::Path;

use crate::harness::{TestServer, count};

fn segment_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.join("dbs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                n += 1;
            }
        }
    }
    n
}

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn tiny_flush_threshold_goes_through_segments() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--flush-threshold-bytes", "4096"]);
    let mut total = 0;
    for batch in 0..10 {
        let body: String = (0..100)
            .map(|i| {
                format!(
                    "cpu,host=h{} v={}i {}\n",
                    i % 7,
                    i,
                    (batch * 100 + i) * 1_000_000_000i64
                )
            })
            .collect();
        let (s, text) = server.post("/write?db=d", body).await;
        assert_eq!(s, 204, "{text}");
        total += 100;
    }
    // Wait for the flusher (it runs as soon as the threshold is crossed).
    crate::harness::until("a segment and a truncated WAL", 10, async || {
        segment_files(dir.path()) >= 1 && wal_bytes(dir.path()) < 4096
    })
    .await;
    let c = server.pg("d").await;
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, total);
    let wal_before = wal_bytes(dir.path());

    let server = server.crash_and_restart();
    assert!(wal_before < 4096);
    let c = server.pg("d").await;
    assert_eq!(count(&c, "SELECT count(*) FROM cpu").await, total);
    assert_eq!(
        count(&c, "SELECT sum(v) FROM cpu").await,
        10 * (0..100).sum::<i64>()
    );
    // Time-range queries answer from the right segments.
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE time >= '1970-01-01T00:05:00Z' AND time < '1970-01-01T00:10:00Z'").await,
        300
    );
}
