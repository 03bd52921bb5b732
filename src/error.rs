//! Errors by kind: the one taxonomy every subsystem's errors map into, and the one place
//! where a kind becomes a SQLSTATE.
//!
//! Each subsystem keeps its own `thiserror` enum (`storage::Error`, `ingest::Error`,
//! `query::Error`, `alert::Error`, `scrape::Error`) and says, through [`Classify`], what
//! [`Kind`] each variant is and — where PostgreSQL has a precise code for it — which
//! [`SqlState`]. The front ends translate once: `pg` sends [`SqlState::code`], `http`
//! turns [`Kind`] into a status code (and sends the SQLSTATE in its JSON too). Errors that
//! come back out of DataFusion are classified by variant in [`classify`]; Sundial's own
//! errors travel through DataFusion as [`Error`] inside `DataFusionError::External`.
//!
//! This module and nothing else spells SQLSTATE codes: everything else names the
//! constants of [`SqlState`].

use datafusion::error::DataFusionError;

/// What went wrong, independent of the protocol that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request is malformed or names values that make no sense (a client error).
    InvalidInput,
    /// It names a database, table, column, function or alert that does not exist.
    NotFound,
    /// It would create something that already exists.
    AlreadyExists,
    /// Well-formed, but Sundial does not do it.
    Unsupported,
    /// It is over a limit (body size, memory, a step count).
    LimitExceeded,
    /// Sundial cannot do it now (storage I/O failed, the engine is shutting down).
    Unavailable,
    /// The disk is full: nothing was stored; retry once space is freed.
    StorageFull,
    /// Busy right now (write buffers full while flushing catches up): retry shortly.
    Overloaded,
    /// A timeout or a cancel request stopped it.
    Cancelled,
    /// The client did not prove who it is.
    Unauthenticated,
    /// A bug or an unexpected state: details are logged, not shown.
    Internal,
}

/// A PostgreSQL SQLSTATE and the kind it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState {
    code: &'static str,
    kind: Kind,
}

impl SqlState {
    pub const SYNTAX_ERROR: SqlState = SqlState::new("42601", Kind::InvalidInput);
    pub const UNDEFINED_TABLE: SqlState = SqlState::new("42P01", Kind::NotFound);
    pub const UNDEFINED_COLUMN: SqlState = SqlState::new("42703", Kind::NotFound);
    pub const UNDEFINED_FUNCTION: SqlState = SqlState::new("42883", Kind::NotFound);
    pub const UNDEFINED_OBJECT: SqlState = SqlState::new("42704", Kind::NotFound);
    /// An unknown database (`invalid_catalog_name`).
    pub const INVALID_CATALOG_NAME: SqlState = SqlState::new("3D000", Kind::NotFound);
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState::new("42702", Kind::InvalidInput);
    pub const INDETERMINATE_DATATYPE: SqlState = SqlState::new("42P18", Kind::InvalidInput);
    pub const DATATYPE_MISMATCH: SqlState = SqlState::new("42804", Kind::InvalidInput);
    pub const NAME_TOO_LONG: SqlState = SqlState::new("42622", Kind::InvalidInput);
    pub const DUPLICATE_DATABASE: SqlState = SqlState::new("42P04", Kind::AlreadyExists);
    pub const DUPLICATE_OBJECT: SqlState = SqlState::new("42710", Kind::AlreadyExists);
    /// A statement that cannot run inside a transaction block.
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState::new("25001", Kind::InvalidInput);
    /// A frontend message that cannot be decoded (`protocol_violation`).
    pub const PROTOCOL_VIOLATION: SqlState = SqlState::new("08P01", Kind::InvalidInput);
    pub const OBJECT_IN_USE: SqlState = SqlState::new("55006", Kind::InvalidInput);
    pub const CANT_CHANGE_RUNTIME_PARAM: SqlState = SqlState::new("55P02", Kind::InvalidInput);
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState::new("22023", Kind::InvalidInput);
    pub const DATA_EXCEPTION: SqlState = SqlState::new("22000", Kind::InvalidInput);
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState::new("0A000", Kind::Unsupported);
    pub const INSUFFICIENT_RESOURCES: SqlState = SqlState::new("53000", Kind::LimitExceeded);
    pub const OUT_OF_MEMORY: SqlState = SqlState::new("53200", Kind::LimitExceeded);
    /// A query spilled past `query_spill_limit` (PostgreSQL's `temp_file_limit` answer).
    pub const CONFIGURATION_LIMIT_EXCEEDED: SqlState = SqlState::new("53400", Kind::LimitExceeded);
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState::new("53300", Kind::LimitExceeded);
    /// Write buffers are full (`insufficient_resources`, as a retryable condition).
    pub const BUFFERS_FULL: SqlState = SqlState::new("53000", Kind::Overloaded);
    /// A statement whose expression tree would be too deep to walk (`statement_too_complex`).
    /// A session closed by `idle_session_timeout`.
    pub const IDLE_SESSION_TIMEOUT: SqlState = SqlState::new("57P05", Kind::Cancelled);
    pub const STATEMENT_TOO_COMPLEX: SqlState = SqlState::new("54001", Kind::LimitExceeded);
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState::new("54000", Kind::LimitExceeded);
    pub const QUERY_CANCELED: SqlState = SqlState::new("57014", Kind::Cancelled);
    pub const IO_ERROR: SqlState = SqlState::new("58030", Kind::Unavailable);
    pub const DISK_FULL: SqlState = SqlState::new("53100", Kind::StorageFull);
    pub const INVALID_PASSWORD: SqlState = SqlState::new("28P01", Kind::Unauthenticated);
    pub const INTERNAL_ERROR: SqlState = SqlState::new("XX000", Kind::Internal);

