//! The Postgres wire protocol front end: pgwire with `datafusion-postgres`' query
//! handlers, one per database. The database a connection names in its startup message
//! selects the session context; an unknown one is refused with SQLSTATE 3D000, as
//! PostgreSQL does. Errors reach the client through one function (`user_error`), with
//! the SQLSTATE that [`crate::error`] gives their kind.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use crate::metrics::Metrics;
use async_trait::async_trait;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ToDFSchema};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::SinkExt;
use pgwire::messages::startup::ParameterStatus;

use crate::error::{Classify, SqlState};
use crate::query::{DEFAULT_DATABASE, QueryEngine, statements};

pub mod auth;
pub mod bind;
pub mod cancel;
pub mod connection;
pub mod encode;
pub mod limits;
pub mod rewrite;
pub mod session;

/// The statement type of `datafusion-postgres`' extended query handler.
type Statement = (
    String,
    Option<(
        datafusion::sql::sqlparser::ast::Statement,
        datafusion::logical_expr::LogicalPlan,
    )>,
);

/// The database a connection selected (PostgreSQL's default is the user name; we use
/// `sundial` when the client names none).
fn database_of<C: ClientInfo + ?Sized>(client: &C) -> String {
    client
        .metadata()
        .get(pgwire::api::METADATA_DATABASE)
        .cloned()
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string())
}

/// The query engine, and the library parser whose parameter typing Sundial reuses.
struct Services {
    query: Arc<QueryEngine>,
    /// datafusion-postgres' handler, kept for `get_parameter_types`: the wire types of a
    /// plan's `$n` (casts, `oid` columns of pg_catalog). It reads only the plan, so one
    /// handler on an empty context serves every database.
    params: DfSessionService,
}

impl Services {
    /// The context of database `db` (cached by the query engine).
    fn context(&self, db: &str) -> PgWireResult<Arc<SessionContext>> {
        self.query.context(db).map_err(|e| match e {
            crate::query::Error::UnknownDatabase { .. } => {
                user_error("FATAL", e.sqlstate(), e.to_string())
            }
            other => PgWireError::ApiError(Box::new(other.to_error())),
        })
    }

    fn for_client<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<Arc<SessionContext>> {
        self.context(&database_of(client))
    }

    /// The wire types of a statement's parameters.
    fn parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        self.params.query_parser().get_parameter_types(stmt)
    }
}

fn statement_error(e: crate::query::StatementError) -> PgWireError {
    user_error("ERROR", e.state, e.message)
}

/// A failed plan, with the SQLSTATE of what it names or of DataFusion's error.
fn plan_error(e: crate::query::Error) -> PgWireError {
    statement_error(e.to_error())
}

/// The one place a SQLSTATE becomes a Postgres error message.
fn user_error(severity: &str, state: SqlState, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_string(),
        state.code().to_string(),
        message,
    )))
}

/// The hooks of `datafusion-postgres` that Sundial keeps: transactions (BEGIN/COMMIT/
/// ROLLBACK with the transaction status drivers track) and cursors (DECLARE/FETCH/CLOSE).
/// `SET`/`SHOW` are [`session`]'s, because the library's hook writes some settings into the
/// DataFusion context that all connections of a database share.
fn hooks() -> Vec<Arc<dyn QueryHook>> {
    vec![
        Arc::new(datafusion_postgres::hooks::cursor::CursorStatementHook),
        Arc::new(datafusion_postgres::hooks::transactions::TransactionStatementHook),
    ]
}

