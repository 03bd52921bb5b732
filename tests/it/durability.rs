//! Acknowledged means durable: every write answered 204 survives `kill -9`, even when the
//! server is killed while other writes are in flight.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::TestServer;

/// Which requests were acknowledged.
#[derive(Default)]
struct AckLog(std::sync::Mutex<Vec<u32>>);

/// Rows stored per request (`m`'s `req` tag), checking that each acknowledged request
/// has all its `rows`.
async fn stored_requests(
    c: &tokio_postgres::Client,
    acked: &[u32],
    rows: i64,
) -> std::collections::HashMap<String, i64> {
    let stored: std::collections::HashMap<String, i64> = c
        .query("SELECT req, count(*) FROM m GROUP BY req", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    for req in acked {
        assert_eq!(
            stored.get(&req.to_string()),
            Some(&rows),
            "acknowledged request {req} lost"
        );
    }
    stored
}

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9_mid_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let url = server.url("/write?db=dur");
    let acked = Arc::new(AckLog::default());
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let url = url.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..10_000u32 {
                let req = w * 10_000 + i;
                let body: String = (0..100)
                    .map(|p| format!("m,req={req} v={p}i {p}\n"))
                    .collect();
                match client.post(&url).body(body).send().await {
                    Ok(r) if r.status().as_u16() == 204 => acked.0.lock().unwrap().push(req),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let writes flow, then kill the server while requests are in flight.
    crate::harness::until("writes to flow", 30, async || {
        acked.0.lock().unwrap().len() >= 200
    })
    .await;
    let server = server.crash_and_restart();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.0.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    let c = server.pg("dur").await;
    let stored = stored_requests(&c, &acked, 100).await;
    // A request is one WAL record: it is stored whole or not at all.
    assert!(stored.values().all(|n| *n == 100));
}

/// SIGTERM while writers and queries run: the server stops accepting, finishes what is in
/// flight, stops its background work and flushes, all within its shutdown deadline; every
/// write it acknowledged is there when it starts again.
#[tokio::test]
async fn sigterm_under_load_exits_in_time_and_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &["--shutdown-timeout", "5s"]);
    let url = server.url("/write?db=term");
    // The database exists before the readers connect to it.
    assert_eq!(
        server.post("/write?db=term", "m,req=init v=0i 0\n").await.0,
        204
    );
    let acked = Arc::new(AckLog::default());
    let mut load = Vec::new();
    for w in 0..2u32 {
        let (url, acked) = (url.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..100_000u32 {
                let req = w * 100_000 + i;
                let body: String = (0..50)
                    .map(|p| format!("m,req={req} v={p}i {p}\n"))
                    .collect();
                match client.post(&url).body(body).send().await {
                    Ok(r) if r.status().as_u16() == 204 => acked.0.lock().unwrap().push(req),
                    // Refused or cut off by the shutdown: not acknowledged.
                    _ => return,
                }
            }
        }));
    }
    for _ in 0..2 {
        let pg = server.pg("term").await;
        load.push(tokio::spawn(async move {
            while pg
                .simple_query("SELECT count(*), max(v) FROM m")
                .await
                .is_ok()
            {}
        }));
    }
    crate::harness::until("writes to flow", 30, async || {
        acked.0.lock().unwrap().len() >= 100
    })
    .await;
    let data = server.data_dir.clone();
    let (status, took) = server.stop();
    assert!(status.success(), "exit status {status}");
    // The deadline bounds the waits for tasks; the final flush comes on top (a margin
    // for a loaded two-core machine).
    assert!(took < Duration::from_secs(5 + 15), "shutdown took {took:?}");
    for task in load {
        task.await.unwrap();
    }
    let acked = acked.0.lock().unwrap().clone();
    let server = TestServer::start(&data, &[]);
    let c = server.pg("term").await;
    stored_requests(&c, &acked, 50).await;
}

/// A crash mid-append leaves a torn record at the end of the WAL: the server starts, cuts
/// the tail at the last good record and serves every acknowledged write.
#[tokio::test]
async fn torn_wal_tail_is_cut_on_restart() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    for i in 0..5 {
        let (s, _) = server
            .post("/write?db=t", format!("m,k=v x={i}i {i}\n"))
            .await;
        assert_eq!(s, 204);
    }
    server.kill();
    // Tear the newest WAL file's tail: a record header promising more bytes than exist.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let last = files.last().unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(&[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(f);
    let server = TestServer::start(dir.path(), &[]);
    let c = server.pg("t").await;
    let row = c
        .query_one("SELECT count(*), sum(x) FROM m", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    assert_eq!(row.get::<_, i64>(1), 10);
    // And it keeps accepting writes after the cut.
    assert_eq!(server.post("/write?db=t", "m,k=v x=5i 5\n").await.0, 204);
    let server = server.crash_and_restart();
    let c = server.pg("t").await;
    assert_eq!(
        c.query_one("SELECT count(*) FROM m", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        6
    );
}
