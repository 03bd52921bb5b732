//! Flushing: the flusher thread freezes the buffers when they pass a size or age, writes
//! each as a segment, records the checkpoint (the last WAL file all in segments) and
//! removes the WAL files it covers; it also runs compaction and retention.

use super::*;

/// Freezes the buffers, writes every frozen buffer as a segment, records the checkpoint
/// and deletes the WAL files it covers.
///
/// One table's failure does not hold back the others: its buffers stay (queryable, retried
/// at the next checkpoint), the checkpoint records the first WAL file that may hold its
/// rows so replay restores them, and the WAL files from that one on are kept. The error
/// names the tables that failed, after every other table was flushed.
pub(super) fn checkpoint(shared: &Shared, tx: &mpsc::Sender<Command>) -> Result<()> {
    let mut written_upto = shared.checkpoint_lock.lock();
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
    let mut failed: BTreeMap<(String, String), String> = BTreeMap::new();
    for (t, f) in &pending {
        match t.flush_frozen(f, width) {
            Ok(n) => {
                rows += n;
                let bytes = f.buffer.bytes();
                let _ =
                    shared
                        .frozen_bytes
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            Some(b.saturating_sub(bytes))
                        });
            }
            Err(e) => {
                failed.insert((t.db.clone(), t.name.clone()), e.to_string());
            }
        }
    }
    let now = SystemClock.now_nanos();
    for t in shared.all_tables() {
        let mut st = t.state.write();
        if st.frozen.is_empty() {
            if st.unflushed.take().is_some() {
                tracing::info!(db = %t.db, table = %t.name, "table flushed again");
            }
            continue;
        }
        let error = failed
            .get(&(t.db.clone(), t.name.clone()))
            .cloned()
            .unwrap_or_default();
        let previous = st.unflushed.take();
        let wal_from = previous
            .as_ref()
            .map_or(cp.wal_from, |u| u.wal_from.min(cp.wal_from));
        tracing::error!(db = %t.db, table = %t.name, error = %error, wal_from,
            "table cannot be flushed; its rows stay buffered and in the WAL");
        st.unflushed = Some(table::Unflushed {
            wal_from,
            error,
            failures: previous.map_or(0, |u| u.failures) + 1,
            since: now,
        });
    }
    shared
        .stats
        .flush_failures
        .fetch_add(failed.len() as u64, Ordering::Relaxed);
    let file = write_checkpoint_file(shared, cp.wal_upto)?;
    *written_upto = cp.wal_upto;
    remove_covered_wal(shared, &file)?;
    shared.stats.flushes.fetch_add(1, Ordering::Relaxed);
    if rows > 0 {
        tracing::info!(
            segments = pending.len(),
            rows,
            wal_upto = cp.wal_upto,
            "flushed buffers to segments"
        );
    }
    match failed.into_iter().next() {
        None => Ok(()),
        Some(((db, table), error)) => Err(Error::Unflushed {
            table: format!("{db}.{table}"),
            error,
        }),
    }
}

/// The tables the checkpoint must keep WAL files for: (first WAL file, db, table).
fn held_tables(shared: &Shared) -> Vec<Held> {
    shared
        .all_tables()
        .iter()
        .filter_map(|t| {
            let st = t.state.read();
            st.unflushed.as_ref().map(|u| Held {
                wal_from: u.wal_from,
                db: t.db.clone(),
                table: t.name.clone(),
            })
        })
        .collect()
}

/// Writes the checkpoint file for `wal_upto` with the tables held now; returns it.
fn write_checkpoint_file(shared: &Shared, wal_upto: u64) -> Result<CheckpointFile> {
    let file = CheckpointFile {
        wal_upto,
        held: held_tables(shared),
    };
    write_checkpoint(&shared.dir, &file)?;
    Ok(file)
}

/// Rewrites the checkpoint file without tables that no longer exist (after a DROP, so a
/// dropped table's rows are not replayed from the WAL files kept for it).
pub(super) fn rewrite_checkpoint(shared: &Shared) -> Result<()> {
    let written_upto = shared.checkpoint_lock.lock();
    let file = write_checkpoint_file(shared, *written_upto)?;
    remove_covered_wal(shared, &file)
}

