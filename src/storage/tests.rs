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
    let rows = t.scan(&request(TimeRange::ALL, fields), e.stats()).unwrap().rows;
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
        .scan(&request(TimeRange { min: 1000, max: 1999 }, fields), e.stats())
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 10);
    assert_eq!(e.stats().segments_read.load(Ordering::Relaxed) - before, 1);
}
