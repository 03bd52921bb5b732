//! The Postgres endpoint's limits: connection slots (`max_connections`, SQLSTATE 53300
//! past them, as PostgreSQL answers) and the server's default `statement_timeout`.
//! A slot is taken once the startup packet has arrived and given back when the
//! connection ends, so connections still sending their startup packet (or stuck in the
//! TLS handshake, which pgwire ends after 60 s) hold none.

use std::sync::Arc;

use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::SqlState;

/// Connection slots shared by every connection of one endpoint.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    /// `statement_timeout` of a session that sets none, in milliseconds (0: none).
    pub statement_timeout_ms: u64,
}

/// A connection's slot, kept in its session extensions until it closes.
struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    pub fn new(max_connections: usize, statement_timeout: std::time::Duration) -> Admission {
        let max = if max_connections == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max_connections
        };
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            max,
            statement_timeout_ms: u64::try_from(statement_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Takes a slot for `client`, or refuses it with 53300 when all are in use.
    pub fn admit<C: ClientInfo + ?Sized>(&self, client: &mut C) -> PgWireResult<()> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                client.session_extensions().insert(Slot(permit));
                Ok(())
            }
            Err(_) => Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_string(),
                SqlState::TOO_MANY_CONNECTIONS.code().to_string(),
                format!(
                    "sorry, too many clients already: all {} connection slots \
                     (postgres.max_connections) are in use",
                    self.max
                ),
            )))),
        }
    }

    /// Connections holding a slot now.
    pub fn in_use(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}
