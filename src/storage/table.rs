//! A table: its schema, series registry, write buffers and segment files, and the
//! consistent snapshot a query reads.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use super::buffer::{Buffer, TimeRange};
use super::rows::Rows;
use super::schema::{FieldType, Point, SeriesKey, SeriesRegistry, TableSchema};
use super::segment::Segment;
use super::{Result, Stats};

/// A buffer taken out of service for flushing; still queryable until its segment exists.
#[derive(Debug)]
pub struct Frozen {
    /// Sequence number; the segment written from it gets the same number.
    pub seq: u64,
    pub buffer: Buffer,
    pub schema: TableSchema,
    /// Keys of the buffer's series, in ascending series id order.
    pub keys: Vec<(u32, Arc<SeriesKey>)>,
}

/// Mutable state of a table, behind one lock.
#[derive(Debug, Default)]
pub struct TableState {
    pub schema: TableSchema,
    pub registry: SeriesRegistry,
    pub active: Buffer,
    pub frozen: Vec<Arc<Frozen>>,
    pub segments: Vec<Arc<Segment>>,
}

/// One table of one database.
#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub dir: PathBuf,
    pub state: RwLock<TableState>,
}

/// The rows a scan produced, with the tags of every series id they mention.
pub struct ScanOutput {
    pub rows: Rows,
    /// Series id → its key (indexable by every id in `rows.series`).
    pub keys: Vec<Arc<SeriesKey>>,
}

enum Layer {
    Segment(Arc<Segment>),
    Frozen(Arc<Frozen>),
}

impl Table {
    pub fn new(name: &str, dir: PathBuf) -> Table {
        Table {
            name: name.to_string(),
            dir,
            state: RwLock::new(TableState::default()),
        }
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
        for p in points {
            st.schema.extend(p);
            let sid = st.registry.get_or_insert(&p.tags);
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
        st.active.bytes() - before
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

    /// Replaces a frozen buffer by the segment written from it.
    pub fn install_segment(&self, frozen: &Arc<Frozen>, segment: Segment) {
        let mut st = self.state.write();
        st.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        st.segments.push(Arc::new(segment));
    }

    /// Reads the rows in `range` with the given field columns, merging every layer.
    pub fn scan(
        &self,
        range: TimeRange,
        fields: &[(String, FieldType)],
        stats: &Stats,
    ) -> Result<ScanOutput> {
        let types: Vec<FieldType> = fields.iter().map(|(_, t)| *t).collect();
        // Snapshot under the lock; decode outside it.
        let (mut layers, active_rows, keys) = {
            let st = self.state.read();
            let mut layers: Vec<(u64, Layer)> = Vec::new();
            for s in &st.segments {
                if s.overlaps(range) {
                    layers.push((s.footer.seq, Layer::Segment(s.clone())));
                } else {
                    stats
                        .segments_pruned
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            for f in &st.frozen {
                layers.push((f.seq, Layer::Frozen(f.clone())));
            }
            let ids = field_ids(&st.schema, fields);
            let active_rows = st.active.to_rows(range, &ids);
            (layers, active_rows, st.registry.keys())
        };
        layers.sort_by_key(|(seq, _)| *seq);
        let mut decoded = Vec::with_capacity(layers.len() + 1);
        for (_, layer) in layers {
            match layer {
                Layer::Segment(s) => {
                    let (rows, bytes) = s.read(range, fields)?;
                    stats
                        .segments_read
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    stats
                        .segment_bytes_read
                        .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                    decoded.push(rows);
                }
                Layer::Frozen(f) => {
                    decoded.push(f.buffer.to_rows(range, &field_ids(&f.schema, fields)))
                }
            }
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
fn field_ids(schema: &TableSchema, fields: &[(String, FieldType)]) -> Vec<(usize, FieldType)> {
    fields
        .iter()
        .map(|(name, ty)| match schema.field_id(name) {
            Some(id) if schema.fields[id].1 == *ty => (id, *ty),
            _ => (usize::MAX, *ty),
        })
        .collect()
}