fn api_error(e: impl std::error::Error + Send + Sync + 'static) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// Sends `ParameterStatus` for settings that changed.
async fn report<C>(client: &mut C, reports: Vec<(String, String)>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in reports {
        client
            .send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    Ok(())
}

/// Applies `set_config()` calls found by the rewrite.
async fn apply_set_config<C>(client: &mut C, changes: Vec<(String, String)>) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut reports = Vec::new();
    for (name, value) in changes {
        reports.extend(session::set(client, &name, &value)?);
    }
    report(client, reports).await
}

/// A plan with no rows whose columns are all text (Describe of `SHOW`, `SET`, …).
fn text_plan(columns: &[String]) -> PgWireResult<LogicalPlan> {
    let schema = encode::text_schema(columns)
        .to_dfschema()
        .map_err(api_error)?;
    Ok(LogicalPlan::EmptyRelation(
        datafusion::logical_expr::EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(schema),
        },
    ))
}

/// Routes each query to the context of the connection's database and runs it there.
pub struct Dispatcher {
    services: Arc<Services>,
    /// The server's self-metrics.
    metrics: Arc<Metrics>,
    /// Cancel signals of the connections' row streams.
    streams: Arc<cancel::Registry>,
    parser: Arc<DispatchParser>,
}

#[async_trait]
impl SimpleQueryHandler for Dispatcher {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = limits::Liveness::busy();
        crate::query::complexity::check(query).map_err(statement_error)?;
        let parts = statements::split(query).unwrap_or_else(|| vec![query.to_string()]);
        let mut responses = Vec::new();
        for part in parts {
            let part = statements::show_alerts(&part).map_or(part, str::to_string);
            if let Some(parsed) = statements::parse(&part) {
                let stmt = parsed.map_err(statement_error)?;
                responses.push(self.execute_own(client, stmt).await?);
                continue;
            }
            let parsed = self.parser.parse(&part).map_err(api_error)?;
            for stmt in parsed {
                responses.push(self.run_simple(client, stmt).await?);
            }
        }
        if responses.is_empty() {
            // `;` or a comment-only query.
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

impl Dispatcher {
    /// Lists a statement of `client` in `system.running_queries` until the returned
    /// registration is dropped.
    fn register<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        sql: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> crate::query::activity::Registration {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        self.services.query.activity.start(
            client.pid_and_secret_key().0,
            &database_of(client),
            &user,
            sql,
            cancel.clone(),
        )
    }

    /// Runs a plan and streams its result in the session's output forms. The statement stops
    /// with 57014 when `statement_timeout` passes or a CancelRequest for this connection
    /// arrives (psql's Ctrl-C, drivers' query timeouts).
    async fn execute_plan<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        ctx: &SessionContext,
        plan: LogicalPlan,
        format: &Format,
        sql: &str,
    ) -> PgWireResult<Response> {
        let deadline = session::statement_timeout(client).map(|d| tokio::time::Instant::now() + d);
        let cancel = self.streams.for_client(client).start();
        let running = self.register(client, sql, &cancel);
        let stopped = cancel.clone();
        let started = std::time::Instant::now();
        self.metrics.queries.add("postgres", 1);
        let start = async {
            let df = ctx.execute_logical_plan(plan).await.map_err(api_error)?;
            let schema = df.schema().as_arrow().clone();
            let stream = df.execute_stream().await.map_err(api_error)?;
            Ok::<_, PgWireError>((schema, stream))
        };
        let start = async {
            tokio::select! {
                started = start => started,
                _ = stopped.cancelled() => Err(encode::canceled()),
            }
        };
        let (schema, stream) = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, start)
                .await
                .map_err(|_| encode::statement_timeout())??,
            None => start.await?,
        };
        self.metrics
            .postgres_query_latency
            .observe(started.elapsed());
        let response = encode::query_response(
            &schema,
            stream,
            format,
            session::output_options(client),
            encode::Limits {
                deadline,
                cancel: Some(cancel),
                running: Some(running),
                busy: limits::Liveness::busy(),
            },
        )?;
        Ok(Response::Query(response))
    }

    /// One parsed statement of a simple query.
    async fn run_simple<C>(&self, client: &mut C, mut stmt: SqlStatement) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(outcome) = session::execute(client, &stmt, &Format::UnifiedText) {
            let outcome = outcome?;
            report(client, outcome.reports).await?;
            return Ok(outcome.response);
        }
        let ctx = self.services.for_client(client)?;
        for hook in &self.parser.hooks {
            if let Some(result) = hook.handle_simple_query(&stmt, &ctx, client).await {
                return result;
            }
        }
        let changes = rewrite::rewrite(&mut stmt, &|name| session::get(client, name), &|f| {
            self.services.query.table_function_parameters(f)
        });
        tracing::debug!(statement = %stmt, "rewritten");
        apply_set_config(client, changes).await?;
        let text = stmt.to_string();
        let plan = crate::query::plan::plan(&ctx, stmt)
            .await
            .map_err(plan_error)?;
        self.execute_plan(client, &ctx, plan, &Format::UnifiedText, &text)
            .await
    }
}

