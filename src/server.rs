//! Wires the subsystems together and owns their tasks and shutdown order: stop accepting
//! (HTTP, Postgres, Graphite listeners; HTTP finishes requests in flight) → close
//! connections → stop background work (scrapes, discovery, alert evaluations and
//! notifications), each bounded by `shutdown_timeout` → flush buffers and WAL → exit.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::query::QueryEngine;
use crate::storage::Engine;
use crate::tasks::Tasks;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error("opening the data directory: {0}")]
    Storage(#[from] crate::storage::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A running server.
pub struct Server {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the Postgres endpoint listens.
    pub pg_addr: SocketAddr,
    engine: Arc<Engine>,
    /// The server's self-metrics (each server counts apart).
    metrics: Arc<Metrics>,
    /// Every task the server spawned, stopped in order by [`Server::shutdown`].
    tasks: Tasks,
    /// How long [`Server::shutdown`] waits for tasks before flushing anyway.
    shutdown_timeout: std::time::Duration,
}

impl Server {
    /// Opens storage, binds both listeners (port 0 picks a free port) and starts serving.
    pub async fn start(config: Config) -> Result<Server, Error> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Server, Error> {
        config.validate()?;
        let dir = config.data_dir.clone();
        let mut storage = config.storage.clone();
        if storage.max_buffer_bytes == 0 {
            storage.max_buffer_bytes = default_buffer_bytes(&storage);
        }
        let query_memory = match config.query_memory_limit {
            0 => default_query_memory(),
            n => n,
        };
        tracing::info!(
            max_buffer_bytes = storage.max_buffer_bytes,
            query_memory_limit = query_memory,
            "memory limits"
        );
        let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, storage))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { what, addr, source })
        };
        let http_listener = bind("HTTP", config.http_addr).await?;
        let pg_listener = bind("Postgres", config.pg_addr).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| Error::Internal(e.to_string()));
        let http_addr = local(&http_listener)?;
        let pg_addr = local(&pg_listener)?;

        let tasks = Tasks::new();
        let metrics = Metrics::new();
        metrics
            .query_memory_limit
            .store(query_memory as u64, std::sync::atomic::Ordering::Relaxed);
        let ingester = Arc::new(Ingester::new(
            engine.clone(),
            clock.clone(),
            metrics.clone(),
        ));
        let router = crate::http::router(ingester.clone(), config.http.clone());
        let header_timeout = config.http.header_read_timeout.get();
        let accepting = tasks.accepting();
        tasks.spawn_front("http listener", async move {
            if let Err(e) =
                crate::http::serve(http_listener, router, header_timeout, accepting).await
            {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        if let Some(addr) = config.graphite.listen {
            let listener = bind("Graphite", addr).await?;
            tracing::info!(addr = %local(&listener)?, "graphite listener ready");
            tasks.spawn_front(
                "graphite listener",
                crate::graphite::serve(
                    listener,
                    config.graphite_mapping()?,
                    config.graphite.database.clone(),
                    ingester.clone(),
                    tasks.clone(),
                ),
            );
        }
        let scraper = Arc::new(crate::scrape::Scraper::new(
            ingester.clone(),
            clock.clone(),
            tasks.clone(),
        ));
        let mut jobs = config.scrape_jobs()?;
        if config.self_scrape && !jobs.iter().any(|j| j.config.job_name == "sundial") {
            let own = crate::scrape::ScrapeConfig {
                job_name: "sundial".into(),
                scrape_interval: crate::duration::Duration::from_secs(10),
                scrape_timeout: crate::duration::Duration::from_secs(5),
                static_configs: vec![crate::scrape::StaticConfig {
                    targets: vec![http_addr.to_string()],
                    labels: Default::default(),
                }],
                ..Default::default()
            };
            jobs.push(crate::scrape::Job::new(own).map_err(|e| Error::Internal(e.to_string()))?);
        }
        let self_job = jobs
            .iter()
            .find(|j| j.config.job_name == "sundial")
            .cloned();
        let reload: Option<(std::path::PathBuf, crate::scrape::Reload)> =
            config.config_file.clone().map(|path| {
                let file = path.clone();
                let load: crate::scrape::Reload = Box::new(move || {
                    let reload =
                        |e: crate::config::Error| crate::scrape::Error::Reload(e.to_string());
                    let mut jobs = Config::from_file(&file)
                        .map_err(reload)?
                        .scrape_jobs()
                        .map_err(reload)?;
                    if let Some(own) = &self_job
                        && !jobs.iter().any(|j| j.config.job_name == "sundial")
                    {
                        jobs.push(own.clone());
                    }
                    Ok(jobs)
                });
                (path, load)
            });
        scraper.spawn(jobs, reload, tasks.background());
        let query = Arc::new(QueryEngine::with_memory_limit(
            engine.clone(),
            query_memory,
            config.query_spill_limit,
        ));
        let alerts = crate::alert::Alerts::open(
            &config.data_dir,
            query.clone(),
            clock.clone(),
            format!("http://{http_addr}"),
            metrics.clone(),
            tasks.clone(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        query.set_alerting(alerts.clone());
        alerts.spawn_scheduler();
        let tls = match (&config.postgres.tls_cert, &config.postgres.tls_key) {
            (Some(cert), Some(key)) => {
                Some(crate::pg::auth::tls_acceptor(cert, key).map_err(Error::Internal)?)
            }
            _ => None,
        };
        let users = Arc::new(crate::pg::auth::Users::new(
            &config.users,
            config.postgres.auth_method,
        ));
        let pg_options = crate::pg::Options {
            users,
            tls,
            metrics: metrics.clone(),
            admission: Arc::new(crate::pg::limits::Admission::new(
                config.postgres.max_connections,
                config.postgres.statement_timeout.get(),
                crate::pg::limits::Timeouts {
                    authentication: config.postgres.authentication_timeout.get(),
                    idle: Some(config.postgres.idle_session_timeout.get()).filter(|d| !d.is_zero()),
                },
            )),
        };
        tasks.spawn_front(
            "postgres listener",
            crate::pg::serve(pg_listener, query, pg_options, tasks.clone()),
        );
        tracing::info!(%http_addr, %pg_addr, data_dir = %config.data_dir.display(), "sundial is ready");
        Ok(Server {
            http_addr,
            pg_addr,
            engine,
            metrics,
            tasks,
            shutdown_timeout: config.shutdown_timeout.get(),
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The server's self-metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Background tasks running now, by name (scrape targets, evaluations, …).
    pub fn running_tasks(&self) -> Vec<(&'static str, usize)> {
        self.tasks.running()
    }

    /// Stops in order (see the module doc), waiting for tasks at most `shutdown_timeout`,
    /// then flushes and closes storage. Every write answered before the call is durable
    /// whatever happens here: it was in the WAL before it was answered.
    pub async fn shutdown(self) {
        let left = self.tasks.shutdown(self.shutdown_timeout).await;
        if !left.front.is_empty() || !left.background.is_empty() {
            tracing::warn!(front = ?left.front, background = ?left.background,
                "tasks still running at the shutdown deadline; flushing anyway");
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
        tracing::info!("sundial stopped");
    }
}

/// Write buffers may hold a quarter of the memory the host allows, and at least two
/// flushes' worth.
fn default_buffer_bytes(storage: &crate::storage::StorageConfig) -> usize {
    let share = crate::host::share_of_memory(0.25, 8 << 30);
    usize::try_from(share)
        .unwrap_or(usize::MAX)
        .max(storage.flush_threshold_bytes.saturating_mul(2))
}

/// Queries may share half of the memory the host allows.
fn default_query_memory() -> usize {
    usize::try_from(crate::host::share_of_memory(0.5, 8 << 30)).unwrap_or(usize::MAX)
}
