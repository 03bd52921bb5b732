//! The engine's public operations ([`Engine`]: open, write, flush, compact, DDL,
//! retention, shutdown) and the shared state they and the background threads work on
//! ([`Shared`]: checking and applying writes to the buffers).

use super::*;

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
            frozen_bytes: AtomicUsize::new(0),
            stats: Stats::default(),
            closing: AtomicBool::new(false),
            checkpoint_lock: Mutex::new(0),
            rotated_upto: AtomicU64::new(0),
            quarantine: Mutex::new(Vec::new()),
            sync_hook: Mutex::new(None),
            flush_tx: Mutex::new(None),
        });
        quarantine::load(&shared)?;
        let max_seq = recovery::load_segments(&shared, &dbs_dir)?;
        shared.next_seq.store(max_seq + 1, Ordering::SeqCst);
        shared.database_or_create(DEFAULT_DATABASE);

        let last_id = recovery::replay_wal(&shared, dir, &wal_dir)?;
        let cp = flush::read_checkpoint(dir)?;
        *shared.checkpoint_lock.lock() = cp.wal_upto;
        shared.rotated_upto.store(cp.wal_upto, Ordering::SeqCst);
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
            .spawn(move || writer::wal_loop(s, writer, rx))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let s = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("sundial-flush".into())
            .spawn(move || flush::flush_loop(s, tx, flush_rx))
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
        schema::check_name("database", db).map_err(Error::InvalidName)?;
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
        schema::check_name("database", db).map_err(Error::InvalidName)?;
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
        flush::checkpoint(&self.shared, &tx)
    }

    /// The checkpoint before a DROP: tables that cannot be flushed do not stop it.
    fn flush_for_drop(&self) -> Result<()> {
        match self.flush() {
            Err(Error::Unflushed { table, error }) => {
                tracing::warn!(%table, %error, "dropping while a table cannot be flushed");
                Ok(())
            }
            other => other,
        }
    }

    /// Installs a function that runs before every WAL fsync; an error it returns fails
    /// that sync as the kernel's would. For tests that prove nothing is acknowledged
    /// before it is durable, and that a failed sync is never acknowledged.
    pub fn set_sync_hook(&self, hook: Option<wal::SyncHook>) {
        *self.shared.sync_hook.lock() = hook;
    }

    /// What recovery found damaged and set aside, oldest first.
    pub fn quarantined(&self) -> Vec<quarantine::Quarantined> {
        self.shared.quarantine.lock().clone()
    }

    /// Tables whose buffered rows could not be written as segments, with why.
    pub fn unflushed_tables(&self) -> Vec<UnflushedTable> {
        self.shared
            .all_tables()
            .iter()
            .filter_map(|t| {
                let st = t.state.read();
                Some(UnflushedTable {
                    db: t.db.clone(),
                    table: t.name.clone(),
                    buffered_rows: st.frozen.iter().map(|f| f.buffer.rows()).sum(),
                    state: st.unflushed.clone()?,
                })
            })
            .collect()
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
        schema::check_name("database", name).map_err(Error::InvalidName)?;
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
        // The rows written before now must be in segments before the tombstone exists,
        // or replaying the WAL would bring them back above it. Other tables' flush
        // failures do not matter here.
        let flushed = self.flush();
        let Some(t) = self.database(db).and_then(|d| d.table(table)) else {
            return Ok(false);
        };
        if let Err(e) = flushed {
            if let Some(u) = t.state.read().unflushed.clone() {
                return Err(Error::Unflushed {
                    table: format!("{db}.{table}"),
                    error: u.error,
                });
            }
            if !matches!(e, Error::Unflushed { .. }) {
                return Err(e);
            }
        }
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
        // Checkpoint first so the WAL holds none of the table's rows to replay. A table
        // that cannot be flushed can still be dropped: the checkpoint is written again
        // without it, so the WAL files kept for it are not replayed into it.
        self.flush_for_drop()?;
        let Some(t) = database.tables.write().remove(table) else {
            return Ok(false);
        };
        t.uncount_series();
        flush::rewrite_checkpoint(&self.shared)?;
        retention::remove_table_files(&t)?;
        Ok(true)
    }

    /// Drops a database with all its tables. The default database is emptied, not removed.
    pub fn drop_database(&self, name: &str) -> Result<bool> {
        if self.database(name).is_none() {
            return Ok(false);
        }
        self.flush_for_drop()?;
        let Some(db) = self.shared.dbs.write().remove(name) else {
            return Ok(false);
        };
        let tables: Vec<Arc<Table>> = std::mem::take(&mut *db.tables.write())
            .into_values()
            .collect();
        flush::rewrite_checkpoint(&self.shared)?;
        for t in &tables {
            retention::remove_table_files(t)?;
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
        retention::enforce_retention(&self.shared, now)
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

    /// The settings the engine runs with (defaults resolved).
    pub fn config(&self) -> &StorageConfig {
        &self.shared.config
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
    pub(super) fn partition_width(&self) -> i64 {
        crate::duration::secs_to_nanos(self.config.partition_width.get().as_secs().max(1))
    }

    pub(super) fn database_or_create(&self, name: &str) -> Arc<Database> {
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
    /// changing anything, and — unless `replay` (acknowledged points are never refused
    /// later) — against the limits on columns and series. Returns the accepted points and
    /// the rejections.
    pub(super) fn check<'p>(
        &self,
        db: &str,
        points: &[&'p Point],
        accept_partial: bool,
        replay: bool,
    ) -> (Vec<&'p Point>, Vec<(usize, SchemaError)>) {
        let database = self.dbs.read().get(db).cloned();
        let limits = if replay {
            schema::PointLimits::NONE
        } else {
            self.point_limits()
        };
        let mut series = SeriesGuard::new(self, database.as_deref(), db, points.len(), replay);
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
            match schema
                .check(p, limits)
                .and_then(|()| series.admit(&p.table, &p.tags))
            {
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

    fn point_limits(&self) -> schema::PointLimits {
        schema::PointLimits {
            columns: self.config.max_columns_per_table,
            tags: self.config.max_tags_per_point,
            fields: self.config.max_fields_per_point,
        }
    }

    /// Adds the new columns of accepted points to their tables' schemas at once, so the
    /// next write checked (before this one is applied) sees them.
    pub(super) fn reserve(&self, db: &str, points: &[&Point]) {
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
    /// (creating tables), as [`Shared::check`] and [`Shared::reserve`] do for points, with
    /// the same limits unless `replay`.
    /// Returns the accepted samples and the rejections.
    pub(super) fn check_samples(
        &self,
        db: &str,
        tables: Vec<TableSamples>,
        replay: bool,
    ) -> (Vec<TableSamples>, Vec<(usize, SchemaError)>) {
        let database = self.database_or_create(db);
        let limits = if replay {
            schema::PointLimits::NONE
        } else {
            self.point_limits()
        };
        let total = tables.iter().map(|t| t.samples.len()).sum();
        let mut series = SeriesGuard::new(self, Some(&database), db, total, replay);
        let mut accepted = Vec::with_capacity(tables.len());
        let mut rejected = Vec::new();
        let mut offset = 0;
        for mut t in tables {
            let base = offset;
            offset += t.samples.len();
            if let Err(e) = schema::check_name("measurement", &t.table) {
                rejected.extend((base..offset).map(|i| (i, e.clone())));
                continue;
            }
            let table = database.table_or_create(&t.table);
            let mut st = table.state.write();
            let st = &mut *st;
            let schema = &mut st.schema;
            let new_field = usize::from(schema.field_id(&t.field).is_none());
            if let Err(e) = schema
                .check_field(&t.field, FieldType::Float)
                .and_then(|()| schema.check_columns(&t.table, new_field, limits.columns))
            {
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
                        let new = key.iter().filter(|(k, _)| !schema.has_tag(k)).count();
                        last_error = schema.check_columns(&t.table, new, limits.columns).err();
                    }
                    if last_error.is_none() {
                        for (k, _) in key {
                            schema.add_tag(k);
                        }
                    }
                    last_keys = Some(key);
                }
                let series_error = if last_error.is_none() {
                    let registry = &st.registry;
                    series
                        .count(&t.table, registry.len(), key, || {
                            registry.get(key).is_some()
                        })
                        .err()
                } else {
                    None
                };
                if let Some(e) = last_error.as_ref().or(series_error.as_ref()) {
                    rejected.push((base + i, e.clone()));
                }
                keep.push(last_error.is_none() && series_error.is_none());
            }
            let mut keep = keep.into_iter();
            t.samples.retain(|_| keep.next().unwrap_or(false));
            if !t.samples.is_empty() {
                accepted.push(t);
            }
        }
        (accepted, rejected)
    }

    /// Applies checked samples to the buffers.
    pub(super) fn apply_samples(&self, db: &str, tables: &[TableSamples]) -> usize {
        let database = self.database_or_create(db);
        let grown: usize = tables
            .iter()
            .map(|t| database.table_or_create(&t.table).apply_samples(t))
            .sum();
        self.note_growth(grown);
        tables.iter().map(|t| t.samples.len()).sum()
    }

    pub(super) fn note_growth(&self, grown: usize) {
        let total = self.buffered_bytes.fetch_add(grown, Ordering::Relaxed) + grown;
        if total >= self.config.flush_threshold_bytes
            && let Some(tx) = self.flush_tx.lock().as_ref()
        {
            let _ = tx.send(true);
        }
    }

    /// Applies checked points to the buffers.
    pub(super) fn apply(&self, db: &str, points: &[&Point]) {
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

    /// Refuses a write while the buffers hold more than `max_buffer_bytes` (the flusher
    /// is woken to catch up). The running counts only grow between flushes, so they are
    /// recounted from the buffers before a write is refused.
    pub(super) fn admit_write(&self) -> Result<()> {
        let limit = self.config.max_buffer_bytes;
        if limit == 0 {
            return Ok(());
        }
        let counted =
            self.buffered_bytes.load(Ordering::Relaxed) + self.frozen_bytes.load(Ordering::Relaxed);
        if counted <= limit {
            return Ok(());
        }
        let frozen: usize = self
            .all_tables()
            .iter()
            .map(|t| {
                t.state
                    .read()
                    .frozen
                    .iter()
                    .map(|f| f.buffer.bytes())
                    .sum::<usize>()
            })
            .sum();
        self.frozen_bytes.store(frozen, Ordering::Relaxed);
        let buffered = self.buffered_bytes.load(Ordering::Relaxed) + frozen;
        if buffered <= limit {
            return Ok(());
        }
        if let Some(tx) = self.flush_tx.lock().as_ref() {
            let _ = tx.send(true);
        }
        Err(Error::BuffersFull { buffered, limit })
    }

    pub(super) fn all_tables(&self) -> Vec<Arc<Table>> {
        let dbs: Vec<Arc<Database>> = self.dbs.read().values().cloned().collect();
        dbs.iter()
            .flat_map(|d| d.tables.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }
}

/// Counts the series a batch of points adds against the per-table and per-database
/// limits. Far from both (the usual case) it costs nothing per point; near one, each
/// point's series is looked up, and new ones are counted.
struct SeriesGuard<'a> {
    database: Option<&'a Database>,
    db: &'a str,
    table_max: usize,
    db_max: usize,
    batch: usize,
    db_series: usize,
    db_near: bool,
    /// Per table looked up by [`SeriesGuard::admit`]: it and its series before the batch.
    tables: HashMap<String, (Option<Arc<Table>>, usize)>,
    /// Per table: the new series admitted so far.
    new: HashMap<String, std::collections::HashSet<SeriesKey>>,
    added: usize,
}

impl<'a> SeriesGuard<'a> {
    fn new(
        shared: &Shared,
        database: Option<&'a Database>,
        db: &'a str,
        batch: usize,
        off: bool,
    ) -> SeriesGuard<'a> {
        let (table_max, db_max) = if off {
            (0, 0)
        } else {
            (
                shared.config.max_series_per_table,
                shared.config.max_series_per_database,
            )
        };
        let db_series = match database {
            Some(d) if db_max > 0 => d.series_count(),
            _ => 0,
        };
        SeriesGuard {
            database,
            db,
            table_max,
            db_max,
            batch,
            db_series,
            db_near: db_max > 0 && db_series + batch > db_max,
            tables: HashMap::new(),
            new: HashMap::new(),
            added: 0,
        }
    }

    /// Whether a table with `before` series is near a limit with this batch.
    fn near(&self, before: usize) -> bool {
        self.db_near || self.table_max > 0 && before + self.batch > self.table_max
    }

    /// Admits a point of `table` (looked up here, once per batch) with series `key`.
    fn admit(&mut self, table: &str, key: &SeriesKey) -> Result<(), SchemaError> {
        if self.table_max == 0 && !self.db_near {
            return Ok(());
        }
        if !self.tables.contains_key(table) {
            let t = self.database.and_then(|d| d.table(table));
            let n = t.as_ref().map_or(0, |t| t.state.read().registry.len());
            self.tables.insert(table.to_string(), (t, n));
        }
        let (t, before) = &self.tables[table];
        if !self.near(*before) {
            return Ok(());
        }
        let (t, before) = (t.clone(), *before);
        self.count(table, before, key, || {
            t.is_some_and(|t| t.state.read().registry.get(key).is_some())
        })
    }

    /// Counts `key` against the limits if it is a new series of `table`, which has
    /// `before` series (`registered` says whether `key` is one of them).
    fn count(
        &mut self,
        table: &str,
        before: usize,
        key: &SeriesKey,
        registered: impl FnOnce() -> bool,
    ) -> Result<(), SchemaError> {
        if !self.near(before) {
            return Ok(());
        }
        if !self.new.contains_key(table) {
            self.new.insert(table.to_string(), Default::default());
        }
        let new = self.new.get_mut(table).expect("inserted above");
        if new.contains(key) || registered() {
            return Ok(());
        }
        if self.table_max > 0 && before + new.len() + 1 > self.table_max {
            return Err(SchemaError::SeriesLimit {
                scope: format!("table '{table}'"),
                what: "table",
                max: self.table_max,
            });
        }
        if self.db_max > 0 && self.db_series + self.added + 1 > self.db_max {
            return Err(SchemaError::SeriesLimit {
                scope: format!("database '{}'", self.db),
                what: "database",
                max: self.db_max,
            });
        }
        new.insert(key.clone());
        self.added += 1;
        Ok(())
    }
}
