//! Quarantine: what recovery found damaged (a WAL record, a segment file) is moved to
//! `<data_dir>/quarantine/` instead of being read or deleted, logged, and listed (see
//! [`Engine::quarantined`](super::Engine::quarantined) and `system.quarantine`). The
//! server serves everything intact; nothing damaged is ever read as data.

use super::*;

/// One quarantined piece.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// The file in the quarantine directory.
    pub path: PathBuf,
    /// Where it came from (a WAL file and offset, a segment path).
    pub source: String,
    pub reason: String,
    pub bytes: u64,
    /// When it was quarantined (ns since the epoch; for pieces found at start, the file's
    /// modification time).
    pub time: i64,
}

pub(super) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("quarantine")
}

/// Lists what earlier runs quarantined.
pub(super) fn load(shared: &Shared) -> Result<()> {
    let qdir = dir(&shared.dir);
    if !qdir.exists() {
        return Ok(());
    }
    let mut found = Vec::new();
    for e in recovery::read_dir(&qdir)? {
        let meta = e
            .metadata()
            .map_err(|err| Error::io("stat", &e.path(), err))?;
        let time = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        found.push(Quarantined {
            path: e.path(),
            source: e.file_name().to_string_lossy().into_owned(),
            reason: "quarantined by an earlier run".into(),
            bytes: meta.len(),
            time,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    shared.quarantine.lock().extend(found);
    Ok(())
}

fn note(shared: &Shared, q: Quarantined) {
    tracing::error!(path = %q.path.display(), source = %q.source, reason = %q.reason,
        "quarantined damaged data");
    let mut list = shared.quarantine.lock();
    list.retain(|old| old.path != q.path);
    list.push(q);
}

/// Saves a damaged stretch of WAL file `wal` to the quarantine directory.
pub(super) fn wal_bytes(shared: &Shared, wal: u64, damaged: &wal::Damaged) -> Result<()> {
    let qdir = dir(&shared.dir);
    fs::create_dir_all(&qdir).map_err(|e| Error::io("create directory", &qdir, e))?;
    let path = qdir.join(format!("wal-{wal:020}-at-{}.bin", damaged.offset));
    fs::write(&path, &damaged.bytes).map_err(|e| Error::io("write quarantine", &path, e))?;
    note(
        shared,
        Quarantined {
            path,
            source: format!("{} at byte {}", wal::file_name(wal), damaged.offset),
            reason: "WAL record failed its checksum or framing; later records replayed".into(),
            bytes: damaged.bytes.len() as u64,
            time: SystemClock.now_nanos(),
        },
    );
    Ok(())
}

/// Moves a damaged segment file into the quarantine directory.
pub(super) fn segment(shared: &Shared, path: &Path, reason: &str) -> Result<()> {
    let qdir = dir(&shared.dir);
    fs::create_dir_all(&qdir).map_err(|e| Error::io("create directory", &qdir, e))?;
    let rel = path
        .strip_prefix(shared.dir.join("dbs"))
        .unwrap_or(path)
        .to_string_lossy()
        .replace('/', "~");
    let target = qdir.join(format!("seg-{rel}"));
    let bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    fs::rename(path, &target).map_err(|e| Error::io("quarantine segment", path, e))?;
    fsync_dir(&qdir)?;
    if let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    note(
        shared,
        Quarantined {
            path: target,
            source: path.display().to_string(),
            reason: reason.to_string(),
            bytes,
            time: SystemClock.now_nanos(),
        },
    );
    Ok(())
}
