//! Decoded rows of one table in engine form (before Arrow), and the merge of layers that
//! implements InfluxDB's rule: same series and timestamp → fields merge, the newer value wins.

use super::schema::{FieldType, Value};

/// Values of one field column; `None` is a null.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Float(Vec<Option<f64>>),
    Integer(Vec<Option<i64>>),
    UInteger(Vec<Option<u64>>),
    String(Vec<Option<String>>),
    Boolean(Vec<Option<bool>>),
}

macro_rules! each_column {
    ($col:expr, $v:ident => $body:expr) => {
        match $col {
            Column::Float($v) => $body,
            Column::Integer($v) => $body,
            Column::UInteger($v) => $body,
            Column::String($v) => $body,
            Column::Boolean($v) => $body,
        }
    };
}

impl Column {
    pub fn new(ty: FieldType, capacity: usize) -> Column {
        match ty {
            FieldType::Float => Column::Float(Vec::with_capacity(capacity)),
            FieldType::Integer => Column::Integer(Vec::with_capacity(capacity)),
            FieldType::UInteger => Column::UInteger(Vec::with_capacity(capacity)),
            FieldType::String => Column::String(Vec::with_capacity(capacity)),
            FieldType::Boolean => Column::Boolean(Vec::with_capacity(capacity)),
        }
    }

    /// A column of `len` nulls.
    pub fn nulls(ty: FieldType, len: usize) -> Column {
        match ty {
            FieldType::Float => Column::Float(vec![None; len]),
            FieldType::Integer => Column::Integer(vec![None; len]),
            FieldType::UInteger => Column::UInteger(vec![None; len]),
            FieldType::String => Column::String(vec![None; len]),
            FieldType::Boolean => Column::Boolean(vec![None; len]),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Column::Float(_) => FieldType::Float,
            Column::Integer(_) => FieldType::Integer,
            Column::UInteger(_) => FieldType::UInteger,
            Column::String(_) => FieldType::String,
            Column::Boolean(_) => FieldType::Boolean,
        }
    }

    pub fn len(&self) -> usize {
        each_column!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a value; a value of another type (impossible after schema checks) becomes null.
    pub fn push(&mut self, value: Option<&Value>) {
        match (self, value) {
            (Column::Float(v), Some(Value::Float(x))) => v.push(Some(*x)),
            (Column::Integer(v), Some(Value::Integer(x))) => v.push(Some(*x)),
            (Column::UInteger(v), Some(Value::UInteger(x))) => v.push(Some(*x)),
            (Column::String(v), Some(Value::String(x))) => v.push(Some(x.clone())),
            (Column::Boolean(v), Some(Value::Boolean(x))) => v.push(Some(*x)),
            (col, _) => each_column!(col, v => v.push(None)),
        }
    }

    fn is_valid(&self, i: usize) -> bool {
        each_column!(self, v => v[i].is_some())
    }

    /// Appends row `i` of `other` (same type).
    fn push_from(&mut self, other: &Column, i: usize) {
        match (self, other) {
            (Column::Float(a), Column::Float(b)) => a.push(b[i]),
            (Column::Integer(a), Column::Integer(b)) => a.push(b[i]),
            (Column::UInteger(a), Column::UInteger(b)) => a.push(b[i]),
            (Column::String(a), Column::String(b)) => a.push(b[i].clone()),
            (Column::Boolean(a), Column::Boolean(b)) => a.push(b[i]),
            (a, _) => each_column!(a, v => v.push(None)),
        }
    }

    /// Appends every row of `other` (same type; another type appends nulls).
    pub fn append(&mut self, other: Column) {
        match (self, other) {
            (Column::Float(a), Column::Float(mut b)) => a.append(&mut b),
            (Column::Integer(a), Column::Integer(mut b)) => a.append(&mut b),
            (Column::UInteger(a), Column::UInteger(mut b)) => a.append(&mut b),
            (Column::String(a), Column::String(mut b)) => a.append(&mut b),
            (Column::Boolean(a), Column::Boolean(mut b)) => a.append(&mut b),
            (a, b) => {
                let n = b.len();
                each_column!(a, v => v.extend(std::iter::repeat_n(None, n)))
            }
        }
    }

    /// Appends the rows of `other` (same type) whose `keep` flag is set.
    pub fn append_masked(&mut self, other: Column, keep: &[bool]) {
        fn take<T>(dst: &mut Vec<Option<T>>, src: Vec<Option<T>>, keep: &[bool]) {
            dst.extend(
                src.into_iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(v, _)| v),
            );
        }
        match (self, other) {
            (Column::Float(a), Column::Float(b)) => take(a, b, keep),
            (Column::Integer(a), Column::Integer(b)) => take(a, b, keep),
            (Column::UInteger(a), Column::UInteger(b)) => take(a, b, keep),
            (Column::String(a), Column::String(b)) => take(a, b, keep),
            (Column::Boolean(a), Column::Boolean(b)) => take(a, b, keep),
            (a, _) => {
                let n = keep.iter().filter(|k| **k).count();
                each_column!(a, v => v.extend(std::iter::repeat_n(None, n)))
            }
        }
    }

