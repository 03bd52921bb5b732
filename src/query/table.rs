//! A storage table as a DataFusion `TableProvider`: `time`, then tags (`TEXT`), then fields,
//! each group sorted by name. Scans prune segments by the time range found in the filters
//! and decode only the projected columns.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Like, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::clock::{Clock, SystemClock};
use crate::storage::scan::{CmpOp, ValuePredicate};
use crate::storage::schema::TIME_COLUMN;
use crate::storage::{
    Database, Engine, FieldType, ScanRequest, Table, TableSchema, TagPredicate, TimeRange,
};

use super::scan::ScanExec;

/// What a column of the Arrow schema is in storage terms.
#[derive(Debug, Clone)]
pub(crate) enum ColumnKind {
    Time,
    Tag(String),
    Field(String, FieldType),
}

/// A table as DataFusion sees it, with the schema frozen when the provider was made (so
/// projections stay valid if columns are added meanwhile).
#[derive(Debug, Clone)]
pub struct SundialTable {
    table: Arc<Table>,
    db: Arc<Database>,
    engine: Arc<Engine>,
    schema: SchemaRef,
    kinds: Vec<ColumnKind>,
    /// Scans return only each series' newest row (see [`super::latest`]).
    latest: bool,
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
            latest: false,
        }
    }

    /// The same table, scanned for each series' newest row only.
    pub fn latest(&self) -> SundialTable {
        SundialTable {
            latest: true,
            ..self.clone()
        }
    }

    pub fn is_tag(&self, name: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| matches!(k, ColumnKind::Tag(t) if t == name))
    }

    fn tag_names(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .filter_map(|k| match k {
                ColumnKind::Tag(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether a condition is one that scans apply exactly before anything else: a tag
    /// predicate, or `time` compared with a value that does not depend on the row.
    pub fn applies_exactly(&self, e: &Expr) -> bool {
        let constant = |e: &Expr| !e.any_column_refs() && !e.is_volatile();
        tag_predicate(e, &self.tag_names()).is_some()
            || match e {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    matches!(
                        op,
                        Operator::Lt
                            | Operator::LtEq
                            | Operator::Gt
                            | Operator::GtEq
                            | Operator::Eq
                    ) && ((is_time(left) && constant(right)) || (is_time(right) && constant(left)))
                }
                Expr::Between(Between {
                    expr,
                    negated: false,
                    low,
                    high,
                }) => is_time(expr) && constant(low) && constant(high),
                _ => false,
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
        let predicates = value_predicates(filters, &fields);
        // Only each series' newest row, if every filter is one the scan applies itself
        // (tags, time range); otherwise every row, and DISTINCT ON picks as usual.
        let latest = self.latest
            && filters.iter().flat_map(split_conjunction).all(|e| {
                let mut scratch = TimeRange::ALL;
                narrow(&mut scratch, e) || tag_predicate(e, &tag_names).is_some()
            });
        let predicates = if latest { Vec::new() } else { predicates };
        let table = self.table.clone();
        let request = ScanRequest {
            range,
            tags,
            fields,
        };
        let engine = self.engine.clone();
        let stats_engine = engine.clone();
        // The snapshot copies the buffers' matching rows under the table lock: with small
        // buffers that is quicker than a trip to a blocking thread.
        let small = {
            let st = table.state.read();
            st.frozen.is_empty() && st.active.rows() <= 65_536
        };
        let scan = if small {
            table.plan_scan(&request, predicates, latest, stats_engine.stats())
        } else {
            tokio::task::spawn_blocking(move || {
                table.plan_scan(&request, predicates, latest, stats_engine.stats())
            })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        let partitions = state.config().target_partitions();
        Ok(Arc::new(ScanExec::new(
            scan,
            engine,
            self.table.name.clone(),
            kinds,
            schema,
            partitions,
        )))
    }
}

/// Comparisons of a requested numeric field with a constant among `filters`: `f > 90`,
/// `90 <= f`, and the same through a cast to float (how `usage_user > 90.0` arrives for
/// an integer field). Integer constants beyond 2^53 are left out: as `f64` they would
/// compare inexactly.
pub fn value_predicates(filters: &[Expr], fields: &[(String, FieldType)]) -> Vec<ValuePredicate> {
    fn column(e: &Expr) -> Option<&str> {
        match e {
            Expr::Column(c) => Some(c.name.as_str()),
            Expr::Cast(datafusion::logical_expr::Cast { expr, field })
            | Expr::TryCast(datafusion::logical_expr::TryCast { expr, field })
                if matches!(field.data_type(), DataType::Float64) =>
            {
                match expr.as_ref() {
                    Expr::Column(c) => Some(c.name.as_str()),
                    _ => None,
                }
            }
            _ => None,
        }
    }
    fn constant(e: &Expr) -> Option<f64> {
        const EXACT: f64 = 9_007_199_254_740_991.0;
        let Expr::Literal(v, _) = e else { return None };
        let int = |x: i128| ((x as f64).abs() <= EXACT).then_some(x as f64);
        match v {
            ScalarValue::Float64(Some(x)) => Some(*x),
            ScalarValue::Float32(Some(x)) => Some(f64::from(*x)),
            ScalarValue::Int64(Some(x)) => int(i128::from(*x)),
            ScalarValue::Int32(Some(x)) => Some(f64::from(*x)),
            ScalarValue::Int16(Some(x)) => Some(f64::from(*x)),
            ScalarValue::Int8(Some(x)) => Some(f64::from(*x)),
            ScalarValue::UInt64(Some(x)) => int(i128::from(*x)),
            ScalarValue::UInt32(Some(x)) => Some(f64::from(*x)),
            _ => None,
        }
    }
    let mut out = Vec::new();
    for e in filters.iter().flat_map(split_conjunction) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
            continue;
        };
        let (name, op, value) = match (column(left), column(right)) {
            (Some(n), None) => (n, *op, constant(right)),
            (None, Some(n)) => match op.swap() {
                Some(op) => (n, op, constant(left)),
                None => continue,
            },
            _ => continue,
        };
        let Some(value) = value.filter(|v| !v.is_nan()) else {
            continue;
        };
        let op = match op {
            Operator::Lt => CmpOp::Lt,
            Operator::LtEq => CmpOp::LtEq,
            Operator::Gt => CmpOp::Gt,
            Operator::GtEq => CmpOp::GtEq,
            Operator::Eq => CmpOp::Eq,
            Operator::NotEq => CmpOp::NotEq,
            _ => continue,
        };
        let Some(field) = fields.iter().position(|(n, t)| {
            n == name
                && matches!(
                    t,
                    FieldType::Float | FieldType::Integer | FieldType::UInteger
                )
        }) else {
            continue;
        };
        out.push(ValuePredicate { field, op, value });
    }
    out
}

/// A storage failure during a scan, as DataFusion carries it.
impl From<crate::storage::Error> for DataFusionError {
    fn from(e: crate::storage::Error) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }
}

/// A scan the query memory pool cannot hold (SQLSTATE 53200).
pub(crate) fn scan_too_big(table: &str, e: DataFusionError) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "reading table {table} needs more memory than the query memory limit allows \
         (narrow the time range or the tags, or raise query_memory_limit): {e}"
    ))
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
