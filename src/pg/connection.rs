//! The Postgres listener, and one connection's message loop: pgwire's `process_socket` with the decoding of
//! client bytes guarded. pgwire 0.41's decoders index past the end of some malformed
//! messages (a `Bind` whose parameter lengths exceed its body panics in `split_to`,
//! found by `sundial::fuzz`); here a message that cannot be decoded — an error or such a
//! panic — gets PostgreSQL's answer, FATAL 08P01 (protocol violation), and the connection
//! closes, instead of the task dying without a word. The startup deadline is the
//! connection's [`super::limits::Liveness`] watcher, so none is kept here.

use std::panic::AssertUnwindSafe;

use datafusion_postgres::pgwire;
use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::net::{TcpListener, TcpStream};

use std::sync::Arc;

use crate::error::SqlState;
use crate::query::QueryEngine;
use crate::tasks::Tasks;

use super::{Handlers, Options, limits};

/// Serves one connection until the client leaves, a message is malformed or an error
/// ends the session.
pub async fn run<H: PgWireServerHandlers>(
    socket: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    idle: Option<std::time::Duration>,
) -> std::io::Result<()> {
    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    let Some(mut socket) = negotiate_tls(socket, tls).await? else {
        // A direct TLS handshake with no TLS configured.
        return Ok(());
    };
    loop {
        // Waiting for the next message of an authenticated session is being idle: past
        // idle_session_timeout the session ends with PostgreSQL's FATAL 57P05.
        let ready = matches!(socket.state(), PgWireConnectionState::ReadyForQuery);
        let next = AssertUnwindSafe(socket.next()).catch_unwind();
        let next = match idle.filter(|_| ready) {
            Some(idle) => match tokio::time::timeout(idle, next).await {
                Ok(next) => next,
                Err(_) => {
                    let error = ErrorInfo::new(
                        "FATAL".to_string(),
                        SqlState::IDLE_SESSION_TIMEOUT.code().to_string(),
                        "terminating connection due to idle-session timeout".to_string(),
                    );
                    socket
                        .send(PgWireBackendMessage::ErrorResponse(error.into()))
                        .await?;
                    return socket.close().await;
                }
            },
            None => next.await,
        };
        let message = match next {
            Ok(None) => break,
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => {
                let reason = format!("invalid message format: {e}");
                return violation(&mut socket, reason).await;
            }
            Err(_) => {
                let reason = "invalid message format: a length or count in the message \
                              exceeds the message"
                    .to_string();
                return violation(&mut socket, reason).await;
            }
        };
        // Terminate: the client is leaving; some (asyncpg) wait for the server to close.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
            pgwire::api::ErrorHandler::on_error(error_handler.as_ref(), &socket, &mut e);
            process_error(&mut socket, e, is_extended_query).await?;
        }
    }
    Ok(())
}

/// Answers a message that could not be decoded with FATAL 08P01, as PostgreSQL does,
/// and ends the connection.
async fn violation<S>(socket: &mut S, reason: String) -> std::io::Result<()>
where
    S: futures::Sink<PgWireBackendMessage, Error = std::io::Error> + Unpin,
{
    tracing::debug!(%reason, "closing a postgres connection: protocol violation");
    let error = ErrorInfo::new(
        "FATAL".to_string(),
        SqlState::PROTOCOL_VIOLATION.code().to_string(),
        reason,
    );
    socket
        .send(PgWireBackendMessage::ErrorResponse(error.into()))
        .await?;
    socket.close().await
}

/// Accepts Postgres connections until the server stops accepting; each session ends
/// when connections are closed (PostgreSQL's fast shutdown: running statements stop).
pub async fn serve(listener: TcpListener, query: Arc<QueryEngine>, options: Options, tasks: Tasks) {
    let accepting = tasks.accepting();
    if !options.users.required() && listener.local_addr().is_ok_and(|a| !a.ip().is_loopback()) {
        tracing::warn!(
            "the Postgres endpoint accepts any user without a password on a non-loopback \
             address; configure [[users]] to require passwords"
        );
    }
    let tls = options.tls.clone();
    let timeouts = options.admission.timeouts;
    let handlers = Arc::new(Handlers::new(
        query,
        options.users,
        options.metrics,
        options.admission,
    ));
    loop {
        tokio::select! {
            _ = accepting.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    let tls = tls.clone();
                    let closing = tasks.connections();
                    tasks.spawn_front("postgres connection", async move {
                        let live = limits::Liveness::new();
                        // The idle wait in `run` answers 57P05; the watcher only ends what
                        // it cannot see (a session stuck mid-protocol), so it waits longer.
                        let backstop = limits::Timeouts {
                            idle: timeouts.idle.map(|d| d.saturating_mul(2)),
                            ..timeouts
                        };
                        let connection = live.clone().scope(run(socket, tls, handlers, timeouts.idle));
                        tokio::select! {
                            ended = connection => {
                                if let Err(e) = ended {
                                    tracing::debug!(%peer, error = %e, "postgres connection ended with an error");
                                }
                            }
                            reason = live.expired(backstop) => {
                                tracing::info!(%peer, reason, "closing postgres connection");
                            }
                            _ = closing.cancelled() => {
                                tracing::debug!(%peer, "postgres connection closed by shutdown");
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accepting a postgres connection failed"),
            }
        }
    }
}