    /// Replaces the last value with row `i` of `other` when that is not null.
    fn overwrite_last(&mut self, other: &Column, i: usize) {
        if !other.is_valid(i) {
            return;
        }
        match (self, other) {
            (Column::Float(a), Column::Float(b)) => *a.last_mut().expect("row") = b[i],
            (Column::Integer(a), Column::Integer(b)) => *a.last_mut().expect("row") = b[i],
            (Column::UInteger(a), Column::UInteger(b)) => *a.last_mut().expect("row") = b[i],
            (Column::String(a), Column::String(b)) => *a.last_mut().expect("row") = b[i].clone(),
            (Column::Boolean(a), Column::Boolean(b)) => *a.last_mut().expect("row") = b[i],
            _ => {}
        }
    }
}

/// A field column as scans hand it to Arrow: the values side by side (a null's slot holds
/// the type's default) and, when some are null, a validity flag per row. Numeric vectors
/// become Arrow buffers without a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub values: DenseValues,
    /// `None`: every row has a value.
    pub valid: Option<Vec<bool>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DenseValues {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    UInteger(Vec<u64>),
    String(Vec<String>),
    Boolean(Vec<bool>),
}

macro_rules! each_dense {
    ($col:expr, $v:ident => $body:expr) => {
        match $col {
            DenseValues::Float($v) => $body,
            DenseValues::Integer($v) => $body,
            DenseValues::UInteger($v) => $body,
            DenseValues::String($v) => $body,
            DenseValues::Boolean($v) => $body,
        }
    };
}

impl DenseValues {
    pub fn len(&self) -> usize {
        each_dense!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty(ty: FieldType) -> DenseValues {
        match ty {
            FieldType::Float => DenseValues::Float(Vec::new()),
            FieldType::Integer => DenseValues::Integer(Vec::new()),
            FieldType::UInteger => DenseValues::UInteger(Vec::new()),
            FieldType::String => DenseValues::String(Vec::new()),
            FieldType::Boolean => DenseValues::Boolean(Vec::new()),
        }
    }
}

fn spread_dense<T: Default + Clone>(values: Vec<T>, valid: &[bool]) -> Vec<T> {
    let mut it = values.into_iter();
    valid
        .iter()
        .map(|ok| {
            if *ok {
                it.next().unwrap_or_default()
            } else {
                T::default()
            }
        })
        .collect()
}

fn unzip_options<T: Default>(v: Vec<Option<T>>) -> (Vec<T>, Option<Vec<bool>>) {
    let valid: Vec<bool> = v.iter().map(Option::is_some).collect();
    let all = valid.iter().all(|x| *x);
    (
        v.into_iter().map(Option::unwrap_or_default).collect(),
        (!all).then_some(valid),
    )
}

impl Dense {
    /// `len` nulls.
    pub fn nulls(ty: FieldType, len: usize) -> Dense {
        let values = match ty {
            FieldType::Float => DenseValues::Float(vec![0.0; len]),
            FieldType::Integer => DenseValues::Integer(vec![0; len]),
            FieldType::UInteger => DenseValues::UInteger(vec![0; len]),
            FieldType::String => DenseValues::String(vec![String::new(); len]),
            FieldType::Boolean => DenseValues::Boolean(vec![false; len]),
        };
        Dense {
            values,
            valid: Some(vec![false; len]),
        }
    }

