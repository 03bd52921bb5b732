//! Pull collection: scrape jobs with Prometheus' field names (`[[scrape_configs]]` in the
//! TOML config, nesting as in Prometheus' YAML), each target on its own task at its own
//! offset within the interval, so a slow target never delays another. A scrape fetches
//! the target's exposition ([`exposition`]: Prometheus text or OpenMetrics, gzip or not),
//! applies `metric_relabel_configs` ([`relabel`]), and stores each sample as a row of the
//! table named after the metric: labels become tags (with `job` and `instance`), the
//! sample `value` a float field. Per target it also writes Prometheus' `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped` and
//! `scrape_samples_post_metric_relabeling`.

pub mod exposition;
pub mod relabel;
pub mod serverset;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::query::statements::parse_duration;
use crate::storage::{self, Engine, PreparedSeries, TableSamples};
use relabel::{Labels, Relabel, RelabelConfig};

/// Scraped bodies larger than this fail the scrape.
const MAX_BODY_BYTES: usize = 64 << 20;

/// One scrape job, as in Prometheus' `scrape_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// Duration text (`15s`, `1m`).
    pub scrape_interval: String,
    pub scrape_timeout: String,
    pub metrics_path: String,
    pub scheme: String,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    /// Scraped labels win over target labels (otherwise they become `exported_<name>`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes.
    pub honor_timestamps: bool,
    /// More samples than this fail the scrape (0: no limit).
    pub sample_limit: usize,
    /// The database the samples go to.
    pub database: String,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub http_sd_configs: Vec<HttpSdConfig>,
    pub serverset_sd_configs: Vec<serverset::ServersetSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// Targets from an HTTP endpoint answering the file_sd JSON format, fetched every
/// `refresh_interval` (default 1m); on a failed fetch the last good list stays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Option<String>,
}

/// Targets from files (JSON or YAML lists of `{targets, labels}`), re-read when they
/// change. `*` in a file name matches any characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    /// Accepted for compatibility; files are checked for changes every second.
    pub refresh_interval: Option<String>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: "1m".into(),
            scrape_timeout: "10s".into(),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            basic_auth: None,
            authorization: None,
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            database: crate::storage::DEFAULT_DATABASE.into(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            http_sd_configs: Vec::new(),
            serverset_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type", default = "bearer")]
    pub kind: String,
    pub credentials: String,
}

fn bearer() -> String {
    "Bearer".into()
}

/// A job, checked: durations parsed, regexes compiled.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: ScrapeConfig,
    pub interval: Duration,
    pub timeout: Duration,
    relabel: Vec<Relabel>,
    metric_relabel: Vec<Relabel>,
}

fn duration(text: &str, what: &str) -> Result<Duration, String> {
    parse_duration(text)
        .map(Duration::from_secs)
        .or_else(|| {
            text.strip_suffix("ms")
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
        })
        .ok_or_else(|| format!("invalid {what} {text:?}: use a duration like \"15s\""))
}

impl Job {
    /// Checks a job's settings; the error names the job and the setting.
    pub fn new(config: ScrapeConfig) -> Result<Job, String> {
        let name = config.job_name.clone();
        let fail = |e: String| format!("scrape job {name:?}: {e}");
        if name.is_empty() {
            return Err("a scrape job needs a job_name".into());
        }
        let interval = duration(&config.scrape_interval, "scrape_interval").map_err(fail)?;
        let timeout = duration(&config.scrape_timeout, "scrape_timeout").map_err(fail)?;
        let timeout = timeout.min(interval);
        if !matches!(config.scheme.as_str(), "http" | "https") {
            return Err(fail(format!(
                "scheme {:?} is not http or https",
                config.scheme
            )));
        }
        for sd in &config.serverset_sd_configs {
            if sd.servers.is_empty() || sd.paths.is_empty() {
                return Err(fail("serverset_sd_configs need servers and paths".into()));
            }
            if let Some(p) = sd.paths.iter().find(|p| !p.starts_with('/')) {
                return Err(fail(format!("serverset path {p:?} must start with /")));
            }
            if let Some(t) = &sd.timeout {
                duration(t, "timeout").map_err(fail)?;
            }
        }
        let compile = |list: &[RelabelConfig]| -> Result<Vec<Relabel>, String> {
            list.iter().cloned().map(Relabel::new).collect()
        };
        Ok(Job {
            relabel: compile(&config.relabel_configs).map_err(fail)?,
            metric_relabel: compile(&config.metric_relabel_configs).map_err(fail)?,
            interval,
            timeout,
            config,
        })
    }

