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

/// Over segment files, the TSBS query shapes answer as a full read would, and read less:
/// `DISTINCT ON (tags) … ORDER BY tags, time DESC` takes each series' newest row (the plan
/// says so), and a value condition skips the blocks whose statistics rule it out.
#[tokio::test]
async fn segment_reads_skip_what_queries_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    // Four hosts; host h3's values stay below 50, the others reach 90+.
    let body: String = (0..400)
        .map(|i| {
            let host = i % 4;
            let v = if host == 3 { i % 50 } else { i % 100 };
            format!(
                "cpu,host=h{host},dc=d{} v={v}i,w={i} {}\n",
                host % 2,
                1_000 + i
            )
        })
        .collect();
    let (status, text) = server.post("/write?db=sundial&precision=s", body).await;
    assert_eq!(status, 204, "{text}");
    let server = server.restart(); // flushed to segments on the way down
    let c = server.pg("sundial").await;
    let lastpoint = "SELECT DISTINCT ON (host) host, v, w FROM cpu ORDER BY host, time DESC";
    let plan: Vec<String> = c
        .simple_query(&format!("EXPLAIN {lastpoint}"))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("newest row per series")),
        "{plan:?}"
    );
    let rows = c.query(lastpoint, &[]).await.unwrap();
    let got: Vec<(String, i64, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want: Vec<(String, i64, f64)> = (396..400)
        .map(|i| {
            let host = i % 4;
            let v = if host == 3 { i % 50 } else { i % 100 };
            (format!("h{host}"), v as i64, i as f64)
        })
        .collect();
    assert_eq!(got, want);
    // A value condition: h3's block cannot hold v > 90 and is not read.
    let skipped = || async {
        server
            .metric("sundial_blocks_skipped_total")
            .await
            .unwrap_or(0.0)
    };
    let before = skipped().await;
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE v > 90.0").await,
        24
    );
    assert!(skipped().await > before, "h3's block skipped");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM cpu WHERE v > 90.0 AND host = 'h3'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM cpu WHERE w >= 396").await,
        4
    );
}
