//! The crash loop: writers, a deleter and retention run against a server that flushes,
//! rotates its WAL and compacts several times a second, and the server is killed with
//! SIGKILL at a random moment, again and again. After each restart every acknowledged
//! batch is there exactly once, every request is there whole or not at all, nothing an
//! acknowledged `DELETE` removed comes back, and what a restart showed stays so.
//!
//! `SUNDIAL_CRASH_CYCLES` sets the number of cycles (20 by default; the long mode in the
//! README runs 200), `SUNDIAL_CRASH_SEED` replays a run (the seed is printed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::TestServer;

/// Points per request: a batch is the request's unit, `seq / BATCH` its number.
const BATCH: u64 = 200;
/// 2026-01-01T00:00:00Z: point `seq` of a writer is at `BASE + seq` seconds.
const BASE: i64 = 1_767_225_600;

/// What the test knows of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Answered 204, or seen whole after a restart: must be there, whole, once.
    Stored,
    /// Sent, not answered: whole or absent after the next restart.
    Unknown,
    /// Absent after a restart although sent: must stay absent.
    Absent,
    /// A `DELETE` of it was sent and not answered: whole or absent after the restart.
    DeleteUnknown,
    /// A `DELETE` of it was answered: must stay absent.
    Deleted,
}

/// Batches by (database, writer, batch number).
type Ledger = Arc<Mutex<HashMap<(&'static str, &'static str, u64), Known>>>;

/// xorshift64*: the loop's only randomness, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The body of batch `b` of `writer`. In `ret` (millisecond precision) even batches are
/// three days old, past its TTL, and odd ones two hours old; points of one series never
/// share a timestamp.
fn body(db: &str, writer: &str, b: u64) -> String {
    let time = |seq: u64| -> i64 {
        if db != "ret" {
            return BASE + seq as i64;
        }
        let age_ms = if b.is_multiple_of(2) {
            3 * 86_400_000
        } else {
            7_200_000
        };
        chrono::Utc::now().timestamp_millis() - age_ms + seq as i64
    };
    (b * BATCH..(b + 1) * BATCH)
        .map(|seq| format!("m,w={writer} seq={seq}i {}\n", time(seq)))
        .collect()
}

/// Writes batches until `stop`, noting each in the ledger before it is sent.
async fn writer(
    url: String,
    db: &'static str,
    name: &'static str,
    next: Arc<Mutex<HashMap<&'static str, u64>>>,
    ledger: Ledger,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        let b = {
            let mut next = next.lock().unwrap();
            let b = next.entry(name).or_insert(0);
            *b += 1;
            *b - 1
        };
        ledger.lock().unwrap().insert((db, name, b), Known::Unknown);
        let sent = client.post(&url).body(body(db, name, b)).send().await;
        match sent {
            Ok(r) if r.status().as_u16() == 204 => {
                ledger.lock().unwrap().insert((db, name, b), Known::Stored);
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                // Only a server going away may stop a write: anything else is a bug.
                assert!(
                    status.is_server_error(),
                    "batch {name}/{b}: unexpected {status}: {text}"
                );
                return;
            }
            Err(_) => return, // killed mid-request
        }
    }
}

/// Deletes random stored batches of writer `d` until `stop`.
async fn deleter(pg: tokio_postgres::Client, ledger: Ledger, seed: u64, stop: Arc<AtomicBool>) {
    let mut rng = Rng(seed | 1);
    while !stop.load(Ordering::SeqCst) {
        let candidates: Vec<u64> = ledger
            .lock()
            .unwrap()
            .iter()
            .filter(|((db, w, _), k)| *db == "sundial" && *w == "d" && **k == Known::Stored)
            .map(|((_, _, b), _)| *b)
            .collect();
        if candidates.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let b = candidates[rng.below(candidates.len() as u64) as usize];
        let from = BASE + (b * BATCH) as i64;
        let sql = format!(
            "DELETE FROM m WHERE w = 'd' AND time >= '{}' AND time < '{}'",
            rfc3339(from),
            rfc3339(from + BATCH as i64)
        );
        ledger
            .lock()
            .unwrap()
            .insert(("sundial", "d", b), Known::DeleteUnknown);
        match pg.simple_query(&sql).await {
            Ok(_) => {
                ledger
                    .lock()
                    .unwrap()
                    .insert(("sundial", "d", b), Known::Deleted);
            }
            Err(e) if e.is_closed() || e.code().is_none() => return,
            Err(e) => panic!("{sql}: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
    }
}

/// Rows and distinct points per batch of `db`.m, by (writer, batch).
async fn stored(pg: &tokio_postgres::Client) -> HashMap<(String, u64), (i64, i64)> {
    pg.query(
        "SELECT w, seq / 200 AS b, count(*), count(DISTINCT seq) FROM m GROUP BY 1, 2",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            (r.get::<_, String>(0), r.get::<_, i64>(1) as u64),
            (r.get::<_, i64>(2), r.get::<_, i64>(3)),
        )
    })
    .collect()
}

