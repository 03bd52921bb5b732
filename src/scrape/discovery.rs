//! Target discovery: file_sd files (JSON or YAML, `*` in names) checked every second,
//! http_sd endpoints refreshed every `refresh_interval`, ZooKeeper serversets
//! ([`super::serverset`]), and reloading the jobs on SIGHUP or a changed config file.

use super::*;

/// Target lists found by discovery: http_sd answers by URL, serverset members by
/// [`serverset::ServersetSdConfig::key`].
pub type Discovered = std::collections::HashMap<String, Vec<StaticConfig>>;

/// The http_sd URLs of `jobs` with their refresh intervals.
pub(super) fn http_sd_urls(jobs: &[Job]) -> Vec<(String, Duration)> {
    jobs.iter()
        .flat_map(|j| j.config.http_sd_configs.iter())
        .map(|sd| {
            let every = sd
                .refresh_interval
                .map_or(Duration::from_secs(60), |d| d.get());
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
pub(super) fn wildcard(pattern: &str, text: &str) -> bool {
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
pub(super) fn read_sd_file(path: &std::path::Path) -> Result<Vec<StaticConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
    if yaml {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// Modification times and sizes of the files a set of jobs reads, to notice changes.
pub(super) fn sd_fingerprint(
    jobs: &[Job],
) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
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
pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Scraper {
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
        self.tasks.spawn("scrape discovery", async move {
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
    pub(super) fn sync_serversets(
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
            self.tasks.spawn("serverset watcher", async move {
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
    pub(super) async fn fetch_http_sd(&self, url: &str) -> Result<Vec<StaticConfig>, String> {
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
}
