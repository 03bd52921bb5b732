//! Recovery on open: segment files are loaded (a segment a finished compaction replaced
//! is removed), then the WAL after the checkpoint is replayed into the buffers.

use super::*;

/// Loads every segment under `dbs_dir`; returns the highest sequence number seen.
pub(super) fn load_segments(shared: &Shared, dbs_dir: &Path) -> Result<u64> {
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
            let series_before = st.registry.len();
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
                match segment::verify_file(&path)
                    .and_then(|()| segment::Segment::open(&path, &mut st.registry))
                {
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
                    Err(e) => quarantine::segment(shared, &path, &e.to_string())?,
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
            table.count_series(series_before, &st.registry);
        }
    }
    Ok(max_seq)
}

pub(super) fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    fs::read_dir(dir)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io("list directory", dir, e))
}

/// Replays the WAL files after the checkpoint into the buffers (removing the ones the
/// checkpoint covers, except those a held table still needs, whose rows of that table
/// only are replayed); returns the id of the last WAL file.
pub(super) fn replay_wal(shared: &Shared, dir: &Path, wal_dir: &Path) -> Result<u64> {
    let cp = flush::read_checkpoint(dir)?;
    let now = SystemClock.now_nanos();
    for h in &cp.held {
        let table = shared.database_or_create(&h.db).table_or_create(&h.table);
        table.state.write().unflushed = Some(table::Unflushed {
            wal_from: h.wal_from,
            error: String::new(),
            failures: 0,
            since: now,
        });
    }
    let mut last_id = cp.wal_upto;
    let keep_from = cp.keep_from();
    for id in wal::list(wal_dir)? {
        let covered = id <= cp.wal_upto;
        if covered && id < keep_from {
            let p = wal_dir.join(wal::file_name(id));
            fs::remove_file(&p).map_err(|e| Error::io("remove WAL", &p, e))?;
            continue;
        }
        last_id = last_id.max(id);
        let wal::FileRead {
            records, damaged, ..
        } = wal::read_file(wal_dir, id)?;
        for d in &damaged {
            quarantine::wal_bytes(shared, id, d)?;
        }
        let mut points = 0usize;
        let mut replay = wal::FileReplay::default();
        for rec in &records {
            let (stored, rejected) = match replay.decode(rec) {
                Ok(wal::Record::Points(batch)) => {
                    let refs: Vec<&Point> = batch
                        .points
                        .iter()
                        .filter(|p| !covered || cp.holds(id, &batch.db, &p.table))
                        .collect();
                    let (accepted, rejected) = shared.check(&batch.db, &refs, true, true);
                    shared.apply(&batch.db, &accepted);
                    (accepted.len(), rejected.len())
                }
                Ok(wal::Record::Samples { db, mut tables }) => {
                    if covered {
                        tables.retain(|t| cp.holds(id, &db, &t.table));
                    }
                    let (accepted, rejected) = shared.check_samples(&db, tables, true);
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
    Ok(last_id)
}