    /// The job's targets with their labels, after `relabel_configs` (targets dropped by
    /// relabeling are left out). Labels starting with `__` are gone except for the
    /// address, scheme and path the scrape needs.
    pub fn targets(&self) -> Vec<Target> {
        self.targets_with(&Discovered::new())
    }

    /// Like [`Job::targets`], with the last lists fetched from `http_sd_configs` URLs.
    pub fn targets_with(&self, found: &Discovered) -> Vec<Target> {
        let mut groups: Vec<(StaticConfig, Option<String>)> = self
            .config
            .static_configs
            .iter()
            .map(|g| (g.clone(), None))
            .collect();
        for sd in &self.config.file_sd_configs {
            for path in sd_files(&sd.files) {
                match read_sd_file(&path) {
                    Ok(list) => groups.extend(
                        list.into_iter()
                            .map(|g| (g, Some(path.display().to_string()))),
                    ),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "file_sd file skipped")
                    }
                }
            }
        }
        for sd in &self.config.http_sd_configs {
            if let Some(list) = found.get(&sd.url) {
                groups.extend(list.iter().map(|g| (g.clone(), Some(sd.url.clone()))));
            }
        }
        for sd in &self.config.serverset_sd_configs {
            if let Some(list) = found.get(&sd.key()) {
                // The members carry their own `__meta_serverset_*` labels.
                groups.extend(list.iter().map(|g| (g.clone(), None)));
            }
        }
        let mut out = Vec::new();
        for (sc, file) in &groups {
            for address in &sc.targets {
                let mut labels = Labels::new();
                labels.insert("__address__".into(), address.clone());
                labels.insert("__scheme__".into(), self.config.scheme.clone());
                labels.insert("__metrics_path__".into(), self.config.metrics_path.clone());
                for (k, v) in &self.config.params {
                    if let Some(first) = v.first() {
                        labels.insert(format!("__param_{k}"), first.clone());
                    }
                }
                labels.insert("job".into(), self.config.job_name.clone());
                match file {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        labels.insert("__meta_url".into(), url.clone());
                    }
                    Some(file) => {
                        labels.insert("__meta_filepath".into(), file.clone());
                    }
                    None => {}
                }
                labels.extend(sc.labels.clone());
                let Some(mut labels) = relabel::apply(&self.relabel, labels) else {
                    continue;
                };
                let Some(address) = labels.get("__address__").cloned() else {
                    continue;
                };
                labels
                    .entry("instance".into())
                    .or_insert_with(|| address.clone());
                let scheme = labels.get("__scheme__").cloned().unwrap_or_default();
                let path = labels.get("__metrics_path__").cloned().unwrap_or_default();
                let mut url = format!("{scheme}://{address}{path}");
                let mut sep = '?';
                for (k, values) in &self.config.params {
                    for v in values {
                        url.push(sep);
                        url.push_str(&format!("{}={}", encode(k), encode(v)));
                        sep = '&';
                    }
                }
                labels.retain(|k, _| !k.starts_with("__"));
                out.push(Target { url, labels });
            }
        }
        out
    }
}

/// Target lists found by discovery: http_sd answers by URL, serverset members by
/// [`serverset::ServersetSdConfig::key`].
pub type Discovered = std::collections::HashMap<String, Vec<StaticConfig>>;

