//! Scans read one series at a time. [`Table::plan_scan`] takes a snapshot of the layers
//! under the table's lock (segments, frozen buffers, the active buffer's matching rows)
//! and lists, per matching series, the pieces each layer holds of it; [`Scan::read`] then
//! reads a series outside the lock, so scans stream, and the series of a scan can be split
//! between threads.
//!
//! A series whose pieces do not overlap in time (data written in time order, and always
//! after compaction) is read without a merge: each piece decoded straight into [`Dense`]
//! columns, cut to the time range, and appended. Value predicates ([`ValuePredicate`],
//! e.g. `usage_user > 90`) are checked first against each block's statistics, which skips
//! blocks that cannot match without reading them, then on the predicate columns alone;
//! the other columns are decoded only for blocks with a matching row (late
//! materialisation). Overlapping pieces, or pieces a tombstone covers, take the general
//! path: decoded as rows, tombstones applied, merged newest-wins (see [`Rows::merge`]).

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use roaring::RoaringBitmap;

use super::buffer::TimeRange;
use super::codec::{self, ColumnStats};
use super::meta::{ResolvedTombstone, apply_tombstones};
use super::rows::{Column, Dense, Rows};
use super::schema::{FieldType, PackedKey};
use super::segment::Segment;
use super::table::{Table, field_ids};
use super::{Error, Result, ScanRequest, Stats};

/// A comparison operator of a [`ValuePredicate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eq,
    NotEq,
}

/// `field <op> value` on a numeric field, compared as `f64` in Arrow's total order (NaN
/// above every number), which is how the query engine compares a column cast to float.
/// Scans apply it as a superset filter: a row it drops is a row the query would drop.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePredicate {
    /// Index into [`ScanRequest::fields`].
    pub field: usize,
    pub op: CmpOp,
    pub value: f64,
}

impl ValuePredicate {
    fn holds(&self, v: f64) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let o = v.total_cmp(&self.value);
        match self.op {
            CmpOp::Lt => o == Less,
            CmpOp::LtEq => o != Greater,
            CmpOp::Gt => o == Greater,
            CmpOp::GtEq => o != Less,
            CmpOp::Eq => o == Equal,
            CmpOp::NotEq => o != Equal,
        }
    }

    /// Whether a block with `stats` may hold a row that passes. Float blocks whose NaN
    /// content is unknown, or comparisons with zero (whose sign `min`/`max` blur), are
    /// never skipped.
    fn may_pass(&self, ty: FieldType, stats: &ColumnStats, nan_known: bool) -> bool {
        let (Some(min), Some(max)) = (stats.min, stats.max) else {
            // No present value: no row passes.
            return false;
        };
        if ty == FieldType::Float && (!nan_known || stats.nan || self.value == 0.0) {
            return true;
        }
        let (lo, hi) = (min.total_cmp(&self.value), max.total_cmp(&self.value));
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self.op {
            CmpOp::Lt => lo == Less,
            CmpOp::LtEq => lo != Greater,
            CmpOp::Gt => hi == Greater,
            CmpOp::GtEq => hi != Less,
            CmpOp::Eq => lo != Greater && hi != Less,
            CmpOp::NotEq => !(lo == Equal && hi == Equal),
        }
    }
}

/// Where one layer keeps rows of a series.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Series `index` of segment `segment` (indices into [`Scan`]'s lists).
    Segment { segment: u32, index: u32 },
    /// Rows `lo..hi` of buffer layer `buffer`.
    Buffer { buffer: u32, lo: u32, hi: u32 },
}

/// The pieces of one series, oldest layer first.
#[derive(Debug)]
pub struct SeriesPlan {
    pub sid: u32,
    /// At most this many rows.
    pub rows: u64,
    pieces: Vec<PlacedPiece>,
}

/// A piece with its layer's precedence (sequence, generation) and its min and max time.
type PlacedPiece = ((u64, u32), Piece, i64, i64);