#[async_trait]
impl ExtendedQueryHandler for Dispatcher {
    type Statement = Statement;
    type QueryParser = DispatchParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = limits::Liveness::busy();
        let (sql, parsed) = &portal.statement.statement;
        // Our own statements are parsed into a statement without a plan (see DispatchParser).
        let Some((stmt, plan)) = parsed else {
            let sql =
                bind::bind(sql, portal).map_err(|(state, m)| user_error("ERROR", state, m))?;
            if let Some(parsed) = statements::parse(&sql) {
                let stmt = parsed.map_err(statement_error)?;
                return self.execute_own(client, stmt).await;
            }
            return Ok(Response::EmptyQuery);
        };
        if let Some(outcome) = session::execute(client, stmt, &portal.result_column_format) {
            let outcome = outcome?;
            report(client, outcome.reports).await?;
            return Ok(outcome.response);
        }
        let ctx = self.services.for_client(client)?;
        let no_params = ParamValues::List(Vec::new());
        for hook in &self.parser.hooks {
            if let Some(result) = hook
                .handle_extended_query(stmt, plan, &no_params, &ctx, client)
                .await
            {
                return result;
            }
        }
        // set_config() changes the session when the statement runs, not when it is parsed.
        if sql.to_ascii_lowercase().contains("set_config")
            && let Ok(mut again) = self.parser.parse(sql)
            && let Some(first) = again.first_mut()
        {
            let changes = rewrite::rewrite(first, &|name| session::get(client, name), &|f| {
                self.services.query.table_function_parameters(f)
            });
            apply_set_config(client, changes).await?;
        }
        let params = parameters(&self.services, portal, plan)?;
        let plan = plan
            .clone()
            .replace_params_with_values(&params)
            .map_err(api_error)?;
        self.execute_plan(client, &ctx, plan, &portal.result_column_format, sql)
            .await
    }
}

