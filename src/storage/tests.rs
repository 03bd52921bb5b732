//! Engine-level tests: durability across reopen, flush to segments, merge rules.

use super::*;

fn point(table: &str, host: &str, t: i64, fields: Vec<(&str, Value)>) -> Point {
    Point {
        table: table.into(),
        tags: vec![("host".into(), host.into())],
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        time: t,
    }
}

const OPTS: WriteOptions = WriteOptions {
    accept_partial: true,
    sync: true,
};

fn request(range: TimeRange, fields: Vec<(String, FieldType)>) -> ScanRequest {
    ScanRequest {
        range,
        tags: Vec::new(),
        fields,
    }
}

fn count(engine: &Engine, db: &str, table: &str) -> usize {
    let t = engine.database(db).unwrap().table(table).unwrap();
    let fields = t.schema().fields.clone();
    t.scan(&request(TimeRange::ALL, fields), engine.stats())
        .unwrap()
        .rows
        .len()
}

#[tokio::test]
async fn writes_survive_reopen_from_wal_and_from_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let pts = (0..100)
        .map(|i| point("cpu", "a", i, vec![("v", Value::Float(i as f64))]))
        .collect();
    let out = e.write("db1", pts, OPTS).await.unwrap();
    assert_eq!(out.stored, 100);
    assert_eq!(count(&e, "db1", "cpu"), 100);
    drop(e); // no shutdown: like a crash, the WAL must carry the data
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&e, "db1", "cpu"), 100);
    e.flush().unwrap();
    assert!(
        wal::list(&dir.path().join("wal"))
            .unwrap()
            .iter()
            .all(|id| {
                std::fs::metadata(dir.path().join("wal").join(wal::file_name(*id)))
                    .unwrap()
                    .len()
                    <= 8
            })
    );
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&e, "db1", "cpu"), 100);
    assert!(e.database_names().contains(&DEFAULT_DATABASE.to_string()));
}

#[tokio::test]
async fn same_point_merges_across_segment_and_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    e.write(
        "d",
        vec![point(
            "m",
            "a",
            5,
            vec![("x", Value::Integer(1)), ("y", Value::Integer(1))],
        )],
        OPTS,
    )
    .await
    .unwrap();
    e.flush().unwrap();
    e.write(
        "d",
        vec![point("m", "a", 5, vec![("y", Value::Integer(2))])],
        OPTS,
    )
    .await
    .unwrap();
    let t = e.database("d").unwrap().table("m").unwrap();
    let fields = vec![
        ("x".to_string(), FieldType::Integer),
        ("y".to_string(), FieldType::Integer),
    ];
    let rows = t
        .scan(&request(TimeRange::ALL, fields), e.stats())
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.columns[0], rows::Column::Integer(vec![Some(1)]));
    assert_eq!(rows.columns[1], rows::Column::Integer(vec![Some(2)]));
}

#[tokio::test]
async fn type_conflicts_are_rejected_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let pts = vec![
        point("m", "a", 1, vec![("x", Value::Integer(1))]),
        point("m", "a", 2, vec![("x", Value::Float(1.0))]),
    ];
    let out = e.write("d", pts.clone(), OPTS).await.unwrap();
    assert_eq!(out.stored, 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    let strict = WriteOptions {
        accept_partial: false,
        sync: true,
    };
    let out = e
        .write("d", vec![pts[0].clone(), pts[1].clone()], strict)
        .await
        .unwrap();
    assert_eq!(out.stored, 0);
    assert_eq!(count(&e, "d", "m"), 1);
}

#[tokio::test]
async fn time_pruning_skips_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    for chunk in 0..3i64 {
        let pts = (0..10)
            .map(|i| point("m", "a", chunk * 1000 + i, vec![("v", Value::Float(1.0))]))
            .collect();
        e.write("d", pts, OPTS).await.unwrap();
        e.flush().unwrap();
    }
    let t = e.database("d").unwrap().table("m").unwrap();
    let before = e.stats().segments_read.load(Ordering::Relaxed);
    let fields = vec![("v".to_string(), FieldType::Float)];
    let rows = t
        .scan(
            &request(
                TimeRange {
                    min: 1000,
                    max: 1999,
                },
                fields,
            ),
            e.stats(),
        )
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 10);
    assert_eq!(e.stats().segments_read.load(Ordering::Relaxed) - before, 1);
}

