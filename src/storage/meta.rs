//! Durable metadata next to the data: a database's and a table's retention (TTL) and a
//! table's delete tombstones, as small JSON files (`meta.json`) replaced atomically.

use std::path::Path;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::index::{TagIndex, TagPredicate};
use super::rows::Rows;
use super::{Error, Result};

/// Metadata of a database.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DatabaseMeta {
    /// Rows older than this many seconds are expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Metadata of a table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TableMeta {
    /// Overrides the database's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstone>,
}

/// A `DELETE`: rows in `[min, max]` of the matching series, in every layer older than
/// `seq`, are gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub seq: u64,
    pub min: i64,
    pub max: i64,
    pub tags: Vec<TagPredicate>,
}

/// A tombstone with its series resolved for one scan.
pub struct ResolvedTombstone {
    pub seq: u64,
    pub min: i64,
    pub max: i64,
    /// `None`: every series.
    pub series: Option<RoaringBitmap>,
}

impl Tombstone {
    pub fn resolve(&self, index: &TagIndex) -> ResolvedTombstone {
        ResolvedTombstone {
            seq: self.seq,
            min: self.min,
            max: self.max,
            series: index.eval(&self.tags),
        }
    }
}

/// Removes the rows of a layer with sequence number `seq` that a newer tombstone covers.
pub fn apply_tombstones(rows: Rows, seq: u64, tombstones: &[ResolvedTombstone]) -> Rows {
    let relevant: Vec<&ResolvedTombstone> = tombstones.iter().filter(|t| t.seq > seq).collect();
    if relevant.is_empty() || rows.is_empty() {
        return rows;
    }
    let keep: Vec<bool> = (0..rows.len())
        .map(|i| {
            let (s, t) = (rows.series[i], rows.time[i]);
            !relevant.iter().any(|ts| {
                ts.min <= t && t <= ts.max && ts.series.as_ref().is_none_or(|b| b.contains(s))
            })
        })
        .collect();
    rows.filter(&keep)
}

/// Reads `dir/meta.json`, or the default when there is none.
pub fn read<T: for<'de> Deserialize<'de> + Default>(dir: &Path) -> Result<T> {
    let path = dir.join("meta.json");
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(Error::io("read metadata", &path, e)),
    }
}

/// Replaces `dir/meta.json` durably.
pub fn write<T: Serialize>(dir: &Path, meta: &T) -> Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        for d in dir.ancestors().skip(1).take(2) {
            super::fsync_dir(d)?;
        }
    }
    let path = dir.join("meta.json");
    let tmp = dir.join("meta.json.tmp");
    let data = serde_json::to_vec_pretty(meta).map_err(|e| Error::Internal(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::io("write metadata", &path, e))?;
    super::fsync_dir(dir)
}
