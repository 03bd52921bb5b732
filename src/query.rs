//! The SQL front: one DataFusion session context per database (its catalog is the
//! database, its tables are storage tables), with the Postgres catalog emulation of
//! `datafusion-pg-catalog`. Front ends reach SQL only through [`QueryEngine`].

pub mod activity;
pub mod catalog;
pub mod complexity;
pub mod functions;
pub use functions::float_text;
pub mod information_schema;
pub mod latest;
pub mod plan;
pub mod scan;
pub mod settings;
pub mod statements;
pub mod system;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use parking_lot::Mutex;

use datafusion::common::tree_node::TreeNode;

use crate::error::{Classify, Kind, SqlState};
use crate::storage::{Database, Engine};

/// The database that always exists (re-exported for the front ends).
pub use crate::storage::DEFAULT_DATABASE;

/// Errors of the SQL front.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database \"{name}\" does not exist (existing databases: {existing})")]
    UnknownDatabase { name: String, existing: String },
    /// Planning failed because the statement names a relation that no schema has.
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    /// Planning failed because the statement calls a function nothing registered.
    #[error("function {0}() does not exist")]
    UndefinedFunction(String),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        self.sqlstate().kind()
    }

    fn sqlstate(&self) -> SqlState {
        match self {
            Error::UnknownDatabase { .. } => SqlState::INVALID_CATALOG_NAME,
            Error::UndefinedTable(_) => SqlState::UNDEFINED_TABLE,
            Error::UndefinedFunction(_) => SqlState::UNDEFINED_FUNCTION,
            Error::DataFusion(e) => crate::error::classify_datafusion(e).0,
        }
    }

    fn to_error(&self) -> StatementError {
        match self {
            Error::DataFusion(e) => {
                let (state, message) = crate::error::classify_datafusion(e);
                StatementError::new(state, message)
            }
            other => StatementError::new(other.sqlstate(), other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The storage database a context was built for, and the context.
type ContextEntry = (Arc<Database>, Arc<SessionContext>);

/// What the alerting subsystem offers the SQL front: its statements, the `system` schema
/// (visible from every database) and its table functions. Implemented by the alerting
/// subsystem; the query engine holds it behind this trait so that `query` does not depend on `alert`.
#[async_trait::async_trait]
pub trait Alerting: Send + Sync + std::fmt::Debug {
    /// Runs `CREATE/DROP/ALTER ALERT` issued in database `current`.
    async fn execute(
        &self,
        current: &str,
        stmt: statements::Statement,
    ) -> Result<Outcome, StatementError>;
    /// The `system` schema's tables, as they are now.
    fn system_table_names(&self) -> Vec<String>;
    fn system_table(&self, name: &str) -> Option<Arc<dyn datafusion::catalog::TableProvider>>;
    /// Table functions for a session of database `db` (`alert_backtest`, …).
    fn table_functions(
        &self,
        db: &str,
    ) -> Vec<(String, Arc<dyn datafusion::catalog::TableFunctionImpl>)>;
    /// The parameter names of a table function that takes named arguments
    /// (`every => '1m'`), in positional order.
    fn table_function_parameters(&self, function: &str) -> Option<&'static [&'static str]>;
}

/// Hands out the session context of each database.
pub struct QueryEngine {
    engine: Arc<Engine>,
    /// Alert statements, the `system` schema and backtesting; set once at start.
    alerting: std::sync::OnceLock<Arc<dyn Alerting>>,
    /// Per database: the storage object it was built for (a dropped and re-created
    /// database is a new one) and its context.
    contexts: Mutex<HashMap<String, ContextEntry>>,
    /// Shared by every session: one memory pool for all queries (see
    /// [`QueryEngine::with_memory_limit`]).
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Statements running now (`system.running_queries`, `pg_cancel_backend`).
    pub activity: Arc<activity::Activity>,
}

/// What one of Sundial's own statements did: the command tag and, for DELETE, a count.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub tag: &'static str,
    pub rows: Option<usize>,
}

/// Why one of Sundial's own statements is malformed or failed, with its SQLSTATE.
pub type StatementError = crate::error::Error;

fn fail(state: SqlState, message: impl Into<String>) -> StatementError {
    StatementError::new(state, message)
}

fn table_missing(table: &str) -> StatementError {
    Error::UndefinedTable(table.to_string()).to_error()
}

fn db_missing(db: &str) -> StatementError {
    fail(
        SqlState::INVALID_CATALOG_NAME,
        format!("database \"{db}\" does not exist"),
    )
}

fn internal(e: impl std::fmt::Display) -> StatementError {
    StatementError::internal(e)
}

impl QueryEngine {
    /// Queries without a memory limit (tests, tools); the server sets one.
    pub fn new(engine: Arc<Engine>) -> QueryEngine {
        Self::with_memory_limit(engine, 0, 10 << 30)
    }

    /// Queries share `bytes` of memory (0: no limit): sorts, aggregations and joins
    /// spill to disk where DataFusion can, and a query that still needs more — or
    /// whose table scan would read more — fails with SQLSTATE 53200; the server stays up.
    /// Spill files of all queries together take at most `spill` bytes (then 53200 too).
    pub fn with_memory_limit(engine: Arc<Engine>, bytes: usize, spill: u64) -> QueryEngine {
        use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let mut builder = RuntimeEnvBuilder::new().with_max_temp_directory_size(spill);
        if bytes > 0 {
            builder = builder.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes),
                std::num::NonZeroUsize::new(3).expect("3 is not 0"),
            )));
        }
        QueryEngine {
            engine,
            alerting: std::sync::OnceLock::new(),
            contexts: Mutex::new(HashMap::new()),
            runtime: builder
                .build_arc()
                .expect("a runtime without a disk manager change"),
            activity: Default::default(),
        }
    }

    /// Installs the alerting subsystem (before the first session is served).
    pub fn set_alerting(&self, alerting: Arc<dyn Alerting>) {
        let _ = self.alerting.set(alerting);
        self.contexts.lock().clear();
    }

    /// The parameter names of a table function that takes named arguments.
    pub fn table_function_parameters(&self, function: &str) -> Option<&'static [&'static str]> {
        self.alerting.get()?.table_function_parameters(function)
    }

    pub fn storage(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The names of all databases, sorted.
    pub fn database_names(&self) -> Vec<String> {
        self.engine.database_names()
    }

    /// The session context of `db`, created on first use. `postgres`, the database that
    /// `psql -l`, pgAdmin and DBeaver connect to by default, is the default database
    /// unless one of that name exists.
    pub fn context(&self, db: &str) -> Result<Arc<SessionContext>> {
        if db == "postgres" && self.engine.database(db).is_none() {
            return self.context(crate::storage::DEFAULT_DATABASE);
        }
        let Some(database) = self.engine.database(db) else {
            return Err(Error::UnknownDatabase {
                name: db.to_string(),
                existing: self.database_names().join(", "),
            });
        };
        if let Some((d, ctx)) = self.contexts.lock().get(db)
            && Arc::ptr_eq(d, &database)
        {
            return Ok(ctx.clone());
        }
        let mut config = SessionConfig::new()
            // Our own, PostgreSQL-shaped information_schema (see information_schema.rs).
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(db, "public");
        // timestamptz values (now(), '…'::timestamptz) carry UTC, like the `time` column;
        // each session shows them in its own TimeZone (the Postgres front end encodes them so).
        config.options_mut().execution.time_zone = Some("UTC".to_string());
        let own = Arc::new(catalog::DatabaseCatalog::new(
            database.clone(),
            self.engine.clone(),
            self.alerting.get().cloned(),
            self.activity.clone(),
        ));
        let catalogs = Arc::new(catalog::DatabaseList::new(db, own, self.engine.clone()));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_catalog_list(catalogs)
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        setup_pg_catalog(&ctx, db, EmptyContextProvider).map_err(|e| Error::DataFusion(*e))?;
        functions::register(&ctx);
        ctx.register_udf(self.activity.cancel_udf());
        if let Some(alerting) = self.alerting.get() {
            for (name, function) in alerting.table_functions(db) {
                ctx.register_udtf(&name, function);
            }
        }
        let ctx = Arc::new(ctx);
        self.contexts
            .lock()
            .insert(db.to_string(), (database, ctx.clone()));
        Ok(ctx)
    }

    /// Runs one of Sundial's own statements in database `current`.
    pub async fn execute(
        &self,
        current: &str,
        stmt: statements::Statement,
    ) -> Result<Outcome, StatementError> {
        use statements::Statement as S;
        let outcome = |tag| Ok(Outcome { tag, rows: None });
        match stmt {
            S::CreateDatabase {
                name,
                if_not_exists,
                ttl_secs,
            } => {
                let n = name.clone();
                let created = self
                    .blocking(move |e| e.create_database(&n, ttl_secs))
                    .await?;
                if !created && !if_not_exists {
                    return Err(fail(
                        SqlState::DUPLICATE_DATABASE,
                        format!("database \"{name}\" already exists"),
                    ));
                }
                outcome("CREATE DATABASE")
            }
            S::DropDatabase { name, if_exists } => {
                if name == current {
                    return Err(fail(
                        SqlState::OBJECT_IN_USE,
                        "cannot drop the currently open database",
                    ));
                }
                let n = name.clone();
                if !self.blocking(move |e| e.drop_database(&n)).await? && !if_exists {
                    return Err(db_missing(&name));
                }
                outcome("DROP DATABASE")
            }
            S::AlterDatabaseTtl { name, ttl_secs } => {
                let n = name.clone();
                if !self
                    .blocking(move |e| e.set_database_ttl(&n, ttl_secs))
                    .await?
                {
                    return Err(db_missing(&name));
                }
                outcome("ALTER DATABASE")
            }
            S::AlterTableTtl { table, ttl_secs } => {
                let (d, t) = (current.to_string(), table.clone());
                if !self
                    .blocking(move |e| e.set_table_ttl(&d, &t, ttl_secs))
                    .await?
                {
                    return Err(table_missing(&table));
                }
                outcome("ALTER TABLE")
            }
            S::DropTable { table, if_exists } => {
                let (d, t) = (current.to_string(), table.clone());
                if !self.blocking(move |e| e.drop_table(&d, &t)).await? && !if_exists {
                    return Err(table_missing(&table));
                }
                outcome("DROP TABLE")
            }
            S::Delete { table, where_sql } => {
                self.delete(current, &table, where_sql.as_deref()).await
            }
            S::NoOp { tag } => outcome(tag),
            alert @ (S::CreateAlert(_) | S::DropAlert { .. } | S::AlterAlert { .. }) => {
                match self.alerting.get() {
                    Some(alerting) => alerting.execute(current, alert).await,
                    None => Err(fail(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        "alerting is not enabled on this server",
                    )),
                }
            }
        }
    }

    /// Runs a blocking storage call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> crate::storage::Result<T> + Send + 'static,
    ) -> Result<T, StatementError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(internal)?
            .map_err(|e| match e.kind() {
                Kind::Internal => internal(e),
                _ => e.to_error(),
            })
    }

    /// `DELETE FROM table [WHERE …]`: the condition must be made of time ranges and tag
    /// predicates; the rows it matches are counted, then hidden by a tombstone.
    async fn delete(
        &self,
        db: &str,
        table: &str,
        where_sql: Option<&str>,
    ) -> Result<Outcome, StatementError> {
        let ctx = self.context(db).map_err(|e| e.to_error())?;
        if self
            .engine
            .database(db)
            .and_then(|d| d.table(table))
            .is_none()
        {
            return Err(table_missing(table));
        }
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let cond = where_sql.map(|w| format!(" WHERE {w}")).unwrap_or_default();
        let plan_error = |e: datafusion::error::DataFusionError| Error::DataFusion(e).to_error();
        let df = ctx
            .sql(&format!("SELECT * FROM {quoted}{cond}"))
            .await
            .map_err(plan_error)?;
        let plan = df.clone().into_optimized_plan().map_err(plan_error)?;
        // The tombstone must say exactly what the WHERE clause says: the plan may hold
        // nothing but the scan, its filters and projections (no LIMIT, no join from a
        // subquery, no union), and every conjunct must be a time range or a tag predicate.
        let mut filters: Vec<datafusion::logical_expr::Expr> = Vec::new();
        let mut other = None;
        plan.apply(|node| {
            use datafusion::logical_expr::LogicalPlan as P;
            let found = match node {
                P::TableScan(scan) => scan.filters.clone(),
                P::Filter(f) => vec![f.predicate.clone()],
                P::Projection(_) | P::SubqueryAlias(_) => Vec::new(),
                node => {
                    other = Some(node.display().to_string());
                    return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
                }
            };
            for e in found {
                if !filters.contains(&e) {
                    filters.push(e);
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .map_err(plan_error)?;
        if let Some(node) = other {
            return Err(fail(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "DELETE takes a WHERE clause of time ranges and tag predicates only; \
                     it cannot be carried out as {node}"
                ),
            ));
        }
        let tags = self
            .engine
            .database(db)
            .and_then(|d| d.table(table))
            .map(|t| t.schema().tags)
            .unwrap_or_default();
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let (range, preds, rest) = table::split_filters(&filters, &tag_refs);
        if let Some(e) = rest.first() {
            return Err(fail(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("DELETE can only filter on time ranges and tags; {e} is neither"),
            ));
        }
        if where_sql.is_some() && filters.is_empty() {
            return Err(fail(
                SqlState::FEATURE_NOT_SUPPORTED,
                "DELETE can only filter on time ranges and tags",
            ));
        }
        let rows = df.count().await.map_err(plan_error)?;
        let (d, t) = (db.to_string(), table.to_string());
        self.blocking(move |e| e.delete(&d, &t, range, preds))
            .await?;
        Ok(Outcome {
            tag: "DELETE",
            rows: Some(rows),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::storage::{Point, StorageConfig, Value, WriteOptions};

    /// An engine in `dir` holding `batches`, each written and then flushed to a segment.
    async fn engine_with(dir: &std::path::Path, batches: Vec<Vec<Point>>) -> Arc<Engine> {
        let engine = Engine::open(dir, StorageConfig::default()).unwrap();
        for points in batches {
            let opts = WriteOptions {
                accept_partial: true,
                sync: false,
            };
            engine.write("db", points, opts).await.unwrap();
            engine.flush().unwrap();
        }
        engine
    }

    /// SQL time predicates reach the scan as a time range and skip segments.
    #[tokio::test]
    async fn time_predicates_prune_segments() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000_000_000i64;
        let base = 1_451_606_400_000_000_000i64; // 2016-01-01T00:00:00Z
        let batches = (0..4)
            .map(|h| {
                (0..60)
                    .map(|m| Point {
                        table: "cpu".into(),
                        tags: vec![("host".into(), "a".into())],
                        fields: vec![("v".into(), Value::Integer(m))],
                        time: base + h * hour + m * 60_000_000_000,
                    })
                    .collect()
            })
            .collect();
        let engine = engine_with(dir.path(), batches).await;
        let q = QueryEngine::new(engine.clone());
        let ctx = q.context("db").unwrap();
        let stats = engine.stats();
        let cases = [
            (
                "time >= '2016-01-01T01:00:00Z' AND time < '2016-01-01T02:00:00Z'",
                60,
                1,
            ),
            (
                "time BETWEEN '2016-01-01T02:30:00Z' AND '2016-01-01T03:10:00Z'",
                41,
                2,
            ),
            ("time > TIMESTAMP '2016-01-01T03:58:00Z'", 1, 1),
            ("'2016-01-01T00:59:00Z' >= time", 60, 1),
            ("v >= 0", 240, 4),
        ];
        for (filter, rows, segments) in cases {
            let before = stats.segments_read.load(Ordering::Relaxed);
            let sql = format!("SELECT count(*) FROM cpu WHERE {filter}");
            let n = count(&ctx, &sql).await;
            assert_eq!(n, rows, "{filter}");
            assert_eq!(
                stats.segments_read.load(Ordering::Relaxed) - before,
                segments,
                "{filter}"
            );
        }
        assert!(matches!(
            q.context("nope"),
            Err(Error::UnknownDatabase { .. })
        ));
    }

    /// The single integer a `SELECT count(…)` answers.
    async fn count(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0)
    }

    /// Tag predicates are resolved through the series index: only matching series'
    /// blocks are read.
    #[tokio::test]
    async fn tag_predicates_read_only_matching_series() {
        let dir = tempfile::tempdir().unwrap();
        let points = (0..20)
            .flat_map(|h| {
                (0..100).map(move |i| Point {
                    table: "cpu".into(),
                    tags: vec![
                        ("host".into(), format!("h{h}")),
                        ("dc".into(), format!("dc{}", h % 2)),
                    ],
                    fields: vec![("v".into(), Value::Float(i as f64 * 1.5 + h as f64))],
                    time: i * 1_000_000_000,
                })
            })
            .collect();
        let engine = engine_with(dir.path(), vec![points]).await;
        let q = QueryEngine::new(engine.clone());
        let ctx = q.context("db").unwrap();
        let stats = engine.stats();
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let before = stats.segment_bytes_read.load(Ordering::Relaxed);
                let n = count(&ctx, sql).await;
                (n, stats.segment_bytes_read.load(Ordering::Relaxed) - before)
            }
        };
        let (all, full) = run("SELECT count(v) FROM cpu").await;
        assert_eq!(all, 2000);
        let cases = [
            ("SELECT count(v) FROM cpu WHERE host = 'h7'", 100, 1),
            (
                "SELECT count(v) FROM cpu WHERE host IN ('h1', 'h2')",
                200,
                2,
            ),
            ("SELECT count(v) FROM cpu WHERE host LIKE 'h1%'", 1100, 11),
            (
                "SELECT count(v) FROM cpu WHERE host ~ '^h(3|4)$' AND dc = 'dc0'",
                100,
                1,
            ),
            (
                "SELECT count(v) FROM cpu WHERE host != 'h0' AND dc = 'dc0'",
                900,
                9,
            ),
            ("SELECT count(v) FROM cpu WHERE host = 'nobody'", 0, 0),
            (
                "SELECT count(v) FROM cpu WHERE host = 'h1' OR host = 'h2' OR host LIKE 'h3%'",
                300,
                3,
            ),
        ];
        for (sql, rows, series) in cases {
            let (n, read) = run(sql).await;
            assert_eq!(n, rows, "{sql}");
            // Each series is 1/20 of the data (small slack for block size differences).
            assert!(
                read * 20 <= (full + full / 10) * series,
                "{sql}: read {read} of {full}"
            );
        }
    }
}