/// The http_sd URLs of `jobs` with their refresh intervals.
fn http_sd_urls(jobs: &[Job]) -> Vec<(String, Duration)> {
    jobs.iter()
        .flat_map(|j| j.config.http_sd_configs.iter())
        .map(|sd| {
            let every = sd
                .refresh_interval
                .as_deref()
                .and_then(|t| duration(t, "refresh_interval").ok())
                .unwrap_or(Duration::from_secs(60));
            (sd.url.clone(), every)
        })
        .collect()
}

/// The files `patterns` name (`*` in the file name part matches any characters), sorted.
pub fn sd_files(patterns: &[String]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        let path = std::path::Path::new(pattern);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if !name.contains('*') {
            out.push(path.to_path_buf());
            continue;
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            if wildcard(&name, &e.file_name().to_string_lossy()) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// A file_sd file: JSON, or YAML when named `.yml`/`.yaml`.
fn read_sd_file(path: &std::path::Path) -> Result<Vec<StaticConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
    if yaml {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// Modification times and sizes of the files a set of jobs reads, to notice changes.
fn sd_fingerprint(jobs: &[Job]) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
    jobs.iter()
        .flat_map(|j| j.config.file_sd_configs.iter())
        .flat_map(|sd| sd_files(&sd.files))
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p, modified, len)
        })
        .collect()
}

/// Percent-encodes a query component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

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

/// The tables of the series every scrape writes for its target.
const REPORT_TABLES: [&str; 4] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
];

/// What a target's earlier scrapes learned about each series text it exposes (as
/// Prometheus' scrape cache does): the table and prepared series it is stored as after
/// relabeling, or that relabeling drops it. Kept by the target's task; its answers hold
/// because a task's job and target never change.
#[derive(Default)]
struct ScrapeCache {
    series: std::collections::HashMap<Arc<[u8]>, Dest, foldhash::fast::RandomState>,
    /// The last parsed scrape's series texts in order, with their destinations. A target
    /// mostly exposes the same series in the same order, so a sample is first compared
    /// with the text at its position: no hashing, and memory read in order.
    order: Vec<(Arc<[u8]>, Dest)>,
    /// Table names, shared by the entries.
    tables: std::collections::HashMap<String, Arc<str>>,
    report: Option<[Arc<PreparedSeries>; 4]>,
}

#[derive(Clone)]
enum Dest {
    Store(Arc<str>, Arc<PreparedSeries>),
    Dropped,
    Invalid(storage::SchemaError),
}

impl ScrapeCache {
    fn table(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.tables.get(name) {
            return t.clone();
        }
        let t: Arc<str> = name.into();
        self.tables.insert(name.to_string(), t.clone());
        t
    }

    /// The series of `up` and the other per-target tables (one each, so each keeps
    /// its own series id).
    fn report_series(&mut self, labels: &Labels) -> [Arc<PreparedSeries>; 4] {
        self.report
            .get_or_insert_with(|| {
                let tags: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                std::array::from_fn(|_| {
                    Arc::new(PreparedSeries::new(tags.clone()).unwrap_or_else(|_| {
                        // Target labels with NUL or `time`: the report goes untagged.
                        PreparedSeries::new(Vec::new()).expect("no tags")
                    }))
                })
            })
            .clone()
    }
}

/// One scrape's samples, grouped by table in order of first appearance.
#[derive(Default)]
struct Batch {
    tables: Vec<TableSamples>,
    /// Table (by its shared name's address) → index in `tables`.
    index: std::collections::HashMap<usize, usize>,
    len: usize,
}