/// A scan's snapshot of a table (see the module docs).
pub struct Scan {
    pub fields: Vec<(String, FieldType)>,
    range: TimeRange,
    predicates: Vec<ValuePredicate>,
    /// Only each series' newest row in the range (see [`Scan::read`]).
    latest: bool,
    segments: Vec<Arc<Segment>>,
    /// Buffer layers as rows sorted by (series, time), each with its sequence number.
    buffers: Vec<(u64, Rows)>,
    tombstones: Vec<ResolvedTombstone>,
    /// The series to read, ascending by id.
    pub series: Vec<SeriesPlan>,
    /// Series id → its key.
    pub keys: Vec<Arc<PackedKey>>,
}

/// One series' rows in the scan: timestamps ascending, one column per requested field.
#[derive(Debug)]
pub struct SeriesChunk {
    pub sid: u32,
    pub time: Vec<i64>,
    pub columns: Vec<Dense>,
}

/// Open segment files of one reader.
#[derive(Default)]
pub struct Files(HashMap<u32, File>);

impl Table {
    /// Snapshots what `req` reads (see the module docs); `predicates` refer to
    /// `req.fields`.
    pub fn plan_scan(
        &self,
        req: &ScanRequest,
        predicates: Vec<ValuePredicate>,
        latest: bool,
        stats: &Stats,
    ) -> Scan {
        let range = req.range;
        let (segments, frozen, active, keys, series, tombstones) = {
            let st = self.state.read();
            let series: Option<RoaringBitmap> = st.registry.index.eval(&req.tags);
            let tombstones: Vec<ResolvedTombstone> = st
                .meta
                .tombstones
                .iter()
                .map(|t| t.resolve(&st.registry.index))
                .collect();
            let segments: Vec<Arc<Segment>> = st
                .segments
                .iter()
                .filter(|s| s.overlaps(range))
                .cloned()
                .collect();
            stats
                .segments_pruned
                .fetch_add((st.segments.len() - segments.len()) as u64, Relaxed);
            stats
                .segments_read
                .fetch_add(segments.len() as u64, Relaxed);
            let ids = field_ids(&st.schema, &req.fields);
            let active = st.active.to_rows(range, series.as_ref(), &ids);
            (
                segments,
                st.frozen.clone(),
                active,
                st.registry.keys(),
                series,
                tombstones,
            )
        };
        let mut buffers: Vec<(u64, Rows)> = frozen
            .iter()
            .map(|f| {
                let ids = field_ids(&f.schema, &req.fields);
                (f.seq, f.buffer.to_rows(range, series.as_ref(), &ids))
            })
            .collect();
        buffers.push((u64::MAX, active));
        let mut pieces: Vec<(u32, PlacedPiece)> = Vec::new();
        for (si, s) in segments.iter().enumerate() {
            for (i, meta) in s.footer.series.iter().enumerate() {
                let sid = s.series_ids[i];
                if series.as_ref().is_some_and(|b| !b.contains(sid))
                    || !range.overlaps(meta.min_time, meta.max_time)
                {
                    continue;
                }
                let piece = Piece::Segment {
                    segment: si as u32,
                    index: i as u32,
                };
                let order = (s.footer.seq, s.footer.generation);
                pieces.push((sid, (order, piece, meta.min_time, meta.max_time)));
            }
        }
        for (bi, (seq, rows)) in buffers.iter().enumerate() {
            let order = (*seq, if *seq == u64::MAX { u32::MAX } else { 0 });
            let mut lo = 0;
            while lo < rows.len() {
                let sid = rows.series[lo];
                let hi = lo + rows.series[lo..].partition_point(|s| *s == sid);
                let piece = Piece::Buffer {
                    buffer: bi as u32,
                    lo: lo as u32,
                    hi: hi as u32,
                };
                let (min, max) = (rows.time[lo], rows.time[hi - 1]);
                pieces.push((sid, (order, piece, min, max)));
                lo = hi;
            }
        }
        pieces.sort_by_key(|(sid, (order, ..))| (*sid, *order));
        let mut plans: Vec<SeriesPlan> = Vec::new();
        for (sid, (order, piece, min, max)) in pieces {
            let rows = match piece {
                Piece::Segment { segment, index } => {
                    u64::from(segments[segment as usize].footer.series[index as usize].rows)
                }
                Piece::Buffer { lo, hi, .. } => u64::from(hi - lo),
            };
            match plans.last_mut() {
                Some(p) if p.sid == sid => {
                    p.rows += rows;
                    p.pieces.push((order, piece, min, max));
                }
                _ => plans.push(SeriesPlan {
                    sid,
                    rows,
                    pieces: vec![(order, piece, min, max)],
                }),
            }
        }
        Scan {
            fields: req.fields.clone(),
            range,
            predicates,
            latest,
            segments,
            buffers,
            tombstones,
            series: plans,
            keys,
        }
    }
}