fn segment_paths(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn all_rows(e: &Engine) -> Vec<(u32, i64, Option<f64>, Option<i64>)> {
    let t = e.database("d").unwrap().table("m").unwrap();
    let fields = vec![
        ("x".to_string(), FieldType::Float),
        ("y".to_string(), FieldType::Integer),
    ];
    let out = t.scan(&request(TimeRange::ALL, fields), e.stats()).unwrap();
    let mut rows: Vec<_> = (0..out.rows.len())
        .map(|i| {
            let x = match &out.rows.columns[0] {
                rows::Column::Float(v) => v[i],
                _ => unreachable!(),
            };
            let y = match &out.rows.columns[1] {
                rows::Column::Integer(v) => v[i],
                _ => unreachable!(),
            };
            (out.rows.series[i], out.rows.time[i], x, y)
        })
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rows
}

/// Four overlapping flushes (re-writes, field merges, out-of-order points, two days),
/// compacted: the same rows before and after, one segment per partition, and the same
/// again after a reopen.
#[tokio::test]
async fn compaction_merges_overlapping_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let day = 86_400_000_000_000i64;
    for round in 0..4i64 {
        let mut pts = Vec::new();
        for i in 0..50i64 {
            let t = (i * 7 + round * 3) % 100 * 1_000_000_000 + (i % 2) * day;
            let fields = if round % 2 == 0 {
                vec![("x", Value::Float((round * 100 + i) as f64))]
            } else {
                vec![("y", Value::Integer(round * 100 + i))]
            };
            pts.push(point("m", &format!("h{}", i % 3), t, fields));
        }
        e.write("d", pts, OPTS).await.unwrap();
        e.flush().unwrap();
    }
    let before = all_rows(&e);
    assert_eq!(segment_paths(dir.path()).len(), 8);
    assert_eq!(e.compact(2).unwrap(), 2);
    assert_eq!(all_rows(&e), before);
    assert_eq!(
        segment_paths(dir.path()).len(),
        2,
        "inputs deleted, one output per day"
    );
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(all_rows(&e), before);
    // A later write still wins over compacted data.
    e.write(
        "d",
        vec![point("m", "h0", 0, vec![("y", Value::Integer(-1))])],
        OPTS,
    )
    .await
    .unwrap();
    let after = all_rows(&e);
    assert!(after.iter().any(|r| r.1 == 0 && r.3 == Some(-1)));
    assert_eq!(after.len(), before.len());
}

/// A crash after the compaction output is durable but before the inputs are deleted:
/// on open the inputs are dropped, so nothing is duplicated or lost.
#[tokio::test]
async fn crash_mid_compaction_leaves_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    for round in 0..3i64 {
        let pts = (0..20)
            .map(|i| {
                point(
                    "m",
                    "a",
                    i + round * 10,
                    vec![("x", Value::Float(round as f64))],
                )
            })
            .collect();
        e.write("d", pts, OPTS).await.unwrap();
        e.flush().unwrap();
    }
    let before = all_rows(&e);
    let inputs: Vec<(std::path::PathBuf, Vec<u8>)> = segment_paths(dir.path())
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert_eq!(inputs.len(), 3);
    // A query snapshot taken before the compaction keeps its files readable.
    let held = e
        .database("d")
        .unwrap()
        .table("m")
        .unwrap()
        .state
        .read()
        .segments[0]
        .clone();
    e.compact(2).unwrap();
    assert!(held.path.exists(), "a reader still holds the input");
    let mut rows = rows::Rows::new(&[FieldType::Float]);
    held.read_series(
        &held.file().unwrap(),
        0,
        TimeRange::ALL,
        &[("x".into(), FieldType::Float)],
        &mut rows,
    )
    .unwrap();
    assert_eq!(rows.len(), 20);
    let held_path = held.path.clone();
    drop(held);
    assert!(!held_path.exists(), "deleted once the last reader is done");
    drop(e);
    // Put the inputs back, as if the process died before deleting them.
    for (p, data) in &inputs {
        std::fs::write(p, data).unwrap();
    }
    assert_eq!(segment_paths(dir.path()).len(), 4);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(all_rows(&e), before);
    assert_eq!(segment_paths(dir.path()).len(), 1);
}

/// A crash during a flush: segments were written (maybe only some, maybe a `.tmp` left
/// behind) but the checkpoint was not recorded, so the WAL is replayed over them. Nothing
/// is lost and nothing is counted twice.
#[tokio::test]
async fn crash_during_flush_replays_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let pts = (0..100)
        .map(|i| {
            point(
                "m",
                &format!("h{}", i % 4),
                i,
                vec![("x", Value::Float(i as f64))],
            )
        })
        .collect();
    e.write("d", pts, OPTS).await.unwrap();
    let before = all_rows(&e);
    // Save the WAL and checkpoint as they were before the flush.
    let wal_dir = dir.path().join("wal");
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|f| {
            let p = f.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    e.flush().unwrap();
    drop(e);
    // Undo the checkpoint and WAL truncation, and leave a half-written segment around.
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    for (p, data) in &saved {
        std::fs::write(p, data).unwrap();
    }
    let seg = &segment_paths(dir.path())[0];
    std::fs::write(seg.with_extension("tmp"), b"partial").unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(all_rows(&e), before);
    assert!(
        !seg.with_extension("tmp").exists(),
        "leftover temp files are removed"
    );
    // And once more through a flush and a compaction of the duplicate rows.
    e.flush().unwrap();
    e.compact(2).unwrap();
    assert_eq!(all_rows(&e), before);
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(all_rows(&e), before);
}

