//! Statement rewrites that make DataFusion answer as PostgreSQL would, applied to the
//! parsed statement before planning:
//!
//! - **Column names.** PostgreSQL names an unaliased result column after the function
//!   (`count`, `avg`, `current_database`), the cast's type (`int4`) or `?column?`, and
//!   allows the same name twice (`SELECT count(*), count(x)`). DataFusion names columns
//!   after the whole expression and requires unique names, so unaliased expressions get
//!   PostgreSQL's name as an alias, made unique with a hidden suffix that
//!   [`display_name`] strips before the name goes on the wire.
//! - **Session settings.** `current_setting('name')` is replaced by the session's value
//!   and `set_config('name', 'value', is_local)` by its value, recording the change for
//!   the session to apply — the functions read and write per-connection state that a
//!   shared DataFusion context cannot hold.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, OrderByKind,
    Query, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, Value, VisitMut,
    VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Separates a column's name from the suffix that keeps duplicate names apart.
const UNIQUE_MARK: char = '\u{1f}';

/// The name a client sees for a result column named `name` in the plan.
pub fn display_name(name: &str) -> &str {
    let name = name.split(UNIQUE_MARK).next().unwrap_or(name);
    // datafusion-pg-catalog aliases `n.oid` in `SELECT n.oid, n.*` as `__alias_oid`.
    name.strip_prefix("__alias_").unwrap_or(name)
}

/// PostgreSQL's name for an unaliased result expression (`?column?` if it has none).
fn pg_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_lowercase()
                }
            })
            .unwrap_or_else(|| "?column?".into()),
        Expr::Cast {
            expr, data_type, ..
        } => match pg_name(expr).as_str() {
            "?column?" => type_name(data_type),
            name => name.to_string(),
        },
        Expr::Nested(inner) => pg_name(inner),
        Expr::Extract { .. } => "extract".into(),
        Expr::Case { .. } => "case".into(),
        Expr::Array(_) => "array".into(),
        Expr::Interval(_) => "interval".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::TypedString(t) => type_name(&t.data_type),
        Expr::Substring { .. } => "substring".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Overlay { .. } => "overlay".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Subquery(q) => first_select_item_name(q).unwrap_or_else(|| "?column?".into()),
        _ => "?column?".into(),
    }
}

fn first_select_item_name(q: &Query) -> Option<String> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    match select.projection.first()? {
        SelectItem::UnnamedExpr(e) => Some(pg_name(e)),
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        _ => None,
    }
}

/// PostgreSQL's internal type name, as it names a cast column (`'1'::int` → `int4`).
fn type_name(t: &SqlType) -> String {
    let text = t.to_string().to_lowercase();
    let base = text.split('(').next().unwrap_or(&text).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "character varying" | "varchar" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => return other.to_string(),
    }
    .to_string()
}

/// Gives unaliased expressions in the outermost SELECT list PostgreSQL's column names,
/// unique for DataFusion.
fn name_columns(query: &mut Query) {
    let mut body = query.body.as_mut();
    // The first branch of a UNION names the columns.
    while let SetExpr::SetOperation { left, .. } = body {
        body = left.as_mut();
    }
    let SetExpr::Select(select) = body else {
        return;
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in select.projection.iter_mut() {
        let (name, is_column) = match item {
            SelectItem::UnnamedExpr(e) => (
                pg_name(e),
                matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)),
            ),
            SelectItem::ExprWithAlias { alias, .. } => (alias.value.clone(), true),
            _ => continue,
        };
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        let unique = if *count == 1 {
            name
        } else {
            format!("{name}{UNIQUE_MARK}{count}")
        };
        match item {
            SelectItem::UnnamedExpr(e) if !is_column || *count > 1 => {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', unique),
                };
            }
            SelectItem::ExprWithAlias { alias, .. } if *count > 1 => {
                *alias = Ident::with_quote('"', unique);
            }
            _ => {}
        }
    }
}

/// A string literal argument.
fn string_arg(arg: &FunctionArg) -> Option<String> {
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) = arg else {
        return None;
    };
    match &v.value {
        Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Number(n, _) => Some(n.clone()),
        _ => None,
    }
}

