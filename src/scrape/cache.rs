//! The per-target scrape cache (series text → table and prepared series, as Prometheus'
//! scrape cache) and a scrape's batch of samples grouped by table.

use super::*;

/// The tables of the series every scrape writes for its target.
pub(super) const REPORT_TABLES: [&str; 4] = [
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
pub(super) struct ScrapeCache {
    pub(super) series: std::collections::HashMap<Arc<[u8]>, Dest, foldhash::fast::RandomState>,
    /// The last parsed scrape's series texts in order, with their destinations. A target
    /// mostly exposes the same series in the same order, so a sample is first compared
    /// with the text at its position: no hashing, and memory read in order.
    pub(super) order: Vec<(Arc<[u8]>, Dest)>,
    /// Table names, shared by the entries.
    pub(super) tables: std::collections::HashMap<String, Arc<str>>,
    pub(super) report: Option<[Arc<PreparedSeries>; 4]>,
}

#[derive(Clone)]
pub(super) enum Dest {
    Store(Arc<str>, Arc<PreparedSeries>),
    Dropped,
    Invalid(ingest::SchemaError),
}

impl ScrapeCache {
    pub(super) fn table(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.tables.get(name) {
            return t.clone();
        }
        let t: Arc<str> = name.into();
        self.tables.insert(name.to_string(), t.clone());
        t
    }

    /// The series of `up` and the other per-target tables (one each, so each keeps
    /// its own series id).
    pub(super) fn report_series(&mut self, labels: &Labels) -> [Arc<PreparedSeries>; 4] {
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
pub(super) struct Batch {
    pub(super) tables: Vec<TableSamples>,
    /// Table (by its shared name's address) → index in `tables`.
    pub(super) index: std::collections::HashMap<usize, usize>,
    pub(super) len: usize,
}

impl Batch {
    pub(super) fn push(
        &mut self,
        table: &Arc<str>,
        series: Arc<PreparedSeries>,
        time: i64,
        value: f64,
    ) {
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
