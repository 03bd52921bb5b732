//! The WAL thread: takes writes in arrival order, checks them against the schemas,
//! appends a group of them to the WAL, fsyncs once for the group (group commit), applies
//! them to the buffers and answers each; it also rotates the WAL for checkpoints.

use super::*;

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

pub(super) fn wal_loop(
    shared: Arc<Shared>,
    mut writer: wal::WalWriter,
    rx: mpsc::Receiver<Command>,
) {
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
                    if let Err(e) = shared.admit_write() {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let refs: Vec<&Point> = points.iter().collect();
                    let (accepted, rejected) = shared.check(&db, &refs, opts.accept_partial, false);
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
                        if let Err(e) = writer.append_points(&db, &accepted) {
                            // Too large for one record: refused whole, nothing logged.
                            let _ = reply.send(Err(e));
                            continue;
                        }
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
                    if let Err(e) = shared.admit_write() {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let (accepted, rejected) = shared.check_samples(&db, tables, false);
                    if !accepted.is_empty() {
                        if let Err(e) = writer.append_samples(&db, &accepted) {
                            let _ = reply.send(Err(e));
                            continue;
                        }
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
    writer.sync_hook = shared.sync_hook.lock().clone();
    let result = writer.commit(sync).map(|fsync| {
        if let Some(took) = fsync {
            shared.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
            shared.stats.wal_fsync.observe(took);
        }
    });
    if let Err(e) = &result {
        // After a failed write or fsync the file's state is unknown (the kernel may have
        // dropped the dirty pages and cleared the error): nothing more is acknowledged on
        // it. Later writes go to a new file; until one can be created they fail too.
        tracing::error!(error = %e, wal = writer.id(), "WAL write failed; the group is refused and the WAL moves to a new file");
        shared.stats.wal_failures.fetch_add(1, Ordering::Relaxed);
        writer.poison();
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
                let _ = w
                    .reply
                    .send(Err(Error::WalFailed(e.to_string(), e.is_disk_full())));
            }
        }
    }
}

/// Starts a new WAL file and freezes every buffer (in the WAL thread, between writes).
pub(super) fn rotate(shared: &Shared, writer: &mut wal::WalWriter) -> Result<Checkpoint> {
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
    let moved: usize = frozen.iter().map(|(_, f)| f.buffer.bytes()).sum();
    shared.frozen_bytes.fetch_add(moved, Ordering::Relaxed);
    shared.buffered_bytes.store(0, Ordering::Relaxed);
    let wal_upto = writer.id() - 1;
    let wal_from = shared.rotated_upto.swap(wal_upto, Ordering::SeqCst) + 1;
    Ok(Checkpoint {
        wal_from,
        wal_upto,
        frozen,
    })
}