impl Scan {
    /// Whether the scan returns each series' newest row only.
    pub fn latest(&self) -> bool {
        self.latest
    }

    /// At most how many rows the scan reads.
    pub fn estimate(&self) -> u64 {
        self.series.iter().map(|s| s.rows).sum()
    }

    /// Reads series `plan` (one of [`Scan::series`]); `None` when no row of it is in range
    /// and passes the predicates. A latest-row scan returns only the newest such row.
    pub fn read(
        &self,
        plan: &SeriesPlan,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Option<SeriesChunk>> {
        if self.latest {
            return self.read_latest(plan, files, stats);
        }
        self.read_range(plan, self.range, files, stats)
    }

    /// A series' newest row: from the newest piece alone (its footer statistics when they
    /// hold the last row, so nothing is decoded) unless another piece may hold a row as
    /// new, then by the general path over the rows from that time on.
    fn read_latest(
        &self,
        plan: &SeriesPlan,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Option<SeriesChunk>> {
        let covered = self.tombstones.iter().any(|t| {
            t.series.as_ref().is_none_or(|b| b.contains(plan.sid))
                && plan
                    .pieces
                    .iter()
                    .any(|(o, _, min, max)| t.seq > o.0 && t.min <= *max && *min <= t.max)
        });
        let mut order: Vec<usize> = (0..plan.pieces.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(plan.pieces[*i].3.min(self.range.max)));
        for (k, &i) in order.iter().enumerate() {
            if covered {
                break;
            }
            let (_, piece, ..) = plan.pieces[i];
            let chunk = match self.last_from_stats(plan.sid, piece) {
                Some(c) => Some(c),
                None => self
                    .read_piece(plan.sid, piece, files, stats)?
                    .map(last_row),
            };
            let Some(chunk) = chunk else { continue };
            let t = chunk.time[0];
            let rival = order.iter().enumerate().any(|(j, &p)| {
                j != k && plan.pieces[p].3 >= t && plan.pieces[p].2 <= self.range.max
            });
            if !rival {
                return Ok(Some(chunk));
            }
            let from = TimeRange {
                min: t,
                max: self.range.max,
            };
            return Ok(self.read_range(plan, from, files, stats)?.map(last_row));
        }
        Ok(self
            .read_range(plan, self.range, files, stats)?
            .map(last_row))
    }

    /// The last row of a segment piece from its footer, when the statistics record it and
    /// it is in the range (string fields need their blocks: `None` then).
    fn last_from_stats(&self, sid: u32, piece: Piece) -> Option<SeriesChunk> {
        let Piece::Segment { segment, index } = piece else {
            return None;
        };
        let seg = &self.segments[segment as usize];
        let meta = &seg.footer.series[index as usize];
        if seg.footer.stats_version < 1 || !self.range.contains(meta.max_time) {
            return None;
        }
        let mut columns = Vec::with_capacity(self.fields.len());
        for (name, ty) in &self.fields {
            let stats = seg
                .footer
                .fields
                .iter()
                .position(|(n, t)| n == name && t == ty)
                .and_then(|c| meta.fields[c].as_ref())
                .map(|fm| &fm.stats);
            columns.push(match (stats, ty) {
                (None, _) => Dense::nulls(*ty, 1),
                (Some(_), FieldType::String) => return None,
                (Some(st), ty) => Dense::from_bits(*ty, st.last),
            });
        }
        Some(SeriesChunk {
            sid,
            time: vec![meta.max_time],
            columns,
        })
    }

    /// [`Scan::read`] over `range`.
    fn read_range(
        &self,
        plan: &SeriesPlan,
        range: TimeRange,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Option<SeriesChunk>> {
        let covered = |order: (u64, u32), min: i64, max: i64| {
            self.tombstones.iter().any(|t| {
                t.seq > order.0
                    && t.min <= max
                    && min <= t.max
                    && t.series.as_ref().is_none_or(|b| b.contains(plan.sid))
            })
        };
        let mut by_time: Vec<_> = plan.pieces.iter().collect();
        by_time.sort_by_key(|(_, _, min, _)| *min);
        let disjoint = by_time.windows(2).all(|w| w[0].3 < w[1].2);
        let general = !disjoint
            || plan
                .pieces
                .iter()
                .any(|(o, _, min, max)| covered(*o, *min, *max));
        let mut out: Option<SeriesChunk> = None;
        if general {
            let mut layers = Vec::with_capacity(plan.pieces.len());
            for (order, piece, ..) in &plan.pieces {
                let rows = self.piece_rows(*piece, range, files, stats)?;
                layers.push(apply_tombstones(rows, order.0, &self.tombstones));
            }
            let types: Vec<FieldType> = self.fields.iter().map(|(_, t)| *t).collect();
            let rows = Rows::merge(layers, &types);
            let mut chunk = SeriesChunk {
                sid: plan.sid,
                time: rows.time,
                columns: rows.columns.into_iter().map(Dense::from).collect(),
            };
            if self.filter(&mut chunk) {
                out = Some(chunk);
            }
        } else {
            for (_, piece, ..) in by_time {
                let Some(chunk) = self.read_piece_in(plan.sid, *piece, range, files, stats)? else {
                    continue;
                };
                match &mut out {
                    None => out = Some(chunk),
                    Some(o) => {
                        o.time.extend_from_slice(&chunk.time);
                        for (dst, src) in o.columns.iter_mut().zip(chunk.columns) {
                            dst.append(src);
                        }
                    }
                }
            }
        }
        Ok(out.filter(|c| !c.time.is_empty()))
    }

    /// Applies the predicates to a chunk; false when no row is left.
    fn filter(&self, chunk: &mut SeriesChunk) -> bool {
        if self.predicates.is_empty() {
            return !chunk.time.is_empty();
        }
        let keep = self.mask(|i| &chunk.columns[i], chunk.time.len());
        let kept = keep.iter().filter(|k| **k).count();
        if kept == 0 {
            return false;
        }
        if kept < keep.len() {
            let mut k = keep.iter();
            chunk.time.retain(|_| *k.next().unwrap_or(&false));
            for c in &mut chunk.columns {
                c.filter(&keep);
            }
        }
        true
    }

    /// Rows passing every predicate, given the decoded columns (`None` where a column
    /// has not been decoded: its predicates are not evaluated then).
    fn mask<'c>(&self, column: impl Fn(usize) -> &'c Dense, rows: usize) -> Vec<bool> {
        let mut keep = vec![true; rows];
        for p in &self.predicates {
            let col = column(p.field);
            for (i, k) in keep.iter_mut().enumerate() {
                if *k {
                    *k = col.number(i).is_some_and(|v| v.is_nan() || p.holds(v));
                }
            }
        }
        keep
    }

    fn file<'f>(&self, segment: u32, files: &'f mut Files) -> Result<&'f File> {
        if let std::collections::hash_map::Entry::Vacant(e) = files.0.entry(segment) {
            e.insert(self.segments[segment as usize].file()?);
        }
        Ok(&files.0[&segment])
    }