/// Prepared samples land like points: the same rows, in the WAL (replayed after a crash)
/// and across a table dropped and created again (the cached series id is not reused);
/// samples that do not fit the schema are rejected one by one.
#[tokio::test]
async fn prepared_samples_are_points() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let series: Vec<Arc<PreparedSeries>> = ["a", "b"]
        .iter()
        .map(|h| {
            Arc::new(
                PreparedSeries::new(vec![
                    ("job".into(), "j".into()),
                    ("host".into(), h.to_string()),
                ])
                .unwrap(),
            )
        })
        .collect();
    assert_eq!(series[0].tags()[0].0, "host", "tags sorted");
    let batch = |t0: i64| TableSamples {
        table: "m".into(),
        field: "value".into(),
        samples: (0..10)
            .flat_map(|i| series.iter().map(move |s| (s.clone(), t0 + i, i as f64)))
            .collect(),
    };
    let out = e.write_samples("d", vec![batch(0)], true).await.unwrap();
    assert_eq!((out.stored, out.rejected.len()), (20, 0));
    // Points written to the same table find the same series.
    e.write(
        "d",
        vec![point("m", "a", 100, vec![("value", Value::Float(1.0))])],
        OPTS,
    )
    .await
    .unwrap();
    let t = e.database("d").unwrap().table("m").unwrap();
    assert_eq!(
        t.state.read().registry.keys().len(),
        3,
        "host=a,job=j / b / host=a"
    );
    drop(e); // a crash: the WAL carries the samples
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&e, "d", "m"), 21);
    // The series were registered by the old engine's table: ids are looked up again.
    e.write_samples("d", vec![batch(1000)], true).await.unwrap();
    assert_eq!(count(&e, "d", "m"), 41);
    // A second record of the same series carries only their WAL numbers; it replays too.
    e.write_samples("d", vec![batch(2000)], true).await.unwrap();
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&e, "d", "m"), 61);

    // `value` as a tag, and a tag key that is a field, are rejected.
    e.write(
        "d",
        vec![Point {
            table: "n".into(),
            tags: vec![("value".into(), "x".into())],
            fields: vec![("host".into(), Value::Float(1.0))],
            time: 1,
        }],
        OPTS,
    )
    .await
    .unwrap();
    let bad = TableSamples {
        table: "n".into(),
        ..batch(0)
    };
    let out = e
        .write_samples("d", vec![batch(2000), bad], true)
        .await
        .unwrap();
    assert_eq!(out.stored, 20);
    assert_eq!(out.rejected.len(), 20);
    assert_eq!(out.rejected[0].0, 20);
    assert!(matches!(out.rejected[0].1, SchemaError::FieldIsTag(_)));
    assert!(PreparedSeries::new(vec![("time".into(), "x".into())]).is_err());
}

/// Tiered compaction: four flushes make one generation-1 segment; three more are left
/// alone (a run shorter than the minimum); the fourth makes a second generation-1
/// segment, and four of those one generation-2 segment. Rows rewritten by later flushes
/// keep the newest value through every step and a reopen.
#[tokio::test]
async fn compaction_is_tiered_and_keeps_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let mut flushes = 0i64;
    let mut flush = async |e: &Engine| {
        flushes += 1;
        // Time 0 (host a only) is rewritten by every flush; host b gets a new point.
        let pts = vec![
            point("m", "a", 0, vec![("x", Value::Float(flushes as f64))]),
            point("m", "b", flushes, vec![("x", Value::Float(flushes as f64))]),
        ];
        e.write("d", pts, OPTS).await.unwrap();
        e.flush().unwrap();
    };
    let generations = |dir: &std::path::Path| {
        let mut g: Vec<u32> = segment_paths(dir)
            .iter()
            .filter_map(|p| segment::parse_file_name(&p.file_name()?.to_string_lossy()))
            .map(|(_, g)| g)
            .collect();
        g.sort();
        g
    };
    let newest = |e: &Engine| all_rows(e).into_iter().find(|r| r.1 == 0).and_then(|r| r.2);
    for _ in 0..4 {
        flush(&e).await;
    }
    assert_eq!(e.compact(4).unwrap(), 1);
    assert_eq!(generations(dir.path()), vec![1]);
    for _ in 0..3 {
        flush(&e).await;
    }
    assert_eq!(e.compact(4).unwrap(), 0, "three generation-0 segments wait");
    assert_eq!(generations(dir.path()), vec![0, 0, 0, 1]);
    assert_eq!(newest(&e), Some(7.0));
    flush(&e).await;
    assert_eq!(e.compact(4).unwrap(), 1);
    assert_eq!(generations(dir.path()), vec![1, 1]);
    assert_eq!(newest(&e), Some(8.0));
    for _ in 0..8 {
        flush(&e).await;
        e.compact(4).unwrap();
    }
    assert_eq!(generations(dir.path()), vec![1, 1, 1, 1]);
    assert_eq!(e.compact(4).unwrap(), 1);
    assert_eq!(generations(dir.path()), vec![2]);
    assert_eq!(newest(&e), Some(16.0));
    assert_eq!(all_rows(&e).len(), 17);
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(newest(&e), Some(16.0));
    assert_eq!(all_rows(&e).len(), 17);
}