/// Puts named arguments of Sundial's table functions (`every => '1m'`) in their positional
/// order, which is all DataFusion's table functions take.
fn named_arguments(params: &[&str], args: &mut Vec<FunctionArg>) {
    if !args
        .iter()
        .any(|a| matches!(a, FunctionArg::Named { .. } | FunctionArg::ExprNamed { .. }))
    {
        return;
    }
    let mut slots: Vec<Option<FunctionArg>> = vec![None; params.len()];
    let mut next = 0;
    for arg in args.drain(..) {
        let slot = match &arg {
            FunctionArg::Named { name, arg, .. } => params
                .iter()
                .position(|p| p.eq_ignore_ascii_case(&name.value))
                .map(|i| (i, FunctionArg::Unnamed(arg.clone()))),
            FunctionArg::Unnamed(_) => {
                next += 1;
                Some((next - 1, arg.clone()))
            }
            FunctionArg::ExprNamed {
                name: Expr::Identifier(name),
                arg,
                ..
            } => params
                .iter()
                .position(|p| p.eq_ignore_ascii_case(&name.value))
                .map(|i| (i, FunctionArg::Unnamed(arg.clone()))),
            FunctionArg::ExprNamed { .. } => None,
        };
        if let Some((i, a)) = slot
            && i < slots.len()
        {
            slots[i] = Some(a);
        }
    }
    // Trailing optional parameters may be left out; a gap is left for the function to reject.
    while slots.last().is_some_and(Option::is_none) {
        slots.pop();
    }
    args.extend(slots.into_iter().map(|a| {
        a.unwrap_or(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(
            Value::Null.with_empty_span(),
        ))))
    }));
}

/// Functions that return a set of rows when called in FROM (the rest are scalar).
const SET_RETURNING: &[&str] = &["generate_series", "range", "unnest", "generate_subscripts"];

/// PostgreSQL's functions in FROM: a scalar function there is a one-row table whose
/// column is named by the alias (`FROM string_to_array(x, ',') s` → `s` is the array),
/// and a set-returning function's alias also names its column (`generate_series(1, 3)
/// AS i` → column `i`). DataFusion only knows table functions with their own column
/// names, so scalar calls become `(SELECT f(…) AS s) AS s` and set-returning ones get
/// the column alias.
struct FromFunctions<'a> {
    /// The parameter names of a table function that takes named arguments.
    parameters: &'a dyn Fn(&str) -> Option<&'static [&'static str]>,
}

impl VisitorMut for FromFunctions<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        // `pg_catalog.unnest(…)`: DataFusion knows table functions by their bare names,
        // and plans `unnest` only as sqlparser's UNNEST factor, which re-parsing gives.
        if let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
        {
            if let Some(function) = name.0.last().and_then(|p| p.as_ident())
                && let Some(params) = (self.parameters)(&function.value.to_lowercase())
            {
                named_arguments(params, &mut args.args);
            }
            if name.0.len() == 2
                && name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            {
                name.0.remove(0);
            }
            if name.0.len() == 1
                && name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"))
                && let Ok(mut parsed) =
                    Parser::parse_sql(&PostgreSqlDialect {}, &format!("SELECT * FROM {factor}"))
                && let Some(Statement::Query(q)) = parsed.pop()
                && let SetExpr::Select(select) = *q.body
                && let Some(from) = select.from.into_iter().next()
            {
                *factor = from.relation;
                if let TableFactor::UNNEST {
                    alias: Some(alias),
                    array_exprs,
                    ..
                } = factor
                    && alias.columns.is_empty()
                    && array_exprs.len() == 1
                {
                    alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
                }
                return ControlFlow::Continue(());
            }
        }
        let TableFactor::Table {
            name,
            alias: Some(alias),
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let Some(function) = name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let function = function.value.to_lowercase();
        if SET_RETURNING.contains(&function.as_str()) {
            if alias.columns.is_empty() && (function != "unnest" || args.args.len() == 1) {
                alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            }
            return ControlFlow::Continue(());
        }
        let call = format!(
            "SELECT {name}({}) AS {}",
            args.args
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            alias.name
        );
        if let Ok(mut parsed) = Parser::parse_sql(&PostgreSqlDialect {}, &call)
            && let Some(Statement::Query(subquery)) = parsed.pop()
        {
            *factor = TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(alias.clone()),
                sample: None,
            };
        }
        ControlFlow::Continue(())
    }
}