    const fn new(code: &'static str, kind: Kind) -> SqlState {
        SqlState { code, kind }
    }

    /// The five characters PostgreSQL sends.
    pub const fn code(self) -> &'static str {
        self.code
    }

    pub const fn kind(self) -> Kind {
        self.kind
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

impl Kind {
    /// The SQLSTATE of an error of this kind that has no more precise one.
    pub const fn sqlstate(self) -> SqlState {
        match self {
            Kind::InvalidInput => SqlState::DATA_EXCEPTION,
            Kind::NotFound => SqlState::UNDEFINED_OBJECT,
            Kind::AlreadyExists => SqlState::DUPLICATE_OBJECT,
            Kind::Unsupported => SqlState::FEATURE_NOT_SUPPORTED,
            Kind::LimitExceeded => SqlState::PROGRAM_LIMIT_EXCEEDED,
            Kind::Unavailable => SqlState::IO_ERROR,
            Kind::StorageFull => SqlState::DISK_FULL,
            Kind::Overloaded => SqlState::BUFFERS_FULL,
            Kind::Cancelled => SqlState::QUERY_CANCELED,
            Kind::Unauthenticated => SqlState::INVALID_PASSWORD,
            Kind::Internal => SqlState::INTERNAL_ERROR,
        }
    }
}

/// An error that knows its kind (implemented by every subsystem's error type).
pub trait Classify: std::fmt::Display {
    fn kind(&self) -> Kind;

    /// The precise SQLSTATE; by default the kind's.
    fn sqlstate(&self) -> SqlState {
        self.kind().sqlstate()
    }

    /// As a plain [`Error`] (to travel through DataFusion or a front end).
    fn to_error(&self) -> Error {
        Error::new(self.sqlstate(), self.to_string())
    }
}

/// A classified error with its message: what Sundial's own statements return, and what
/// its table functions and providers put in `DataFusionError::External`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub state: SqlState,
    pub message: String,
}

impl Error {
    pub fn new(state: SqlState, message: impl Into<String>) -> Error {
        Error {
            state,
            message: message.into(),
        }
    }