    /// The present values of `rows` rows with their validity (`None`: all present).
    pub fn from_present(values: DenseValues, valid: Option<Vec<bool>>) -> Dense {
        let Some(valid) = valid else {
            return Dense {
                values,
                valid: None,
            };
        };
        let values = match values {
            DenseValues::Float(v) => DenseValues::Float(spread_dense(v, &valid)),
            DenseValues::Integer(v) => DenseValues::Integer(spread_dense(v, &valid)),
            DenseValues::UInteger(v) => DenseValues::UInteger(spread_dense(v, &valid)),
            DenseValues::String(v) => DenseValues::String(spread_dense(v, &valid)),
            DenseValues::Boolean(v) => DenseValues::Boolean(spread_dense(v, &valid)),
        };
        Dense {
            values,
            valid: Some(valid),
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_valid(&self, i: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v[i])
    }

    /// Keeps rows `lo..hi`.
    pub fn slice(&mut self, lo: usize, hi: usize) {
        fn cut<T>(v: &mut Vec<T>, lo: usize, hi: usize) {
            v.truncate(hi);
            v.drain(..lo);
        }
        each_dense!(&mut self.values, v => cut(v, lo, hi));
        if let Some(valid) = &mut self.valid {
            cut(valid, lo, hi);
        }
    }

    /// Keeps the rows whose `keep` flag is set.
    pub fn filter(&mut self, keep: &[bool]) {
        fn pick<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut k = keep.iter();
            v.retain(|_| *k.next().unwrap_or(&false));
        }
        each_dense!(&mut self.values, v => pick(v, keep));
        if let Some(valid) = &mut self.valid {
            pick(valid, keep);
        }
    }

    /// Appends `other` (same type; another type appends nulls).
    pub fn append(&mut self, other: Dense) {
        let (n, before) = (other.len(), self.len());
        if self.valid.is_some() || other.valid.is_some() {
            let mut valid = self.valid.take().unwrap_or_else(|| vec![true; before]);
            valid.extend(other.valid.clone().unwrap_or_else(|| vec![true; n]));
            self.valid = Some(valid);
        }
        match (&mut self.values, other.values) {
            (DenseValues::Float(a), DenseValues::Float(mut b)) => a.append(&mut b),
            (DenseValues::Integer(a), DenseValues::Integer(mut b)) => a.append(&mut b),
            (DenseValues::UInteger(a), DenseValues::UInteger(mut b)) => a.append(&mut b),
            (DenseValues::String(a), DenseValues::String(mut b)) => a.append(&mut b),
            (DenseValues::Boolean(a), DenseValues::Boolean(mut b)) => a.append(&mut b),
            (a, _) => {
                each_dense!(a, v => v.resize_with(before + n, Default::default));
                if let Some(valid) = &mut self.valid {
                    valid[before..].iter_mut().for_each(|x| *x = false);
                }
            }
        }
    }

    /// Row `i` as a number (for value predicates); `None` when null or not numeric.
    pub fn number(&self, i: usize) -> Option<f64> {
        if !self.is_valid(i) {
            return None;
        }
        match &self.values {
            DenseValues::Float(v) => Some(v[i]),
            DenseValues::Integer(v) => Some(v[i] as f64),
            DenseValues::UInteger(v) => Some(v[i] as f64),
            DenseValues::Boolean(v) => Some(f64::from(u8::from(v[i]))),
            DenseValues::String(_) => None,
        }
    }
}

impl From<Column> for Dense {
    fn from(c: Column) -> Dense {
        let (values, valid) = match c {
            Column::Float(v) => {
                let (v, ok) = unzip_options(v);
                (DenseValues::Float(v), ok)
            }
            Column::Integer(v) => {
                let (v, ok) = unzip_options(v);
                (DenseValues::Integer(v), ok)
            }
            Column::UInteger(v) => {
                let (v, ok) = unzip_options(v);
                (DenseValues::UInteger(v), ok)
            }
            Column::String(v) => {
                let (v, ok) = unzip_options(v);
                (DenseValues::String(v), ok)
            }
            Column::Boolean(v) => {
                let (v, ok) = unzip_options(v);
                (DenseValues::Boolean(v), ok)
            }
        };
        Dense { values, valid }
    }
}

impl Dense {
    /// One row from the bits of a value (see `ColumnStats::last`); `None` is a null.
    pub fn from_bits(ty: FieldType, bits: Option<u64>) -> Dense {
        let Some(b) = bits else {
            return Dense::nulls(ty, 1);
        };
        let values = match ty {
            FieldType::Float => DenseValues::Float(vec![f64::from_bits(b)]),
            FieldType::Integer => DenseValues::Integer(vec![b as i64]),
            FieldType::UInteger => DenseValues::UInteger(vec![b]),
            FieldType::Boolean => DenseValues::Boolean(vec![b != 0]),
            FieldType::String => return Dense::nulls(ty, 1),
        };
        Dense {
            values,
            valid: None,
        }
    }

