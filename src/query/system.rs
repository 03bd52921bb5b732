//! The storage engine's system tables in schema `system` (next to the alerting ones):
//! what a operator needs to see when the store is not well.
//!
//! ```text
//! system.unflushed_tables   tables whose buffers cannot be written as segments
//! system.quarantine         damaged WAL records and segment files set aside at start
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::TableProvider;

use crate::storage::Engine;

/// The storage system tables' names.
pub const TABLES: &[&str] = &["unflushed_tables", "quarantine"];

/// One storage system table as a snapshot view, if `name` is one.
pub fn table(
    engine: &Engine,
    name: &str,
) -> Option<datafusion::error::Result<Arc<dyn TableProvider>>> {
    let batch = match name {
        "unflushed_tables" => unflushed_tables(engine),
        "quarantine" => quarantine(engine),
        _ => return None,
    };
    Some(batch.and_then(|b| super::catalog::snapshot_view(name, b)))
}

fn unflushed_tables(engine: &Engine) -> datafusion::error::Result<RecordBatch> {
    let rows = engine.unflushed_tables();
    let schema = Arc::new(Schema::new(vec![
        Field::new("database", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("buffered_rows", DataType::UInt64, false),
        Field::new("failures", DataType::UInt64, false),
        Field::new("wal_from", DataType::UInt64, false),
        Field::new("last_error", DataType::Utf8, false),
        Field::new(
            "last_failure",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
    ]));
    let text = |f: &dyn Fn(&crate::storage::UnflushedTable) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let int = |f: &dyn Fn(&crate::storage::UnflushedTable) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let columns = vec![
        text(&|r| r.db.clone()),
        text(&|r| r.table.clone()),
        int(&|r| r.buffered_rows as u64),
        int(&|r| r.state.failures),
        int(&|r| r.state.wal_from),
        text(&|r| r.state.error.clone()),
        Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(|r| r.state.since).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn quarantine(engine: &Engine) -> datafusion::error::Result<RecordBatch> {
    let rows = engine.quarantined();
    let schema = Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
    ]));
    let text = |f: &dyn Fn(&crate::storage::quarantine::Quarantined) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let columns = vec![
        text(&|r| r.path.display().to_string()),
        text(&|r| r.source.clone()),
        text(&|r| r.reason.clone()),
        Arc::new(UInt64Array::from(
            rows.iter().map(|r| r.bytes).collect::<Vec<_>>(),
        )) as ArrayRef,
        Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(|r| r.time).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
