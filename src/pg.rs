//! The Postgres wire protocol front end: pgwire with `datafusion-postgres`' query
//! handlers, one per database. The database a connection names in its startup message
//! selects the session context; an unknown one is refused with SQLSTATE 3D000, as
//! PostgreSQL does. Errors are mapped to SQLSTATEs in one place ([`sqlstate`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::pgwire;
use futures::Sink;
use parking_lot::Mutex;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::DefaultCancelHandler;
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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::query::{QueryEngine, functions, statements};
use crate::storage::DEFAULT_DATABASE;

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

/// The context a service was built on, and the service.
type ServiceEntry = (
    Arc<datafusion::prelude::SessionContext>,
    Arc<DfSessionService>,
);

/// Per-database query services, created on first use.
struct Services {
    query: Arc<QueryEngine>,
    /// Per database: the context a service was built on, and the service.
    by_db: Mutex<HashMap<String, ServiceEntry>>,
}

impl Services {
    fn get(&self, db: &str) -> PgWireResult<Arc<DfSessionService>> {
        let ctx = self.query.context(db).map_err(|e| match e {
            crate::query::Error::UnknownDatabase { .. } => {
                user_error("FATAL", "3D000", e.to_string())
            }
            other => PgWireError::ApiError(Box::new(other)),
        })?;
        let mut by_db = self.by_db.lock();
        if let Some((c, s)) = by_db.get(db)
            && Arc::ptr_eq(c, &ctx)
        {
            return Ok(s.clone());
        }
        let service = Arc::new(DfSessionService::new(ctx.clone()));
        by_db.insert(db.to_string(), (ctx, service.clone()));
        Ok(service)
    }

    fn for_client<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
    ) -> PgWireResult<Arc<DfSessionService>> {
        self.get(&database_of(client))
    }
}

fn statement_error(e: impl Into<(&'static str, String)>) -> PgWireError {
    let (code, message) = e.into();
    user_error("ERROR", code, message)
}

fn user_error(severity: &str, code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_string(),
        code.to_string(),
        message,
    )))
}

/// Routes each query to the service of the connection's database.
pub struct Dispatcher {
    services: Arc<Services>,
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
        if let Some(parsed) = statements::parse(query) {
            let stmt = parsed.map_err(statement_error)?;
            return Ok(vec![self.execute_own(client, stmt).await?]);
        }
        let service = self.services.for_client(client)?;
        // A multi-statement query with some of our statements in it: run one at a time.
        if let Some(parts) = statements::split(query).filter(|p| p.len() > 1)
            && parts.iter().any(|p| statements::parse(p).is_some())
        {
            let mut responses = Vec::new();
            for part in parts {
                match statements::parse(&part) {
                    Some(parsed) => {
                        let stmt = parsed.map_err(statement_error)?;
                        responses.push(self.execute_own(client, stmt).await?);
                    }
                    None => {
                        let part = functions::rewrite_show(&part).unwrap_or(part);
                        responses.extend(
                            SimpleQueryHandler::do_query(service.as_ref(), client, &part).await?,
                        );
                    }
                }
            }
            return Ok(responses);
        }
        let query = functions::rewrite_show(query).unwrap_or_else(|| query.to_string());
        SimpleQueryHandler::do_query(service.as_ref(), client, &query).await
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
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Our own statements are parsed into a statement without a plan (see DispatchParser).
        if portal.statement.statement.1.is_none()
            && let Some(parsed) = statements::parse(&portal.statement.statement.0)
        {
            let stmt = parsed.map_err(statement_error)?;
            return self.execute_own(client, stmt).await;
        }
        let service = self.services.for_client(client)?;
        ExtendedQueryHandler::do_query(service.as_ref(), client, portal, max_rows).await
    }
}

impl Dispatcher {
    async fn execute_own<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        stmt: statements::Statement,
    ) -> PgWireResult<Response> {
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
}

