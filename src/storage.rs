//! The storage engine: WAL → in-memory buffers → immutable segment files.
//!
//! Writes go through one WAL thread ([`Engine::write`]), which checks points against the
//! table schemas, appends them to the WAL, fsyncs once for the whole group of writes that
//! arrived meanwhile (group commit), applies them to the buffers (queryable at once) and
//! only then answers. A flusher thread freezes the buffers when they grow past a size or
//! age, writes each as a segment file, records a checkpoint and deletes the WAL files the
//! segments now cover. On open, segments are loaded and the WAL after the checkpoint is
//! replayed; a torn tail is cut at the last good record.
//!
//! On disk:
//!
//! ```text
//! <data_dir>/wal/<id>.wal              write-ahead log files
//! <data_dir>/checkpoint                last WAL id whose contents are all in segments
//! <data_dir>/dbs/<db>/<table>/p<start>/<seq>-<generation>.seg
//!                                      segment files of the partition starting at <start> ns
//!                                      (db and table names percent-encoded)
//! ```
//!
//! This module knows nothing of HTTP, SQL or Postgres.

pub mod buffer;
pub mod codec;
pub mod compact;
pub mod index;
pub mod meta;
pub mod rows;
pub mod schema;
pub mod segment;
pub mod table;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};

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
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
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
    /// Flush buffers at least this often (seconds), whatever their size.
    pub flush_interval_secs: u64,
    /// Width of a time partition in seconds (one directory of segments each).
    pub partition_width_secs: u64,
    /// Compact a partition once it has this many segments (0 turns compaction off).
    pub compaction_min_segments: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            flush_threshold_bytes: 256 << 20,
            flush_interval_secs: 600,
            partition_width_secs: 86_400,
            compaction_min_segments: 4,
        }
    }
}

/// Counters the engine keeps, for tests and self-monitoring.
#[derive(Debug, Default)]
pub struct Stats {
    pub segments_read: AtomicU64,
    pub segments_pruned: AtomicU64,
    pub segment_bytes_read: AtomicU64,
    pub flushes: AtomicU64,
    pub wal_syncs: AtomicU64,
}

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
}

