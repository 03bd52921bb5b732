//! Flushing: the flusher thread freezes the buffers when they pass a size or age, writes
//! each as a segment, records the checkpoint (the last WAL file all in segments) and
//! removes the WAL files it covers; it also runs compaction and retention.

use super::*;

/// Freezes the buffers, writes every frozen buffer as a segment, records the checkpoint
/// and deletes the WAL files it covers.
pub(super) fn checkpoint(shared: &Shared, tx: &mpsc::Sender<Command>) -> Result<()> {
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
pub(super) fn flush_loop(shared: Arc<Shared>, tx: mpsc::Sender<Command>, rx: mpsc::Receiver<bool>) {
    let flush_every = shared
        .config
        .flush_interval
        .get()
        .max(Duration::from_millis(100));
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

pub(super) fn read_checkpoint(dir: &Path) -> Result<u64> {
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

pub(super) fn write_checkpoint(dir: &Path, wal_upto: u64) -> Result<()> {
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
