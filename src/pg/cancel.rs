//! CancelRequest (psql's Ctrl-C, drivers' query timeouts). pgwire cancels a statement
//! while the handler plans it; most of a query's work, though, happens while its rows
//! stream, after the handler has returned. So each connection also has a
//! [`StreamCancel`], found by its process id and secret key, that the row stream watches.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion_postgres::pgwire;
use parking_lot::Mutex;
use pgwire::api::{ClientInfo, ConnectionManager};
use pgwire::messages::cancel::CancelRequest;
use tokio_util::sync::CancellationToken;

/// The cancel signal of a connection's current statement.
#[derive(Debug, Default)]
pub struct StreamCancel(Mutex<CancellationToken>);

impl StreamCancel {
    /// A fresh token for a statement that starts now (earlier ones are left alone).
    pub fn start(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.0.lock() = token.clone();
        token
    }

    fn cancel(&self) {
        self.0.lock().cancel();
    }
}

/// Connections by (process id, secret key).
#[derive(Debug, Default)]
pub struct Registry(Mutex<HashMap<(i32, Bytes), Weak<StreamCancel>>>);

impl Registry {
    /// The cancel signal of `client`'s connection, registered on first use.
    pub fn for_client<C: ClientInfo + ?Sized>(&self, client: &C) -> Arc<StreamCancel> {
        let stream = client
            .session_extensions()
            .get_or_insert_with(StreamCancel::default);
        let (pid, secret) = client.pid_and_secret_key();
        let mut map = self.0.lock();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert((pid, secret.to_bytes()), Arc::downgrade(&stream));
        stream
    }
}

/// pgwire's cancel (planning) and Sundial's (streaming).
pub struct Handler {
    pub connections: Arc<ConnectionManager>,
    pub streams: Arc<Registry>,
}

#[async_trait]
impl pgwire::api::cancel::CancelHandler for Handler {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.connections
            .cancel(request.pid, &request.secret_key)
            .await;
        let stream = self
            .streams
            .0
            .lock()
            .get(&(request.pid, request.secret_key.to_bytes()))
            .and_then(Weak::upgrade);
        if let Some(stream) = stream {
            stream.cancel();
        }
    }
}
