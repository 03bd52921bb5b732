//! Where alerting keeps its state on disk: one JSON file per rule (`rules/`), one per
//! rule's instances (`state/`), and the append-only history (`events.jsonl`); writes are
//! atomic (temp file, fsync, rename).

use super::*;

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file, rename), fsyncing if `durable`.
pub(super) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if durable && let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

pub(super) fn hash_name(name: &str) -> String {
    format!("{:016x}", crate::clock::fnv1a(name.bytes()))
}

impl Alerts {
    pub(super) fn save_state(&self, st: &RuleState) {
        let path = self
            .dir
            .join("state")
            .join(format!("{}.json", hash_name(&st.name)));
        let result = serde_json::to_vec(st)
            .map_err(|source| Error::Json {
                path: path.clone(),
                source,
            })
            .and_then(|bytes| write_atomic(&path, &bytes, true));
        if let Err(e) = result {
            tracing::error!(error = %e, "saving alert state failed");
        }
    }

    pub(super) fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut lines = String::new();
        for e in &events {
            if let Ok(line) = serde_json::to_string(e) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if let Err(e) = self.events_file.lock().write_all(lines.as_bytes()) {
            tracing::error!(error = %e, "appending alert events failed");
        }
        let mut all = self.events.lock();
        all.extend(events);
        if all.len() > EVENTS_IN_MEMORY + EVENTS_IN_MEMORY / 10 {
            let excess = all.len() - EVENTS_IN_MEMORY;
            all.drain(..excess);
        }
    }

    pub(super) fn rule_path(&self, name: &str) -> PathBuf {
        self.dir
            .join("rules")
            .join(format!("{}.json", hash_name(name)))
    }
}

/// Writes one rule's definition durably (blocking).
pub(super) fn save_rule(path: &Path, rule: &Rule) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(rule).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes, true)
}

/// Removes one rule's definition durably (blocking).
pub(super) fn remove_rule(path: &Path, dir: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
