//! A table: its schema, series registry and index, write buffers and segment files (one
//! directory per time partition), and the consistent snapshot a query reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use roaring::RoaringBitmap;

use super::buffer::{Buffer, TimeRange};
use super::index::TagPredicate;
use super::meta::{ResolvedTombstone, apply_tombstones};
use super::rows::{Column, Rows};
use super::schema::{FieldType, PackedKey, Point, SeriesRegistry, TableSchema, Value};
use super::segment::{self, NewSegment, Segment, SeriesRows};
use super::{Result, Stats};

/// A buffer taken out of service for flushing; still queryable until its segments exist.
#[derive(Debug)]
pub struct Frozen {
    /// Sequence number; the segments written from it get the same number.
    pub seq: u64,
    pub buffer: Buffer,
    pub schema: TableSchema,
    /// Keys of the buffer's series, in ascending series id order.
    pub keys: Vec<(u32, Arc<PackedKey>)>,
}

/// Mutable state of a table, behind one lock.
#[derive(Debug, Default)]
pub struct TableState {
    pub schema: TableSchema,
    pub registry: SeriesRegistry,
    pub active: Buffer,
    pub frozen: Vec<Arc<Frozen>>,
    pub segments: Vec<Arc<Segment>>,
    /// TTL and tombstones, persisted in the table directory's `meta.json`.
    pub meta: super::meta::TableMeta,
    /// Set while buffered rows could not be written as segments: the first WAL file
    /// that may hold them (the checkpoint keeps it for replay) and why the flush failed.
    pub unflushed: Option<Unflushed>,
}

/// A table whose buffers could not be flushed.
#[derive(Debug, Clone)]
pub struct Unflushed {
    /// The first WAL file that may hold rows of the table not in its segments.
    pub wal_from: u64,
    /// The last flush error (empty when restored from the checkpoint at start).
    pub error: String,
    /// Failed flush attempts since the table last flushed.
    pub failures: u64,
    /// When the last attempt failed, ns since the epoch.
    pub since: i64,
}

/// One table of one database.
#[derive(Debug)]
pub struct Table {
    /// Unique in the process: a table dropped and created again gets a new one, so
    /// series ids cached under the old one are not reused.
    pub id: u32,
    /// The database it belongs to.
    pub db: String,
    pub name: String,
    pub dir: PathBuf,
    pub state: RwLock<TableState>,
    /// The database's series count (see [`Table::count_series`]).
    db_series: Arc<std::sync::atomic::AtomicUsize>,
}

/// The rows a scan produced, with the tags of every series id they mention.
pub struct ScanOutput {
    pub rows: Rows,
    /// Series id → its key (indexable by every id in `rows.series`).
    pub keys: Vec<Arc<PackedKey>>,
}

/// What a scan asks for.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub range: TimeRange,
    /// Tag predicates, all of which must hold.
    pub tags: Vec<TagPredicate>,
    /// Field columns to decode.
    pub fields: Vec<(String, FieldType)>,
}

enum Layer {
    Segment(Arc<Segment>),
    Frozen(Arc<Frozen>),
}

