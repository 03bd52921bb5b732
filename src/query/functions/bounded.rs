//! DataFusion's functions whose result size a client picks with a number — `repeat`,
//! `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat` — refuse results past
//! [`MAX_RESULT_BYTES`] with SQLSTATE 54000, as PostgreSQL refuses values over 1 GB,
//! before anything is allocated. Unchecked, `SELECT repeat('x', 2000000000)` makes one
//! allocation the process may not get (under `RLIMIT_AS` the allocator then aborts the
//! whole server), and the query memory pool never sees it.
//!
//! Each is DataFusion's own function behind a size check on its arguments; the bound is
//! on one value and on the whole batch a call produces.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The largest result one call may produce (one value, and all rows of a batch).
pub const MAX_RESULT_BYTES: u64 = 256 << 20;

/// The upper bound of a call's result in bytes at `row`.
type Estimate = fn(&[ColumnarValue], usize) -> u64;

#[derive(Debug)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    estimate: Estimate,
}

identity_of_inner!(Bounded);

/// The string argument `i` at `row`, if any (scalars are not expanded).
fn text(args: &[ColumnarValue], i: usize, row: usize) -> Option<&str> {
    match args.get(i)? {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => s.as_deref(),
        ColumnarValue::Scalar(_) => None,
        ColumnarValue::Array(a) => {
            let row = if a.len() == 1 { 0 } else { row };
            if row >= a.len() || a.is_null(row) {
                return None;
            }
            match a.data_type() {
                DataType::Utf8 => Some(a.as_string::<i32>().value(row)),
                DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row)),
                DataType::Utf8View => Some(a.as_string_view().value(row)),
                _ => None,
            }
        }
    }
}

/// The byte length of argument `i` at `row` whatever its type (8 for fixed-width values).
fn width(args: &[ColumnarValue], i: usize, row: usize) -> u64 {
    match text(args, i, row) {
        Some(s) => s.len() as u64,
        None => 8,
    }
}

/// The integer argument `i` at `row` (negative and null count as 0).
fn count(args: &[ColumnarValue], i: usize, row: usize) -> u64 {
    let v = match args.get(i) {
        Some(ColumnarValue::Scalar(s)) => match s {
            ScalarValue::Int64(v) => *v,
            ScalarValue::Int32(v) => v.map(i64::from),
            ScalarValue::Int16(v) => v.map(i64::from),
            ScalarValue::Int8(v) => v.map(i64::from),
            ScalarValue::UInt64(v) => v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            ScalarValue::UInt32(v) => v.map(i64::from),
            _ => None,
        },
        Some(ColumnarValue::Array(a)) => {
            // The signatures coerce counts to Int64; read them in place.
            let row = if a.len() == 1 { 0 } else { row };
            a.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                .filter(|ints| row < ints.len() && !ints.is_null(row))
                .map(|ints| ints.value(row))
        }
        None => None,
    };
    v.map_or(0, |v| v.max(0) as u64)
}

fn repeat(args: &[ColumnarValue], row: usize) -> u64 {
    width(args, 0, row).saturating_mul(count(args, 1, row))
}

/// `lpad`/`rpad(text, length [, fill])`: `length` characters of up to 4 bytes.
fn pad(args: &[ColumnarValue], row: usize) -> u64 {
    let ascii = text(args, 0, row).is_none_or(str::is_ascii)
        && text(args, 2, row).is_none_or(str::is_ascii);
    count(args, 1, row).saturating_mul(if ascii { 1 } else { 4 })
}

/// `replace(text, from, to)`: every occurrence of `from` (at most one per byte) becomes `to`.
fn replace(args: &[ColumnarValue], row: usize) -> u64 {
    let len = width(args, 0, row);
    let from = width(args, 1, row).max(1);
    len + (len / from + 1).saturating_mul(width(args, 2, row))
}

/// `regexp_replace(text, pattern, to [, flags])`: a match may be empty, so one per byte.
fn regexp_replace(args: &[ColumnarValue], row: usize) -> u64 {
    let len = width(args, 0, row);
    len + (len + 1).saturating_mul(width(args, 2, row))
}

fn array_repeat(args: &[ColumnarValue], row: usize) -> u64 {
    width(args, 0, row)
        .max(8)
        .saturating_mul(count(args, 1, row))
}

impl Bounded {
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let rows = args.number_rows.max(1);
        // With only scalars every row is the same: rows × the first.
        let constant = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let mut total = 0u64;
        for row in 0..rows {
            let bytes = (self.estimate)(&args.args, row);
            if bytes > MAX_RESULT_BYTES {
                return self.too_large(bytes);
            }
            total = if constant {
                bytes.saturating_mul(rows as u64)
            } else {
                total.saturating_add(bytes)
            };
            if total > MAX_RESULT_BYTES {
                return self.too_large(total);
            }
            if constant {
                break;
            }
        }
        Ok(())
    }

    fn too_large(&self, bytes: u64) -> Result<()> {
        Err(over_limit(format!(
            "{}() would produce {bytes} bytes; the limit is {MAX_RESULT_BYTES} (256 MB) \
             per value and per call",
            self.inner.name()
        )))
    }
}

