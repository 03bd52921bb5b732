//! The in-memory write buffer of one table: rows keyed by (series id, time), so a later
//! write to the same point merges into it (InfluxDB's rule), queryable at once.

use smallvec::SmallVec;

#[cfg(test)]
use super::rows::Column;
use roaring::RoaringBitmap;

use super::rows::Rows;
use super::schema::{FieldType, Value};

/// Inclusive time bounds in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        min: i64::MIN,
        max: i64::MAX,
    };

    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.min <= max && min <= self.max
    }

    pub fn contains(&self, t: i64) -> bool {
        self.min <= t && t <= self.max
    }
}

/// Rows not yet in a segment file.
#[derive(Debug, Default)]
pub struct Buffer {
    /// By series id (registry ids are dense): time → values by field id (shorter than
    /// the schema when fields were added after the row was written). A series without
    /// rows here has an empty entry.
    series: Vec<SeriesBuffer>,
    rows: usize,
    bytes: usize,
    min_time: i64,
    max_time: i64,
}

/// Memory of a row with one field: its time and its inline values.
const ROW_BYTES: usize = std::mem::size_of::<i64>() + std::mem::size_of::<Row>();
/// Memory of each field slot beyond the inline one.
const SLOT_BYTES: usize = std::mem::size_of::<Option<Value>>();

/// The rows of one series, sorted by time. Appends (the common case) are O(1); an
/// out-of-order point is inserted by binary search. Two small vectors instead of a tree
/// keep a series with few buffered points cheap.
#[derive(Debug, Default)]
struct SeriesBuffer {
    times: Vec<i64>,
    values: Vec<Row>,
}

/// The values of one row by field id; a row of one field (a scrape sample, a single
/// field point) needs no allocation of its own.
pub type Row = SmallVec<[Option<Value>; 1]>;

impl SeriesBuffer {
    /// The row at `time`, created empty if absent; the flag says it was created.
    fn row(&mut self, time: i64) -> (&mut Row, bool) {
        if self.times.last().is_none_or(|last| *last < time) {
            self.times.push(time);
            self.values.push(Row::new());
            return (self.values.last_mut().expect("pushed"), true);
        }
        match self.times.binary_search(&time) {
            Ok(i) => (&mut self.values[i], false),
            Err(i) => {
                self.times.insert(i, time);
                self.values.insert(i, Row::new());
                (&mut self.values[i], true)
            }
        }
    }

    fn range(&self, range: TimeRange) -> impl Iterator<Item = (&i64, &Row)> {
        let lo = self.times.partition_point(|t| *t < range.min);
        let hi = self.times.partition_point(|t| *t <= range.max);
        self.times[lo..hi].iter().zip(&self.values[lo..hi])
    }
}

impl Buffer {
    /// Adds or merges one row.
    pub fn insert(&mut self, series: u32, time: i64, fields: Vec<(usize, Value)>) {
        self.merge(series, time, fields);
    }

    /// Sets one field of a row, adding the row if new.
    pub fn insert_one(&mut self, series: u32, time: i64, field: usize, value: Value) {
        self.merge(series, time, std::iter::once((field, value)));
    }

    fn merge(&mut self, series: u32, time: i64, fields: impl IntoIterator<Item = (usize, Value)>) {
        if self.rows == 0 {
            self.min_time = time;
            self.max_time = time;
        } else {
            self.min_time = self.min_time.min(time);
            self.max_time = self.max_time.max(time);
        }
        let at = series as usize;
        if self.series.len() <= at {
            self.series.resize_with(at + 1, SeriesBuffer::default);
        }
        let (row, created) = self.series[at].row(time);
        if created {
            self.rows += 1;
            self.bytes += ROW_BYTES;
        }
        for (id, value) in fields {
            if row.len() <= id {
                self.bytes += (id + 1).saturating_sub(row.len().max(1)) * SLOT_BYTES;
                row.resize(id + 1, None);
            }
            self.bytes += value.heap_size();
            row[id] = Some(value);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate memory held, for flush decisions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        (self.rows > 0).then_some((self.min_time, self.max_time))
    }

    /// The series ids in the buffer, ascending.
    pub fn series_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.times.is_empty())
            .map(|(id, _)| id as u32)
    }

    /// Rows in `range` sorted by (series id, time), with the given field ids as columns.
    pub fn to_rows(
        &self,
        range: TimeRange,
        series: Option<&RoaringBitmap>,
        fields: &[(usize, FieldType)],
    ) -> Rows {
        let types: Vec<FieldType> = fields.iter().map(|(_, t)| *t).collect();
        let mut out = Rows::new(&types);
        if !self
            .time_bounds()
            .is_some_and(|(a, b)| range.overlaps(a, b))
        {
            return out;
        }
        for (sid, points) in self.series.iter().enumerate() {
            let sid = sid as u32;
            if points.times.is_empty() || series.is_some_and(|s| !s.contains(sid)) {
                continue;
            }
            for (time, values) in points.range(range) {
                out.series.push(sid);
                out.time.push(*time);
                for (col, (id, _)) in out.columns.iter_mut().zip(fields) {
                    col.push(values.get(*id).and_then(Option::as_ref));
                }
            }
        }
        out
    }

    /// The rows of one series, for segment writing.
    pub fn series_rows(&self, series: u32) -> impl Iterator<Item = (&i64, &Row)> {
        self.series
            .get(series as usize)
            .into_iter()
            .flat_map(|m| m.times.iter().zip(&m.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_point_merges_and_later_wins() {
        let mut b = Buffer::default();
        b.insert(0, 10, vec![(0, Value::Float(1.0))]);
        b.insert(0, 10, vec![(1, Value::Integer(2))]);
        b.insert(0, 10, vec![(0, Value::Float(3.0))]);
        b.insert(1, 5, vec![(0, Value::Float(4.0))]);
        assert_eq!(b.rows(), 2);
        let r = b.to_rows(
            TimeRange::ALL,
            None,
            &[(0, FieldType::Float), (1, FieldType::Integer)],
        );
        assert_eq!(r.time, vec![10, 5]);
        assert_eq!(r.columns[0], Column::Float(vec![Some(3.0), Some(4.0)]));
        assert_eq!(r.columns[1], Column::Integer(vec![Some(2), None]));
        let r = b.to_rows(TimeRange { min: 0, max: 9 }, None, &[(0, FieldType::Float)]);
        assert_eq!(r.time, vec![5]);
    }
}
