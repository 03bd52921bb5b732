//! The latest-point path: `SELECT DISTINCT ON (tags) … ORDER BY tags, time DESC` (TSBS'
//! `lastpoint`, "the newest row of each host") picks, per group of tag values, the row with
//! the greatest time. Every such row is the newest row of its series, so the scan under it
//! may return only each series' newest row ([`crate::storage::scan`] reads it from the
//! newest block's footer statistics or the buffer, without decoding blocks), and
//! `DISTINCT ON` then chooses among those few rows exactly as it would among all.
//!
//! [`LatestRows`] is an analyzer rule that marks the table scan under such a `DISTINCT ON`
//! (directly, or under a filter of tag and time conditions only: a condition on a value
//! must see every row). The scan checks its pushed filters once more and reads every row
//! when any is not one it applies exactly, so the answer is the same either way.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, TableScan};
use datafusion::optimizer::AnalyzerRule;

use super::table::SundialTable;
use crate::storage::schema::TIME_COLUMN;

/// See the module docs.
#[derive(Debug, Default)]
pub struct LatestRows;

impl AnalyzerRule for LatestRows {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|p| Ok(rewrite(p))).map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sundial_latest_rows"
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == TIME_COLUMN)
}

fn rewrite(plan: LogicalPlan) -> Transformed<LogicalPlan> {
    let LogicalPlan::Distinct(Distinct::On(on)) = &plan else {
        return Transformed::no(plan);
    };
    let Some(sort) = &on.sort_expr else {
        return Transformed::no(plan);
    };
    // The input: a scan of a Sundial table, maybe under a filter.
    let (filter, scan) = match on.input.as_ref() {
        LogicalPlan::TableScan(scan) => (None, scan),
        LogicalPlan::Filter(f) => match f.input.as_ref() {
            LogicalPlan::TableScan(scan) => (Some(&f.predicate), scan),
            _ => return Transformed::no(plan),
        },
        _ => return Transformed::no(plan),
    };
    let Some(table) = source_as_provider(&scan.source)
        .ok()
        .and_then(|p| p.downcast_ref::<SundialTable>().map(SundialTable::latest))
    else {
        return Transformed::no(plan);
    };
    let is_tag = |e: &Expr| matches!(e, Expr::Column(c) if table.is_tag(&c.name));
    // ORDER BY: tags, then `time DESC`; what follows only breaks ties between series.
    let Some(time_at) = sort.iter().position(|s| is_time(&s.expr) && !s.asc) else {
        return Transformed::no(plan);
    };
    if !sort[..time_at].iter().all(|s| is_tag(&s.expr)) || !on.on_expr.iter().all(is_tag) {
        return Transformed::no(plan);
    }
    if let Some(predicate) = filter
        && !split_conjunction(predicate)
            .into_iter()
            .all(|c| table.applies_exactly(c))
    {
        return Transformed::no(plan);
    }
    let new_scan = LogicalPlan::TableScan(TableScan {
        source: provider_as_source(Arc::new(table)),
        ..scan.clone()
    });
    let input = match on.input.as_ref() {
        LogicalPlan::Filter(f) => {
            let mut f = f.clone();
            f.input = Arc::new(new_scan);
            LogicalPlan::Filter(f)
        }
        _ => new_scan,
    };
    let mut on = on.clone();
    on.input = Arc::new(input);
    Transformed::yes(LogicalPlan::Distinct(Distinct::On(on)))
}
