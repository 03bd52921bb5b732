//! One target's task: scrape at the target's offset in every interval, fetch (gzip or
//! not), parse through the cache, relabel, and store the samples with the target's
//! `up` and scrape-report series.

use super::*;

impl Scraper {
    pub(super) async fn run_target(
        &self,
        job: Arc<Job>,
        target: Target,
        shutdown: CancellationToken,
    ) {
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
    pub(super) async fn scrape(
        &self,
        job: &Job,
        target: &Target,
        cache: &mut ScrapeCache,
    ) -> Report {
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
        let mut invalid: Option<(usize, ingest::SchemaError)> = None;
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
            .ingester
            .write_samples(&job.config.database, batch.tables, "scrape")
            .await;
        let m = self.ingester.metrics();
        m.scrapes.add(&job.config.job_name, 1);
        if !report.up {
            m.scrape_failures.add(&job.config.job_name, 1);
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
    pub(super) fn samples(
        &self,
        job: &Job,
        target: &Target,
        cache: &mut ScrapeCache,
        body: &[u8],
        format: exposition::Format,
        now_ns: i64,
        batch: &mut Batch,
        invalid: &mut Option<(usize, ingest::SchemaError)>,
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
                                Some((table, tags)) => match PreparedSeries::new(tags) {
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
    pub(super) fn series_for(
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
    pub(super) async fn fetch(
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
        let limit = job.config.body_size_limit.get();
        let over = || format!("body over the body_size_limit of {limit} bytes");
        // Read as it arrives, so a target that sends too much costs at most the limit.
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > limit {
                return Err(over());
            }
            body.extend_from_slice(&chunk);
        }
        let body = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            if out.len() > limit {
                return Err(over());
            }
            out
        } else {
            body
        };
        Ok((body, format))
    }
}