impl Database {
    fn new(name: &str, dir: PathBuf) -> Database {
        Database {
            name: name.to_string(),
            dir,
            tables: RwLock::new(BTreeMap::new()),
            meta: RwLock::new(meta::DatabaseMeta::default()),
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

    fn table_or_create(&self, name: &str) -> Arc<Table> {
        if let Some(t) = self.table(name) {
            return t;
        }
        let mut tables = self.tables.write();
        tables
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Table::new(name, self.dir.join(encode_name(name)))))
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

/// What a WAL rotation froze.
struct Checkpoint {
    wal_upto: u64,
    frozen: Vec<(Arc<Table>, Arc<table::Frozen>)>,
}

struct Shared {
    dir: PathBuf,
    config: StorageConfig,
    dbs: RwLock<BTreeMap<String, Arc<Database>>>,
    next_seq: AtomicU64,
    buffered_bytes: AtomicUsize,
    stats: Stats,
    closing: AtomicBool,
    /// Serializes checkpoints (the flusher thread and explicit flushes).
    checkpoint_lock: Mutex<()>,
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

impl Engine {
    /// Opens (or creates) the data directory, loads segments and replays the WAL.
    pub fn open(dir: &Path, config: StorageConfig) -> Result<Arc<Engine>> {
        let wal_dir = dir.join("wal");
        let dbs_dir = dir.join("dbs");
        for d in [dir, &wal_dir, &dbs_dir] {
            fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
        }
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config,
            dbs: RwLock::new(BTreeMap::new()),
            next_seq: AtomicU64::new(1),
            buffered_bytes: AtomicUsize::new(0),
            stats: Stats::default(),
            closing: AtomicBool::new(false),
            checkpoint_lock: Mutex::new(()),
            flush_tx: Mutex::new(None),
        });
        let max_seq = load_segments(&shared, &dbs_dir)?;
        shared.next_seq.store(max_seq + 1, Ordering::SeqCst);
        shared.database_or_create(DEFAULT_DATABASE);

        let wal_upto = read_checkpoint(dir)?;
        let mut last_id = wal_upto;
        for id in wal::list(&wal_dir)? {
            if id <= wal_upto {
                let p = wal_dir.join(wal::file_name(id));
                fs::remove_file(&p).map_err(|e| Error::io("remove WAL", &p, e))?;
                continue;
            }
            last_id = id;
            let (records, _cut) = wal::read_file(&wal_dir, id)?;
            let mut points = 0usize;
            let mut replay = wal::FileReplay::default();
            for rec in &records {
                let (stored, rejected) = match replay.decode(rec) {
                    Ok(wal::Record::Points(batch)) => {
                        let refs: Vec<&Point> = batch.points.iter().collect();
                        let (accepted, rejected) = shared.check(&batch.db, &refs, true);
                        shared.apply(&batch.db, &accepted);
                        (accepted.len(), rejected.len())
                    }
                    Ok(wal::Record::Samples { db, tables }) => {
                        let (accepted, rejected) = shared.check_samples(&db, tables);
                        (shared.apply_samples(&db, &accepted), rejected.len())
                    }
                    Err(e) => {
                        tracing::error!(wal = id, error = %e, "skipping undecodable WAL record");
                        continue;
                    }
                };
                if rejected > 0 {
                    tracing::warn!(wal = id, rejected, "WAL points no longer fit their table");
                }
                points += stored;
            }
            tracing::info!(
                wal = id,
                records = records.len(),
                points,
                "replayed WAL file"
            );
        }
        let writer = wal::WalWriter::create(&wal_dir, last_id + 1)?;

        let (tx, rx) = mpsc::channel();
        let (flush_tx, flush_rx) = mpsc::channel();
        *shared.flush_tx.lock() = Some(flush_tx);
        let engine = Arc::new(Engine {
            shared: shared.clone(),
            tx: Mutex::new(Some(tx.clone())),
            threads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let wal_thread = std::thread::Builder::new()
            .name("sundial-wal".into())
            .spawn(move || wal_loop(s, writer, rx))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let s = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("sundial-flush".into())
            .spawn(move || flush_loop(s, tx, flush_rx))
            .map_err(|e| Error::Internal(e.to_string()))?;
        engine.threads.lock().extend([wal_thread, flusher]);
        Ok(engine)
    }

    /// Checks, logs (durably, unless `opts.sync` is off) and applies a write.
    pub async fn write(
        &self,
        db: &str,
        mut points: Vec<Point>,
        opts: WriteOptions,
    ) -> Result<WriteOutcome> {
        for p in &mut points {
            p.tags.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self.submit(|reply| Command::Write {
            db: db.to_string(),
            points,
            opts,
            reply,
        })
        .await
    }

    /// Hands a write to the WAL thread and waits for its outcome.
    async fn submit(
        &self,
        command: impl FnOnce(tokio::sync::oneshot::Sender<Result<WriteOutcome>>) -> Command,
    ) -> Result<WriteOutcome> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let tx = self.tx.lock().clone().ok_or(Error::Closed)?;
        tx.send(command(reply)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Writes float samples of prepared series, with the durability of [`Engine::write`]
    /// (`sync`: answered after the WAL fsync) and partial acceptance: samples that do not
    /// fit their table's schema are rejected (index counted across `tables` in order),
    /// the rest stored. Cheaper per sample than points: tags are sorted, checked and
    /// encoded once per series, the series id is cached in the series, and the WAL logs
    /// a series' tags once per file and then only its number (see [`wal`]).
    pub async fn write_samples(
        &self,
        db: &str,
        tables: Vec<TableSamples>,
        sync: bool,
    ) -> Result<WriteOutcome> {
        self.submit(|reply| Command::Samples {
            db: db.to_string(),
            tables,
            sync,
            reply,
        })
        .await
    }

    /// Flushes every buffer to segment files now and truncates the WAL. Blocking.
    pub fn flush(&self) -> Result<()> {
        let tx = self.tx.lock().clone().ok_or(Error::Closed)?;
        checkpoint(&self.shared, &tx)
    }

    /// Compacts every partition that has at least `min_segments` segments (at least two).
    /// Blocking. Returns the number of partitions compacted.
    pub fn compact(&self, min_segments: usize) -> Result<usize> {
        let mut n = 0;
        let next_seq = || self.shared.next_seq.fetch_add(1, Ordering::SeqCst);
        for t in self.shared.all_tables() {
            n += compact::compact_table(&t, min_segments, &next_seq)?;
        }
        Ok(n)
    }

    /// Creates a database (with an optional TTL in seconds). Returns `false` if it existed.
    pub fn create_database(&self, name: &str, ttl_secs: Option<u64>) -> Result<bool> {
        if self.database(name).is_some() {
            return Ok(false);
        }
        let db = self.shared.database_or_create(name);
        let meta = meta::DatabaseMeta { ttl_secs };
        meta::write(&db.dir, &meta)?;
        *db.meta.write() = meta;
        Ok(true)
    }

    /// Sets (or with `None` clears) a database's TTL.
    pub fn set_database_ttl(&self, name: &str, ttl_secs: Option<u64>) -> Result<bool> {
        let Some(db) = self.database(name) else {
            return Ok(false);
        };
        let mut m = db.meta.write();
        let new = meta::DatabaseMeta { ttl_secs };
        meta::write(&db.dir, &new)?;
        *m = new;
        Ok(true)
    }

    /// Sets (or with `None` clears) a table's TTL, which overrides its database's.
    pub fn set_table_ttl(&self, db: &str, table: &str, ttl_secs: Option<u64>) -> Result<bool> {
        let Some(t) = self.database(db).and_then(|d| d.table(table)) else {
            return Ok(false);
        };
        let mut st = t.state.write();
        let mut new = st.meta.clone();
        new.ttl_secs = ttl_secs;
        meta::write(&t.dir, &new)?;
        st.meta = new;
        Ok(true)
    }

    /// Deletes the rows in `range` of the series matching `tags` (all series when empty):
    /// everything written before now is flushed, then a durable tombstone hides the rows
    /// from queries at once; compaction purges them.
    pub fn delete(
        &self,
        db: &str,
        table: &str,
        range: TimeRange,
        tags: Vec<TagPredicate>,
    ) -> Result<bool> {
        if self.database(db).and_then(|d| d.table(table)).is_none() {
            return Ok(false);
        }
        self.flush()?;
        let Some(t) = self.database(db).and_then(|d| d.table(table)) else {
            return Ok(false);
        };
        let mut st = t.state.write();
        let mut new = st.meta.clone();
        new.tombstones.push(meta::Tombstone {
            seq: self.shared.next_seq.fetch_add(1, Ordering::SeqCst),
            min: range.min,
            max: range.max,
            tags,
        });
        meta::write(&t.dir, &new)?;
        st.meta = new;
        Ok(true)
    }

    /// Drops a table and its files. Returns `false` if there was no such table.
    pub fn drop_table(&self, db: &str, table: &str) -> Result<bool> {
        let Some(database) = self.database(db) else {
            return Ok(false);
        };
        if database.table(table).is_none() {
            return Ok(false);
        }
        // Checkpoint first so the WAL holds none of the table's rows to replay.
        self.flush()?;
        let Some(t) = database.tables.write().remove(table) else {
            return Ok(false);
        };
        remove_table_files(&t)?;
        Ok(true)
    }

    /// Drops a database with all its tables. The default database is emptied, not removed.
    pub fn drop_database(&self, name: &str) -> Result<bool> {
        if self.database(name).is_none() {
            return Ok(false);
        }
        self.flush()?;
        let Some(db) = self.shared.dbs.write().remove(name) else {
            return Ok(false);
        };
        let tables: Vec<Arc<Table>> = std::mem::take(&mut *db.tables.write())
            .into_values()
            .collect();
        for t in &tables {
            remove_table_files(t)?;
        }
        if db.dir.exists() {
            fs::remove_dir_all(&db.dir).map_err(|e| Error::io("remove database", &db.dir, e))?;
            fsync_dir(&self.shared.dir.join("dbs"))?;
        }
        if name == DEFAULT_DATABASE {
            self.shared.database_or_create(DEFAULT_DATABASE);
        }
        Ok(true)
    }

    /// Deletes the partitions whose rows are all older than their table's retention.
    /// Returns the number of segment files removed.
    pub fn enforce_retention(&self, now: i64) -> Result<usize> {
        enforce_retention(&self.shared, now)
    }

    /// Stops accepting writes, flushes the buffers and waits for the threads.
    pub fn shutdown(&self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "final flush failed; the WAL keeps the data");
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        self.tx.lock().take();
        self.shared.flush_tx.lock().take();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }

    pub fn database_names(&self) -> Vec<String> {
        self.shared.dbs.read().keys().cloned().collect()
    }

    pub fn database(&self, name: &str) -> Option<Arc<Database>> {
        self.shared.dbs.read().get(name).cloned()
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Tables, segment files and bytes in memory buffers (self-monitoring).
    pub fn footprint(&self) -> (usize, usize, usize) {
        let dbs: Vec<Arc<Database>> = self.shared.dbs.read().values().cloned().collect();
        let (mut tables, mut segments) = (0, 0);
        for db in dbs {
            for name in db.table_names() {
                if let Some(t) = db.table(&name) {
                    tables += 1;
                    segments += t.state.read().segments.len();
                }
            }
        }
        (
            tables,
            segments,
            self.shared.buffered_bytes.load(Ordering::Relaxed),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Shared {
    fn partition_width(&self) -> i64 {
        (self.config.partition_width_secs.max(1) as i64).saturating_mul(1_000_000_000)
    }

    fn database_or_create(&self, name: &str) -> Arc<Database> {
        if let Some(db) = self.dbs.read().get(name) {
            return db.clone();
        }
        self.dbs
            .write()
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Database::new(
                    name,
                    self.dir.join("dbs").join(encode_name(name)),
                ))
            })
            .clone()
    }

    /// Checks points against the schemas (and earlier points of the same batch), without
    /// changing anything. Returns the accepted points and the rejections.
    fn check<'p>(
        &self,
        db: &str,
        points: &[&'p Point],
        accept_partial: bool,
    ) -> (Vec<&'p Point>, Vec<(usize, SchemaError)>) {
        let database = self.dbs.read().get(db).cloned();
        let mut scratch: HashMap<&str, TableSchema> = HashMap::new();
        let mut accepted = Vec::with_capacity(points.len());
        let mut rejected = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let schema = scratch.entry(p.table.as_str()).or_insert_with(|| {
                database
                    .as_ref()
                    .and_then(|d| d.table(&p.table))
                    .map(|t| t.schema())
                    .unwrap_or_default()
            });
            match schema.check(p) {
                Ok(()) => {
                    schema.extend(p);
                    accepted.push(*p);
                }
                Err(e) => rejected.push((i, e)),
            }
        }
        if !accept_partial && !rejected.is_empty() {
            accepted.clear();
        }
        self.reserve(db, &accepted);
        (accepted, rejected)
    }

    /// Adds the new columns of accepted points to their tables' schemas at once, so the
    /// next write checked (before this one is applied) sees them.
    fn reserve(&self, db: &str, points: &[&Point]) {
        if points.is_empty() {
            return;
        }
        let database = self.database_or_create(db);
        // Only this (WAL) thread changes schemas, and `check` validated every point
        // against the schema these extensions produce: no need to check again.
        for run in points.chunk_by(|a, b| a.table == b.table) {
            let table = database.table_or_create(&run[0].table);
            let mut st = table.state.write();
            for p in run {
                st.schema.extend(p);
            }
        }
    }

    /// Checks samples against their tables' schemas and adds their field and tag columns
    /// (creating tables), as [`Shared::check`] and [`Shared::reserve`] do for points.
    /// Returns the accepted samples and the rejections.
    fn check_samples(
        &self,
        db: &str,
        tables: Vec<TableSamples>,
    ) -> (Vec<TableSamples>, Vec<(usize, SchemaError)>) {
        let database = self.database_or_create(db);
        let mut accepted = Vec::with_capacity(tables.len());
        let mut rejected = Vec::new();
        let mut offset = 0;
        for mut t in tables {
            let base = offset;
            offset += t.samples.len();
            let table = database.table_or_create(&t.table);
            let mut st = table.state.write();
            let schema = &mut st.schema;
            if let Err(e) = schema.check_field(&t.field, FieldType::Float) {
                rejected.extend((base..offset).map(|i| (i, e.clone())));
                continue;
            }
            schema.add_field(&t.field, FieldType::Float);
            // Series of one metric mostly share their tag keys: check each run once.
            let mut last_keys: Option<&schema::SeriesKey> = None;
            let mut last_error: Option<SchemaError> = None;
            let mut keep = Vec::with_capacity(t.samples.len());
            for (i, sample) in t.samples.iter().enumerate() {
                let key = sample.0.tags();
                let same = last_keys.is_some_and(|last| {
                    last.len() == key.len() && last.iter().zip(key).all(|(a, b)| a.0 == b.0)
                });
                if !same {
                    last_error = key.iter().find_map(|(k, _)| {
                        if **k == *t.field {
                            Some(SchemaError::TagAndField(k.clone()))
                        } else {
                            schema.check_tag(k).err()
                        }
                    });
                    if last_error.is_none() {
                        for (k, _) in key {
                            schema.add_tag(k);
                        }
                    }
                    last_keys = Some(key);
                }
                if let Some(e) = &last_error {
                    rejected.push((base + i, e.clone()));
                }
                keep.push(last_error.is_none());
            }
            drop(st);
            let mut keep = keep.into_iter();
            t.samples.retain(|_| keep.next().unwrap_or(false));
            if !t.samples.is_empty() {
                accepted.push(t);
            }
        }
        (accepted, rejected)
    }

    /// Applies checked samples to the buffers.
    fn apply_samples(&self, db: &str, tables: &[TableSamples]) -> usize {
        let database = self.database_or_create(db);
        let grown: usize = tables
            .iter()
            .map(|t| database.table_or_create(&t.table).apply_samples(t))
            .sum();
        self.note_growth(grown);
        tables.iter().map(|t| t.samples.len()).sum()
    }

    fn note_growth(&self, grown: usize) {
        let total = self.buffered_bytes.fetch_add(grown, Ordering::Relaxed) + grown;
        if total >= self.config.flush_threshold_bytes
            && let Some(tx) = self.flush_tx.lock().as_ref()
        {
            let _ = tx.send(true);
        }
    }

    /// Applies checked points to the buffers.
    fn apply(&self, db: &str, points: &[&Point]) {
        if points.is_empty() {
            return;
        }
        let database = self.database_or_create(db);
        let grown: usize = points
            .chunk_by(|a, b| a.table == b.table)
            .map(|run| database.table_or_create(&run[0].table).apply(run))
            .sum();
        self.note_growth(grown);
    }

    fn all_tables(&self) -> Vec<Arc<Table>> {
        let dbs: Vec<Arc<Database>> = self.dbs.read().values().cloned().collect();
        dbs.iter()
            .flat_map(|d| d.tables.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }
}

struct PendingWrite {
    db: String,
    data: PendingData,
    rejected: Vec<(usize, SchemaError)>,
    reply: tokio::sync::oneshot::Sender<Result<WriteOutcome>>,
}

enum PendingData {
    /// The points and the indexes of those accepted.
    Points(Vec<Point>, Vec<usize>),
    Samples(Vec<TableSamples>),
}

fn wal_loop(shared: Arc<Shared>, mut writer: wal::WalWriter, rx: mpsc::Receiver<Command>) {
    while let Ok(first) = rx.recv() {
        let mut cmds = vec![first];
        while cmds.len() < 4096 {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        let mut group: Vec<PendingWrite> = Vec::new();
        let mut sync = false;
        for cmd in cmds {
            match cmd {
                Command::Write {
                    db,
                    points,
                    opts,
                    reply,
                } => {
                    let refs: Vec<&Point> = points.iter().collect();
                    let (accepted, rejected) = shared.check(&db, &refs, opts.accept_partial);
                    let accepted_idx: Vec<usize> = if accepted.is_empty() {
                        Vec::new()
                    } else {
                        let rejected_set: std::collections::HashSet<usize> =
                            rejected.iter().map(|(i, _)| *i).collect();
                        (0..points.len())
                            .filter(|i| !rejected_set.contains(i))
                            .collect()
                    };
                    if !accepted.is_empty() {
                        writer.append_points(&db, &accepted);
                        sync |= opts.sync;
                    }
                    drop(refs);
                    group.push(PendingWrite {
                        db,
                        data: PendingData::Points(points, accepted_idx),
                        rejected,
                        reply,
                    });
                }
                Command::Samples {
                    db,
                    tables,
                    sync: wait,
                    reply,
                } => {
                    let (accepted, rejected) = shared.check_samples(&db, tables);
                    if !accepted.is_empty() {
                        writer.append_samples(&db, &accepted);
                        sync |= wait;
                    }
                    group.push(PendingWrite {
                        db,
                        data: PendingData::Samples(accepted),
                        rejected,
                        reply,
                    });
                }
                Command::Rotate { reply } => {
                    commit_group(&shared, &mut writer, std::mem::take(&mut group), sync);
                    sync = false;
                    let _ = reply.send(rotate(&shared, &mut writer));
                }
            }
        }
        commit_group(&shared, &mut writer, group, sync);
    }
    let _ = writer.commit(true);
}

fn commit_group(
    shared: &Shared,
    writer: &mut wal::WalWriter,
    group: Vec<PendingWrite>,
    sync: bool,
) {
    if group.is_empty() {
        return;
    }
    let result = writer.commit(sync);
    if sync && result.is_ok() {
        shared.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
    }
    for w in group {
        match &result {
            Ok(()) => {
                let stored = match &w.data {
                    PendingData::Points(points, accepted) => {
                        let pts: Vec<&Point> = accepted.iter().map(|i| &points[*i]).collect();
                        shared.apply(&w.db, &pts);
                        pts.len()
                    }
                    PendingData::Samples(tables) => shared.apply_samples(&w.db, tables),
                };
                let _ = w.reply.send(Ok(WriteOutcome {
                    stored,
                    rejected: w.rejected,
                }));
            }
            Err(e) => {
                tracing::error!(error = %e, "WAL write failed");
                let _ = w
                    .reply
                    .send(Err(Error::Internal(format!("WAL write failed: {e}"))));
            }
        }
    }
}

/// Starts a new WAL file and freezes every buffer (in the WAL thread, between writes).
fn rotate(shared: &Shared, writer: &mut wal::WalWriter) -> Result<Checkpoint> {
    let tables = shared.all_tables();
    let old = writer.id();
    if !writer.is_empty() {
        *writer = wal::WalWriter::create(&shared.dir.join("wal"), old + 1)?;
    }
    let mut frozen = Vec::new();
    for t in tables {
        let seq = shared.next_seq.fetch_add(1, Ordering::SeqCst);
        if let Some(f) = t.freeze(seq) {
            frozen.push((t, f));
        }
    }
    shared.buffered_bytes.store(0, Ordering::Relaxed);
    Ok(Checkpoint {
        wal_upto: writer.id() - 1,
        frozen,
    })
}

/// Freezes the buffers, writes every frozen buffer as a segment, records the checkpoint
/// and deletes the WAL files it covers.
fn checkpoint(shared: &Shared, tx: &mpsc::Sender<Command>) -> Result<()> {
    let _one_at_a_time = shared.checkpoint_lock.lock();
    let (reply, rx) = mpsc::channel();
    tx.send(Command::Rotate { reply })
        .map_err(|_| Error::Closed)?;
    let cp = rx.recv().map_err(|_| Error::Closed)??;
    // Also retry buffers frozen by an earlier checkpoint that failed.
    let mut pending: Vec<(Arc<Table>, Arc<table::Frozen>)> = Vec::new();
    for t in shared.all_tables() {
        let frozen: Vec<_> = t.state.read().frozen.clone();
        pending.extend(frozen.into_iter().map(|f| (t.clone(), f)));
    }
    debug_assert!(
        cp.frozen
            .iter()
            .all(|(_, f)| pending.iter().any(|(_, p)| Arc::ptr_eq(p, f)))
    );
    let mut rows = 0;
    let width = shared.partition_width();
    for (t, f) in &pending {
        rows += t.flush_frozen(f, width)?;
    }
    write_checkpoint(&shared.dir, cp.wal_upto)?;
    let wal_dir = shared.dir.join("wal");
    for id in wal::list(&wal_dir)? {
        if id <= cp.wal_upto {
            let p = wal_dir.join(wal::file_name(id));
            fs::remove_file(&p).map_err(|e| Error::io("remove WAL", &p, e))?;
        }
    }
    shared.stats.flushes.fetch_add(1, Ordering::Relaxed);
    if rows > 0 {
        tracing::info!(
            segments = pending.len(),
            rows,
            wal_upto = cp.wal_upto,
            "flushed buffers to segments"
        );
    }
    Ok(())
}

/// Flushes when the buffers pass the size threshold (the WAL thread signals) or the flush
/// interval has passed; wakes at least once a minute to enforce retention and compact.
fn flush_loop(shared: Arc<Shared>, tx: mpsc::Sender<Command>, rx: mpsc::Receiver<bool>) {
    let flush_every = Duration::from_secs(shared.config.flush_interval_secs.max(1));
    let wake_every = flush_every.min(Duration::from_secs(60));
    let mut last_flush = Instant::now();
    let mut last_wake = Instant::now();
    loop {
        match rx.recv_timeout(wake_every.saturating_sub(last_wake.elapsed())) {
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while rx.try_recv().is_ok() {}
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let full =
            shared.buffered_bytes.load(Ordering::Relaxed) >= shared.config.flush_threshold_bytes;
        if full || last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            if let Err(e) = checkpoint(&shared, &tx) {
                tracing::error!(error = %e, "flush failed; will retry");
                continue;
            }
        }
        if last_wake.elapsed() < wake_every && !full {
            continue;
        }
        last_wake = Instant::now();
        let now = SystemClock.now_nanos();
        if let Err(e) = enforce_retention(&shared, now) {
            tracing::error!(error = %e, "retention failed");
        }
        let min = shared.config.compaction_min_segments;
        if min > 0 {
            let next_seq = || shared.next_seq.fetch_add(1, Ordering::SeqCst);
            for t in shared.all_tables() {
                if let Err(e) = compact::compact_table(&t, min, &next_seq) {
                    tracing::error!(table = %t.name, error = %e, "compaction failed; inputs kept");
                }
            }
        }
    }
}

fn remove_table_files(t: &Table) -> Result<()> {
    let mut st = t.state.write();
    for s in st.segments.drain(..) {
        s.obsolete.store(true, Ordering::SeqCst);
    }
    st.frozen.clear();
    st.active = buffer::Buffer::default();
    drop(st);
    if t.dir.exists() {
        fs::remove_dir_all(&t.dir).map_err(|e| Error::io("remove table", &t.dir, e))?;
        if let Some(parent) = t.dir.parent() {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

fn enforce_retention(shared: &Shared, now: i64) -> Result<usize> {
    let dbs: Vec<Arc<Database>> = shared.dbs.read().values().cloned().collect();
    let mut removed = 0;
    for db in dbs {
        let tables: Vec<Arc<Table>> = db.tables.read().values().cloned().collect();
        for t in tables {
            let Some(cutoff) = db.retention_cutoff(&t, now) else {
                continue;
            };
            let mut st = t.state.write();
            let expired: Vec<Arc<segment::Segment>> = st
                .segments
                .iter()
                .filter(|s| s.footer.max_time < cutoff)
                .cloned()
                .collect();
            if expired.is_empty() {
                continue;
            }
            st.segments.retain(|s| s.footer.max_time >= cutoff);
            drop(st);
            for s in expired {
                tracing::info!(table = %t.name, path = %s.path.display(), "deleting expired segment");
                s.obsolete.store(true, Ordering::SeqCst);
                removed += 1;
                let dir = s.path.parent().map(Path::to_path_buf);
                drop(s);
                // An emptied partition directory goes too (fails harmlessly while a query
                // still holds a file in it).
                if let Some(dir) = dir {
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
    }
    Ok(removed)
}

/// Loads every segment under `dbs_dir`; returns the highest sequence number seen.
fn load_segments(shared: &Shared, dbs_dir: &Path) -> Result<u64> {
    let mut max_seq = 0;
    for db_entry in read_dir(dbs_dir)? {
        let Some(db_name) = decode_name(&db_entry.file_name().to_string_lossy()) else {
            continue;
        };
        if !db_entry.path().is_dir() {
            continue;
        }
        let db = shared.database_or_create(&db_name);
        *db.meta.write() = meta::read(&db_entry.path())?;
        for t_entry in read_dir(&db_entry.path())? {
            let Some(t_name) = decode_name(&t_entry.file_name().to_string_lossy()) else {
                continue;
            };
            if !t_entry.path().is_dir() {
                continue;
            }
            let table = db.table_or_create(&t_name);
            let mut files: Vec<((u64, u32), PathBuf)> = Vec::new();
            for p_entry in read_dir(&t_entry.path())? {
                let pname = p_entry.file_name().to_string_lossy().into_owned();
                if table::parse_partition_dir(&pname).is_none() || !p_entry.path().is_dir() {
                    continue;
                }
                for f in read_dir(&p_entry.path())? {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".tmp") {
                        let _ = fs::remove_file(f.path());
                    } else if let Some(order) = segment::parse_file_name(&name) {
                        files.push((order, f.path()));
                    }
                }
            }
            files.sort();
            let mut st = table.state.write();
            st.meta = meta::read(&t_entry.path())?;
            // Sequence numbers must stay above every tombstone's, or new rows would be
            // hidden by an old DELETE.
            max_seq = st
                .meta
                .tombstones
                .iter()
                .map(|t| t.seq)
                .fold(max_seq, u64::max);
            let mut loaded = Vec::new();
            for (order, path) in files {
                match segment::Segment::open(&path, &mut st.registry) {
                    Ok(seg) => {
                        for sid in &seg.series_ids {
                            let key = st.registry.key_arc(*sid);
                            for (k, _) in key.pairs() {
                                st.schema.add_tag(k);
                            }
                        }
                        for (name, ty) in &seg.footer.fields {
                            st.schema.add_field(name, *ty);
                        }
                        max_seq = max_seq.max(order.0);
                        loaded.push(Arc::new(seg));
                    }
                    Err(e) => {
                        let quarantine = path.with_extension("corrupt");
                        tracing::error!(path = %path.display(), error = %e, "quarantining corrupt segment");
                        let _ = fs::rename(&path, &quarantine);
                    }
                }
            }
            // A compaction that crashed after writing its output but before deleting its
            // inputs: the output names the inputs, which are dropped now.
            let replaced: std::collections::HashSet<PathBuf> = loaded
                .iter()
                .flat_map(|s| s.footer.replaces.iter().map(|n| s.path.with_file_name(n)))
                .collect();
            for seg in loaded {
                if replaced.contains(&seg.path) {
                    tracing::info!(path = %seg.path.display(), "removing segment replaced by a compaction");
                    let _ = fs::remove_file(&seg.path);
                } else {
                    st.segments.push(seg);
                }
            }
        }
    }
    Ok(max_seq)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io("list directory", dir, e))
}

fn read_checkpoint(dir: &Path) -> Result<u64> {
    let path = dir.join("checkpoint");
    match fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::Corrupt(format!("{}: not a number", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io("read checkpoint", &path, e)),
    }
}

fn write_checkpoint(dir: &Path, wal_upto: u64) -> Result<()> {
    let path = dir.join("checkpoint");
    let tmp = dir.join("checkpoint.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{wal_upto}\n").as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::io("write checkpoint", &path, e))?;
    fsync_dir(dir)
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
