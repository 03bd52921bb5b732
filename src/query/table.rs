//! A storage table as a DataFusion `TableProvider`: `time`, then tags (`TEXT`), then fields,
//! each group sorted by name. Scans prune segments by the time range found in the filters
//! and decode only the projected columns.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Like, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::clock::{Clock, SystemClock};
use crate::storage::rows::{Column, Rows};
use crate::storage::schema::TIME_COLUMN;
use crate::storage::{
    Database, Engine, FieldType, PackedKey, ScanRequest, Table, TableSchema, TagPredicate,
    TimeRange,
};

const BATCH_ROWS: usize = 8192;

/// What a column of the Arrow schema is in storage terms.
#[derive(Debug, Clone)]
pub(crate) enum ColumnKind {
    Time,
    Tag(String),
    Field(String, FieldType),
}

/// A table as DataFusion sees it, with the schema frozen when the provider was made (so
/// projections stay valid if columns are added meanwhile).
#[derive(Debug)]
pub struct SundialTable {
    table: Arc<Table>,
    db: Arc<Database>,
    engine: Arc<Engine>,
    schema: SchemaRef,
    kinds: Vec<ColumnKind>,
}

/// The Arrow type of a field type.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::Float => DataType::Float64,
        FieldType::Integer => DataType::Int64,
        FieldType::UInteger => DataType::UInt64,
        FieldType::String => DataType::Utf8,
        FieldType::Boolean => DataType::Boolean,
    }
}

/// The Arrow type of `time`.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub(crate) fn layout(schema: &TableSchema) -> (SchemaRef, Vec<ColumnKind>) {
    let mut tags = schema.tags.clone();
    tags.sort();
    let mut fields = schema.fields.clone();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut arrow = vec![Field::new(TIME_COLUMN, time_type(), false)];
    let mut kinds = vec![ColumnKind::Time];
    for t in tags {
        arrow.push(Field::new(&t, DataType::Utf8, true));
        kinds.push(ColumnKind::Tag(t));
    }
    for (name, ty) in fields {
        arrow.push(Field::new(&name, arrow_type(ty), true));
        kinds.push(ColumnKind::Field(name, ty));
    }
    (Arc::new(Schema::new(arrow)), kinds)
}

impl SundialTable {
    pub fn new(table: Arc<Table>, db: Arc<Database>, engine: Arc<Engine>) -> SundialTable {
        let (schema, kinds) = layout(&table.schema());
        SundialTable {
            table,
            db,
            engine,
            schema,
            kinds,
        }
    }
}

#[async_trait]
impl TableProvider for SundialTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut range = time_range(filters);
        let now = SystemClock.now_nanos();
        if let Some(cutoff) = self.db.retention_cutoff(&self.table, now) {
            range.min = range.min.max(cutoff);
        }
        let tag_names: Vec<&str> = self
            .kinds
            .iter()
            .filter_map(|k| match k {
                ColumnKind::Tag(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let tags = tag_predicates(filters, &tag_names);
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.kinds.len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let kinds: Vec<ColumnKind> = indices.iter().map(|i| self.kinds[*i].clone()).collect();
        let fields: Vec<(String, FieldType)> = kinds
            .iter()
            .filter_map(|k| match k {
                ColumnKind::Field(n, t) => Some((n.clone(), *t)),
                _ => None,
            })
            .collect();
        let table = self.table.clone();
        let engine = self.engine.clone();
        let out_schema = schema.clone();
        let request = ScanRequest {
            range,
            tags,
            fields,
        };
        // The scan is read whole, then converted: reserve both from the query memory
        // pool first, so a query too big for it fails with 53200 before it allocates.
        let row_bytes = 16 + 8 * kinds.len() as u64;
        let reservation = datafusion::execution::memory_pool::MemoryConsumer::new(format!(
            "scan of {}",
            self.table.name
        ))
        .register(&state.runtime_env().memory_pool);
        let name = self.table.name.clone();
        let batches = tokio::task::spawn_blocking(move || -> Result<Vec<RecordBatch>> {
            let out = table.scan_within(&request, engine.stats(), |rows| {
                let bytes = rows.saturating_mul(2 * row_bytes);
                reservation
                    .try_grow(usize::try_from(bytes).unwrap_or(usize::MAX))
                    .map_err(|e| scan_too_big(&name, e))
            })?;
            let actual = (out.rows.len() as u64).saturating_mul(2 * row_bytes);
            reservation
                .try_resize(usize::try_from(actual).unwrap_or(usize::MAX))
                .map_err(|e| scan_too_big(&name, e))?;
            to_batches(&out.rows, &out.keys, &kinds, &out_schema)
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
        Ok(MemorySourceConfig::try_new_exec(&[batches], schema, None)?)
    }
}

/// A storage failure during a scan, as DataFusion carries it.
impl From<crate::storage::Error> for DataFusionError {
    fn from(e: crate::storage::Error) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }
}

/// A scan the query memory pool cannot hold (SQLSTATE 53200).
fn scan_too_big(table: &str, e: DataFusionError) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "reading table {table} needs more memory than the query memory limit allows \
         (narrow the time range or the tags, or raise query_memory_limit): {e}"
    ))
}

