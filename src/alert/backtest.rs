//! Backtesting in SQL: replay an alert over stored history and see every transition it
//! would have made.
//!
//! ```sql
//! SELECT * FROM alert_backtest('high_cpu', '2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z');
//! SELECT * FROM alert_backtest_query('SELECT host, avg(u) AS value FROM cpu WHERE …',
//!     every => '1 minute', for => '5 minutes',
//!     start => now() - INTERVAL '1 day', "end" => now());
//! ```
//!
//! The query runs at each `every` step from `start` to `end` (aligned to `every`), with
//! `now()` = the step, through the same state machine as live alerts. Each row is one
//! transition: `time, labels, from_state, to_state, value`. (Named arguments are put in
//! order by the SQL front end; see [`PARAMETERS`].)

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;

use super::{Rule, eval, events_batch, events_schema, state};
use crate::duration::parse_secs as parse_duration;
use crate::query::QueryEngine;

const NS: i64 = 1_000_000_000;
/// Evaluations one backtest may run.
pub const MAX_STEPS: i64 = 100_000;

/// The parameter names of the table functions, in positional order.
pub const PARAMETERS: &[(&str, &[&str])] = &[
    ("alert_backtest", &["name", "start", "end"]),
    (
        "alert_backtest_query",
        &["query", "every", "for", "start", "end", "keep_firing_for"],
    ),
];

/// Finds a rule by name (rules change after sessions are created).
pub type RuleLookup = Arc<dyn Fn(&str) -> Option<Rule> + Send + Sync>;

/// The two table functions for sessions of database `db`.
pub fn functions(
    query: Arc<QueryEngine>,
    db: &str,
    rules: RuleLookup,
) -> Vec<(String, Arc<dyn TableFunctionImpl>)> {
    vec![
        (
            "alert_backtest".to_string(),
            Arc::new(Backtest {
                query: query.clone(),
                db: db.to_string(),
                rules: Some(rules),
            }),
        ),
        (
            "alert_backtest_query".to_string(),
            Arc::new(Backtest {
                query,
                db: db.to_string(),
                rules: None,
            }),
        ),
    ]
}

/// `alert_backtest` (with `rules`) or `alert_backtest_query`.
struct Backtest {
    query: Arc<QueryEngine>,
    db: String,
    rules: Option<RuleLookup>,
}

impl std::fmt::Debug for Backtest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backtest").field("db", &self.db).finish()
    }
}

/// An argument's constant value (`now() - INTERVAL '1 day'` is folded as of the query).
fn constant(expr: &Expr, session: &dyn Session) -> Result<ScalarValue> {
    let context = SimplifyContext::builder()
        .with_query_execution_start_time(session.execution_props().query_execution_start_time)
        .build();
    match ExprSimplifier::new(context).simplify(expr.clone())? {
        Expr::Literal(v, _) => Ok(v),
        other => plan_err!("backtest arguments must be constants, got {other}"),
    }
}

fn text(expr: &Expr, session: &dyn Session, what: &str) -> Result<String> {
    match constant(expr, session)? {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Ok(s),
        other => plan_err!("{what} must be text, got {other}"),
    }
}

fn time(expr: &Expr, session: &dyn Session, what: &str) -> Result<i64> {
    let v = constant(expr, session)?.cast_to(&DataType::Timestamp(
        TimeUnit::Nanosecond,
        Some("UTC".into()),
    ))?;
    match v {
        ScalarValue::TimestampNanosecond(Some(t), _) => Ok(t),
        other => plan_err!("{what} must be a timestamp, got {other}"),
    }
}

fn duration(expr: &Expr, session: &dyn Session, what: &str, zero_ok: bool) -> Result<i64> {
    let v = constant(expr, session)?;
    // Client numbers: every product and sum checked, an overflow is an invalid value.
    let too_long = || -> Result<i64> {
        Err(crate::error::Error::new(
            crate::error::SqlState::INVALID_PARAMETER_VALUE,
            format!("{what} is too long"),
        )
        .into_datafusion())
    };
    let checked = |parts: &[(i64, i64)]| {
        parts.iter().try_fold(0i64, |acc, (n, unit)| {
            n.checked_mul(*unit).and_then(|v| acc.checked_add(v))
        })
    };
    let ns = match &v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => match checked(&[
            (i.months as i64, 30 * 86_400 * NS),
            (i.days as i64, 86_400 * NS),
            (i.nanoseconds, 1),
        ]) {
            Some(ns) => ns,
            None => return too_long(),
        },
        ScalarValue::IntervalDayTime(Some(i)) => {
            match checked(&[
                (i.days as i64, 86_400 * NS),
                (i.milliseconds as i64, 1_000_000),
            ]) {
                Some(ns) => ns,
                None => return too_long(),
            }
        }
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => match parse_duration(s) {
            Some(secs) => crate::duration::secs_to_nanos(secs),
            None if zero_ok && s.trim().trim_end_matches(char::is_alphabetic).trim() == "0" => 0,
            None => {
                return plan_err!(
                    "invalid {what} '{s}': use interval text like '1 minute' or '1m'"
                );
            }
        },
        other => return plan_err!("{what} must be a duration, got {other}"),
    };
    if ns < 0 || (ns == 0 && !zero_ok) {
        return plan_err!("{what} must be positive");
    }
    Ok(ns)
}