impl Batch {
    fn push(&mut self, table: &Arc<str>, series: Arc<PreparedSeries>, time: i64, value: f64) {
        let key = Arc::as_ptr(table) as *const u8 as usize;
        let i = match self.tables.last() {
            Some(last) if Arc::ptr_eq(&last.table, table) => self.tables.len() - 1,
            _ => *self.index.entry(key).or_insert_with(|| {
                self.tables.push(TableSamples {
                    table: table.clone(),
                    field: "value".into(),
                    samples: Vec::new(),
                });
                self.tables.len() - 1
            }),
        };
        self.tables[i].samples.push((series, time, value));
        self.len += 1;
    }
}

/// Runs the scrape jobs.
pub struct Scraper {
    engine: Arc<Engine>,
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
pub type Reload = Box<dyn Fn() -> Result<Vec<Job>, String> + Send + Sync>;

impl Scraper {
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Scraper {
        Scraper {
            engine,
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
            tokio::spawn(async move { scraper.run_target(job, target, token).await });
        }
    }

    /// Starts `jobs` and keeps them current: file_sd files are checked every second, and
    /// `reload` (the config file) is read again on SIGHUP or when `config_file` changes.
    pub fn spawn(
        self: &Arc<Self>,
        jobs: Vec<Job>,
        reload: Option<(std::path::PathBuf, Reload)>,
        shutdown: CancellationToken,
    ) {
        self.apply(&jobs, &shutdown);
        let scraper = self.clone();
        tokio::spawn(async move {
            let mut jobs = jobs;
            let mut fetched: std::collections::HashMap<String, Instant> = Default::default();
            let mut watchers = Default::default();
            scraper.sync_serversets(&jobs, &mut watchers, &shutdown);
            let mut seen = sd_fingerprint(&jobs);
            let config_mtime =
                |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let mut config_seen = reload.as_ref().and_then(|(p, _)| config_mtime(p));
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                #[cfg(unix)]
                let signal = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await.is_some(),
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let signal = std::future::pending::<bool>();
                let hup = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    got = signal => got,
                    _ = shutdown.cancelled() => return,
                };
                let mut changed = false;
                if let Some((path, load)) = &reload {
                    let mtime = config_mtime(path);
                    if hup || mtime != config_seen {
                        config_seen = mtime;
                        match load() {
                            Ok(new) => {
                                tracing::info!(jobs = new.len(), "scrape configuration reloaded");
                                jobs = new;
                                scraper.sync_serversets(&jobs, &mut watchers, &shutdown);
                                changed = true;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "config reload failed; keeping the running configuration")
                            }
                        }
                    }
                }
                for (url, every) in http_sd_urls(&jobs) {
                    if fetched.get(&url).is_some_and(|t| t.elapsed() < every) {
                        continue;
                    }
                    fetched.insert(url.clone(), Instant::now());
                    match scraper.fetch_http_sd(&url).await {
                        Ok(list) => {
                            let mut cache = scraper.discovered.lock();
                            if cache.get(&url) != Some(&list) {
                                cache.insert(url, list);
                                changed = true;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%url, error = %e, "http_sd fetch failed; keeping the last targets")
                        }
                    }
                }
                if scraper
                    .discovery_changed
                    .swap(false, std::sync::atomic::Ordering::AcqRel)
                {
                    changed = true;
                }
                let now = sd_fingerprint(&jobs);
                if changed || now != seen {
                    seen = now;
                    scraper.apply(&jobs, &shutdown);
                }
            }
        });
    }

    /// Runs one ZooKeeper watcher per `serverset_sd_configs` entry of `jobs`: new entries
    /// start, entries gone from the configuration stop and their targets go.
    fn sync_serversets(
        self: &Arc<Self>,
        jobs: &[Job],
        watchers: &mut std::collections::HashMap<String, CancellationToken>,
        shutdown: &CancellationToken,
    ) {
        let wanted: std::collections::HashMap<String, serverset::ServersetSdConfig> = jobs
            .iter()
            .flat_map(|j| j.config.serverset_sd_configs.iter())
            .map(|sd| (sd.key(), sd.clone()))
            .collect();
        watchers.retain(|key, token| {
            let keep = wanted.contains_key(key);
            if !keep {
                token.cancel();
                self.discovered.lock().remove(key);
            }
            keep
        });
        for (key, sd) in wanted {
            if watchers.contains_key(&key) {
                continue;
            }
            let token = shutdown.child_token();
            watchers.insert(key.clone(), token.clone());
            let scraper = self.clone();
            tokio::spawn(async move {
                let publish = |groups: Vec<StaticConfig>| {
                    tracing::info!(members = groups.len(), "serverset members changed");
                    scraper.discovered.lock().insert(key.clone(), groups);
                    scraper
                        .discovery_changed
                        .store(true, std::sync::atomic::Ordering::Release);
                };
                serverset::watch(sd, publish, token).await
            });
        }
    }

    /// One http_sd answer: a JSON list of `{targets, labels}`.
    async fn fetch_http_sd(&self, url: &str) -> Result<Vec<StaticConfig>, String> {
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    async fn run_target(&self, job: Arc<Job>, target: Target, shutdown: CancellationToken) {
        let every = job.interval.as_nanos() as i64;
        // Spread targets over the interval, stably per target.
        let offset = crate::clock::offset(&target.url, every);
        let mut next = crate::clock::next_after(self.clock.now_nanos(), every, offset);
        // The job and target never change for this task, so neither do the cache's answers.
        let mut cache = ScrapeCache::default();
        loop {
            let wait = Duration::from_nanos((next - self.clock.now_nanos()).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            let report = self.scrape(&job, &target, &mut cache).await;
            if let Some(e) = &report.error {
                tracing::debug!(job = %job.config.job_name, url = %target.url, error = %e, "scrape failed");
            }
            next = crate::clock::next_after(self.clock.now_nanos(), every, offset);
        }
    }

    /// Scrapes `target` once and stores the samples and the scrape's own series, through
    /// the cache its earlier scrapes filled.
    async fn scrape(&self, job: &Job, target: &Target, cache: &mut ScrapeCache) -> Report {
        let start_ns = self.clock.now_nanos();
        // Prometheus stores scrape times in milliseconds.
        let now_ns = start_ns - start_ns.rem_euclid(1_000_000);
        let started = Instant::now();
        let outcome = tokio::time::timeout(job.timeout, self.fetch(job, target))
            .await
            .unwrap_or_else(|_| Err(format!("scrape timed out after {:?}", job.timeout)));
        let mut report = Report {
            up: false,
            duration: Duration::ZERO,
            scraped: 0,
            post_relabel: 0,
            error: None,
        };
        let mut batch = Batch::default();
        let mut invalid: Option<(usize, storage::SchemaError)> = None;
        match outcome.and_then(|(body, format)| {
            self.samples(
                job,
                target,
                cache,
                &body,
                format,
                now_ns,
                &mut batch,
                &mut invalid,
            )
            .map_err(|e| format!("parsing the scrape: {e}"))
        }) {
            Ok(scraped) => {
                report.scraped = scraped;
                report.post_relabel = batch.len;
                if job.config.sample_limit > 0 && batch.len > job.config.sample_limit {
                    report.error = Some(format!(
                        "sample_limit exceeded: {} > {}",
                        batch.len, job.config.sample_limit
                    ));
                    batch = Batch::default();
                } else {
                    report.up = true;
                }
            }
            Err(e) => {
                report.error = Some(e);
                batch = Batch::default();
            }
        }
        // Series the target stopped exposing leave the cache after a good scrape
        // without them (a failed scrape keeps it for when the target is back).
        if report.up && cache.series.len() > cache.order.len() {
            let live: std::collections::HashSet<*const u8> =
                cache.order.iter().map(|(text, _)| text.as_ptr()).collect();
            cache.series.retain(|text, _| live.contains(&text.as_ptr()));
        }
        report.duration = started.elapsed();
        let report_series = cache.report_series(&target.labels);
        for (i, value) in [
            if report.up { 1.0 } else { 0.0 },
            report.duration.as_secs_f64(),
            report.scraped as f64,
            report.post_relabel as f64,
        ]
        .into_iter()
        .enumerate()
        {
            let table = cache.table(REPORT_TABLES[i]);
            batch.push(&table, report_series[i].clone(), now_ns, value);
        }
        let written = self
            .engine
            .write_samples(&job.config.database, batch.tables, true)
            .await;
        let m = &crate::metrics::METRICS;
        m.scrapes.add(&job.config.job_name, 1);
        if !report.up {
            m.scrape_failures.add(&job.config.job_name, 1);
        }
        if let Ok(outcome) = &written {
            m.rows_ingested.add("scrape", outcome.stored as u64);
        }
        match written {
            Ok(outcome) if !outcome.rejected.is_empty() || invalid.is_some() => {
                let (n, first) = match invalid {
                    Some((n, e)) => (n + outcome.rejected.len(), e),
                    None => (outcome.rejected.len(), outcome.rejected[0].1.clone()),
                };
                tracing::warn!(
                    job = %job.config.job_name,
                    rejected = n,
                    first = %first,
                    "scraped samples rejected by storage"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(job = %job.config.job_name, error = %e, "storing a scrape failed");
                report.error.get_or_insert(e.to_string());
            }
        }
        report
    }

    /// Parses a body into `batch`, through the cache: a series text seen before costs a
    /// hash lookup; a new one is parsed, relabeled and prepared once. Returns the number
    /// of samples scraped; series that cannot be stored are counted in `invalid`.
    #[allow(clippy::too_many_arguments)]
    fn samples(
        &self,
        job: &Job,
        target: &Target,
        cache: &mut ScrapeCache,
        body: &[u8],
        format: exposition::Format,
        now_ns: i64,
        batch: &mut Batch,
        invalid: &mut Option<(usize, storage::SchemaError)>,
    ) -> Result<usize, exposition::ParseError> {
        let mut scraped = 0;
        // Until the first sample out of last scrape's order, `order` is still right;
        // from there on, this scrape's order is built in `rebuilt`.
        let mut rebuilt: Option<Vec<(Arc<[u8]>, Dest)>> = None;
        exposition::for_each_sample(body, format, |raw| {
            let text = raw.series();
            let dest = match cache.order.get(scraped) {
                Some((last, dest)) if rebuilt.is_none() && **last == *text => dest,
                _ => {
                    let order = rebuilt.get_or_insert_with(|| cache.order[..scraped].to_vec());
                    let (key, dest) = match cache.series.get_key_value(text) {
                        Some((key, dest)) => (key.clone(), dest.clone()),
                        None => {
                            let (name, labels) = raw.parse_series()?;
                            let dest = match self.series_for(job, target, name, labels) {
                                None => Dest::Dropped,
                                Some((table, tags)) => match storage::PreparedSeries::new(tags) {
                                    Ok(series) => {
                                        Dest::Store(cache.table(&table), Arc::new(series))
                                    }
                                    Err(e) => Dest::Invalid(e),
                                },
                            };
                            let key: Arc<[u8]> = text.into();
                            cache.series.insert(key.clone(), dest.clone());
                            (key, dest)
                        }
                    };
                    order.push((key, dest));
                    &order.last().expect("pushed").1
                }
            };
            scraped += 1;
            match dest {
                Dest::Store(table, series) => {
                    let time = match raw.timestamp_ms {
                        Some(ms) if job.config.honor_timestamps => ms.saturating_mul(1_000_000),
                        _ => now_ns,
                    };
                    batch.push(table, series.clone(), time, raw.value);
                }
                Dest::Dropped => {}
                Dest::Invalid(e) => {
                    let (n, _) = invalid.get_or_insert_with(|| (0, e.clone()));
                    *n += 1;
                }
            }
            Ok(())
        })?;
        match rebuilt {
            Some(order) => cache.order = order,
            None => cache.order.truncate(scraped),
        }
        Ok(scraped)
    }

    /// A scraped series → its table and tags: the target's labels added (honor_labels
    /// decides conflicts), then metric relabeling; `None` if relabeling drops it.
    fn series_for(
        &self,
        job: &Job,
        target: &Target,
        name: String,
        labels: Vec<(String, String)>,
    ) -> Option<(String, Vec<(String, String)>)> {
        let mut labels: Labels = labels.into_iter().collect();
        for (k, v) in &target.labels {
            match labels.get(k) {
                Some(_) if job.config.honor_labels => {}
                Some(existing) => {
                    let existing = existing.clone();
                    labels.insert(format!("exported_{k}"), existing);
                    labels.insert(k.clone(), v.clone());
                }
                None => {
                    labels.insert(k.clone(), v.clone());
                }
            }
        }
        labels.insert("__name__".into(), name);
        let mut labels = relabel::apply(&job.metric_relabel, labels)?;
        let table = labels.remove("__name__")?;
        labels.retain(|k, v| !k.starts_with("__") && !v.is_empty());
        Some((table, labels.into_iter().collect()))
    }

    /// GETs the target: its body (gunzipped) and format.
    async fn fetch(
        &self,
        job: &Job,
        target: &Target,
    ) -> Result<(Vec<u8>, exposition::Format), String> {
        let mut request = self
            .client
            .get(&target.url)
            .header(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            )
            .header("Accept-Encoding", "gzip")
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", job.timeout.as_secs_f64()),
            );
        if let Some(auth) = &job.config.basic_auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        if let Some(auth) = &job.config.authorization {
            request = request.header(
                "Authorization",
                format!("{} {}", auth.kind, auth.credentials),
            );
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("server returned HTTP status {status}"));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let format = exposition::Format::from_content_type(&header("content-type"));
        let gzip = header("content-encoding").eq_ignore_ascii_case("gzip");
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_BODY_BYTES {
            return Err(format!("body over {MAX_BODY_BYTES} bytes"));
        }
        let body = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            if out.len() > MAX_BODY_BYTES {
                return Err(format!("body over {MAX_BODY_BYTES} bytes"));
            }
            out
        } else {
            body.to_vec()
        };
        Ok((body, format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_static_configs_and_relabeling() {
        let config: ScrapeConfig = toml::from_str(
            r#"
            job_name = "node"
            scrape_interval = "15s"
            metrics_path = "/m"
            params = { collect = ["cpu", "mem"] }
            [[static_configs]]
            targets = ["127.0.0.1:9100", "10.1.1.1:9100"]
            labels = { env = "dev" }
            [[relabel_configs]]
            source_labels = ["__address__"]
            regex = "10\\..*"
            action = "drop"
            "#,
        )
        .unwrap();
        let job = Job::new(config).unwrap();
        assert_eq!(job.interval, Duration::from_secs(15));
        assert_eq!(job.timeout, Duration::from_secs(10));
        let targets = job.targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(
            targets[0].url,
            "http://127.0.0.1:9100/m?collect=cpu&collect=mem"
        );
        assert_eq!(
            targets[0].labels,
            Labels::from([
                ("env".into(), "dev".into()),
                ("instance".into(), "127.0.0.1:9100".into()),
                ("job".into(), "node".into())
            ])
        );
        for bad in [
            "job_name = 'x'\nscrape_interval = 'soon'",
            "job_name = 'x'\nscheme = 'ftp'",
            "scrape_interval = '1m'",
            "job_name = 'x'\n[[metric_relabel_configs]]\nregex = '('",
        ] {
            assert!(Job::new(toml::from_str(bad).unwrap()).is_err(), "{bad}");
        }
    }

    /// The scrape cache across scrapes of a changing target: known series take the
    /// cached path, new ones are parsed and relabeled, dropped ones stay dropped, a series
    /// whose text changes is a new series, and a series the target stops exposing leaves
    /// the cache.
    #[tokio::test]
    async fn scrape_cache_follows_the_target() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = Arc::new(parking_lot::Mutex::new(String::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = body.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let text = served.lock().clone();
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Default::default()).unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(1_000_000_000));
        let scraper = Scraper::new(engine.clone(), clock.clone());
        let job = Job::new(
            toml::from_str(&format!(
                "job_name = 'j'\n[[static_configs]]\ntargets = ['127.0.0.1:{port}']\n\
                 [[metric_relabel_configs]]\nsource_labels = ['__name__']\nregex = 'dropped'\naction = 'drop'\n"
            ))
            .unwrap(),
        )
        .unwrap();
        let target = job.targets().remove(0);
        let mut cache = ScrapeCache::default();
        let rows = |table: &str| {
            let t = engine.database("sundial").unwrap().table(table).unwrap();
            let fields = t.schema().fields.clone();
            let out = t
                .scan(
                    &storage::ScanRequest {
                        range: storage::TimeRange::ALL,
                        tags: Vec::new(),
                        fields,
                    },
                    engine.stats(),
                )
                .unwrap();
            (0..out.rows.len())
                .map(|i| {
                    let key = &out.keys[out.rows.series[i] as usize];
                    let storage::rows::Column::Float(v) = &out.rows.columns[0] else {
                        panic!("float column")
                    };
                    (
                        key.get("k").unwrap_or("").to_string(),
                        out.rows.time[i] / 1_000_000_000,
                        v[i].unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        *body.lock() = "m{k=\"a\"} 1\nm{k=\"b\"} 2\ndropped 9\n".into();
        let r = scraper.scrape(&job, &target, &mut cache).await;
        assert!(r.up, "{r:?}");
        assert_eq!((r.scraped, r.post_relabel), (3, 2));
        assert_eq!(cache.series.len(), 3);
        clock.set(2_000_000_000);
        // Same texts with new values, one series gone, one new, one with its labels
        // written differently (spacing): a different text, parsed as the same series.
        *body.lock() = "m{k=\"a\"} 10\nm{ k=\"c\" } 30\ndropped 9\nm{k=\"a\",} 11\n".into();
        let r = scraper.scrape(&job, &target, &mut cache).await;
        assert_eq!((r.scraped, r.post_relabel), (4, 3));
        let mut got = rows("m");
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            got,
            vec![
                ("a".into(), 1, 1.0),
                ("a".into(), 2, 11.0),
                ("b".into(), 1, 2.0),
                ("c".into(), 2, 30.0)
            ]
        );
        assert!(
            engine
                .database("sundial")
                .unwrap()
                .table("dropped")
                .is_none()
        );
        assert_eq!(rows("up"), vec![("".into(), 1, 1.0), ("".into(), 2, 1.0)]);
        clock.set(3_000_000_000);
        *body.lock() = "m{k=\"c\"} 31\n".into();
        let r = scraper.scrape(&job, &target, &mut cache).await;
        assert_eq!(r.scraped, 1);
        assert_eq!(
            cache.series.len(),
            1,
            "series gone for a scrape leave the cache"
        );
        // A body that does not parse: the scrape is down and stores none of it.
        clock.set(4_000_000_000);
        *body.lock() = "m{k=\"z\"} 1\nm{k=\"a\" 2\n".into();
        let r = scraper.scrape(&job, &target, &mut cache).await;
        assert!(!r.up);
        assert!(r.error.unwrap().contains("line 2"));
        assert!(!rows("m").iter().any(|(k, _, _)| k == "z"));
        assert_eq!(rows("up").last(), Some(&("".into(), 4, 0.0)));
    }
}
