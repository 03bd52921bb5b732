//! The storage engine's system tables in schema `system` (next to the alerting ones):
//! what a operator needs to see when the store is not well.
//!
//! ```text
//! system.unflushed_tables   tables whose buffers cannot be written as segments
//! system.quarantine         damaged WAL records and segment files set aside at start
//! system.running_queries    statements running now, by backend pid (pg_cancel_backend)
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use datafusion::catalog::TableProvider;

use crate::storage::Engine;

/// The storage system tables' names.
pub const TABLES: &[&str] = &["unflushed_tables", "quarantine", "running_queries"];

/// One storage system table as a snapshot view, if `name` is one.
pub fn table(
    engine: &Engine,
    activity: &super::activity::Activity,
    name: &str,
) -> Option<datafusion::error::Result<Arc<dyn TableProvider>>> {
    let batch = match name {
        "unflushed_tables" => unflushed_tables(engine),
        "quarantine" => quarantine(engine),
        "running_queries" => running_queries(activity),
        _ => return None,
    };
    Some(batch.and_then(|b| super::catalog::snapshot_view(name, b)))
}

fn unflushed_tables(engine: &Engine) -> datafusion::error::Result<RecordBatch> {
    let rows = engine.unflushed_tables();
    batch(vec![
        ("database", text(&rows, |r| r.db.clone())),
        ("table", text(&rows, |r| r.table.clone())),
        ("buffered_rows", uint(&rows, |r| r.buffered_rows as u64)),
        ("failures", uint(&rows, |r| r.state.failures)),
        ("wal_from", uint(&rows, |r| r.state.wal_from)),
        ("last_error", text(&rows, |r| r.state.error.clone())),
        ("last_failure", time(&rows, |r| r.state.since)),
    ])
}

fn quarantine(engine: &Engine) -> datafusion::error::Result<RecordBatch> {
    let rows = engine.quarantined();
    batch(vec![
        ("path", text(&rows, |r| r.path.display().to_string())),
        ("source", text(&rows, |r| r.source.clone())),
        ("reason", text(&rows, |r| r.reason.clone())),
        ("bytes", uint(&rows, |r| r.bytes)),
        ("time", time(&rows, |r| r.time)),
    ])
}

fn running_queries(activity: &super::activity::Activity) -> datafusion::error::Result<RecordBatch> {
    let rows = activity.list();
    batch(vec![
        (
            "pid",
            Arc::new(datafusion::arrow::array::Int32Array::from_iter_values(
                rows.iter().map(|r| r.pid),
            )) as ArrayRef,
        ),
        ("database", text(&rows, |r| r.database.clone())),
        ("user", text(&rows, |r| r.user.clone())),
        ("query", text(&rows, |r| r.query.clone())),
        ("started", time(&rows, |r| r.started)),
    ])
}

/// A batch of named columns, none nullable.
fn batch(columns: Vec<(&str, ArrayRef)>) -> datafusion::error::Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter_with_nullable(
        columns.into_iter().map(|(name, a)| (name, a, false)),
    )?)
}

fn text<T>(rows: &[T], f: impl Fn(&T) -> String) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

fn uint<T>(rows: &[T], f: impl Fn(&T) -> u64) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
}

/// Timestamps in ns since the epoch, in UTC.
fn time<T>(rows: &[T], f: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(f)).with_timezone("UTC"))
}