/// Removes the WAL files the checkpoint covers and no held table needs.
fn remove_covered_wal(shared: &Shared, cp: &CheckpointFile) -> Result<()> {
    let keep_from = cp.keep_from();
    let wal_dir = shared.dir.join("wal");
    for id in wal::list(&wal_dir)? {
        if id <= cp.wal_upto && id < keep_from {
            let p = wal_dir.join(wal::file_name(id));
            fs::remove_file(&p).map_err(|e| Error::io("remove WAL", &p, e))?;
        }
    }
    Ok(())
}

/// Flushes when the buffers pass the size threshold (the WAL thread signals) or the flush
/// interval has passed; wakes at least once a minute to enforce retention and compact.
pub(super) fn flush_loop(shared: Arc<Shared>, tx: mpsc::Sender<Command>, rx: mpsc::Receiver<bool>) {
    let flush_every = shared
        .config
        .flush_interval
        .get()
        .max(Duration::from_millis(100));
    let wake_every = flush_every.min(Duration::from_secs(60));
    let mut last_flush = Instant::now();
    let mut last_wake = Instant::now();
    // After a failed flush (a full disk, say) the next try waits, doubling up to 5 s,
    // instead of spinning on the error.
    let mut backoff = Duration::ZERO;
    let mut retry_at = Instant::now();
    loop {
        let wait = wake_every
            .saturating_sub(last_wake.elapsed())
            .max(retry_at.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while rx.try_recv().is_ok() {}
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        if Instant::now() < retry_at {
            continue;
        }
        let buffered = shared.buffered_bytes.load(Ordering::Relaxed);
        let max = shared.config.max_buffer_bytes;
        // Writes are refused past max_buffer_bytes: flush before that, whatever the threshold.
        let full = buffered >= shared.config.flush_threshold_bytes
            || max > 0 && buffered + shared.frozen_bytes.load(Ordering::Relaxed) >= max / 2;
        if full || last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            if let Err(e) = checkpoint(&shared, &tx) {
                backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                retry_at = Instant::now() + backoff;
                tracing::error!(error = %e, retry_in = ?backoff, "flush failed; will retry");
                continue;
            }
            backoff = Duration::ZERO;
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

/// A table whose rows from WAL file `wal_from` on are not all in segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub wal_from: u64,
    pub db: String,
    pub table: String,
}

/// The checkpoint file: the last WAL file whose rows are all in segments, except for the
/// held tables' rows. Text: the number on the first line, then `held <wal> <db> <table>`
/// lines with the names encoded as file names.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CheckpointFile {
    pub wal_upto: u64,
    pub held: Vec<Held>,
}

impl CheckpointFile {
    /// Whether replay must apply `table`'s rows from WAL file `wal` (at or below the
    /// checkpoint).
    pub fn holds(&self, wal: u64, db: &str, table: &str) -> bool {
        self.held
            .iter()
            .any(|h| h.wal_from <= wal && h.db == db && h.table == table)
    }

    /// The first WAL file at or below the checkpoint that replay needs.
    pub fn keep_from(&self) -> u64 {
        self.held
            .iter()
            .map(|h| h.wal_from)
            .min()
            .unwrap_or(u64::MAX)
    }
}

pub(super) fn read_checkpoint(dir: &Path) -> Result<CheckpointFile> {
    let path = dir.join("checkpoint");
    let text = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CheckpointFile::default()),
        Err(e) => return Err(Error::io("read checkpoint", &path, e)),
    };
    let bad = |what: &str| Error::Corrupt(format!("{}: {what}", path.display()));
    let mut lines = text.lines();
    let wal_upto = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("not a number"))?;
    let mut held = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["held", wal, db, table] => held.push(Held {
                wal_from: wal.parse().map_err(|_| bad("bad held line"))?,
                db: decode_name(db).ok_or_else(|| bad("bad held line"))?,
                table: decode_name(table).ok_or_else(|| bad("bad held line"))?,
            }),
            _ => return Err(bad("bad held line")),
        }
    }
    Ok(CheckpointFile { wal_upto, held })
}

pub(super) fn write_checkpoint(dir: &Path, cp: &CheckpointFile) -> Result<()> {
    let path = dir.join("checkpoint");
    let tmp = dir.join("checkpoint.tmp");
    let mut text = format!("{}\n", cp.wal_upto);
    for h in &cp.held {
        text.push_str(&format!(
            "held {} {} {}\n",
            h.wal_from,
            encode_name(&h.db),
            encode_name(&h.table)
        ));
    }
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::io("write checkpoint", &path, e))?;
    fsync_dir(dir)
}