#[async_trait]
impl QueryParser for DispatchParser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if let Some(parsed) = statements::parse(sql) {
            parsed.map_err(statement_error)?;
            return Ok(Some((sql.to_string(), None)));
        }
        let service = self.services.for_client(client)?;
        let sql = functions::rewrite_show(sql).unwrap_or_else(|| sql.to_string());
        service.query_parser().parse_sql(client, &sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        if stmt.1.is_none() {
            return Ok(Vec::new());
        }
        self.services
            .get(DEFAULT_DATABASE)?
            .query_parser()
            .get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.services
            .get(DEFAULT_DATABASE)?
            .query_parser()
            .get_result_schema(stmt, column_format)
    }
}

/// Trust authentication (no passwords yet) that refuses unknown databases and announces
/// the parameters drivers check: a PostgreSQL 16 `server_version` (SQLAlchemy, asyncpg and
/// pgjdbc parse it), `DateStyle` `ISO, MDY`, `TimeZone` `UTC`, UTF8 encodings.
pub struct Startup {
    services: Arc<Services>,
    connections: Arc<ConnectionManager>,
    pids: pgwire::api::RandomPidSecretKeyGenerator,
}

/// The `server_version` we announce: PostgreSQL's version first, then ours.
pub fn server_version() -> String {
    format!("16.6 (Sundial {})", env!("CARGO_PKG_VERSION"))
}

fn server_parameters() -> pgwire::api::auth::DefaultServerParameterProvider {
    let mut p = pgwire::api::auth::DefaultServerParameterProvider::default();
    p.server_version = server_version();
    p.date_style = "ISO, MDY".to_string();
    p.time_zone = "UTC".to_string();
    p
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
        use pgwire::api::PidSecretKeyGenerator;
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            let db = startup
                .parameters
                .get(pgwire::api::METADATA_DATABASE)
                .cloned()
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
            self.services.get(&db)?;
            pgwire::api::auth::protocol_negotiation(client, startup).await?;
            pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
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
            pgwire::api::auth::finish_authentication(client, &server_parameters()).await?;
        }
        Ok(())
    }
}

/// Maps DataFusion errors to SQLSTATEs before they are sent.
pub struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(inner) = error {
            let (code, message) = sqlstate(inner.as_ref());
            tracing::debug!(code, %message, "query failed");
            *error = user_error("ERROR", code, message);
        }
    }
}

/// The SQLSTATE of an error from the query path, and the message to show.
pub fn sqlstate(err: &(dyn std::error::Error + 'static)) -> (&'static str, String) {
    let message = err.to_string();
    if err
        .downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>()
        .is_some()
    {
        return ("42601", message);
    }
    let Some(df) = err.downcast_ref::<DataFusionError>() else {
        return ("XX000", message);
    };
    let root = df.find_root();
    let code = match root {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            datafusion::common::SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P18",
        },
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => "42P01",
        DataFusionError::Plan(m)
            if m.contains("Invalid function") || m.contains("No function matches") =>
        {
            "42883"
        }
        DataFusionError::Plan(_) => "42804",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53000",
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => "22000",
        _ => "XX000",
    };
    (code, root.to_string())
}

/// The pgwire handler set.
pub struct Handlers {
    dispatcher: Arc<Dispatcher>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(query: Arc<QueryEngine>) -> Handlers {
        let services = Arc::new(Services {
            query,
            by_db: Mutex::new(HashMap::new()),
        });
        let connections = Arc::new(ConnectionManager::new());
        Handlers {
            dispatcher: Arc::new(Dispatcher {
                services: services.clone(),
                parser: Arc::new(DispatchParser {
                    services: services.clone(),
                }),
            }),
            startup: Arc::new(Startup {
                services,
                connections: connections.clone(),
                pids: Default::default(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
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

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Accepts Postgres connections until `shutdown` fires.
pub async fn serve(listener: TcpListener, query: Arc<QueryEngine>, shutdown: CancellationToken) {
    let handlers = Arc::new(Handlers::new(query));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, error = %e, "postgres connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accepting a postgres connection failed"),
            }
        }
    }
}
