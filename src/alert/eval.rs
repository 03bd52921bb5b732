//! Running an alert's query as of a given time: `now()` inside the query is the evaluation
//! time (the scheduled slot, or a backtest step), and each result row becomes an instance's
//! labels (every column but `value`, as text) and value.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::logical_expr::LogicalPlan;

use super::state::Labels;
use crate::query::QueryEngine;

/// The rows of one evaluation.
pub type Rows = Vec<(Labels, Option<f64>)>;

/// Plans `sql` in database `db` (the check `CREATE ALERT` makes).
pub async fn plan(query: &QueryEngine, db: &str, sql: &str) -> crate::query::Result<LogicalPlan> {
    let ctx = query.context(db)?;
    crate::query::plan::plan_sql(&ctx, sql).await
}

/// Runs `sql` in database `db` with `now()` = `at` (ns since the epoch).
pub async fn evaluate(
    query: &QueryEngine,
    db: &str,
    sql: &str,
    at: i64,
) -> datafusion::error::Result<Rows> {
    let ctx = query
        .context(db)
        .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
    let mut state = ctx.state();
    state.execution_props_mut().query_execution_start_time =
        Some(chrono::DateTime::from_timestamp_nanos(at));
    let plan = state.create_logical_plan(sql).await?;
    let physical = state.create_physical_plan(&plan).await?;
    let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(batch_rows(batch)?);
    }
    Ok(rows)
}

/// Labels and value of each row of `batch`.
fn batch_rows(batch: &RecordBatch) -> datafusion::error::Result<Rows> {
    let schema = batch.schema();
    let options = FormatOptions::default();
    let mut labels = Vec::new();
    let mut value = None;
    for (i, field) in schema.fields().iter().enumerate() {
        let column = batch.column(i);
        if field.name().eq_ignore_ascii_case("value") && value.is_none() {
            let floats = datafusion::arrow::compute::cast(column, &DataType::Float64)?;
            value = Some(floats);
        } else {
            labels.push((
                field.name().to_string(),
                column.clone(),
                ArrayFormatter::try_new(column.as_ref(), &options)?,
            ));
        }
    }
    let value: Option<Arc<dyn Array>> = value;
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut l = Labels::new();
        for (name, column, formatter) in &labels {
            if !column.is_null(row) {
                l.insert(name.clone(), formatter.value(row).to_string());
            }
        }
        let v = value.as_ref().and_then(|v| {
            let v = v.as_primitive::<Float64Type>();
            (!v.is_null(row)).then(|| v.value(row))
        });
        out.push((l, v));
    }
    Ok(out)
}