impl TableFunctionImpl for Backtest {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let exprs = args.exprs();
        let replay = match &self.rules {
            Some(rules) => {
                let [name, start, end] = exprs else {
                    return plan_err!("alert_backtest(name, start, end) takes 3 arguments");
                };
                let name = text(name, session, "name")?;
                let Some(rule) = rules(&name) else {
                    return Err(crate::error::Error::new(
                        crate::error::SqlState::UNDEFINED_OBJECT,
                        format!("alert \"{name}\" does not exist"),
                    )
                    .into_datafusion());
                };
                Replay {
                    db: rule.database.clone(),
                    sql: rule.query.clone(),
                    every_ns: crate::duration::secs_to_nanos(rule.every_secs),
                    timing: rule.timing(),
                    start: time(start, session, "start")?,
                    end: time(end, session, "end")?,
                }
            }
            None => {
                if !(5..=6).contains(&exprs.len()) {
                    return plan_err!(
                        "alert_backtest_query(query, every, for, start, end[, keep_firing_for]) takes 5 or 6 arguments"
                    );
                }
                let sql = text(&exprs[0], session, "query")?;
                Replay {
                    db: self.db.clone(),
                    sql,
                    every_ns: duration(&exprs[1], session, "every", false)?,
                    timing: state::Timing {
                        for_ns: duration(&exprs[2], session, "for", true)?,
                        keep_firing_for_ns: match exprs.get(5) {
                            Some(e) => duration(e, session, "keep_firing_for", true)?,
                            None => 0,
                        },
                    },
                    start: time(&exprs[3], session, "start")?,
                    end: time(&exprs[4], session, "end")?,
                }
            }
        };
        if replay.end < replay.start {
            return plan_err!("end is before start");
        }
        // Checked before anything runs: a range of centuries is refused here, not by
        // the statement timeout.
        let steps = (replay.end as i128 - replay.start as i128) / replay.every_ns.max(1) as i128;
        if steps > MAX_STEPS as i128 {
            return Err(crate::error::Error::new(
                crate::error::SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "a backtest may run at most {MAX_STEPS} evaluations, this one {steps}; \
                     use a larger every or a shorter range"
                ),
            )
            .into_datafusion());
        }
        Ok(Arc::new(BacktestTable {
            query: self.query.clone(),
            replay,
        }))
    }
}

/// What to replay.
#[derive(Clone, Debug)]
struct Replay {
    db: String,
    sql: String,
    every_ns: i64,
    timing: state::Timing,
    start: i64,
    end: i64,
}

/// The transitions of one replay, computed when the table is scanned.
struct BacktestTable {
    query: Arc<QueryEngine>,
    replay: Replay,
}

impl std::fmt::Debug for BacktestTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BacktestTable")
            .field("replay", &self.replay)
            .finish()
    }
}

/// Runs the replay: every aligned step in `[start, end]`.
pub async fn replay_transitions(
    query: &QueryEngine,
    db: &str,
    sql: &str,
    every_ns: i64,
    timing: state::Timing,
    start: i64,
    end: i64,
) -> Result<Vec<state::Transition>> {
    let mut instances = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    let mut t = start.div_euclid(every_ns) * every_ns;
    if t < start {
        t += every_ns;
    }
    while t <= end {
        let rows = eval::evaluate(query, db, sql, t).await?;
        out.extend(state::step(&mut instances, rows, t, timing));
        t += every_ns;
    }
    Ok(out)
}

#[async_trait]
impl TableProvider for BacktestTable {
    fn schema(&self) -> SchemaRef {
        events_schema(false)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let r = &self.replay;
        let transitions = replay_transitions(
            &self.query,
            &r.db,
            &r.sql,
            r.every_ns,
            r.timing,
            r.start,
            r.end,
        )
        .await?;
        let batch = events_batch(
            transitions
                .iter()
                .map(|t| (None, t.time, &t.labels, t.from, t.to, t.value)),
            false,
        )?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
