//! Planning a parsed statement, and explaining a failed plan by what the statement names:
//! a relation that no schema holds, or a function that nothing registered. Both are found
//! from the statement's structure once planning has failed (never from DataFusion's
//! message text), so a statement that plans is not slowed down by them.

use std::ops::ControlFlow;

use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Statement as SqlStatement, visit_expressions,
};

use super::{Error, Result};

/// Names the planner resolves itself rather than through the function registry.
const PLANNER_FUNCTIONS: &[&str] = &["unnest", "struct", "map", "make_map", "grouping"];

/// Plans `stmt` in `ctx`; see the module doc for how failures are explained.
pub async fn plan(ctx: &SessionContext, stmt: SqlStatement) -> Result<LogicalPlan> {
    plan_statement(ctx, DfStatement::Statement(Box::new(stmt))).await
}

/// Parses (PostgreSQL dialect) and plans `sql` in `ctx`.
pub async fn plan_sql(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan> {
    let stmt = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::PostgreSQL)?;
    plan_statement(ctx, stmt).await
}

async fn plan_statement(ctx: &SessionContext, stmt: DfStatement) -> Result<LogicalPlan> {
    let state = ctx.state();
    match state.statement_to_plan(stmt.clone()).await {
        Ok(plan) => Ok(plan),
        Err(e) => Err(explain(&state, &stmt).unwrap_or(Error::DataFusion(e))),
    }
}

/// Why `stmt` cannot be planned, when the reason is a missing relation or function.
fn explain(state: &SessionState, stmt: &DfStatement) -> Option<Error> {
    for reference in state.resolve_table_references(stmt).ok()? {
        let name = reference.table();
        if reference.schema().is_none() && state.table_functions().contains_key(name) {
            continue;
        }
        let exists = state
            .schema_for_ref(reference.clone())
            .is_ok_and(|schema| schema.table_exist(name));
        if !exists {
            return Some(Error::UndefinedTable(reference.to_string()));
        }
    }
    let DfStatement::Statement(inner) = stmt else {
        return None;
    };
    let mut missing = None;
    let _ = visit_expressions(inner.as_ref(), |expr| {
        if let SqlExpr::Function(f) = expr {
            let name = f
                .name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .map(|ident| match ident.quote_style {
                    Some(_) => ident.value.clone(),
                    None => ident.value.to_lowercase(),
                });
            if let Some(name) = name
                && !known_function(state, &name)
            {
                missing = Some(name);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    missing.map(Error::UndefinedFunction)
}

fn known_function(state: &SessionState, name: &str) -> bool {
    state.scalar_functions().contains_key(name)
        || state.aggregate_functions().contains_key(name)
        || state.window_functions().contains_key(name)
        || state.table_functions().contains_key(name)
        || PLANNER_FUNCTIONS.contains(&name)
}
