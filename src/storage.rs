//! The storage engine: WAL → in-memory buffers → immutable segment files.
//!
//! Writes go through one WAL thread ([`Engine::write`]), which checks points against the
//! table schemas, appends them to the WAL, fsyncs once for the whole group of writes that
//! arrived meanwhile (group commit), applies them to the buffers (queryable at once) and
//! only then answers. A flusher thread freezes the buffers when they grow past a size or
//! age, writes each as a segment file, records a checkpoint and deletes the WAL files the
//! segments now cover. On open, segments are loaded and the WAL after the checkpoint is
//! replayed; a torn tail is cut at the last good record, and damage found on the way (a
//! WAL record or segment failing its checksum) is quarantined, never read as data.
//!
//! On disk:
//!
//! ```text
//! <data_dir>/wal/<id>.wal              write-ahead log files
//! <data_dir>/checkpoint                last WAL id whose contents are all in segments,
//!                                      and tables that could not flush (their first WAL id)
//! <data_dir>/quarantine/               damaged WAL records and segment files
//! <data_dir>/dbs/<db>/<table>/p<start>/<seq>-<generation>.seg
//!                                      segment files of the partition starting at <start> ns
//!                                      (db and table names percent-encoded)
//! ```
//!
//! This module knows nothing of HTTP, SQL or Postgres.

pub mod buffer;
pub mod codec;
pub mod compact;
mod engine;
mod flush;
pub mod index;
pub mod meta;
pub mod quarantine;
mod recovery;
mod retention;
pub mod rows;
pub mod scan;
pub mod schema;
pub mod segment;
pub mod stats;
pub mod table;
pub mod wal;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};

// The engine's parts share their helpers through the module root.
use retention::*;

pub use buffer::TimeRange;
pub use index::TagPredicate;
pub use schema::{
    FieldType, PackedKey, Point, PreparedSeries, SchemaError, SeriesKey, TableSchema, Value,
};
pub use table::{ScanOutput, ScanRequest, Table};

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the storage engine is shut down")]
    Closed,
    /// One write too large for a WAL record.
    #[error("the write would take {size} bytes in the WAL, more than the {limit} one write may")]
    TooLarge { size: usize, limit: usize },
    /// The WAL could not make a write durable; nothing of it is acknowledged.
    #[error("the write was not stored: {0}")]
    WalFailed(String, bool),
    /// Tables whose buffered rows could not be written as segments (the WAL keeps them).
    #[error("table {table} cannot be flushed: {error}")]
    Unflushed { table: String, error: String },
    /// Writes wait for flushing: the buffers hold more than `max_buffer_bytes`.
    #[error(
        "write buffers are full ({buffered} bytes not yet flushed, limit {limit}: \
         storage.max_buffer_bytes); retry after flushing catches up"
    )]
    BuffersFull { buffered: usize, limit: usize },
    /// A database name that cannot be stored (see [`schema::MAX_NAME_BYTES`]).
    #[error("database {0}")]
    InvalidName(SchemaError),
}

impl Error {
    /// Whether this is an I/O error because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull
            || source.raw_os_error() == Some(libc::ENOSPC))
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl crate::error::Classify for Error {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            Error::Io { .. } | Error::Closed | Error::Unflushed { .. } => Kind::Unavailable,
            Error::WalFailed(_, true) => Kind::StorageFull,
            Error::WalFailed(_, false) => Kind::Unavailable,
            Error::Corrupt(_) | Error::Internal(_) => Kind::Internal,
            Error::InvalidName(_) => Kind::InvalidInput,
            Error::TooLarge { .. } => Kind::LimitExceeded,
            Error::BuffersFull { .. } => Kind::Overloaded,
        }
    }

    fn sqlstate(&self) -> crate::error::SqlState {
        match self {
            Error::InvalidName(_) => crate::error::SqlState::NAME_TOO_LONG,
            other => other.kind().sqlstate(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The database that always exists.
pub const DEFAULT_DATABASE: &str = "sundial";

/// Storage settings.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Flush buffers to segment files once they hold about this many bytes.
    pub flush_threshold_bytes: usize,
    /// Flush buffers at least this often, whatever their size (`"10m"`; older files'
    /// `flush_interval_secs = 600` still reads).
    #[serde(alias = "flush_interval_secs")]
    pub flush_interval: crate::duration::Duration,
    /// Width of a time partition (one directory of segments each; `partition_width_secs`
    /// in older files).
    #[serde(alias = "partition_width_secs")]
    pub partition_width: crate::duration::Duration,
    /// Compact a partition once it has this many segments (0 turns compaction off).
    pub compaction_min_segments: usize,
    /// A write that would add a series past this many in one table is refused for those
    /// points (400 naming the line and the limit; 0: no limit).
    pub max_series_per_table: usize,
    /// The same for all the tables of one database (InfluxDB's `max-series-per-database`).
    pub max_series_per_database: usize,
    /// Tags and fields a table may have (a point adding more is refused; 0: no limit).
    pub max_columns_per_table: usize,
    /// Bytes of written rows not yet flushed (active and frozen buffers) past which
    /// writes are refused with 503 and `Retry-After` until flushing catches up, instead
    /// of growing until the process is killed. 0: a quarter of the memory the host
    /// allows (RAM, cgroup, `RLIMIT_AS`), at least 2 × `flush_threshold_bytes`.
    pub max_buffer_bytes: usize,
    /// Tags one point (line) may carry.
    pub max_tags_per_point: usize,
    /// Fields one point (line) may carry.
    pub max_fields_per_point: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            flush_threshold_bytes: 256 << 20,
            flush_interval: crate::duration::Duration::from_secs(600),
            partition_width: crate::duration::Duration::from_secs(86_400),
            compaction_min_segments: 4,
            max_series_per_table: 1_000_000,
            max_series_per_database: 1_000_000,
            max_columns_per_table: 1_000,
            max_buffer_bytes: 0,
            max_tags_per_point: 256,
            max_fields_per_point: 512,
        }
    }
}