/// The start of the partition holding `t`.
pub fn partition_of(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// The directory name of a partition.
pub fn partition_dir(start: i64) -> String {
    format!("p{start}")
}

pub fn parse_partition_dir(name: &str) -> Option<i64> {
    name.strip_prefix('p')?.parse().ok()
}

impl Table {
    /// A table of database `db`, whose series count is `db_series`.
    pub fn new(
        db: &str,
        name: &str,
        dir: PathBuf,
        db_series: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Table {
        static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        Table {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            db: db.to_string(),
            name: name.to_string(),
            dir,
            state: RwLock::new(TableState::default()),
            db_series,
        }
    }

    /// Adds the series `registry` gained since it held `before` to the database's count.
    pub(super) fn count_series(&self, before: usize, registry: &super::schema::SeriesRegistry) {
        let added = registry.len().saturating_sub(before);
        if added > 0 {
            self.db_series
                .fetch_add(added, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes this table's series out of the database's count (it is being dropped).
    pub(super) fn uncount_series(&self) {
        let n = self.state.read().registry.len();
        let _ = self.db_series.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |c| Some(c.saturating_sub(n)),
        );
    }

    /// A copy of the current schema.
    pub fn schema(&self) -> TableSchema {
        self.state.read().schema.clone()
    }

    /// Adds points (already checked against the schema) to the active buffer.
    /// Returns the growth of the buffer in bytes.
    pub fn apply(&self, points: &[&Point]) -> usize {
        let mut st = self.state.write();
        let before = st.active.bytes();
        let series_before = st.registry.len();
        for p in points {
            st.schema.extend(p);
            let (sid, _) = st.registry.get_or_insert(&p.tags);
            let fields = p
                .fields
                .iter()
                .map(|(name, v)| {
                    (
                        st.schema.field_id(name).expect("field known after extend"),
                        v.clone(),
                    )
                })
                .collect();
            st.active.insert(sid, p.time, fields);
        }
        self.count_series(series_before, &st.registry);
        st.active.bytes().saturating_sub(before)
    }

    /// Adds prepared samples (already checked, their field and tags in the schema) to the
    /// active buffer. Returns the growth of the buffer in bytes.
    pub fn apply_samples(&self, samples: &super::TableSamples) -> usize {
        let mut st = self.state.write();
        let st = &mut *st;
        let before = st.active.bytes();
        let series_before = st.registry.len();
        let field = st.schema.add_field(&samples.field, FieldType::Float);
        for (series, time, value) in &samples.samples {
            let sid = series.id_in(self.id, &mut st.registry);
            st.active
                .insert_one(sid, *time, field, Value::Float(*value));
        }
        self.count_series(series_before, &st.registry);
        st.active.bytes().saturating_sub(before)
    }

    /// Moves the active buffer to the frozen list and returns it, if it has rows.
    pub fn freeze(&self, seq: u64) -> Option<Arc<Frozen>> {
        let mut st = self.state.write();
        if st.active.is_empty() {
            return None;
        }
        let buffer = std::mem::take(&mut st.active);
        let keys = buffer
            .series_ids()
            .map(|id| (id, st.registry.key_arc(id)))
            .collect();
        let frozen = Arc::new(Frozen {
            seq,
            buffer,
            schema: st.schema.clone(),
            keys,
        });
        st.frozen.push(frozen.clone());
        Some(frozen)
    }

    /// Writes a frozen buffer as one segment per time partition and installs them in
    /// place of the buffer.
    pub fn flush_frozen(&self, frozen: &Arc<Frozen>, width: i64) -> Result<u64> {
        let fields = frozen.schema.fields.clone();
        let mut parts: BTreeMap<i64, (Vec<u32>, Vec<SeriesRows>)> = BTreeMap::new();
        for (sid, key) in &frozen.keys {
            let mut current: Option<(i64, SeriesRows)> = None;
            for (t, values) in frozen.buffer.series_rows(*sid) {
                let p = partition_of(t, width);
                if current.as_ref().is_none_or(|(cp, _)| *cp != p) {
                    if let Some((cp, rows)) = current.take() {
                        let e = parts.entry(cp).or_default();
                        e.0.push(*sid);
                        e.1.push(rows);
                    }
                    let columns = fields.iter().map(|(_, ty)| Column::new(*ty, 0)).collect();
                    current = Some((
                        p,
                        SeriesRows {
                            key: key.to_key(),
                            time: Vec::new(),
                            columns,
                        },
                    ));
                }
                let (_, rows) = current.as_mut().expect("set above");
                rows.time.push(t);
                for (id, col) in rows.columns.iter_mut().enumerate() {
                    col.push(values.value(id).as_deref());
                }
            }
            if let Some((cp, rows)) = current {
                let e = parts.entry(cp).or_default();
                e.0.push(*sid);
                e.1.push(rows);
            }
        }
        let mut written = Vec::new();
        let mut rows = 0;
        for (p, (ids, series)) in parts {
            let new = NewSegment {
                dir: &self.dir.join(partition_dir(p)),
                seq: frozen.seq,
                generation: 0,
                partition: p,
                fields: fields.clone(),
                series,
                replaces: Vec::new(),
            };
            if let Some(seg) = segment::write(new, &ids)? {
                rows += seg.footer.rows;
                written.push(Arc::new(seg));
            }
        }
        let mut st = self.state.write();
        st.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        st.segments.extend(written);
        Ok(rows)
    }

    /// Reads the rows of a scan request, merging every layer (segments, frozen buffers,
    /// the active buffer) so the newest value of each field wins.
    /// The whole result at once, merged across layers with one sort: queries stream
    /// through [`Table::plan_scan`] instead; this stays as the plain reading that tests
    /// (and the streamed scan's own test) compare against.
    pub fn scan(&self, req: &ScanRequest, stats: &Stats) -> Result<ScanOutput> {
        use std::sync::atomic::Ordering::Relaxed;
        let types: Vec<FieldType> = req.fields.iter().map(|(_, t)| *t).collect();
        let range = req.range;
        // Snapshot under the lock; decode outside it.
        let (mut layers, active_rows, keys, series, tombstones) = {
            let st = self.state.read();
            let series: Option<RoaringBitmap> = st.registry.index.eval(&req.tags);
            let tombstones: Vec<ResolvedTombstone> = st
                .meta
                .tombstones
                .iter()
                .map(|t| t.resolve(&st.registry.index))
                .collect();
            let mut layers: Vec<((u64, u32), Layer)> = Vec::new();
            for s in &st.segments {
                if s.overlaps(range) {
                    layers.push((
                        (s.footer.seq, s.footer.generation),
                        Layer::Segment(s.clone()),
                    ));
                } else {
                    stats.segments_pruned.fetch_add(1, Relaxed);
                }
            }
            for f in &st.frozen {
                layers.push(((f.seq, 0), Layer::Frozen(f.clone())));
            }
            let ids = field_ids(&st.schema, &req.fields);
            let active_rows = st.active.to_rows(range, series.as_ref(), &ids);
            (layers, active_rows, st.registry.keys(), series, tombstones)
        };
        layers.sort_by_key(|(order, _)| *order);
        let mut decoded = Vec::with_capacity(layers.len() + 1);
        for ((seq, _), layer) in layers {
            let rows = match layer {
                Layer::Segment(s) => {
                    let (rows, bytes) = s.read(range, series.as_ref(), &req.fields)?;
                    stats.segments_read.fetch_add(1, Relaxed);
                    stats.segment_bytes_read.fetch_add(bytes, Relaxed);
                    rows
                }
                Layer::Frozen(f) => {
                    f.buffer
                        .to_rows(range, series.as_ref(), &field_ids(&f.schema, &req.fields))
                }
            };
            decoded.push(apply_tombstones(rows, seq, &tombstones));
        }
        decoded.push(active_rows);
        Ok(ScanOutput {
            rows: Rows::merge(decoded, &types),
            keys,
        })
    }
}

/// Field ids in `schema` for the requested columns; a field the schema lacks (or has with
/// another type) maps to an id no row has, so it reads as null.
pub(super) fn field_ids(
    schema: &TableSchema,
    fields: &[(String, FieldType)],
) -> Vec<(usize, FieldType)> {
    fields
        .iter()
        .map(|(name, ty)| match schema.field_id(name) {
            Some(id) if schema.fields[id].1 == *ty => (id, *ty),
            _ => (usize::MAX, *ty),
        })
        .collect()
}
