//! Scrape job settings with Prometheus' field names, and [`Job`]: a job's settings
//! checked once (durations, relabel rules) and its targets.

use super::*;

/// One scrape job, as in Prometheus' `scrape_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// How often each target is scraped (`15s`, `1m`; default 1m).
    pub scrape_interval: crate::duration::Duration,
    /// How long a scrape may take (default 10s, at most the interval).
    pub scrape_timeout: crate::duration::Duration,
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
    /// A larger body (after gunzip) fails the scrape: bytes, or `10MB`, `512KiB`
    /// (default 64 MiB, also when 0).
    pub body_size_limit: BodySizeLimit,
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
    pub refresh_interval: Option<crate::duration::Duration>,
}

/// Targets from files (JSON or YAML lists of `{targets, labels}`), re-read when they
/// change. `*` in a file name matches any characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    /// Accepted for compatibility; files are checked for changes every second.
    pub refresh_interval: Option<crate::duration::Duration>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: crate::duration::Duration::from_secs(60),
            scrape_timeout: crate::duration::Duration::from_secs(10),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            basic_auth: None,
            authorization: None,
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            body_size_limit: BodySizeLimit::default(),
            database: crate::ingest::DEFAULT_DATABASE.into(),
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

pub(super) fn bearer() -> String {
    "Bearer".into()
}

/// A job, checked: durations parsed, regexes compiled.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: ScrapeConfig,
    pub interval: Duration,
    pub timeout: Duration,
    pub(super) relabel: Vec<Relabel>,
    pub(super) metric_relabel: Vec<Relabel>,
}

pub(super) fn duration(text: &str, what: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
        .ok_or_else(|| format!("invalid {what} {text:?}: use a duration like \"15s\""))
}

impl Job {
    /// Checks a job's settings; the error names the job and the setting.
    pub fn new(config: ScrapeConfig) -> Result<Job, Error> {
        let name = config.job_name.clone();
        let fail = |e: String| Error::InvalidJob(format!("scrape job {name:?}: {e}"));
        if name.is_empty() {
            return Err(Error::InvalidJob("a scrape job needs a job_name".into()));
        }
        let interval = config.scrape_interval.get();
        let timeout = config.scrape_timeout.get().min(interval);
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

/// A scrape's largest body, as Prometheus writes it (`body_size_limit: 10MB`, units of
/// 1024) or as a plain byte count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BodySizeLimit(pub usize);

impl BodySizeLimit {
    /// The limit in bytes; 0 means the default, 64 MiB.
    pub fn get(self) -> usize {
        if self.0 == 0 { MAX_BODY_BYTES } else { self.0 }
    }

    fn parse(text: &str) -> Option<usize> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (n, unit) = text.split_at(split);
        let n: usize = n.parse().ok()?;
        let scale: usize = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" | "KIB" | "K" => 1 << 10,
            "MB" | "MIB" | "M" => 1 << 20,
            "GB" | "GIB" | "G" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(scale)
    }
}

impl<'de> Deserialize<'de> for BodySizeLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => usize::try_from(n)
                .map(BodySizeLimit)
                .map_err(serde::de::Error::custom),
            Raw::Text(t) => BodySizeLimit::parse(&t).map(BodySizeLimit).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "body_size_limit: {t:?} is not a size (bytes, or a number with KB, MB or GB)"
                ))
            }),
        }
    }
}
