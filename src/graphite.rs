//! The Graphite plaintext listener (TCP, `path value timestamp` lines, see
//! [`crate::ingest::graphite`] for the mapping of paths to tables). Enabled by
//! `[graphite] listen = "127.0.0.1:2003"`. Graphite has no acknowledgements: rows are
//! stored (durably) per received chunk, and bad lines are logged with their line number.

use std::sync::Arc;

use crate::tasks::Tasks;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::ingest::Ingester;
use crate::ingest::graphite::{Mapping, parse_lines};

/// `[graphite]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphiteConfig {
    /// `host:port` to listen on; none: the listener is off.
    #[serde(default, with = "crate::addr::option")]
    pub listen: Option<std::net::SocketAddr>,
    /// The database rows go to.
    pub database: String,
    /// Path templates (`"servers.* .host.measurement.field"`).
    pub templates: Vec<String>,
    /// Joins measurement and field segments (default `.`).
    pub separator: String,
}

impl Default for GraphiteConfig {
    fn default() -> Self {
        GraphiteConfig {
            listen: None,
            database: crate::ingest::DEFAULT_DATABASE.into(),
            templates: Vec::new(),
            separator: ".".into(),
        }
    }
}

/// The longest Graphite line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Serves connections until the server stops accepting; each connection ends when
/// connections are closed (what it received by then is stored).
pub async fn serve(
    listener: TcpListener,
    mapping: Mapping,
    database: String,
    ingester: Arc<Ingester>,
    tasks: Tasks,
) {
    let accepting = tasks.accepting();
    let mapping = Arc::new(mapping);
    loop {
        let (mut socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "graphite accept failed");
                    continue;
                }
            },
            _ = accepting.cancelled() => return,
        };
        let (mapping, database, ingester, shutdown) = (
            mapping.clone(),
            database.clone(),
            ingester.clone(),
            tasks.connections(),
        );
        tasks.spawn_front("graphite connection", async move {
            let mut pending: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut line_no = 1;
            // Inside a line longer than MAX_LINE_BYTES: its bytes are dropped up to its end.
            let mut skipping = false;
            loop {
                let n = tokio::select! {
                    r = socket.read(&mut chunk) => r.unwrap_or(0),
                    _ = shutdown.cancelled() => 0,
                };
                let closed = n == 0;
                let mut received = &chunk[..n];
                if skipping {
                    match received.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            received = &received[i + 1..];
                            skipping = false;
                            line_no += 1;
                        }
                        None => received = &[],
                    }
                }
                pending.extend_from_slice(received);
                // A line may not grow the buffer without bound: past the limit with no end
                // in sight, it is refused and skipped.
                let open = pending
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if pending.len() - open > MAX_LINE_BYTES {
                    tracing::warn!(%peer, line = line_no + pending[..open].iter().filter(|&&b| b == b'\n').count(),
                        limit = MAX_LINE_BYTES, "graphite line too long; skipped");
                    ingester.metrics().write_errors.add("graphite", 1);
                    pending.truncate(open);
                    skipping = true;
                }
                // Complete lines only, unless the peer closed the connection.
                let cut = if closed {
                    pending.len()
                } else {
                    match pending.iter().rposition(|&b| b == b'\n') {
                        Some(i) => i + 1,
                        None => continue,
                    }
                };
                let text: Vec<u8> = pending.drain(..cut).collect();
                let text = String::from_utf8_lossy(&text);
                let lines = text.lines().count();
                let (points, errors) =
                    parse_lines(&text, line_no, &mapping, ingester.now_nanos());
                let m = ingester.metrics();
                m.bytes_ingested.add("graphite", text.len() as u64);
                if !errors.is_empty() {
                    m.write_errors.add("graphite", errors.len() as u64);
                }
                line_no += lines;
                for e in errors.iter().take(10) {
                    tracing::warn!(%peer, line = e.line, reason = %e.reason, "graphite line refused");
                }
                if !points.is_empty() {
                    match ingester.write_points(&database, points, "graphite").await {
                        Ok(outcome) => {
                            for (_, e) in outcome.rejected.iter().take(10) {
                                tracing::warn!(%peer, error = %e, "graphite row refused");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "storing graphite rows failed"),
                    }
                }
                if closed {
                    return;
                }
            }
        });
    }
}