/// Checks the ledger against what the restarted server holds, and resolves what was
/// unknown to what the restart showed.
async fn check(server: &TestServer, ledger: &Ledger, cycle: usize, seed: u64) {
    let mut found = HashMap::new();
    for db in ["sundial", "ret"] {
        let pg = server.pg(db).await;
        let exists = pg
            .query(
                "SELECT 1 FROM information_schema.tables WHERE table_name = 'm'",
                &[],
            )
            .await
            .unwrap();
        if exists.is_empty() {
            continue;
        }
        for ((w, b), n) in stored(&pg).await {
            found.insert((db, w, b), n);
        }
    }
    let mut ledger = ledger.lock().unwrap();
    for ((db, w, b), known) in ledger.iter_mut() {
        let (rows, distinct) = found.remove(&(*db, w.to_string(), *b)).unwrap_or((0, 0));
        let at = format!("cycle {cycle} (seed {seed}): {db}.m w={w} batch {b} ({known:?})");
        assert_eq!(rows, distinct, "{at}: a point stored twice");
        // Retention hides the old half of `ret` at once.
        let expired = *db == "ret" && b.is_multiple_of(2);
        let whole = if expired { 0 } else { BATCH as i64 };
        assert!(rows == 0 || rows == whole, "{at}: {rows} of {BATCH} rows");
        *known = match (*known, rows > 0) {
            (Known::Stored, false) if !expired => panic!("{at}: acknowledged batch lost"),
            (Known::Stored, _) => Known::Stored,
            (Known::Unknown, true) => Known::Stored,
            (Known::Unknown, false) if expired => Known::Stored,
            (Known::Unknown, false) => Known::Absent,
            (Known::Absent, true) => panic!("{at}: a batch absent after a restart came back"),
            (Known::Absent, false) => Known::Absent,
            (Known::DeleteUnknown, true) => Known::Stored,
            (Known::DeleteUnknown, false) => Known::Deleted,
            (Known::Deleted, true) => panic!("{at}: deleted rows came back"),
            (Known::Deleted, false) => Known::Deleted,
        };
    }
    assert!(
        found.is_empty(),
        "cycle {cycle}: rows nobody wrote: {found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_and_deletes_survive_random_kill_9() {
    let cycles: usize = std::env::var("SUNDIAL_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("SUNDIAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash loop: {cycles} cycles, SUNDIAL_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sundial.toml");
    // Flush, rotate the WAL, compact and enforce retention several times a second.
    std::fs::write(
        &config,
        "[storage]\nflush_threshold_bytes = 65536\nflush_interval = \"150ms\"\n\
         compaction_min_segments = 2\npartition_width = \"1h\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let extra = ["--config", config.to_str().unwrap()];
    let mut server = TestServer::start(&data, &extra);
    server
        .pg("sundial")
        .await
        .simple_query("CREATE DATABASE ret WITH (ttl = '1 day')")
        .await
        .unwrap();
    let ledger: Ledger = Arc::default();
    let next = Arc::new(Mutex::new(HashMap::new()));
    let mut rows_checked = 0;
    let started = std::time::Instant::now();
    for cycle in 1..=cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (db, name) in [
            ("sundial", "a"),
            ("sundial", "b"),
            ("sundial", "d"),
            ("ret", "r"),
        ] {
            let precision = if db == "ret" { "ms" } else { "s" };
            let url = server.url(&format!("/write?db={db}&precision={precision}"));
            tasks.push(tokio::spawn(writer(
                url,
                db,
                name,
                next.clone(),
                ledger.clone(),
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(deleter(
            server.pg("sundial").await,
            ledger.clone(),
            rng.next(),
            stop.clone(),
        )));
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1400))).await;
        // Kill while requests are in flight: no new ones start, the sent ones are cut.
        stop.store(true, Ordering::SeqCst);
        server.kill();
        for task in tasks {
            task.await.unwrap();
        }
        server = TestServer::start(&data, &extra);
        check(&server, &ledger, cycle, seed).await;
        rows_checked = ledger.lock().unwrap().len();
        if cycle % 10 == 0 {
            eprintln!(
                "crash loop: {cycle} cycles in {:.0?}, {rows_checked} batches checked",
                started.elapsed()
            );
        }
    }
    let ledger = ledger.lock().unwrap();
    let stored = ledger.values().filter(|k| **k == Known::Stored).count();
    let deleted = ledger.values().filter(|k| **k == Known::Deleted).count();
    eprintln!(
        "crash loop: {cycles} cycles survived; {rows_checked} batches checked, \
         {stored} stored, {deleted} deleted"
    );
    assert!(
        stored > cycles,
        "the writers barely wrote: {stored} batches"
    );
    assert!(deleted > 0, "nothing was deleted");
}
