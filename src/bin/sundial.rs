//! The `sundial` command: parses arguments, starts tracing, runs the server.

use std::io::IsTerminal;
use std::net::SocketAddr;
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
    /// Write a generated data set as line protocol to stdout (for trying Sundial, and
    /// what the benchmarks load).
    Generate(GenerateArgs),
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
    #[arg(long, env = "SUNDIAL_HTTP_ADDR", value_name = "HOST:PORT", value_parser = sundial::addr::parse)]
    http_addr: Option<SocketAddr>,
    /// Address of the Postgres wire protocol endpoint [default: 127.0.0.1:5433]
    #[arg(long, env = "SUNDIAL_PG_ADDR", value_name = "HOST:PORT", value_parser = sundial::addr::parse)]
    pg_addr: Option<SocketAddr>,
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
    /// How long shutdown waits for connections and background work [default: 10s]
    #[arg(long, env = "SUNDIAL_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    shutdown_timeout: Option<sundial::duration::Duration>,
}

/// `sundial generate devops`: TSBS' devops cpu-only data as line protocol on stdout.
#[derive(Args)]
struct GenerateArgs {
    #[command(subcommand)]
    dataset: Dataset,
}

#[derive(Subcommand)]
enum Dataset {
    /// Hosts with ten tags and a `cpu` measurement of ten random-walk fields, one row per
    /// host every interval from 2016-01-01T00:00:00Z (pipe into `curl --data-binary @-`).
    Devops(DevopsArgs),
}

#[derive(Args)]
struct DevopsArgs {
    /// Number of hosts
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Hours of data per host
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Time between a host's rows
    #[arg(long, default_value = "10s")]
    interval: sundial::duration::Duration,
    /// RNG seed (the same seed gives the same data)
    #[arg(long, default_value_t = 123)]
    seed: u64,
    /// Full-precision float values instead of TSBS' integers (`58i`)
    #[arg(long)]
    floats: bool,
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
        if let Some(v) = self.shutdown_timeout {
            config.shutdown_timeout = v;
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
        Command::Generate(GenerateArgs {
            dataset: Dataset::Devops(args),
        }) => generate_devops(args),
        Command::Agent(args) => {
            let interval = sundial::duration::parse(&args.interval)
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
            // Planning and executing walk expression trees recursively: 8 MiB stacks
            // (tokio's default is 2) hold the deepest tree query::complexity admits,
            // also in debug builds; fewer blocking threads keep the address space small.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(8 << 20)
                .max_blocking_threads(64)
                .build()
                .context("starting the tokio runtime")?;
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

/// Streams the devops data set to stdout, one line per row.
fn generate_devops(args: DevopsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let interval_secs = args.interval.get().as_secs().max(1);
    let options = sundial::devops::Options {
        hosts: args.hosts,
        steps: usize::try_from(args.hours.saturating_mul(3600) / interval_secs)
            .context("--hours is too large")?,
        interval_secs: i64::try_from(interval_secs).context("--interval is too large")?,
        seed: args.seed,
        float_values: args.floats,
        ..Default::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in sundial::devops::generate(&options) {
        match out.write_all(line.as_bytes()) {
            // `| head` closed the pipe: done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.context("writing to stdout")?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
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
