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
/// Memory of a row of a float-only series: its time and its value.
const FLOAT_ROW_BYTES: usize = 2 * std::mem::size_of::<i64>();

/// The rows of one series, sorted by time. Appends (the common case) are O(1) and a
/// write to a time already buffered merges in place (binary search); a new time before
/// the last goes to a tree of out-of-order rows (O(log n)), which is merged into the
/// vectors in one pass once it holds a quarter as many rows, so any arrival order costs
/// O(n log n) in all. Vectors rather than a tree keep in-order series small.
#[derive(Debug, Default)]
struct SeriesBuffer {
    times: Vec<i64>,
    values: Values,
    /// Rows at times before `times.last()` and not in `times` (so the two never share a
    /// time).
    ooo: std::collections::BTreeMap<i64, Row>,
}

/// Sets fields of a row, later values winning; returns the bytes this adds.
fn set_fields(row: &mut Row, fields: impl IntoIterator<Item = (usize, Value)>) -> usize {
    let mut bytes = 0;
    for (id, value) in fields {
        if row.len() <= id {
            bytes += (id + 1).saturating_sub(row.len().max(1)) * SLOT_BYTES;
            row.resize(id + 1, None);
        }
        bytes += value.heap_size();
        row[id] = Some(value);
    }
    bytes
}

/// Memory of an out-of-order row (tree node share included), beyond its values.
const OOO_ROW_BYTES: usize = ROW_BYTES + 16;