fn to_batches(
    rows: &Rows,
    keys: &[Arc<PackedKey>],
    kinds: &[ColumnKind],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let end = (start + BATCH_ROWS).min(rows.len());
        let mut field_col = 0;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let array: ArrayRef = match kind {
                ColumnKind::Time => Arc::new(
                    TimestampNanosecondArray::from(rows.time[start..end].to_vec())
                        .with_timezone("UTC"),
                ),
                ColumnKind::Tag(tag) => Arc::new(
                    rows.series[start..end]
                        .iter()
                        .map(|s| keys[*s as usize].get(tag))
                        .collect::<StringArray>(),
                ),
                ColumnKind::Field(..) => {
                    let c = &rows.columns[field_col];
                    field_col += 1;
                    match c {
                        Column::Float(v) => {
                            Arc::new(v[start..end].iter().copied().collect::<Float64Array>())
                        }
                        Column::Integer(v) => {
                            Arc::new(v[start..end].iter().copied().collect::<Int64Array>())
                        }
                        Column::UInteger(v) => {
                            Arc::new(v[start..end].iter().copied().collect::<UInt64Array>())
                        }
                        Column::String(v) => Arc::new(
                            v[start..end]
                                .iter()
                                .map(|s| s.as_deref())
                                .collect::<StringArray>(),
                        ),
                        Column::Boolean(v) => Arc::new(BooleanArray::from(v[start..end].to_vec())),
                    }
                }
            };
            arrays.push(array);
        }
        let opts = RecordBatchOptions::new().with_row_count(Some(end - start));
        batches.push(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &opts,
        )?);
        start = end;
    }
    Ok(batches)
}

/// The inclusive time range implied by the conjunction of `filters` on `time`.
pub fn time_range(filters: &[Expr]) -> TimeRange {
    let mut range = TimeRange::ALL;
    for f in filters {
        for e in split_conjunction(f) {
            narrow(&mut range, e);
        }
    }
    range
}

/// Splits filters into a time range, tag predicates, and the conjuncts that are neither.
pub fn split_filters(filters: &[Expr], tags: &[&str]) -> (TimeRange, Vec<TagPredicate>, Vec<Expr>) {
    let mut range = TimeRange::ALL;
    let mut preds = Vec::new();
    let mut rest = Vec::new();
    for e in filters.iter().flat_map(split_conjunction) {
        if narrow(&mut range, e) {
            continue;
        }
        match tag_predicate(e, tags) {
            Some(p) => preds.push(p),
            None => rest.push(e.clone()),
        }
    }
    (range, preds, rest)
}

/// Narrows `range` by `e` if it is a time predicate; returns whether it was one.
fn narrow(range: &mut TimeRange, e: &Expr) -> bool {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, value) = match (is_time(left), is_time(right)) {
                (true, false) => (*op, nanos(right)),
                (false, true) => match op.swap() {
                    Some(op) => (op, nanos(left)),
                    None => return false,
                },
                _ => return false,
            };
            let Some(v) = value else { return false };
            match op {
                Operator::Gt => range.min = range.min.max(v.saturating_add(1)),
                Operator::GtEq => range.min = range.min.max(v),
                Operator::Lt => range.max = range.max.min(v.saturating_sub(1)),
                Operator::LtEq => range.max = range.max.min(v),
                Operator::Eq => {
                    range.min = range.min.max(v);
                    range.max = range.max.min(v);
                }
                _ => return false,
            }
            true
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time(expr) => {
            if let (Some(lo), Some(hi)) = (nanos(low), nanos(high)) {
                range.min = range.min.max(lo);
                range.max = range.max.min(hi);
                return true;
            }
            false
        }
        _ => false,
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == TIME_COLUMN)
}

fn nanos(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    match v {
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampMicrosecond(Some(x), _) => x.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(x), _) => x.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// Tag predicates found in the conjunction of `filters` (others are left to DataFusion,
/// which applies every filter again anyway).
pub fn tag_predicates(filters: &[Expr], tags: &[&str]) -> Vec<TagPredicate> {
    filters
        .iter()
        .flat_map(split_conjunction)
        .filter_map(|e| tag_predicate(e, tags))
        .collect()
}

/// One filter as a tag predicate, if it is one: `tag = 'v'`, `!=`, `~`, `!~`, `IN (…)`,
/// `LIKE 'prefix%'`, or an `OR` of such predicates.
fn tag_predicate(e: &Expr, tags: &[&str]) -> Option<TagPredicate> {
    let tag_of = |e: &Expr| match e {
        Expr::Column(c) if tags.contains(&c.name.as_str()) => Some(c.name.clone()),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut any = Vec::new();
            for side in [left, right] {
                match tag_predicate(side, tags)? {
                    TagPredicate::Any(v) => any.extend(v),
                    p => any.push(p),
                }
            }
            Some(TagPredicate::Any(any))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (tag, value) = match (tag_of(left), tag_of(right)) {
                (Some(t), None) => (t, string(right)?),
                (None, Some(t)) if matches!(op, Operator::Eq | Operator::NotEq) => {
                    (t, string(left)?)
                }
                _ => return None,
            };
            match op {
                Operator::Eq => Some(TagPredicate::Eq(tag, value)),
                Operator::NotEq => Some(TagPredicate::NotEq(tag, value)),
                Operator::RegexMatch => {
                    Some(TagPredicate::Regex(tag, regex::Regex::new(&value).ok()?))
                }
                Operator::RegexNotMatch => {
                    Some(TagPredicate::NotRegex(tag, regex::Regex::new(&value).ok()?))
                }
                _ => None,
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let tag = tag_of(expr)?;
            let values: Option<Vec<String>> = list.iter().map(string).collect();
            Some(TagPredicate::In(tag, values?))
        }
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char: None,
            case_insensitive: false,
        }) => {
            let tag = tag_of(expr)?;
            let p = string(pattern)?;
            let prefix = p.strip_suffix('%')?;
            if prefix.contains(['%', '_', '\\']) {
                return None;
            }
            Some(TagPredicate::Prefix(tag, prefix.to_string()))
        }
        _ => None,
    }
}

fn string(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}
