//! Pull collection: scrape jobs with Prometheus' field names (`[[scrape_configs]]` in the
//! TOML config, nesting as in Prometheus' YAML), each target on its own task at its own
//! offset within the interval, so a slow target never delays another. A scrape fetches
//! the target's exposition ([`exposition`]: Prometheus text or OpenMetrics, gzip or not),
//! applies `metric_relabel_configs` ([`relabel`]), and stores each sample as a row of the
//! table named after the metric: labels become tags (with `job` and `instance`), the
//! sample `value` a float field. Per target it also writes Prometheus' `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped` and
//! `scrape_samples_post_metric_relabeling`.

mod cache;
mod config;
mod discovery;
pub mod exposition;
pub mod relabel;
pub mod serverset;
mod target;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::ingest::{self, Ingester, PreparedSeries, TableSamples};
use crate::tasks::Tasks;
use relabel::{Labels, Relabel, RelabelConfig};

/// Errors of the scrape subsystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A job's settings make no sense (the message names the job and the setting).
    #[error("{0}")]
    InvalidJob(String),
    /// The configuration could not be read again (SIGHUP, a changed file).
    #[error("reloading the scrape configuration: {0}")]
    Reload(String),
}

impl crate::error::Classify for Error {
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::InvalidJob(_) | Error::Reload(_) => crate::error::Kind::InvalidInput,
        }
    }
}

/// Scraped bodies larger than this fail the scrape.
const MAX_BODY_BYTES: usize = 64 << 20;

use cache::*;
pub use config::*;
use discovery::*;
pub use discovery::{Discovered, sd_files};

/// One target of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: String,
    /// `job`, `instance` and the static labels.
    pub labels: Labels,
}

/// What one scrape did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub up: bool,
    pub duration: Duration,
    pub scraped: usize,
    pub post_relabel: usize,
    pub error: Option<String>,
}

/// Runs the scrape jobs.
pub struct Scraper {
    ingester: Arc<Ingester>,
    /// Where target tasks and watchers are spawned (and tracked for shutdown).
    tasks: Tasks,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    /// The running target tasks, by job settings and target: each stops when its token
    /// is cancelled (target gone, job changed, shutdown).
    running: parking_lot::Mutex<std::collections::HashMap<String, CancellationToken>>,
    /// The last good answer of each http_sd URL, and the serverset members.
    discovered: parking_lot::Mutex<Discovered>,
    /// A serverset watcher published a change not yet applied.
    discovery_changed: std::sync::atomic::AtomicBool,
}

/// Where a new configuration comes from on SIGHUP or when the file changes.
pub type Reload = Box<dyn Fn() -> Result<Vec<Job>, Error> + Send + Sync>;

impl Scraper {
    pub fn new(ingester: Arc<Ingester>, clock: Arc<dyn Clock>, tasks: Tasks) -> Scraper {
        Scraper {
            ingester,
            tasks,
            clock,
            client: reqwest::Client::new(),
            running: Default::default(),
            discovered: Default::default(),
            discovery_changed: Default::default(),
        }
    }

    /// Makes the running targets those of `jobs`: new targets start, gone ones stop,
    /// unchanged ones keep their schedule.
    pub fn apply(self: &Arc<Self>, jobs: &[Job], shutdown: &CancellationToken) {
        let mut wanted = std::collections::HashMap::new();
        let found = self.discovered.lock().clone();
        for job in jobs {
            let job = Arc::new(job.clone());
            let settings = serde_json::to_string(&job.config).unwrap_or_default();
            for target in job.targets_with(&found) {
                let key = format!("{settings}\u{0}{}\u{0}{:?}", target.url, target.labels);
                wanted.insert(key, (job.clone(), target));
            }
        }
        let mut running = self.running.lock();
        running.retain(|key, token| {
            let keep = wanted.contains_key(key);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (key, (job, target)) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let token = shutdown.child_token();
            running.insert(key, token.clone());
            let scraper = self.clone();
            self.tasks.spawn("scrape target", async move {
                scraper.run_target(job, target, token).await
            });
        }
    }
}