/// `x [NOT] IN (SELECT …)` in a SELECT list or ORDER BY (Grafana's table list has both):
/// DataFusion plans IN-subqueries only in filters, so there it becomes
/// `[NOT] coalesce(array_has((SELECT array_agg(…) …), x), false)`, a scalar subquery it
/// plans anywhere.
fn in_subqueries_outside_filters(query: &mut Query) {
    let rewrite = |e: &mut Expr| {
        let _ = visit_expressions_mut(e, |e| {
            if let Expr::InSubquery {
                expr,
                subquery,
                negated,
            } = e
                && let Some(agg) = aggregate_subquery(subquery, "array_agg")
                && let Ok(call) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&format!(
                        "{}coalesce(array_has(({agg}), {expr}), false)",
                        if *negated { "NOT " } else { "" }
                    ))
                    .and_then(|mut p| p.parse_expr())
            {
                *e = Expr::Nested(Box::new(call));
            }
            ControlFlow::<()>::Continue(())
        });
    };
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                rewrite(e);
            }
        }
    }
    if let Some(order_by) = query.order_by.as_mut()
        && let OrderByKind::Expressions(keys) = &mut order_by.kind
    {
        for key in keys.iter_mut() {
            rewrite(&mut key.expr);
        }
    }
}

/// `SELECT [DISTINCT] e FROM … [ORDER BY …]` as `SELECT agg([DISTINCT] e [ORDER BY …])
/// FROM …` (`ORDER BY 1` orders by `e`). `None` unless the query selects exactly one expression.
fn aggregate_subquery(query: &Query, agg: &str) -> Option<Box<Query>> {
    let mut query = Box::new(query.clone());
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }] =
        select.projection.as_slice()
    else {
        return None;
    };
    let order = match query.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(keys)) if !keys.is_empty() => format!(
            " ORDER BY {}",
            keys.iter()
                .map(|k| {
                    let mut k = k.clone();
                    if matches!(&k.expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n == "1"))
                    {
                        k.expr = item.clone();
                    }
                    k.to_string()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    };
    let distinct = if select.distinct.take().is_some() {
        "DISTINCT "
    } else {
        ""
    };
    let call = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&format!("{agg}({distinct}{item}{order})"))
        .and_then(|mut p| p.parse_expr())
        .ok()?;
    select.projection = vec![SelectItem::UnnamedExpr(call)];
    Some(query)
}

/// `ARRAY(SELECT e FROM …)` (psql's `\d+` and policy queries) becomes the scalar subquery
/// `(SELECT array_agg(e) FROM …)`, which DataFusion plans, correlated or not. An empty
/// result is NULL rather than `{}`; the subquery's ORDER BY becomes the aggregate's.
fn array_subquery(expr: &mut Expr) {
    let Expr::Function(f) = expr else {
        return;
    };
    let FunctionArguments::Subquery(query) = &f.args else {
        return;
    };
    if !f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case("array"))
    {
        return;
    }
    // psql's `\d+` maps the TOAST table's `reloptions` through `unnest` in a correlated
    // subquery, which DataFusion cannot run. `reloptions` is always NULL here (Sundial's
    // tables have no storage options), and so is the mapped array.
    if let SetExpr::Select(select) = query.body.as_ref()
        && let [from] = select.from.as_slice()
        && from.joins.is_empty()
        && let relation = from.relation.to_string().to_lowercase()
        && relation.contains("unnest(")
        && relation.contains(".reloptions)")
    {
        if let Ok(null) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql("CAST(NULL AS TEXT[])")
            .and_then(|mut p| p.parse_expr())
        {
            *expr = null;
        }
        return;
    }
    if let Some(query) = aggregate_subquery(query, "array_agg") {
        *expr = Expr::Subquery(query);
    }
}