pub use stats::Stats;

/// Options of one write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Store the points that fit even when others are rejected.
    pub accept_partial: bool,
    /// Wait for the WAL fsync before answering.
    pub sync: bool,
}

/// What a write did.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Points stored.
    pub stored: usize,
    /// Rejected points: index into the request's points, and why.
    pub rejected: Vec<(usize, SchemaError)>,
}

/// Samples for one float field of one table, from prepared series: the fast path for
/// writers that send the same series again and again (scrapes), see
/// [`Engine::write_samples`].
#[derive(Debug, Clone)]
pub struct TableSamples {
    pub table: Arc<str>,
    pub field: Arc<str>,
    /// (series, time in ns, value).
    pub samples: Vec<(Arc<schema::PreparedSeries>, i64, f64)>,
}

/// A database: a set of tables.
#[derive(Debug)]
pub struct Database {
    pub name: String,
    dir: PathBuf,
    tables: RwLock<BTreeMap<String, Arc<Table>>>,
    /// Retention and other settings, persisted in `meta.json`.
    pub meta: RwLock<meta::DatabaseMeta>,
    /// Series in all of its tables, kept by the tables as their registries grow (read
    /// on every write by the cardinality guard, so not recounted).
    series: Arc<AtomicUsize>,
}

impl Database {
    fn new(name: &str, dir: PathBuf) -> Database {
        Database {
            name: name.to_string(),
            dir,
            tables: RwLock::new(BTreeMap::new()),
            meta: RwLock::new(meta::DatabaseMeta::default()),
            series: Default::default(),
        }
    }

    /// The oldest time a query of `table` may return (its TTL, or the database's).
    pub fn retention_cutoff(&self, table: &Table, now: i64) -> Option<i64> {
        let ttl = table
            .state
            .read()
            .meta
            .ttl_secs
            .or(self.meta.read().ttl_secs)?;
        Some(now.saturating_sub((ttl as i64).saturating_mul(1_000_000_000)))
    }

    pub fn table_names(&self) -> Vec<String> {
        self.tables.read().keys().cloned().collect()
    }

    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().get(name).cloned()
    }

    /// Series in all of its tables.
    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    fn table_or_create(&self, name: &str) -> Arc<Table> {
        if let Some(t) = self.table(name) {
            return t;
        }
        let mut tables = self.tables.write();
        tables
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Table::new(
                    &self.name,
                    name,
                    self.dir.join(encode_name(name)),
                    self.series.clone(),
                ))
            })
            .clone()
    }
}

enum Command {
    Write {
        db: String,
        points: Vec<Point>,
        opts: WriteOptions,
        reply: tokio::sync::oneshot::Sender<Result<WriteOutcome>>,
    },
    Samples {
        db: String,
        tables: Vec<TableSamples>,
        sync: bool,
        reply: tokio::sync::oneshot::Sender<Result<WriteOutcome>>,
    },
    Rotate {
        reply: mpsc::Sender<Result<Checkpoint>>,
    },
}

/// A table that cannot be flushed, as [`Engine::unflushed_tables`] reports it.
#[derive(Debug, Clone)]
pub struct UnflushedTable {
    pub db: String,
    pub table: String,
    /// Rows held in buffers that failed to flush.
    pub buffered_rows: usize,
    pub state: table::Unflushed,
}

/// What a WAL rotation froze.
struct Checkpoint {
    /// The first WAL file whose rows the frozen buffers may hold.
    wal_from: u64,
    wal_upto: u64,
    frozen: Vec<(Arc<Table>, Arc<table::Frozen>)>,
}

struct Shared {
    dir: PathBuf,
    config: StorageConfig,
    dbs: RwLock<BTreeMap<String, Arc<Database>>>,
    next_seq: AtomicU64,
    buffered_bytes: AtomicUsize,
    /// Bytes of the buffers frozen and not yet flushed (an upper bound: recounted
    /// exactly when it would refuse a write).
    frozen_bytes: AtomicUsize,
    stats: Stats,
    closing: AtomicBool,
    /// Serializes checkpoints (the flusher thread and explicit flushes); holds the last
    /// WAL file the checkpoint file covers.
    checkpoint_lock: Mutex<u64>,
    /// Runs before each WAL fsync (see [`Engine::set_sync_hook`]).
    sync_hook: Mutex<Option<wal::SyncHook>>,
    /// What recovery quarantined (this run and earlier ones).
    quarantine: Mutex<Vec<quarantine::Quarantined>>,
    /// The last WAL file frozen by a rotation (the active buffers hold later files' rows).
    rotated_upto: AtomicU64,
    /// Wakes the flusher; `true` asks for a flush now.
    flush_tx: Mutex<Option<mpsc::Sender<bool>>>,
}

/// The storage engine. Cheap to share behind an `Arc`.
pub struct Engine {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Encodes a database or table name as a file name: `[A-Za-z0-9_-]` as is, every other
/// byte as `%XX`.
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The length of [`encode_name`]'s answer, without building it.
pub fn encoded_name_len(name: &str) -> usize {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Inverse of [`encode_name`].
pub fn decode_name(file: &str) -> Option<String> {
    let b = file.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
