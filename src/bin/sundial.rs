//! The `sundial` command: parses arguments, starts tracing, runs the server.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sundial::config::Config;
use sundial::server::Server;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sundial",
    version,
    about = "Sundial: a metrics database with SQL over the Postgres protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: HTTP writes (InfluxDB line protocol) and SQL over the Postgres protocol.
    Serve(ServeArgs),
    /// Collect this host's CPU, memory, disk, network and load every interval and push them
    /// to a Sundial (or InfluxDB) URL as Telegraf's measurements, spooling while it is down.
    Agent(AgentArgs),
}

#[derive(Args)]
struct AgentArgs {
    /// Base URL of the server's HTTP API
    #[arg(long, env = "SUNDIAL_AGENT_URL", value_name = "URL")]
    url: String,
    /// Database to write to
    #[arg(long, env = "SUNDIAL_AGENT_DB", default_value = "sundial")]
    db: String,
    /// Collection interval (e.g. 10s, 1m)
    #[arg(long, env = "SUNDIAL_AGENT_INTERVAL", default_value = "10s")]
    interval: String,
    /// Where batches wait while the server is unreachable
    #[arg(
        long,
        env = "SUNDIAL_AGENT_SPOOL_DIR",
        default_value = "./sundial-agent-spool"
    )]
    spool_dir: PathBuf,
    /// Spool size limit in bytes; beyond it the oldest batches are dropped with a warning
    #[arg(long, env = "SUNDIAL_AGENT_SPOOL_MAX_BYTES", default_value_t = 256 << 20)]
    spool_max_bytes: u64,
    /// The `host` tag [default: this machine's host name]
    #[arg(long, env = "SUNDIAL_AGENT_HOST")]
    host: Option<String>,
}

/// Flags of `sundial serve`. Each overrides its environment variable, which overrides the
/// config file, which overrides the default.
#[derive(Args)]
struct ServeArgs {
    /// Directory for the WAL and segment files [default: ./sundial-data]
    #[arg(long, env = "SUNDIAL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API, InfluxDB-compatible writes [default: 127.0.0.1:8086]
    #[arg(long, env = "SUNDIAL_HTTP_ADDR", value_name = "HOST:PORT")]
    http_addr: Option<String>,
    /// Address of the Postgres wire protocol endpoint [default: 127.0.0.1:5433]
    #[arg(long, env = "SUNDIAL_PG_ADDR", value_name = "HOST:PORT")]
    pg_addr: Option<String>,
    /// TOML config file (see docker/sundial.toml for every key)
    #[arg(long, env = "SUNDIAL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Flush in-memory buffers to segment files once they hold this many bytes [default: 268435456]
    #[arg(long, env = "SUNDIAL_FLUSH_THRESHOLD_BYTES", value_name = "BYTES")]
    flush_threshold_bytes: Option<usize>,
    /// Largest accepted HTTP write body in bytes, after gzip decoding [default: 33554432]
    #[arg(long, env = "SUNDIAL_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// PEM certificate chain for TLS on the Postgres endpoint (needs --tls-key)
    #[arg(long, env = "SUNDIAL_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "SUNDIAL_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Do not scrape Sundial's own /metrics (on by default: job `sundial`, every 10 s)
    #[arg(long, env = "SUNDIAL_NO_SELF_SCRAPE")]
    no_self_scrape: bool,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config {
                config_file: Some(path.clone()),
                ..Config::from_file(path)?
            },
            None => Config::default(),
        };
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.http_addr {
            config.http_addr = v;
        }
        if let Some(v) = self.pg_addr {
            config.pg_addr = v;
        }
        if let Some(v) = self.flush_threshold_bytes {
            config.storage.flush_threshold_bytes = v;
        }
        if let Some(v) = self.max_body_bytes {
            config.http.max_body_bytes = v;
        }
        if let Some(v) = self.tls_cert {
            config.postgres.tls_cert = Some(v);
        }
        if let Some(v) = self.tls_key {
            config.postgres.tls_key = Some(v);
        }
        if self.no_self_scrape {
            config.self_scrape = false;
        }
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUNDIAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Agent(args) => {
            let interval = sundial::query::statements::parse_duration(&args.interval)
                .map(std::time::Duration::from_secs)
                .with_context(|| format!("invalid --interval {:?}", args.interval))?;
            let host = args.host.unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "localhost".into())
            });
            let config = sundial::agent::AgentConfig {
                url: args.url,
                database: args.db,
                interval,
                spool_dir: args.spool_dir,
                spool_max_bytes: args.spool_max_bytes,
                host,
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            runtime.block_on(async move {
                let shutdown = tokio_util::sync::CancellationToken::new();
                let token = shutdown.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    token.cancel();
                });
                tracing::info!(url = %config.url, "sundial agent running");
                sundial::agent::run(config, shutdown)
                    .await
                    .context("agent spool")
            })
        }
        Command::Serve(args) => {
            let config = args.into_config()?;
            let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            runtime.block_on(async move {
                let server = Server::start(config).await?;
                wait_for_signal().await;
                tracing::info!("shutting down");
                server.shutdown().await;
                anyhow::Ok(())
            })
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