/// Rewrites `statement` for this session. `setting` answers a setting's session value,
/// `parameters` the parameter names of a table function that takes named arguments;
/// the returned list holds the `set_config` calls to apply, in order.
pub fn rewrite(
    statement: &mut Statement,
    setting: &dyn Fn(&str) -> Option<String>,
    parameters: &dyn Fn(&str) -> Option<&'static [&'static str]>,
) -> Vec<(String, String)> {
    if let Statement::Query(query) = statement {
        name_columns(query);
        in_subqueries_outside_filters(query);
    }
    let _ = statement.visit(&mut FromFunctions { parameters });
    let mut changes = Vec::new();
    let _ = visit_expressions_mut(statement, |expr| {
        array_subquery(expr);
        let Expr::Function(f) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let args: Vec<Option<String>> = match &f.args {
            FunctionArguments::List(list) => list.args.iter().map(string_arg).collect(),
            FunctionArguments::None => Vec::new(),
            FunctionArguments::Subquery(_) => return ControlFlow::Continue(()),
        };
        let replacement = match (name.value.to_lowercase().as_str(), args.as_slice()) {
            ("current_setting", [Some(setting_name)]) => setting(setting_name),
            ("current_setting", [Some(setting_name), Some(missing_ok)]) => {
                match setting(setting_name) {
                    Some(v) => Some(v),
                    None if missing_ok == "true" => {
                        *expr = Expr::Value(Value::Null.with_empty_span());
                        return ControlFlow::Continue(());
                    }
                    None => None,
                }
            }
            ("session_user" | "current_user" | "user", []) => setting("session_authorization"),
            // The connection's own pid, as CancelRequest, system.running_queries and
            // pg_cancel_backend know it.
            ("pg_backend_pid", []) => {
                if let Some(pid) = setting(super::session::BACKEND_PID) {
                    *expr = Expr::Cast {
                        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
                        expr: Box::new(Expr::Value(Value::Number(pid, false).with_empty_span())),
                        data_type: SqlType::Int(None),
                        array: false,
                        format: None,
                    };
                }
                return ControlFlow::Continue(());
            }
            ("set_config", [Some(setting_name), Some(value), Some(_is_local)]) => {
                changes.push((setting_name.clone(), value.clone()));
                Some(value.clone())
            }
            _ => None,
        };
        if let Some(value) = replacement {
            *expr = Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
                expr: Box::new(Expr::Value(
                    Value::SingleQuotedString(value).with_empty_span(),
                )),
                data_type: SqlType::Text,
                array: false,
                format: None,
            };
        }
        ControlFlow::Continue(())
    });
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        const PARAMETERS: &[&str] = &["query", "every", "for", "start", "end", "keep_firing_for"];
        rewrite(
            &mut s,
            &|n| (n == "server_version_num").then(|| "160006".to_string()),
            &|f| (f == "alert_backtest_query").then_some(PARAMETERS),
        );
        s.to_string()
    }

    #[test]
    fn columns_get_postgres_names() {
        assert_eq!(
            rewritten("SELECT count(*), avg(x), x, t.y FROM t"),
            "SELECT count(*) AS \"count\", avg(x) AS \"avg\", x, t.y FROM t"
        );
        assert_eq!(
            rewritten("SELECT '1'::int, 1 + 1, x::text, EXTRACT(EPOCH FROM time)"),
            "SELECT '1'::INT AS \"int4\", 1 + 1 AS \"?column?\", x::TEXT AS \"x\", \
             EXTRACT(EPOCH FROM time) AS \"extract\""
        );
        let dup = rewritten("SELECT count(*), count(x), a, a FROM t");
        assert!(dup.contains("count(x) AS \"count\u{1f}2\""), "{dup}");
        assert!(dup.contains(", a, a AS \"a\u{1f}2\""), "{dup}");
        assert_eq!(display_name("count\u{1f}2"), "count");
        assert_eq!(display_name("__alias_oid"), "oid");
    }

    #[test]
    fn named_table_function_arguments_are_ordered() {
        assert_eq!(
            rewritten(
                "SELECT * FROM alert_backtest_query('q', \"end\" => 'b', every => '1m', \
                 start => 'a', for => '0s')"
            ),
            "SELECT * FROM alert_backtest_query('q', '1m', '0s', 'a', 'b')"
        );
    }

    #[test]
    fn settings_are_substituted() {
        assert_eq!(
            rewritten("SELECT current_setting('server_version_num')::int / 100 AS version"),
            "SELECT '160006'::TEXT::INT / 100 AS version"
        );
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT set_config('a.b', 'x', false)",
        )
        .unwrap()
        .remove(0);
        let changes = rewrite(&mut s, &|_| None, &|_| None);
        assert_eq!(changes, vec![("a.b".to_string(), "x".to_string())]);
        assert_eq!(s.to_string(), "SELECT 'x'::TEXT AS \"set_config\"");
    }
}