/// A write is acknowledged only after its fsync: a failing sync (ENOSPC here, through the
/// sync hook) refuses the write with a disk-full error and it is not stored; the WAL moves
/// to a new file and later writes are acknowledged and survive a reopen, the refused one
/// nowhere.
#[tokio::test]
async fn failed_fsync_is_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let syncs = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicBool::new(false));
    let (s, f) = (syncs.clone(), fail.clone());
    engine.set_sync_hook(Some(Arc::new(move || {
        s.fetch_add(1, Ordering::SeqCst);
        if f.load(Ordering::SeqCst) {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            Ok(())
        }
    })));
    let write = |t: i64| {
        engine.write(
            "db",
            vec![point("cpu", "a", t, vec![("v", Value::Float(t as f64))])],
            OPTS,
        )
    };
    write(1).await.unwrap();
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        1,
        "acknowledged after its sync"
    );
    fail.store(true, Ordering::SeqCst);
    let err = write(2).await.unwrap_err();
    assert_eq!(
        crate::error::Classify::kind(&err),
        crate::error::Kind::StorageFull,
        "{err}"
    );
    assert_eq!(
        count(&engine, "db", "cpu"),
        1,
        "a refused write is not applied"
    );
    let first_file = wal::list(&dir.path().join("wal")).unwrap();
    fail.store(false, Ordering::SeqCst);
    write(3).await.unwrap();
    let files = wal::list(&dir.path().join("wal")).unwrap();
    assert!(
        files.last() > first_file.last(),
        "a new WAL file after the failure: {files:?}"
    );
    assert_eq!(count(&engine, "db", "cpu"), 2);
    drop(engine);
    let engine = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let t = engine.database("db").unwrap().table("cpu").unwrap();
    let rows = t
        .scan(
            &request(TimeRange::ALL, t.schema().fields.clone()),
            engine.stats(),
        )
        .unwrap()
        .rows;
    // The refused write's record may be in the old file (written, not synced): replay
    // must not be relied on to drop it, but acknowledged ones must all be there.
    assert!(
        rows.time.contains(&1) && rows.time.contains(&3),
        "{:?}",
        rows.time
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A compaction whose inputs are all deleted rows writes no output, so nothing on disk
/// says its inputs were replaced: their tombstone must outlive them. The files as they
/// stand at any moment (a crash) never bring deleted rows back.
#[tokio::test]
async fn compaction_that_empties_a_partition_never_resurrects_rows() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    let pts = (0..20)
        .map(|i| point("m", "a", i, vec![("x", Value::Float(i as f64))]))
        .collect();
    e.write("d", pts, OPTS).await.unwrap();
    e.flush().unwrap();
    assert!(e.delete("d", "m", TimeRange::ALL, Vec::new()).unwrap());
    let table = e.database("d").unwrap().table("m").unwrap();
    let held = table.state.read().segments[0].clone();
    e.compact(2).unwrap();
    assert!(table.state.read().segments.is_empty());
    assert!(held.path.exists(), "a reader still holds the input");
    assert_eq!(
        table.state.read().meta.tombstones.len(),
        1,
        "the tombstone stays while its rows are on disk"
    );
    let crashed = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), crashed.path());
    let c = Engine::open(crashed.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&c, "d", "m"), 0, "deleted rows came back");
    drop(c);
    drop(held);
    assert_eq!(count(&e, "d", "m"), 0);
    drop(e);
    let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(count(&e, "d", "m"), 0);
}