    /// An unexpected failure: logged here with its detail, shown as an internal error.
    pub fn internal(e: impl std::fmt::Display) -> Error {
        tracing::error!(error = %e, "internal error");
        Error::new(SqlState::INTERNAL_ERROR, format!("internal error: {e}"))
    }

    pub fn kind(&self) -> Kind {
        self.state.kind()
    }

    /// Wrapped for a DataFusion API (a table function, a provider).
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        self.state.kind()
    }

    fn sqlstate(&self) -> SqlState {
        self.state
    }
}

/// The SQLSTATE of an error from the query path and the message to show: Sundial's own
/// [`Error`], SQL syntax errors, and DataFusion errors by variant.
pub fn classify(err: &(dyn std::error::Error + 'static)) -> (SqlState, String) {
    if let Some(e) = err.downcast_ref::<Error>() {
        return (e.state, e.message.clone());
    }
    if err
        .downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>()
        .is_some()
    {
        return (SqlState::SYNTAX_ERROR, err.to_string());
    }
    match err.downcast_ref::<DataFusionError>() {
        Some(df) => classify_datafusion(df),
        None => (SqlState::INTERNAL_ERROR, err.to_string()),
    }
}

/// A DataFusion error's SQLSTATE, by variant (the root cause's).
pub fn classify_datafusion(df: &DataFusionError) -> (SqlState, String) {
    use datafusion::common::SchemaError;
    let root = df.find_root();
    // A spill past `query_spill_limit` reaches us as an I/O error of the spill writer;
    // PostgreSQL answers its `temp_file_limit` with 53400.
    if root
        .to_string()
        .contains("during the spilling process has exceeded the allowable limit")
    {
        return (
            SqlState::CONFIGURATION_LIMIT_EXCEEDED,
            "temporary file size exceeds query_spill_limit: the query spilled more than \
             all queries may keep on disk"
                .to_string(),
        );
    }
    let state = match root {
        DataFusionError::External(inner) => return classify(inner.as_ref()),
        DataFusionError::SQL(..) => SqlState::SYNTAX_ERROR,
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            SchemaError::FieldNotFound { .. } => SqlState::UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => SqlState::AMBIGUOUS_COLUMN,
            _ => SqlState::INDETERMINATE_DATATYPE,
        },
        DataFusionError::Plan(_) => SqlState::DATATYPE_MISMATCH,
        DataFusionError::NotImplemented(_) => SqlState::FEATURE_NOT_SUPPORTED,
        DataFusionError::ResourcesExhausted(_) => SqlState::OUT_OF_MEMORY,
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => SqlState::DATA_EXCEPTION,
        _ => SqlState::INTERNAL_ERROR,
    };
    (state, root.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_sqlstate_of_that_kind() {
        for kind in [
            Kind::InvalidInput,
            Kind::NotFound,
            Kind::AlreadyExists,
            Kind::Unsupported,
            Kind::LimitExceeded,
            Kind::Unavailable,
            Kind::StorageFull,
            Kind::Overloaded,
            Kind::Cancelled,
            Kind::Unauthenticated,
            Kind::Internal,
        ] {
            assert_eq!(kind.sqlstate().kind(), kind);
            assert_eq!(kind.sqlstate().code().len(), 5);
        }
    }

    #[test]
    fn own_errors_pass_through_datafusion() {
        let own = Error::new(SqlState::UNDEFINED_OBJECT, "alert \"x\" does not exist");
        let wrapped = DataFusionError::Context("planning".into(), Box::new(own.into_datafusion()));
        let (state, message) = classify(&wrapped);
        assert_eq!(state, SqlState::UNDEFINED_OBJECT);
        assert_eq!(message, "alert \"x\" does not exist");
        let (state, _) = classify(&DataFusionError::NotImplemented("x".into()));
        assert_eq!(state, SqlState::FEATURE_NOT_SUPPORTED);
    }
}