/// The 54000 error of every bounded function and aggregate.
fn over_limit(message: String) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(crate::error::Error::new(
        crate::error::SqlState::PROGRAM_LIMIT_EXCEEDED,
        message,
    )))
}

impl ScalarUDFImpl for Bounded {
    delegate_to_inner!();

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
}

/// The bounded replacements, to register over DataFusion's functions of the same names.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::{regex, string, unicode};
    use datafusion::functions_nested::repeat::array_repeat_udf;
    let bounded = |inner: Arc<ScalarUDF>, estimate: Estimate| {
        ScalarUDF::new_from_impl(Bounded { inner, estimate })
    };
    vec![
        bounded(string::repeat(), repeat),
        bounded(unicode::lpad(), pad),
        bounded(unicode::rpad(), pad),
        bounded(string::replace(), replace),
        bounded(regex::regexp_replace(), regexp_replace),
        bounded(array_repeat_udf(), array_repeat),
    ]
}

/// An aggregate whose state grows with its input (`string_agg`, `array_agg`) behind a
/// bound on that state: past [`MAX_RESULT_BYTES`] in one group, 54000. Unchecked, a
/// `string_agg` over millions of rows doubles one `String` until an allocation fails
/// and the allocator aborts the server.
#[derive(Debug)]
struct BoundedAggregate {
    inner: Arc<dyn datafusion::logical_expr::AggregateUDFImpl>,
    /// The name errors give, shared by the accumulators (one per group).
    name: Arc<str>,
}

impl BoundedAggregate {
    fn new(inner: Arc<dyn datafusion::logical_expr::AggregateUDFImpl>) -> BoundedAggregate {
        let name = Arc::from(inner.name());
        BoundedAggregate { inner, name }
    }
}

impl PartialEq for BoundedAggregate {
    fn eq(&self, other: &BoundedAggregate) -> bool {
        self.inner.name() == other.inner.name()
    }
}

impl Eq for BoundedAggregate {}

impl std::hash::Hash for BoundedAggregate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
    }
}

/// The accumulator of a [`BoundedAggregate`].
#[derive(Debug)]
struct BoundedAccumulator {
    inner: Box<dyn datafusion::logical_expr::Accumulator>,
    /// Shared by every group's accumulator (one is made per group).
    name: Arc<str>,
}

impl BoundedAccumulator {
    fn checked(&self) -> Result<()> {
        let size = self.inner.size() as u64;
        if size > MAX_RESULT_BYTES {
            return Err(over_limit(format!(
                "{}() would hold more than {MAX_RESULT_BYTES} bytes (256 MB) for one group",
                self.name
            )));
        }
        Ok(())
    }
}

impl datafusion::logical_expr::Accumulator for BoundedAccumulator {
    fn update_batch(&mut self, values: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)?;
        self.checked()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)?;
        self.checked()
    }

    fn retract_batch(&mut self, values: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

impl datafusion::logical_expr::AggregateUDFImpl for BoundedAggregate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }

    fn accumulator(
        &self,
        args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(Box::new(BoundedAccumulator {
            inner: self.inner.accumulator(args)?,
            name: self.name.clone(),
        }))
    }

    fn create_sliding_accumulator(
        &self,
        args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(Box::new(BoundedAccumulator {
            inner: self.inner.create_sliding_accumulator(args)?,
            name: self.name.clone(),
        }))
    }

    fn state_fields(
        &self,
        args: datafusion::logical_expr::function::StateFieldsArgs,
    ) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    // Grouped state is kept per group in accumulators, which are checked.
    fn groups_accumulator_supported(
        &self,
        _args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> bool {
        false
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn datafusion::logical_expr::AggregateUDFImpl>>> {
        Ok(self
            .inner
            .clone()
            .with_beneficial_ordering(beneficial_ordering)?
            .map(|inner| {
                Arc::new(BoundedAggregate::new(inner))
                    as Arc<dyn datafusion::logical_expr::AggregateUDFImpl>
            }))
    }

    fn order_sensitivity(&self) -> datafusion::logical_expr::utils::AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn reverse_expr(&self) -> datafusion::logical_expr::ReversedUDAF {
        match self.inner.reverse_expr() {
            datafusion::logical_expr::ReversedUDAF::Reversed(udaf) => {
                datafusion::logical_expr::ReversedUDAF::Reversed(Arc::new(
                    datafusion::logical_expr::AggregateUDF::new_from_impl(BoundedAggregate::new(
                        udaf.inner().clone(),
                    )),
                ))
            }
            other => other,
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
}

/// The bounded aggregates, to register over DataFusion's of the same names.
pub fn udafs() -> Vec<datafusion::logical_expr::AggregateUDF> {
    use datafusion::functions_aggregate::{array_agg, string_agg};
    [array_agg::array_agg_udaf(), string_agg::string_agg_udaf()]
        .into_iter()
        .map(|f| {
            datafusion::logical_expr::AggregateUDF::new_from_impl(BoundedAggregate::new(
                f.inner().clone(),
            ))
        })
        .collect()
}
