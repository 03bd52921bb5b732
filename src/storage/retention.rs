//! Retention: partitions whose rows are all older than their table's (or database's) TTL
//! are deleted with their segment files.

use super::*;

pub(super) fn remove_table_files(t: &Table) -> Result<()> {
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

pub(super) fn enforce_retention(shared: &Shared, now: i64) -> Result<usize> {
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