/// Two iterators of rows with distinct times, each ascending, merged ascending.
struct ByTime<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'r, A, B> Iterator for ByTime<A, B>
where
    A: Iterator<Item = (i64, RowRef<'r>)>,
    B: Iterator<Item = (i64, RowRef<'r>)>,
{
    type Item = (i64, RowRef<'r>);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// A series' values, by row.
#[derive(Debug)]
enum Values {
    /// Every row has one float field, the same one (a scraped series, a one-field
    /// metric): a third of the memory of general rows, so a flush takes three times the
    /// points per series.
    Floats(usize, Vec<f64>),
    Rows(Vec<Row>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Rows(Vec::new())
    }
}

/// The values of one row by field id; a row of one field (a single field point) needs
/// no allocation of its own.
pub type Row = SmallVec<[Option<Value>; 1]>;

/// One buffered row's values.
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    Float(usize, f64),
    Row(&'a Row),
}

impl<'a> RowRef<'a> {
    /// The value of field `id`, if the row has one.
    pub fn value(self, id: usize) -> Option<std::borrow::Cow<'a, Value>> {
        match self {
            RowRef::Float(field, v) => {
                (field == id).then_some(std::borrow::Cow::Owned(Value::Float(v)))
            }
            RowRef::Row(row) => row
                .get(id)
                .and_then(Option::as_ref)
                .map(std::borrow::Cow::Borrowed),
        }
    }
}

impl SeriesBuffer {
    /// Where the row at `time` is: `Ok(i)` if present, `Err(i)` where it goes.
    fn find(&self, time: i64) -> Result<usize, usize> {
        match self.times.last() {
            None => Err(0),
            Some(last) if *last < time => Err(self.times.len()),
            Some(last) if *last == time => Ok(self.times.len() - 1),
            _ => self.times.binary_search(&time),
        }
    }

    /// Turns float rows into general rows; returns the bytes this adds.
    fn make_general(&mut self) -> usize {
        let Values::Floats(field, floats) = &self.values else {
            return 0;
        };
        let field = *field;
        let rows: Vec<Row> = floats
            .iter()
            .map(|v| {
                let mut row = Row::new();
                row.resize(field + 1, None);
                row[field] = Some(Value::Float(*v));
                row
            })
            .collect();
        self.values = Values::Rows(rows);
        self.times.len() * (ROW_BYTES - FLOAT_ROW_BYTES + field * SLOT_BYTES)
    }

    /// Sets one field of the row at `time`; returns (row created, bytes added). A float
    /// series stays one while rows bring just its float field.
    fn set_one(&mut self, time: i64, id: usize, value: Value) -> (bool, isize) {
        let at = self.find(time);
        if matches!(at, Err(i) if i < self.times.len()) {
            return self.merge_ooo(time, std::iter::once((id, value)));
        }
        if let Value::Float(v) = value {
            if self.times.is_empty() {
                self.values = Values::Floats(id, Vec::new());
            }
            if let Values::Floats(field, floats) = &mut self.values
                && *field == id
            {
                return match at {
                    Ok(i) => {
                        floats[i] = v;
                        (false, 0)
                    }
                    Err(_) => {
                        self.times.push(time);
                        floats.push(v);
                        (true, FLOAT_ROW_BYTES as isize)
                    }
                };
            }
        }
        self.merge_at(at, time, std::iter::once((id, value)))
    }

    /// Sets fields of the row at `time`; returns (row created, bytes added).
    fn merge(
        &mut self,
        time: i64,
        fields: impl IntoIterator<Item = (usize, Value)>,
    ) -> (bool, isize) {
        let at = self.find(time);
        if matches!(at, Err(i) if i < self.times.len()) {
            return self.merge_ooo(time, fields);
        }
        self.merge_at(at, time, fields)
    }

    /// [`merge`](Self::merge) in general rows, for a time found at `at` (`Ok`) or after
    /// the last row (`Err`).
    fn merge_at(
        &mut self,
        at: Result<usize, usize>,
        time: i64,
        fields: impl IntoIterator<Item = (usize, Value)>,
    ) -> (bool, isize) {
        let mut bytes = self.make_general();
        let Values::Rows(rows) = &mut self.values else {
            unreachable!("general rows");
        };
        let created = at.is_err();
        let i = at.unwrap_or_else(|_| {
            self.times.push(time);
            rows.push(Row::new());
            bytes += ROW_BYTES;
            rows.len() - 1
        });
        bytes += set_fields(&mut rows[i], fields);
        (created, bytes as isize)
    }

    /// Sets fields of the out-of-order row at `time` (a time before the last and not in
    /// the vectors); returns (row created, bytes added).
    fn merge_ooo(
        &mut self,
        time: i64,
        fields: impl IntoIterator<Item = (usize, Value)>,
    ) -> (bool, isize) {
        let (created, row) = match self.ooo.entry(time) {
            std::collections::btree_map::Entry::Occupied(e) => (false, e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => (true, e.insert(Row::new())),
        };
        let bytes = set_fields(row, fields) + if created { OOO_ROW_BYTES } else { 0 };
        let mut net = bytes as isize;
        if self.ooo.len() * 4 > self.times.len() {
            net += self.fold();
        }
        (created, net)
    }

    /// Merges the out-of-order rows into the vectors in one pass; returns the change in
    /// bytes (rows leave the tree; float rows may become general rows).
    fn fold(&mut self) -> isize {
        let ooo = std::mem::take(&mut self.ooo);
        let float_field = match &self.values {
            Values::Floats(field, _) => Some(*field),
            Values::Rows(_) => None,
        };
        let stays_float = float_field.is_some_and(|f| {
            ooo.values().all(|r| {
                r.len() == f + 1
                    && r[..f].iter().all(Option::is_none)
                    && matches!(r[f], Some(Value::Float(_)))
            })
        });
        let extra = if stays_float { 0 } else { self.make_general() };
        let moved = ooo.len() as isize;
        let row_bytes = if stays_float {
            FLOAT_ROW_BYTES
        } else {
            ROW_BYTES
        };
        // A float row keeps no field slots of its own.
        let slots: usize = if stays_float {
            ooo.values()
                .map(|r| r.len().saturating_sub(1) * SLOT_BYTES)
                .sum()
        } else {
            0
        };
        let net =
            extra as isize + moved * (row_bytes as isize - OOO_ROW_BYTES as isize) - slots as isize;
        let old_times = std::mem::take(&mut self.times);
        let n = old_times.len() + ooo.len();
        let mut times = Vec::with_capacity(n);
        // Indices into the old vectors, or out-of-order rows, in time order.
        let mut order: Vec<Result<usize, Row>> = Vec::with_capacity(n);
        let mut i = 0;
        for (t, row) in ooo {
            while i < old_times.len() && old_times[i] < t {
                times.push(old_times[i]);
                order.push(Ok(i));
                i += 1;
            }
            times.push(t);
            order.push(Err(row));
        }
        for (j, t) in old_times.iter().enumerate().skip(i) {
            times.push(*t);
            order.push(Ok(j));
        }
        self.times = times;
        self.values = match std::mem::take(&mut self.values) {
            Values::Floats(field, floats) => Values::Floats(
                field,
                order
                    .into_iter()
                    .map(|o| match o {
                        Ok(j) => floats[j],
                        Err(row) => match row[field] {
                            Some(Value::Float(v)) => v,
                            _ => unreachable!("checked: a float row"),
                        },
                    })
                    .collect(),
            ),
            Values::Rows(mut rows) => Values::Rows(
                order
                    .into_iter()
                    .map(|o| match o {
                        Ok(j) => std::mem::take(&mut rows[j]),
                        Err(row) => row,
                    })
                    .collect(),
            ),
        };
        net
    }

    fn row(&self, i: usize) -> RowRef<'_> {
        match &self.values {
            Values::Floats(field, v) => RowRef::Float(*field, v[i]),
            Values::Rows(rows) => RowRef::Row(&rows[i]),
        }
    }

    fn range(&self, range: TimeRange) -> impl Iterator<Item = (i64, RowRef<'_>)> {
        let lo = self.times.partition_point(|t| *t < range.min);
        let hi = self.times.partition_point(|t| *t <= range.max);
        ByTime {
            a: (lo..hi).map(|i| (self.times[i], self.row(i))).peekable(),
            b: self
                .ooo
                .range(range.min..=range.max)
                .map(|(t, row)| (*t, RowRef::Row(row)))
                .peekable(),
        }
    }
}

impl Buffer {
    /// Adds or merges one row.
    pub fn insert(&mut self, series: u32, time: i64, mut fields: Vec<(usize, Value)>) {
        if fields.len() == 1 {
            let (id, value) = fields.pop().expect("one field");
            return self.insert_one(series, time, id, value);
        }
        let (created, bytes) = self.series_at(series, time).merge(time, fields);
        self.grew(created, bytes);
    }

    /// Sets one field of a row, adding the row if new.
    pub fn insert_one(&mut self, series: u32, time: i64, field: usize, value: Value) {
        let (created, bytes) = self.series_at(series, time).set_one(time, field, value);
        self.grew(created, bytes);
    }

    /// The buffer of `series`, about to get a row at `time`.
    fn series_at(&mut self, series: u32, time: i64) -> &mut SeriesBuffer {
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
        &mut self.series[at]
    }

    fn grew(&mut self, created: bool, bytes: isize) {
        self.rows += usize::from(created);
        self.bytes = self.bytes.saturating_add_signed(bytes);
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
                out.time.push(time);
                for (col, (id, _)) in out.columns.iter_mut().zip(fields) {
                    col.push(values.value(*id).as_deref());
                }
            }
        }
        out
    }

    /// The rows of one series, for segment writing.
    pub fn series_rows(&self, series: u32) -> impl Iterator<Item = (i64, RowRef<'_>)> {
        self.series
            .get(series as usize)
            .into_iter()
            .flat_map(|m| m.range(TimeRange::ALL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any arrival order gives the same rows as sorted order, later writes winning field
    /// by field, for float-only and general series.
    #[test]
    fn any_arrival_order_gives_sorted_merged_rows() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        let op = (0i64..40, 0usize..3, -5i64..5, any::<bool>());
        runner
            .run(&proptest::collection::vec(op, 0..200), |ops| {
                let mut b = Buffer::default();
                let mut model: std::collections::BTreeMap<i64, [Option<Value>; 3]> =
                    Default::default();
                for (t, field, v, float) in ops {
                    let value = if float || field != 2 {
                        Value::Float(v as f64)
                    } else {
                        Value::Integer(v)
                    };
                    model.entry(t).or_default()[field] = Some(value.clone());
                    b.insert_one(0, t, field, value);
                }
                let got: Vec<(i64, Vec<Option<Value>>)> = b
                    .series_rows(0)
                    .map(|(t, r)| {
                        (
                            t,
                            (0..3).map(|i| r.value(i).map(|c| c.into_owned())).collect(),
                        )
                    })
                    .collect();
                let want: Vec<(i64, Vec<Option<Value>>)> =
                    model.into_iter().map(|(t, r)| (t, r.to_vec())).collect();
                prop_assert_eq!(b.rows(), want.len());
                prop_assert_eq!(got, want);
                Ok(())
            })
            .unwrap();
    }

    /// Descending times cost about what ascending ones do (no insert per row into a vector).
    #[test]
    fn descending_rows_are_not_quadratic() {
        let n = 200_000;
        let mut b = Buffer::default();
        for t in (0..n).rev() {
            b.insert_one(0, t, 0, Value::Float(t as f64));
        }
        assert_eq!(b.rows(), n as usize);
        let times: Vec<i64> = b.series_rows(0).map(|(t, _)| t).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(times.len(), n as usize);
    }

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

    #[test]
    fn float_series_stay_compact_until_a_row_needs_more() {
        let mut b = Buffer::default();
        for t in [30, 10, 20, 20, 40] {
            b.insert_one(0, t, 1, Value::Float(t as f64));
        }
        b.insert_one(0, 20, 1, Value::Float(-2.0));
        assert_eq!(b.rows(), 4);
        assert_eq!(b.bytes(), 4 * FLOAT_ROW_BYTES);
        let fields = [(0, FieldType::Integer), (1, FieldType::Float)];
        let r = b.to_rows(TimeRange::ALL, None, &fields);
        assert_eq!(r.time, vec![10, 20, 30, 40]);
        assert_eq!(
            r.columns[1],
            Column::Float(vec![Some(10.0), Some(-2.0), Some(30.0), Some(40.0)])
        );
        assert_eq!(r.columns[0], Column::Integer(vec![None; 4]));
        // Another field on an existing row and a new one: general rows, nothing lost.
        b.insert_one(0, 30, 0, Value::Integer(7));
        b.insert(0, 50, vec![(1, Value::Float(5.0)), (0, Value::Integer(8))]);
        assert_eq!(b.rows(), 5);
        assert!(b.bytes() > 5 * FLOAT_ROW_BYTES);
        let r = b.to_rows(TimeRange { min: 20, max: 50 }, None, &fields);
        assert_eq!(r.time, vec![20, 30, 40, 50]);
        assert_eq!(
            r.columns[0],
            Column::Integer(vec![None, Some(7), None, Some(8)])
        );
        assert_eq!(
            r.columns[1],
            Column::Float(vec![Some(-2.0), Some(30.0), Some(40.0), Some(5.0)])
        );
        // A float series of another field, and one whose first point is not a float.
        b.insert_one(1, 1, 0, Value::Float(1.0));
        b.insert_one(1, 2, 1, Value::Float(2.0));
        b.insert_one(2, 1, 1, Value::Integer(3));
        b.insert_one(2, 2, 1, Value::Float(4.0));
        let rows: Vec<(i64, Option<Value>, Option<Value>)> = (1..3)
            .flat_map(|s| b.series_rows(s).collect::<Vec<_>>())
            .map(|(t, row)| {
                let get = |id| row.value(id).map(std::borrow::Cow::into_owned);
                (t, get(0), get(1))
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, Some(Value::Float(1.0)), None),
                (2, None, Some(Value::Float(2.0))),
                (1, None, Some(Value::Integer(3))),
                (2, None, Some(Value::Float(4.0))),
            ]
        );
    }
}