/// The values bound to a portal, decoded with the types the plan needs.
fn parameters(
    services: &Services,
    portal: &Portal<Statement>,
    plan: &LogicalPlan,
) -> PgWireResult<ParamValues> {
    let mut inferred = plan.get_parameter_types().map_err(api_error)?;
    // `$1::timestamptz`: DataFusion leaves the placeholder untyped; the cast names it.
    if inferred.values().any(Option::is_none) {
        let _ = plan.apply(|node| {
            for expr in node.expressions() {
                let _ = expr.apply(|e| {
                    if let Expr::Cast(cast) = e
                        && let Expr::Placeholder(ph) = cast.expr.as_ref()
                        && let Some(slot @ None) = inferred.get_mut(&ph.id)
                    {
                        *slot = Some(cast.field.data_type().clone());
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    let mut ordered: Vec<(u32, Option<DataType>)> = inferred
        .into_iter()
        .map(|(id, t)| (id.trim_start_matches('$').parse().unwrap_or(u32::MAX), t))
        .collect();
    ordered.sort_by_key(|(n, _)| *n);
    let wire = services.parameter_types(&portal.statement.statement)?;
    let inferred_refs: Vec<Option<&DataType>> = ordered.iter().map(|(_, t)| t.as_ref()).collect();
    let wire_refs: Vec<Option<&Type>> = wire.iter().map(Some).collect();
    arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
        portal,
        &inferred_refs,
        &wire_refs,
    )
}

impl Dispatcher {
    /// Runs one of Sundial's own statements. They take effect at once, so inside a
    /// transaction block (where a ROLLBACK could not undo them) the writing ones are
    /// refused, as PostgreSQL refuses `CREATE DATABASE` there; `DISCARD ALL` resets the
    /// session's settings, as pooled clients expect.
    async fn execute_own<C>(
        &self,
        client: &mut C,
        stmt: statements::Statement,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::messages::response::TransactionStatus;
        if stmt.writes() && client.transaction_status() != TransactionStatus::Idle {
            return Err(user_error(
                "ERROR",
                SqlState::ACTIVE_SQL_TRANSACTION,
                format!("{} cannot run inside a transaction block", stmt.command()),
            ));
        }
        if stmt.command() == "DISCARD ALL" {
            let reports = session::reset_all(client);
            report(client, reports).await?;
        }
        let outcome = self
            .services
            .query
            .execute(&database_of(client), stmt)
            .await
            .map_err(statement_error)?;
        let mut tag = Tag::new(outcome.tag);
        if let Some(n) = outcome.rows {
            tag = tag.with_rows(n);
        }
        Ok(Response::Execution(tag))
    }
}

/// Parses with the parser of the connection's database.
pub struct DispatchParser {
    services: Arc<Services>,
    sql: PostgresCompatibilityParser,
    hooks: Vec<Arc<dyn QueryHook>>,
}

impl DispatchParser {
    /// Parses with datafusion-pg-catalog's rewrite rules. Its token blacklist, which stubs
    /// out client queries DataFusion cannot plan, is skipped for queries that read
    /// `search_path`: the blacklist replaces Grafana's search-path subquery with `''`
    /// (from before `current_setting()` existed), and Sundial answers it for real.
    fn parse(
        &self,
        sql: &str,
    ) -> Result<Vec<SqlStatement>, datafusion::sql::sqlparser::parser::ParserError> {
        if !sql.contains("current_setting('search_path')") {
            return self.sql.parse(sql);
        }
        let statements = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )?;
        Ok(statements
            .into_iter()
            .map(|s| self.sql.rewrite(s))
            .collect())
    }
}

#[async_trait]
impl QueryParser for DispatchParser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        limits::Liveness::touch();
        crate::query::complexity::check(sql).map_err(statement_error)?;
        if let Some(parsed) = statements::parse(sql) {
            // With placeholders it is checked once its values are bound.
            if bind::parameter_count(sql) == 0 {
                parsed.map_err(statement_error)?;
            }
            return Ok(Some((sql.to_string(), None)));
        }
        let mut parsed = self
            .parse(statements::show_alerts(sql).unwrap_or(sql))
            .map_err(api_error)?;
        if parsed.is_empty() {
            return Ok(None);
        }
        let mut stmt = parsed.remove(0);
        if let Some(columns) = session::describe(&stmt) {
            return Ok(Some((sql.to_string(), Some((stmt, text_plan(&columns)?)))));
        }
        let ctx = self.services.for_client(client)?;
        for hook in &self.hooks {
            if let Some(plan) = hook.handle_extended_parse_query(&stmt, &ctx, client).await {
                return Ok(Some((sql.to_string(), Some((stmt, plan?)))));
            }
        }
        rewrite::rewrite(&mut stmt, &|name| session::get(client, name), &|f| {
            self.services.query.table_function_parameters(f)
        });
        let plan = crate::query::plan::plan(&ctx, stmt.clone())
            .await
            .map_err(plan_error)?;
        Ok(Some((sql.to_string(), Some((stmt, plan)))))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        if stmt.1.is_none() {
            return Ok(vec![Type::TEXT; bind::parameter_count(&stmt.0)]);
        }
        self.services.parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let Some((_, plan)) = &stmt.1 else {
            return Ok(Vec::new());
        };
        if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) {
            return Ok(Vec::new());
        }
        encode::fields(
            plan.schema().as_arrow(),
            column_format.unwrap_or(&Format::UnifiedText),
        )
    }
}

/// Trust authentication (no passwords yet) that refuses unknown databases and announces
/// the parameters drivers check: a PostgreSQL 16 `server_version` (SQLAlchemy, asyncpg and
/// pgjdbc parse it), `DateStyle` `ISO, MDY`, `TimeZone` `UTC`, UTF8 encodings.
pub struct Startup {
    admission: Arc<limits::Admission>,
    services: Arc<Services>,
    connections: Arc<ConnectionManager>,
    /// One generator for all connections, so every connection has its own pid.
    pids: Arc<pgwire::api::RandomPidSecretKeyGenerator>,
    /// With users configured: pgwire's handler for the configured method, fresh for each
    /// connection (the SCRAM exchange keeps state in it).
    password: Option<PasswordAuth>,
}

/// pgwire's password handlers, one per method.
enum PasswordAuth {
    Scram(pgwire::api::auth::sasl::SASLAuthStartupHandler<SessionParameters>),
    Md5(pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler<auth::Source, SessionParameters>),
    Cleartext(
        pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler<
            auth::Source,
            SessionParameters,
        >,
    ),
}

impl PasswordAuth {
    fn new(
        users: &Arc<auth::Users>,
        connections: &Arc<ConnectionManager>,
        pids: &Arc<pgwire::api::RandomPidSecretKeyGenerator>,
    ) -> PasswordAuth {
        use pgwire::api::auth::{cleartext, md5pass, sasl};
        let source = auth::Source {
            users: users.clone(),
        };
        match users.method {
            auth::AuthMethod::ScramSha256 => PasswordAuth::Scram(
                sasl::SASLAuthStartupHandler::new(Arc::new(SessionParameters))
                    .with_scram(sasl::scram::ScramAuth::new(Arc::new(source)))
                    .with_connection_manager(connections.clone())
                    .with_pid_secret_key_generator(pids.clone()),
            ),
            auth::AuthMethod::Md5 => PasswordAuth::Md5(
                md5pass::Md5PasswordAuthStartupHandler::new(
                    Arc::new(source),
                    Arc::new(SessionParameters),
                )
                .with_connection_manager(connections.clone())
                .with_pid_secret_key_generator(pids.clone()),
            ),
            auth::AuthMethod::Password => PasswordAuth::Cleartext(
                cleartext::CleartextPasswordAuthStartupHandler::new(source, SessionParameters)
                    .with_connection_manager(connections.clone())
                    .with_pid_secret_key_generator(pids.clone()),
            ),
        }
    }

    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            PasswordAuth::Scram(h) => h.on_startup(client, message).await,
            PasswordAuth::Md5(h) => h.on_startup(client, message).await,
            PasswordAuth::Cleartext(h) => h.on_startup(client, message).await,
        }
    }
}

