//! Server configuration: defaults < TOML file (`--config`) < `SUNDIAL_*` environment
//! variables < command-line flags. Each subsystem owns its own section.

use std::path::{Path, PathBuf};

use crate::http::HttpConfig;
use crate::storage::StorageConfig;

/// Everything `sundial serve` needs.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the WAL and the segment files.
    pub data_dir: PathBuf,
    /// Address of the HTTP API (InfluxDB-compatible writes).
    pub http_addr: String,
    /// Address of the Postgres wire protocol endpoint.
    pub pg_addr: String,
    pub storage: StorageConfig,
    pub http: HttpConfig,
}

pub const DEFAULT_DATA_DIR: &str = "./sundial-data";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8086";
pub const DEFAULT_PG_ADDR: &str = "127.0.0.1:5433";

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            http_addr: DEFAULT_HTTP_ADDR.to_string(),
            pg_addr: DEFAULT_PG_ADDR.to_string(),
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
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
        Ok(())
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
        assert_eq!(c.pg_addr, "0.0.0.0:5433");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::from_toml("data_dri = \"x\"").is_err());
    }
}
