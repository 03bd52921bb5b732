//! Wires the subsystems together and owns their shutdown: stop accepting (HTTP and
//! Postgres listeners) → flush buffers → exit.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::ingest::Ingester;
use crate::query::QueryEngine;
use crate::storage::Engine;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
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
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens storage, binds both listeners (port 0 picks a free port) and starts serving.
    pub async fn start(config: Config) -> Result<Server, Error> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Server, Error> {
        config.validate()?;
        let dir = config.data_dir.clone();
        let storage = config.storage.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, storage))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let bind = |what: &'static str, addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| Error::Bind { what, addr, source })
        };
        let http_listener = bind("HTTP", config.http_addr.clone()).await?;
        let pg_listener = bind("Postgres", config.pg_addr.clone()).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| Error::Internal(e.to_string()));
        let http_addr = local(&http_listener)?;
        let pg_addr = local(&pg_listener)?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let router = crate::http::router(
            Ingester::new(engine.clone(), clock.clone()),
            config.http.clone(),
        );
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::http::serve(http_listener, router, token).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        if let Some(addr) = &config.graphite.listen {
            let listener = bind("Graphite", addr.clone()).await?;
            tracing::info!(addr = %local(&listener)?, "graphite listener ready");
            tasks.spawn(crate::graphite::serve(
                listener,
                config.graphite_mapping()?,
                config.graphite.database.clone(),
                engine.clone(),
                clock.clone(),
                shutdown.clone(),
            ));
        }
        let scraper = Arc::new(crate::scrape::Scraper::new(engine.clone(), clock.clone()));
        let mut jobs = config.scrape_jobs()?;
        if config.self_scrape && !jobs.iter().any(|j| j.config.job_name == "sundial") {
            let own = crate::scrape::ScrapeConfig {
                job_name: "sundial".into(),
                scrape_interval: "10s".into(),
                scrape_timeout: "5s".into(),
                static_configs: vec![crate::scrape::StaticConfig {
                    targets: vec![http_addr.to_string()],
                    labels: Default::default(),
                }],
                ..Default::default()
            };
            jobs.push(crate::scrape::Job::new(own).map_err(Error::Internal)?);
        }
        let self_job = jobs
            .iter()
            .find(|j| j.config.job_name == "sundial")
            .cloned();
        let reload: Option<(std::path::PathBuf, crate::scrape::Reload)> =
            config.config_file.clone().map(|path| {
                let file = path.clone();
                let load: crate::scrape::Reload = Box::new(move || {
                    let mut jobs = Config::from_file(&file)
                        .map_err(|e| e.to_string())?
                        .scrape_jobs()
                        .map_err(|e| e.to_string())?;
                    if let Some(own) = &self_job
                        && !jobs.iter().any(|j| j.config.job_name == "sundial")
                    {
                        jobs.push(own.clone());
                    }
                    Ok(jobs)
                });
                (path, load)
            });
        scraper.spawn(jobs, reload, shutdown.clone());
        let query = Arc::new(QueryEngine::new(engine.clone()));
        let alerts = crate::alert::Alerts::open(
            &config.data_dir,
            query.clone(),
            clock.clone(),
            format!("http://{http_addr}"),
            shutdown.clone(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        query.set_alerting(alerts.clone());
        alerts.spawn_scheduler(shutdown.clone());
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
        let pg_options = crate::pg::Options { users, tls };
        tasks.spawn(crate::pg::serve(
            pg_listener,
            query,
            pg_options,
            shutdown.clone(),
        ));
        tracing::info!(%http_addr, %pg_addr, data_dir = %config.data_dir.display(), "sundial is ready");
        Ok(Server {
            http_addr,
            pg_addr,
            engine,
            shutdown,
            tasks,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops accepting, waits for the listeners, flushes storage.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
        tracing::info!("sundial stopped");
    }
}
