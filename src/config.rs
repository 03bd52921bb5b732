//! Server configuration: defaults < TOML file (`--config`) < `SUNDIAL_*` environment
//! variables < command-line flags. Each subsystem owns its own section.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::http::HttpConfig;
use crate::storage::StorageConfig;

/// Everything `sundial serve` needs.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the WAL and the segment files.
    pub data_dir: PathBuf,
    /// Address of the HTTP API (InfluxDB-compatible writes); a host name is resolved.
    #[serde(with = "crate::addr")]
    pub http_addr: SocketAddr,
    /// Address of the Postgres wire protocol endpoint; a host name is resolved.
    #[serde(with = "crate::addr")]
    pub pg_addr: SocketAddr,
    pub storage: StorageConfig,
    /// Bytes all running queries may use together (DataFusion's memory pool; sorts and
    /// aggregations spill past it, other queries fail with SQLSTATE 53200). 0: half of
    /// the memory the host allows (the smallest of RAM, the cgroup limit, `RLIMIT_AS`).
    pub query_memory_limit: usize,
    /// Bytes all running queries may spill to temporary files together; past it the
    /// spilling query fails with SQLSTATE 53400 instead of filling the disk (10 GiB).
    pub query_spill_limit: u64,
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    /// Users of the Postgres endpoint. None: any user name is accepted without a password.
    pub users: Vec<crate::pg::auth::User>,
    /// Prometheus-style scrape jobs (`[[scrape_configs]]`).
    pub scrape_configs: Vec<crate::scrape::ScrapeConfig>,
    /// The Graphite plaintext listener (`[graphite]`).
    pub graphite: crate::graphite::GraphiteConfig,
    /// Scrape Sundial's own `/metrics` every 10 s into database `sundial` (job `sundial`).
    pub self_scrape: bool,
    /// How long a shutdown waits for connections and background work before it flushes
    /// storage and exits anyway.
    pub shutdown_timeout: crate::duration::Duration,
    /// The file this configuration was read from, re-read for scrape jobs on SIGHUP or
    /// when it changes (set by `sundial serve --config`, not in the file).
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// The Postgres endpoint's TLS, authentication and limits.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// PEM certificate chain; with `tls_key`, TLS is offered to clients.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `scram-sha-256` (default), `md5` or `password` (cleartext), when users are configured.
    pub auth_method: crate::pg::auth::AuthMethod,
    /// Connections at once (PostgreSQL's `max_connections`); more are refused with
    /// SQLSTATE 53300. 0: no limit.
    pub max_connections: usize,
    /// `statement_timeout` of sessions that set none (`"5m"`; `"0s"`: none).
    pub statement_timeout: crate::duration::Duration,
    /// How long a connection may take from connecting to finishing authentication
    /// (PostgreSQL's `authentication_timeout`, `"1m"`).
    pub authentication_timeout: crate::duration::Duration,
    /// A session with no statement running and no message for this long is closed
    /// (PostgreSQL's `idle_session_timeout`; `"1h"`, `"0s"`: never).
    pub idle_session_timeout: crate::duration::Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            tls_cert: None,
            tls_key: None,
            auth_method: Default::default(),
            max_connections: 100,
            statement_timeout: crate::duration::Duration::from_secs(300),
            authentication_timeout: crate::duration::Duration::from_secs(60),
            idle_session_timeout: crate::duration::Duration::from_secs(3600),
        }
    }
}

pub const DEFAULT_DATA_DIR: &str = "./sundial-data";
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(LOOPBACK, 8086);
pub const DEFAULT_PG_ADDR: SocketAddr = SocketAddr::new(LOOPBACK, 5433);
pub const DEFAULT_SHUTDOWN_TIMEOUT: crate::duration::Duration =
    crate::duration::Duration::from_secs(10);
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            http_addr: DEFAULT_HTTP_ADDR,
            pg_addr: DEFAULT_PG_ADDR,
            storage: StorageConfig::default(),
            query_memory_limit: 0,
            query_spill_limit: 10 << 30,
            http: HttpConfig::default(),
            postgres: PostgresConfig::default(),
            users: Vec::new(),
            scrape_configs: Vec::new(),
            graphite: crate::graphite::GraphiteConfig::default(),
            self_scrape: true,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            config_file: None,
        }
    }
}

/// A configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Parses a TOML config file; absent keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), Error> {
        if self.http.max_body_bytes == 0 {
            return Err(Error::Invalid(
                "http.max_body_bytes must be positive".into(),
            ));
        }
        if self.storage.flush_threshold_bytes == 0 {
            return Err(Error::Invalid(
                "storage.flush_threshold_bytes must be positive".into(),
            ));
        }
        if self.postgres.tls_cert.is_some() != self.postgres.tls_key.is_some() {
            return Err(Error::Invalid(
                "TLS needs both a certificate (--tls-cert) and a key (--tls-key)".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for u in &self.users {
            if u.name.is_empty() || !names.insert(u.name.as_str()) {
                return Err(Error::Invalid(format!(
                    "users: empty or repeated user name {:?}",
                    u.name
                )));
            }
        }
        self.scrape_jobs()?;
        self.graphite_mapping()?;
        Ok(())
    }

    /// The Graphite path templates, checked.
    pub fn graphite_mapping(&self) -> Result<crate::ingest::graphite::Mapping, Error> {
        crate::ingest::graphite::Mapping::new(&self.graphite.templates, &self.graphite.separator)
            .map_err(|e| Error::Invalid(format!("graphite: {e}")))
    }

    /// The scrape jobs, checked (durations, regexes, unique job names).
    pub fn scrape_jobs(&self) -> Result<Vec<crate::scrape::Job>, Error> {
        let mut names = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for c in &self.scrape_configs {
            if !names.insert(c.job_name.as_str()) {
                return Err(Error::Invalid(format!(
                    "scrape_configs: job_name {:?} is used twice",
                    c.job_name
                )));
            }
            jobs.push(
                crate::scrape::Job::new(c.clone()).map_err(|e| Error::Invalid(e.to_string()))?,
            );
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../docker/sundial.toml");
        let c = Config::from_toml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.pg_addr.to_string(), "0.0.0.0:5433");
    }

    #[test]
    fn users_and_tls() {
        let c = Config::from_toml(
            "[postgres]\nauth_method = \"md5\"\n[[users]]\nname = \"grafana\"\npassword = \"s\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.users[0].name, "grafana");
        assert_eq!(c.postgres.auth_method, crate::pg::auth::AuthMethod::Md5);
        let half = Config::from_toml("[postgres]\ntls_cert = \"c.pem\"\n").unwrap();
        assert!(half.validate().is_err());
    }

    #[test]
    fn addresses_may_name_hosts() {
        let c = Config::from_toml("http_addr = \"localhost:8086\"\n").unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8086");
        assert_eq!(c.pg_addr, DEFAULT_PG_ADDR);
        assert!(Config::from_toml("pg_addr = \"nowhere\"\n").is_err());
        assert_eq!(
            crate::addr::parse("[::1]:5433").unwrap().to_string(),
            "[::1]:5433"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::from_toml("data_dri = \"x\"").is_err());
    }
}
