//! The Postgres endpoint's limits: connection slots (`max_connections`, SQLSTATE 53300
//! past them, as PostgreSQL answers) and the server's default `statement_timeout`.
//! A slot is taken once the startup packet has arrived and given back when the
//! connection ends, so connections still sending their startup packet (or stuck in the
//! TLS handshake, which pgwire ends after 60 s) hold none.
//!
//! Each connection runs with a [`Liveness`] beside it: a connection that has not
//! authenticated within `authentication_timeout`, or that has been idle (no statement
//! running, no message) for `idle_session_timeout`, is closed, as PostgreSQL does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

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
    /// Authentication and idle timeouts of every connection.
    pub timeouts: Timeouts,
}

/// How long a connection may take to authenticate and stay idle.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// PostgreSQL's `authentication_timeout`.
    pub authentication: std::time::Duration,
    /// PostgreSQL's `idle_session_timeout` (`None`: never).
    pub idle: Option<std::time::Duration>,
}

tokio::task_local! {
    /// The liveness of the connection whose task this is.
    static CONNECTION: Arc<Liveness>;
}

/// What a connection's watchdog looks at: whether it has authenticated, when it last did
/// something and how many statements it is running. Handlers reach it through a
/// task-local, as they run inside the connection's task.
#[derive(Debug)]
pub struct Liveness {
    opened: tokio::time::Instant,
    /// Milliseconds after `opened` of the last message or finished statement.
    last_ms: AtomicU64,
    authenticated: AtomicBool,
    busy: AtomicUsize,
}

/// Counts a statement as running until dropped (a result still being sent included).
#[derive(Debug)]
pub struct Busy(Arc<Liveness>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.stamp();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness {
            opened: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            authenticated: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        })
    }

    /// Runs `connection` with `self` as its task's liveness.
    pub async fn scope<F: std::future::Future>(self: Arc<Self>, connection: F) -> F::Output {
        CONNECTION.scope(self, connection).await
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Notes activity on the current connection (a message arrived).
    pub fn touch() {
        let _ = CONNECTION.try_with(|c| c.stamp());
    }

    /// Notes that the current connection finished authenticating.
    pub fn authenticated() {
        let _ = CONNECTION.try_with(|c| {
            c.stamp();
            c.authenticated.store(true, Ordering::Release);
        });
    }

    /// Marks a statement of the current connection as running while the guard lives.
    pub fn busy() -> Option<Busy> {
        CONNECTION
            .try_with(|c| {
                c.stamp();
                c.busy.fetch_add(1, Ordering::AcqRel);
                Busy(c.clone())
            })
            .ok()
    }

    /// Resolves, with the reason, when the connection should be closed.
    pub async fn expired(&self, timeouts: Timeouts) -> &'static str {
        let recheck = |d: std::time::Duration| d.max(std::time::Duration::from_millis(10));
        loop {
            let now = tokio::time::Instant::now();
            if !self.authenticated.load(Ordering::Acquire) {
                let deadline = self.opened + timeouts.authentication;
                if now >= deadline {
                    return "authentication_timeout passed before the client authenticated";
                }
                tokio::time::sleep_until(deadline).await;
                continue;
            }
            let Some(idle) = timeouts.idle else {
                return std::future::pending().await;
            };
            if self.busy.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(recheck(idle)).await;
                continue;
            }
            let last = self.opened
                + std::time::Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            if now >= last + idle {
                return "idle_session_timeout passed";
            }
            tokio::time::sleep_until(last + idle).await;
        }
    }
}

/// A connection's slot, kept in its session extensions until it closes.
struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    pub fn new(
        max_connections: usize,
        statement_timeout: std::time::Duration,
        timeouts: Timeouts,
    ) -> Admission {
        let max = if max_connections == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max_connections
        };
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            max,
            statement_timeout_ms: u64::try_from(statement_timeout.as_millis()).unwrap_or(u64::MAX),
            timeouts,
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