    /// A piece as rows (the general path), cut to the range.
    fn piece_rows(
        &self,
        piece: Piece,
        range: TimeRange,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Rows> {
        let types: Vec<FieldType> = self.fields.iter().map(|(_, t)| *t).collect();
        let mut rows = Rows::new(&types);
        match piece {
            Piece::Segment { segment, index } => {
                let f = self.file(segment, files)?.try_clone().map_err(|e| {
                    Error::io("open segment", &self.segments[segment as usize].path, e)
                })?;
                let seg = &self.segments[segment as usize];
                let bytes = seg.read_series(&f, index as usize, range, &self.fields, &mut rows)?;
                stats.segment_bytes_read.fetch_add(bytes, Relaxed);
            }
            Piece::Buffer { buffer, lo, hi } => {
                let src = &self.buffers[buffer as usize].1;
                let (lo, hi) = clip(&src.time, lo as usize, hi as usize, range);
                rows.series.extend_from_slice(&src.series[lo..hi]);
                rows.time.extend_from_slice(&src.time[lo..hi]);
                for (dst, col) in rows.columns.iter_mut().zip(&src.columns) {
                    dst.append(slice_column(col, lo, hi));
                }
            }
        }
        Ok(rows)
    }

    /// A piece read on the fast path: predicates on block statistics, then on the
    /// predicate columns, then the other columns for the rows that pass.
    fn read_piece(
        &self,
        sid: u32,
        piece: Piece,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Option<SeriesChunk>> {
        self.read_piece_in(sid, piece, self.range, files, stats)
    }

    /// [`Scan::read_piece`] over `range` (within the scan's).
    fn read_piece_in(
        &self,
        sid: u32,
        piece: Piece,
        range: TimeRange,
        files: &mut Files,
        stats: &Stats,
    ) -> Result<Option<SeriesChunk>> {
        let (seg_index, index) = match piece {
            Piece::Segment { segment, index } => (segment, index as usize),
            Piece::Buffer { buffer, lo, hi } => {
                let src = &self.buffers[buffer as usize].1;
                let (lo, hi) = clip(&src.time, lo as usize, hi as usize, range);
                if lo >= hi {
                    return Ok(None);
                }
                let columns = src
                    .columns
                    .iter()
                    .map(|c| Dense::from(slice_column(c, lo, hi)))
                    .collect();
                let mut chunk = SeriesChunk {
                    sid,
                    time: src.time[lo..hi].to_vec(),
                    columns,
                };
                return Ok(self.filter(&mut chunk).then_some(chunk));
            }
        };
        let seg = &self.segments[seg_index as usize];
        let meta = &seg.footer.series[index];
        // Footer column of each requested field.
        let cols: Vec<Option<usize>> = self
            .fields
            .iter()
            .map(|(name, ty)| {
                seg.footer
                    .fields
                    .iter()
                    .position(|(n, t)| n == name && t == ty)
                    .filter(|c| meta.fields[*c].is_some())
            })
            .collect();
        for p in &self.predicates {
            let ty = self.fields[p.field].1;
            let passes = cols[p.field].is_some_and(|c| {
                let fm = meta.fields[c].as_ref().expect("checked");
                p.may_pass(ty, &fm.stats, seg.footer.stats_version >= 1)
            });
            if !passes {
                stats.blocks_skipped.fetch_add(1, Relaxed);
                return Ok(None);
            }
        }
        let corrupt = |e: codec::CodecError| Error::Corrupt(format!("{}: {e}", seg.path.display()));
        let f = self.file(seg_index, files)?;
        let rows = meta.rows as usize;
        let mut bytes = u64::from(meta.time.len);
        let mut time =
            codec::decode_time(&seg.read_block(f, &meta.time)?, rows).map_err(corrupt)?;
        let lo = time.partition_point(|t| *t < range.min);
        let hi = time.partition_point(|t| *t <= range.max);
        if lo >= hi {
            stats.segment_bytes_read.fetch_add(bytes, Relaxed);
            return Ok(None);
        }
        let decode = |i: usize, bytes: &mut u64| -> Result<Dense> {
            let ty = self.fields[i].1;
            let Some(c) = cols[i] else {
                return Ok(Dense::nulls(ty, hi - lo));
            };
            let fm = meta.fields[c].as_ref().expect("checked");
            *bytes += u64::from(fm.block.len);
            let mut d =
                codec::decode_dense(&seg.read_block(f, &fm.block)?, ty, rows).map_err(corrupt)?;
            if lo > 0 || hi < rows {
                d.slice(lo, hi);
            }
            Ok(d)
        };
        let mut columns: Vec<Option<Dense>> = (0..self.fields.len()).map(|_| None).collect();
        for p in &self.predicates {
            if columns[p.field].is_none() {
                columns[p.field] = Some(decode(p.field, &mut bytes)?);
            }
        }
        let keep = if self.predicates.is_empty() {
            None
        } else {
            let keep = self.mask(|i| columns[i].as_ref().expect("decoded"), hi - lo);
            if !keep.iter().any(|k| *k) {
                stats.segment_bytes_read.fetch_add(bytes, Relaxed);
                return Ok(None);
            }
            Some(keep)
        };
        for (i, column) in columns.iter_mut().enumerate() {
            if column.is_none() {
                *column = Some(decode(i, &mut bytes)?);
            }
        }
        stats.segment_bytes_read.fetch_add(bytes, Relaxed);
        time.truncate(hi);
        time.drain(..lo);
        let mut columns: Vec<Dense> = columns.into_iter().map(|c| c.expect("decoded")).collect();
        if let Some(keep) = keep.filter(|k| k.iter().any(|x| !*x)) {
            let mut k = keep.iter();
            time.retain(|_| *k.next().unwrap_or(&false));
            for c in &mut columns {
                c.filter(&keep);
            }
        }
        Ok(Some(SeriesChunk { sid, time, columns }))
    }
}

/// The part of rows `lo..hi` (one series, ascending times) inside `range`.
fn clip(time: &[i64], lo: usize, hi: usize, range: TimeRange) -> (usize, usize) {
    let t = &time[lo..hi];
    (
        lo + t.partition_point(|x| *x < range.min),
        lo + t.partition_point(|x| *x <= range.max),
    )
}

/// A chunk cut to its last row.
fn last_row(mut c: SeriesChunk) -> SeriesChunk {
    let n = c.time.len();
    if n > 1 {
        c.time.drain(..n - 1);
        for col in &mut c.columns {
            col.slice(n - 1, n);
        }
    }
    c
}

/// Rows `lo..hi` of a column.
fn slice_column(c: &Column, lo: usize, hi: usize) -> Column {
    match c {
        Column::Float(v) => Column::Float(v[lo..hi].to_vec()),
        Column::Integer(v) => Column::Integer(v[lo..hi].to_vec()),
        Column::UInteger(v) => Column::UInteger(v[lo..hi].to_vec()),
        Column::String(v) => Column::String(v[lo..hi].to_vec()),
        Column::Boolean(v) => Column::Boolean(v[lo..hi].to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Engine, Point, StorageConfig, TagPredicate, Value, WriteOptions};

    const OPTS: WriteOptions = WriteOptions {
        accept_partial: true,
        sync: false,
    };

    /// One row as compared: series, time, the float and the integer field.
    type Row = (u32, i64, Option<u64>, Option<i64>);

    fn reference(rows: &Rows) -> Vec<Row> {
        let mut out: Vec<Row> = (0..rows.len())
            .map(|r| {
                let f = match &rows.columns[0] {
                    Column::Float(v) => v[r].map(f64::to_bits),
                    _ => unreachable!(),
                };
                let i = match &rows.columns[1] {
                    Column::Integer(v) => v[r],
                    _ => unreachable!(),
                };
                (rows.series[r], rows.time[r], f, i)
            })
            .collect();
        out.sort();
        out
    }

    fn streamed(scan: &Scan, stats: &Stats) -> Vec<Row> {
        let mut files = Files::default();
        let mut out = Vec::new();
        for plan in &scan.series {
            let Some(c) = scan.read(plan, &mut files, stats).unwrap() else {
                continue;
            };
            for (r, t) in c.time.iter().enumerate() {
                let f = match &c.columns[0].values {
                    crate::storage::rows::DenseValues::Float(v) => {
                        c.columns[0].is_valid(r).then(|| v[r].to_bits())
                    }
                    _ => unreachable!(),
                };
                let i = match &c.columns[1].values {
                    crate::storage::rows::DenseValues::Integer(v) => {
                        c.columns[1].is_valid(r).then_some(v[r])
                    }
                    _ => unreachable!(),
                };
                out.push((c.sid, *t, f, i));
            }
        }
        out.sort();
        out
    }

    /// Whatever the layering (overlapping flushes, out-of-order writes, partial rows,
    /// deletes, rows still buffered), a streamed scan returns exactly what the merging
    /// scan returns; with a value predicate, exactly its rows that pass; in latest mode,
    /// each series' last row.
    #[tokio::test]
    async fn streamed_scans_match_the_merging_scan() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..12 {
            let dir = tempfile::tempdir().unwrap();
            let e = Engine::open(dir.path(), StorageConfig::default()).unwrap();
            for batch in 0..8 {
                let points: Vec<Point> = (0..60)
                    .map(|_| {
                        let mut fields = Vec::new();
                        if rand(4) != 0 {
                            fields.push(("f".to_string(), Value::Float(rand(100) as f64 - 20.0)));
                        }
                        if rand(4) != 0 || fields.is_empty() {
                            fields.push(("i".to_string(), Value::Integer(rand(20) as i64 - 5)));
                        }
                        Point {
                            table: "m".into(),
                            tags: vec![("host".into(), format!("h{}", rand(4)))],
                            fields,
                            time: rand(200) as i64,
                        }
                    })
                    .collect();
                e.write("db", points, OPTS).await.unwrap();
                if rand(2) == 0 && batch < 7 {
                    e.flush().unwrap();
                }
                if rand(5) == 0 {
                    let lo = rand(200) as i64;
                    let tags = if rand(2) == 0 {
                        Vec::new()
                    } else {
                        vec![TagPredicate::Eq("host".into(), format!("h{}", rand(4)))]
                    };
                    e.delete(
                        "db",
                        "m",
                        TimeRange {
                            min: lo,
                            max: lo + 30,
                        },
                        tags,
                    )
                    .unwrap();
                }
            }
            if round % 3 == 0 {
                e.compact(2).unwrap();
            }
            let t = e.database("db").unwrap().table("m").unwrap();
            let fields = vec![
                ("f".to_string(), FieldType::Float),
                ("i".to_string(), FieldType::Integer),
            ];
            for range in [TimeRange::ALL, TimeRange { min: 50, max: 149 }] {
                let req = ScanRequest {
                    range,
                    tags: Vec::new(),
                    fields: fields.clone(),
                };
                let want = reference(&t.scan(&req, e.stats()).unwrap().rows);
                let scan = t.plan_scan(&req, Vec::new(), false, e.stats());
                assert_eq!(streamed(&scan, e.stats()), want, "round {round}");
                let gt = ValuePredicate {
                    field: 1,
                    op: CmpOp::Gt,
                    value: 5.0,
                };
                let scan = t.plan_scan(&req, vec![gt], false, e.stats());
                let passing: Vec<Row> = want
                    .iter()
                    .filter(|r| r.3.is_some_and(|i| i > 5))
                    .copied()
                    .collect();
                assert_eq!(streamed(&scan, e.stats()), passing, "round {round}, i > 5");
                let scan = t.plan_scan(&req, Vec::new(), true, e.stats());
                let mut last: Vec<Row> = Vec::new();
                for r in &want {
                    match last.last_mut() {
                        Some(l) if l.0 == r.0 => *l = *r,
                        _ => last.push(*r),
                    }
                }
                assert_eq!(streamed(&scan, e.stats()), last, "round {round}, latest");
            }
        }
    }

    #[test]
    fn block_statistics_rule_out_only_what_cannot_pass() {
        let stats = |min: f64, max: f64, nan: bool| ColumnStats {
            nulls: 0,
            min: Some(min),
            max: Some(max),
            nan,
            last: None,
        };
        let p = |op, value| ValuePredicate {
            field: 0,
            op,
            value,
        };
        let int = FieldType::Integer;
        assert!(!p(CmpOp::Gt, 90.0).may_pass(int, &stats(0.0, 90.0, false), true));
        assert!(p(CmpOp::Gt, 90.0).may_pass(int, &stats(0.0, 91.0, false), true));
        assert!(p(CmpOp::GtEq, 90.0).may_pass(int, &stats(0.0, 90.0, false), true));
        assert!(!p(CmpOp::Lt, 0.0).may_pass(int, &stats(0.0, 5.0, false), true));
        assert!(!p(CmpOp::Eq, 7.0).may_pass(int, &stats(8.0, 9.0, false), true));
        assert!(!p(CmpOp::NotEq, 7.0).may_pass(int, &stats(7.0, 7.0, false), true));
        // All null: nothing passes.
        let empty = ColumnStats::default();
        assert!(!p(CmpOp::Gt, 1.0).may_pass(int, &empty, true));
        // Floats: NaN passes `>` (it sorts above every number), so blocks that may hold
        // it are read.
        let float = FieldType::Float;
        assert!(!p(CmpOp::Gt, 90.0).may_pass(float, &stats(0.0, 50.0, false), true));
        assert!(p(CmpOp::Gt, 90.0).may_pass(float, &stats(0.0, 50.0, true), true));
        assert!(p(CmpOp::Gt, 90.0).may_pass(float, &stats(0.0, 50.0, false), false));
        assert!(p(CmpOp::Gt, 1.0).holds(f64::NAN));
    }
}