    /// An empty column of type `ty`.
    pub fn empty(ty: FieldType) -> Dense {
        Dense {
            values: DenseValues::empty(ty),
            valid: None,
        }
    }
}

/// Rows of one table: series ids, timestamps and the requested field columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub series: Vec<u32>,
    pub time: Vec<i64>,
    pub columns: Vec<Column>,
}

impl Rows {
    pub fn new(types: &[FieldType]) -> Rows {
        Rows {
            series: Vec::new(),
            time: Vec::new(),
            columns: types.iter().map(|t| Column::new(*t, 0)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Keeps the rows whose `keep` flag is set.
    pub fn filter(self, keep: &[bool]) -> Rows {
        let pick = |v: Vec<u32>| {
            v.into_iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x)
                .collect()
        };
        let time = self
            .time
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| x)
            .collect();
        let types: Vec<FieldType> = self.columns.iter().map(Column::field_type).collect();
        let mut columns: Vec<Column> = types.iter().map(|t| Column::new(*t, 0)).collect();
        for (dst, src) in columns.iter_mut().zip(self.columns) {
            dst.append_masked(src, keep);
        }
        Rows {
            series: pick(self.series),
            time,
            columns,
        }
    }

    /// Merges layers given oldest first. Rows with the same (series, time) become one row
    /// whose fields are the newest non-null values. Each layer must itself hold each
    /// (series, time) at most once. With a single layer, the rows are returned as they are.
    pub fn merge(mut layers: Vec<Rows>, types: &[FieldType]) -> Rows {
        layers.retain(|l| !l.is_empty());
        if layers.len() <= 1 {
            return layers.pop().unwrap_or_else(|| Rows::new(types));
        }
        let total: usize = layers.iter().map(Rows::len).sum();
        let mut order: Vec<(u32, i64, u32, u32)> = Vec::with_capacity(total);
        for (l, layer) in layers.iter().enumerate() {
            for r in 0..layer.len() {
                order.push((layer.series[r], layer.time[r], l as u32, r as u32));
            }
        }
        order.sort_unstable();
        let mut out = Rows {
            series: Vec::with_capacity(total),
            time: Vec::with_capacity(total),
            columns: types.iter().map(|t| Column::new(*t, total)).collect(),
        };
        let mut prev: Option<(u32, i64)> = None;
        for (s, t, l, r) in order {
            let layer = &layers[l as usize];
            let r = r as usize;
            if prev == Some((s, t)) {
                for (c, col) in out.columns.iter_mut().enumerate() {
                    col.overwrite_last(&layer.columns[c], r);
                }
            } else {
                out.series.push(s);
                out.time.push(t);
                for (c, col) in out.columns.iter_mut().enumerate() {
                    col.push_from(&layer.columns[c], r);
                }
                prev = Some((s, t));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_newer_non_null_wins() {
        let types = [FieldType::Float, FieldType::Integer];
        let old = Rows {
            series: vec![0, 0, 1],
            time: vec![10, 20, 10],
            columns: vec![
                Column::Float(vec![Some(1.0), Some(2.0), Some(3.0)]),
                Column::Integer(vec![Some(1), None, None]),
            ],
        };
        let new = Rows {
            series: vec![0, 1],
            time: vec![10, 30],
            columns: vec![
                Column::Float(vec![None, Some(9.0)]),
                Column::Integer(vec![Some(7), None]),
            ],
        };
        let m = Rows::merge(vec![old, new], &types);
        assert_eq!(m.series, vec![0, 0, 1, 1]);
        assert_eq!(m.time, vec![10, 20, 10, 30]);
        assert_eq!(
            m.columns[0],
            Column::Float(vec![Some(1.0), Some(2.0), Some(3.0), Some(9.0)])
        );
        assert_eq!(
            m.columns[1],
            Column::Integer(vec![Some(7), None, None, None])
        );
    }
}