/// The startup `ParameterStatus`es: every reported setting with the session's value.
struct SessionParameters;

impl pgwire::api::auth::ServerParameterProvider for SessionParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        Some(session::reported(client).into_iter().collect())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let answered = self.authenticate(client, message).await;
        if matches!(
            client.state(),
            pgwire::api::PgWireConnectionState::ReadyForQuery
        ) {
            limits::Liveness::authenticated();
        }
        answered
    }
}

impl Startup {
    /// One message of the startup phase: the startup packet, then password messages.
    async fn authenticate<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::PidSecretKeyGenerator;
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            let db = startup
                .parameters
                .get(pgwire::api::METADATA_DATABASE)
                .cloned()
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
            self.services.context(&db)?;
            self.admission.admit(client)?;
            let timeout = self.admission.statement_timeout_ms;
            if let Some(password) = &self.password {
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                session::apply_startup(client, &startup.parameters, timeout)?;
                return password.on_startup(client, message).await;
            }
            pgwire::api::auth::protocol_negotiation(client, startup).await?;
            pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
            session::apply_startup(client, &startup.parameters, timeout)?;
            let (pid, secret) = self.pids.generate(client);
            client.set_pid_and_secret_key(pid, secret.clone());
            // Register for CancelRequest, as pgwire's own startup handlers do.
            let (handle, guard) = self.connections.register(pid, secret);
            client
                .session_extensions()
                .insert::<Arc<pgwire::api::ConnectionHandle>>(handle);
            client
                .session_extensions()
                .insert::<pgwire::api::ConnectionGuard>(guard);
            pgwire::api::auth::finish_authentication(client, &SessionParameters).await?;
        } else if let Some(password) = &self.password {
            return password.on_startup(client, message).await;
        }
        Ok(())
    }
}

/// Maps DataFusion errors to SQLSTATEs before they are sent.
pub struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::InvalidPassword(_) = error {
            // SCRAM clients leave the user out of the exchange; name the startup user.
            let user = client
                .metadata()
                .get(pgwire::api::METADATA_USER)
                .cloned()
                .unwrap_or_default();
            *error = user_error(
                "FATAL",
                SqlState::INVALID_PASSWORD,
                format!("password authentication failed for user \"{user}\""),
            );
            return;
        }
        if let PgWireError::ApiError(inner) = error {
            let (state, message) = crate::error::classify(inner.as_ref());
            tracing::debug!(code = state.code(), %message, "query failed");
            *error = user_error("ERROR", state, message);
        }
    }
}

/// The pgwire handler set.
pub struct Handlers {
    dispatcher: Arc<Dispatcher>,
    services: Arc<Services>,
    connections: Arc<ConnectionManager>,
    users: Arc<auth::Users>,
    cancel: Arc<cancel::Handler>,
    admission: Arc<limits::Admission>,
    pids: Arc<pgwire::api::RandomPidSecretKeyGenerator>,
}

impl Handlers {
    pub fn new(
        query: Arc<QueryEngine>,
        users: Arc<auth::Users>,
        metrics: Arc<Metrics>,
        admission: Arc<limits::Admission>,
    ) -> Handlers {
        let services = Arc::new(Services {
            query,
            params: DfSessionService::new(Arc::new(SessionContext::new())),
        });
        let connections = Arc::new(ConnectionManager::new());
        let streams = Arc::new(cancel::Registry::default());
        Handlers {
            dispatcher: Arc::new(Dispatcher {
                metrics,
                services: services.clone(),
                streams: streams.clone(),
                parser: Arc::new(DispatchParser {
                    services: services.clone(),
                    sql: PostgresCompatibilityParser::new(),
                    hooks: hooks(),
                }),
            }),
            services,
            connections: connections.clone(),
            users,
            admission,
            pids: Default::default(),
            cancel: Arc::new(cancel::Handler {
                connections,
                streams: streams.clone(),
            }),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.dispatcher.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.dispatcher.clone()
    }

    /// Called once per connection.
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Startup {
            admission: self.admission.clone(),
            services: self.services.clone(),
            connections: self.connections.clone(),
            pids: self.pids.clone(),
            password: self
                .users
                .required()
                .then(|| PasswordAuth::new(&self.users, &self.connections, &self.pids)),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// What the Postgres endpoint needs besides the query engine.
pub struct Options {
    pub users: Arc<auth::Users>,
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
    /// The server's self-metrics (statements answered, latency).
    pub metrics: Arc<Metrics>,
    /// Connection slots and the default statement timeout.
    pub admission: Arc<limits::Admission>,
}

pub use connection::serve;
