//! Alerts as continuous SQL: `CREATE ALERT … AS SELECT …` defines a rule that the scheduler
//! runs every `EVERY` in the database where it was created. Result rows are alert
//! instances ([`state`]), notified to Alertmanager or webhooks ([`notify`]); rules, their
//! instances and every transition are tables of schema `system` in every database, and
//! `alert_backtest(…)`/`alert_backtest_query(…)` replay a rule over stored data
//! ([`backtest`]).
//!
//! Persistence, under `<data dir>/alerts/`: `rules/<hash>.json` per rule (its definition,
//! fsynced on every change), `state/<hash>.json` per rule (instances with their `FOR` timers and last
//! sends, written when they change, so a restart neither resets timers nor re-notifies),
//! and `events.jsonl` (the history, appended).

pub mod backtest;
pub mod eval;
pub mod notify;
pub mod schedule;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::query::statements::{AlertDefinition, Receiver, Statement};
use crate::query::{Alerting, Outcome, QueryEngine, StatementError};
use state::{Instance, Labels, State, Timing};

const NS: i64 = 1_000_000_000;
/// `EVERY` when the statement has none.
pub const DEFAULT_EVERY_SECS: u64 = 60;
/// Firing alerts are re-sent to Alertmanager at least this often.
pub const RESEND_DELAY_NS: i64 = 60 * NS;
/// History rows kept in memory (the file keeps them all).
const EVENTS_IN_MEMORY: usize = 100_000;

/// Errors of the alerting subsystem's storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("alert storage {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("alert storage {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stored alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// The database its query runs in.
    pub database: String,
    pub query: String,
    pub every_secs: u64,
    pub for_secs: u64,
    pub keep_firing_for_secs: u64,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub receivers: Vec<Receiver>,
    pub paused: bool,
    pub created_at: i64,
}

impl Rule {
    fn timing(&self) -> Timing {
        Timing {
            for_ns: self.for_secs as i64 * NS,
            keep_firing_for_ns: self.keep_firing_for_secs as i64 * NS,
        }
    }
}

/// What the scheduler knows of a rule's runs, and its instances.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleState {
    pub name: String,
    pub instances: BTreeMap<String, Instance>,
    pub last_evaluation: Option<i64>,
    pub last_duration_ns: Option<i64>,
    pub last_error: Option<String>,
    pub evaluations: u64,
    pub failures: u64,
    pub missed: u64,
    pub notification_failures: u64,
    /// An evaluation is in flight (not persisted).
    #[serde(skip)]
    pub running: bool,
}

/// One transition in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub rule: String,
    pub time: i64,
    pub labels: Labels,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
}

/// The alerting subsystem.
pub struct Alerts {
    dir: PathBuf,
    query: Arc<QueryEngine>,
    clock: Arc<dyn Clock>,
    rules: Mutex<BTreeMap<String, Rule>>,
    states: Mutex<HashMap<String, RuleState>>,
    events: Mutex<Vec<Event>>,
    events_file: Mutex<std::fs::File>,
    scheduler: Mutex<schedule::Scheduler>,
    /// Wakes the scheduler when rules change.
    wake: Notify,
    /// Bounds evaluations in flight.
    permits: Semaphore,
    notifier: notify::Notifier,
    /// Itself, for the backtest functions' rule lookups.
    me: std::sync::Weak<Alerts>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("dir", &self.dir).finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file, rename), fsyncing if `durable`.
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if durable && let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

fn hash_name(name: &str) -> String {
    format!("{:016x}", crate::clock::fnv1a(name.bytes()))
}

fn fail(code: &'static str, message: impl Into<String>) -> StatementError {
    StatementError {
        code,
        message: message.into(),
    }
}

impl Alerts {
    /// Opens (or creates) the alert store under `data_dir/alerts`. `external_url` is
    /// Sundial's HTTP address as notifications link to it.
    pub fn open(
        data_dir: &Path,
        query: Arc<QueryEngine>,
        clock: Arc<dyn Clock>,
        external_url: String,
        shutdown: CancellationToken,
    ) -> Result<Arc<Alerts>> {
        let dir = data_dir.join("alerts");
        std::fs::create_dir_all(dir.join("state")).map_err(io(&dir))?;
        let rules_dir = dir.join("rules");
        std::fs::create_dir_all(&rules_dir).map_err(io(&rules_dir))?;
        let mut rules = Vec::new();
        for entry in std::fs::read_dir(&rules_dir).map_err(io(&rules_dir))? {
            let path = entry.map_err(io(&rules_dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let rule: Rule = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                path: path.clone(),
                source,
            })?;
            rules.push(rule);
        }
        let mut states = HashMap::new();
        for rule in &rules {
            let path = dir
                .join("state")
                .join(format!("{}.json", hash_name(&rule.name)));
            let st = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<RuleState>(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(rule = %rule.name, error = %e, "alert state unreadable; starting empty");
                    RuleState::default()
                }),
                Err(_) => RuleState::default(),
            };
            states.insert(
                rule.name.clone(),
                RuleState {
                    name: rule.name.clone(),
                    ..st
                },
            );
        }
        let events_path = dir.join("events.jsonl");
        let mut events: Vec<Event> = match std::fs::read_to_string(&events_path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        if events.len() > EVENTS_IN_MEMORY {
            events.drain(..events.len() - EVENTS_IN_MEMORY);
        }
        let events_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&events_path)
            .map_err(io(&events_path))?;
        let now = clock.now_nanos();
        let mut scheduler = schedule::Scheduler::default();
        for rule in rules.iter().filter(|r| !r.paused) {
            scheduler.set(&rule.name, rule.every_secs as i64 * NS, now);
        }
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Arc::new_cyclic(|me: &std::sync::Weak<Alerts>| {
            let weak = me.clone();
            let report: notify::Report = Arc::new(move |rule, keys, error| {
                if let Some(alerts) = weak.upgrade() {
                    alerts.delivered(rule, keys, error);
                }
            });
            Alerts {
                dir,
                query,
                clock,
                rules: Mutex::new(rules.into_iter().map(|r| (r.name.clone(), r)).collect()),
                states: Mutex::new(states),
                events: Mutex::new(events),
                events_file: Mutex::new(events_file),
                scheduler: Mutex::new(scheduler),
                wake: Notify::new(),
                permits: Semaphore::new(parallel * 32),
                notifier: notify::Notifier::new(external_url, report, shutdown),
                me: me.clone(),
            }
        }))
    }

    /// Runs the scheduler until `shutdown`.
    pub fn spawn_scheduler(self: &Arc<Self>, shutdown: CancellationToken) {
        let alerts = self.clone();
        tokio::spawn(async move {
            loop {
                let now = alerts.clock.now_nanos();
                for handle in alerts.run_due(now) {
                    drop(handle);
                }
                let next = alerts.scheduler.lock().next_wakeup();
                let wait = next
                    .map(|n| (n - alerts.clock.now_nanos()).max(0))
                    .unwrap_or(NS)
                    .min(NS);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_nanos(wait as u64)) => {}
                    _ = alerts.wake.notified() => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Starts the evaluations due at `now`; their handles (tests await them).
    pub fn run_due(self: &Arc<Self>, now: i64) -> Vec<tokio::task::JoinHandle<()>> {
        let due = self.scheduler.lock().due(now);
        due.into_iter()
            .map(|d| {
                let alerts = self.clone();
                tokio::spawn(async move { alerts.evaluate(&d.name, d.at, d.missed).await })
            })
            .collect()
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<Rule> {
        self.rules.lock().get(name).cloned()
    }

    /// A copy of a rule's state.
    pub fn state(&self, name: &str) -> Option<RuleState> {
        self.states.lock().get(name).cloned()
    }

    /// One evaluation of rule `name` at time `at`.
    pub async fn evaluate(&self, name: &str, at: i64, missed: u64) {
        let Some(rule) = self.rule(name).filter(|r| !r.paused) else {
            return;
        };
        {
            let mut states = self.states.lock();
            let st = states.entry(name.to_string()).or_default();
            st.missed += missed;
            if st.running {
                // The previous evaluation is still going: this slot is missed.
                st.missed += 1;
                return;
            }
            st.running = true;
        }
        let started = std::time::Instant::now();
        let timeout = Duration::from_secs(rule.every_secs.max(1));
        let result = tokio::time::timeout(timeout, async {
            let _permit = self.permits.acquire().await;
            eval::evaluate(&self.query, &rule.database, &rule.query, at).await
        })
        .await;
        let mut deliveries = Vec::new();
        let mut events = Vec::new();
        let snapshot = {
            let mut states = self.states.lock();
            let Some(st) = states.get_mut(name) else {
                return;
            };
            st.running = false;
            st.evaluations += 1;
            crate::metrics::METRICS
                .alert_evaluations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !matches!(result, Ok(Ok(_))) {
                crate::metrics::METRICS
                    .alert_evaluation_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            st.last_evaluation = Some(at);
            st.last_duration_ns = Some(started.elapsed().as_nanos() as i64);
            let before_error = st.last_error.clone();
            let changed = match result {
                Ok(Ok(rows)) => {
                    st.last_error = None;
                    let transitions = state::step(&mut st.instances, rows, at, rule.timing());
                    deliveries = self.deliveries(&rule, st, &transitions, at);
                    events = transitions
                        .into_iter()
                        .map(|t| Event {
                            rule: rule.name.clone(),
                            time: t.time,
                            labels: t.labels,
                            from: t.from,
                            to: t.to,
                            value: t.value,
                        })
                        .collect();
                    !events.is_empty() || !deliveries.is_empty()
                }
                Ok(Err(e)) => {
                    st.failures += 1;
                    st.last_error = Some(e.to_string());
                    false
                }
                Err(_) => {
                    st.failures += 1;
                    st.last_error = Some(format!(
                        "evaluation timed out after {} s",
                        timeout.as_secs()
                    ));
                    false
                }
            };
            (changed || before_error != st.last_error).then(|| st.clone())
        };
        if let Some(st) = snapshot {
            self.save_state(&st);
        }
        self.record(events);
        for d in deliveries {
            self.notifier.send(d);
        }
    }

    /// What to send for `rule` after an evaluation at `now`; marks what is sent.
    fn deliveries(
        &self,
        rule: &Rule,
        st: &mut RuleState,
        transitions: &[state::Transition],
        now: i64,
    ) -> Vec<notify::Delivery> {
        let valid_for = 4 * (rule.every_secs as i64 * NS).max(RESEND_DELAY_NS);
        let changed: std::collections::HashSet<String> = transitions
            .iter()
            .filter(|t| matches!(t.to, State::Firing | State::Resolved))
            .map(|t| state::key(&t.labels))
            .collect();
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for receiver in &rule.receivers {
            let alerts: Vec<notify::Outgoing> = st
                .instances
                .iter()
                .filter(|(k, i)| match receiver {
                    Receiver::Alertmanager(_) => {
                        state::due_for_alertmanager(i, now, RESEND_DELAY_NS)
                    }
                    Receiver::Webhook(_) => changed.contains(*k),
                })
                .map(|(k, i)| {
                    sent.push(k.clone());
                    notify::outgoing(
                        k,
                        &rule.name,
                        &rule.labels,
                        &rule.annotations,
                        i,
                        now,
                        valid_for,
                    )
                })
                .collect();
            if !alerts.is_empty() {
                out.push(notify::Delivery {
                    rule: rule.name.clone(),
                    receiver: receiver.clone(),
                    alerts,
                });
            }
        }
        for k in sent {
            if let Some(i) = st.instances.get_mut(&k) {
                i.last_sent_at = Some(now);
            }
        }
        out
    }

    /// A delivery's outcome, from the notifier.
    fn delivered(&self, rule: &str, keys: &[String], error: Option<String>) {
        let snapshot = {
            let mut states = self.states.lock();
            let Some(st) = states.get_mut(rule) else {
                return;
            };
            if error.is_some() {
                st.notification_failures += 1;
                crate::metrics::METRICS
                    .alert_notification_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            for k in keys {
                if let Some(i) = st.instances.get_mut(k) {
                    i.last_error = error.clone();
                }
            }
            st.clone()
        };
        self.save_state(&snapshot);
    }

    fn save_state(&self, st: &RuleState) {
        let path = self
            .dir
            .join("state")
            .join(format!("{}.json", hash_name(&st.name)));
        let result = serde_json::to_vec(st)
            .map_err(|source| Error::Json {
                path: path.clone(),
                source,
            })
            .and_then(|bytes| write_atomic(&path, &bytes, false));
        if let Err(e) = result {
            tracing::error!(error = %e, "saving alert state failed");
        }
    }

    fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut lines = String::new();
        for e in &events {
            if let Ok(line) = serde_json::to_string(e) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if let Err(e) = self.events_file.lock().write_all(lines.as_bytes()) {
            tracing::error!(error = %e, "appending alert events failed");
        }
        let mut all = self.events.lock();
        all.extend(events);
        if all.len() > EVENTS_IN_MEMORY + EVENTS_IN_MEMORY / 10 {
            let excess = all.len() - EVENTS_IN_MEMORY;
            all.drain(..excess);
        }
    }

    fn rule_path(&self, name: &str) -> PathBuf {
        self.dir
            .join("rules")
            .join(format!("{}.json", hash_name(name)))
    }

    /// Writes one rule's definition durably.
    fn save_rule(&self, rule: &Rule) -> Result<()> {
        let path = self.rule_path(&rule.name);
        let bytes = serde_json::to_vec_pretty(rule).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes, true)
    }

    /// Removes one rule's definition durably.
    fn remove_rule(&self, name: &str) -> Result<()> {
        let path = self.rule_path(name);
        std::fs::remove_file(&path).map_err(io(&path))?;
        let dir = self.dir.join("rules");
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    }

    async fn create(&self, db: &str, def: AlertDefinition) -> Result<Outcome, StatementError> {
        if let Err(e) = eval::plan(&self.query, db, &def.query).await {
            let (code, message) = crate::pg::sqlstate(&e);
            return Err(fail(code, format!("invalid alert query: {message}")));
        }
        let rule = Rule {
            name: def.name.clone(),
            database: db.to_string(),
            query: def.query,
            every_secs: def.every_secs.unwrap_or(DEFAULT_EVERY_SECS),
            for_secs: def.for_secs,
            keep_firing_for_secs: def.keep_firing_for_secs,
            labels: def.labels,
            annotations: def.annotations,
            receivers: def.receivers,
            paused: false,
            created_at: self.clock.now_nanos(),
        };
        {
            let mut rules = self.rules.lock();
            if rules.contains_key(&rule.name) {
                if def.if_not_exists {
                    return Ok(Outcome {
                        tag: "CREATE ALERT",
                        rows: None,
                    });
                }
                return Err(fail(
                    "42710",
                    format!("alert \"{}\" already exists", rule.name),
                ));
            }
            if let Err(e) = self.save_rule(&rule) {
                return Err(fail("58030", e.to_string()));
            }
            rules.insert(rule.name.clone(), rule.clone());
        }
        self.states.lock().insert(
            rule.name.clone(),
            RuleState {
                name: rule.name.clone(),
                ..RuleState::default()
            },
        );
        self.scheduler.lock().set(
            &rule.name,
            rule.every_secs as i64 * NS,
            self.clock.now_nanos(),
        );
        self.wake.notify_one();
        Ok(Outcome {
            tag: "CREATE ALERT",
            rows: None,
        })
    }

    fn drop_rule(&self, name: &str, if_exists: bool) -> Result<Outcome, StatementError> {
        {
            let mut rules = self.rules.lock();
            if !rules.contains_key(name) {
                if if_exists {
                    return Ok(Outcome {
                        tag: "DROP ALERT",
                        rows: None,
                    });
                }
                return Err(fail("42704", format!("alert \"{name}\" does not exist")));
            }
            if let Err(e) = self.remove_rule(name) {
                return Err(fail("58030", e.to_string()));
            }
            rules.remove(name);
        }
        self.scheduler.lock().remove(name);
        self.states.lock().remove(name);
        let _ = std::fs::remove_file(
            self.dir
                .join("state")
                .join(format!("{}.json", hash_name(name))),
        );
        Ok(Outcome {
            tag: "DROP ALERT",
            rows: None,
        })
    }

    fn set_paused(&self, name: &str, paused: bool) -> Result<Outcome, StatementError> {
        let every = {
            let mut rules = self.rules.lock();
            let Some(rule) = rules.get_mut(name) else {
                return Err(fail("42704", format!("alert \"{name}\" does not exist")));
            };
            let mut changed = rule.clone();
            changed.paused = paused;
            if let Err(e) = self.save_rule(&changed) {
                return Err(fail("58030", e.to_string()));
            }
            *rule = changed;
            rule.every_secs
        };
        let mut scheduler = self.scheduler.lock();
        if paused {
            scheduler.remove(name);
        } else {
            scheduler.set(name, every as i64 * NS, self.clock.now_nanos());
        }
        drop(scheduler);
        self.wake.notify_one();
        Ok(Outcome {
            tag: "ALTER ALERT",
            rows: None,
        })
    }

    fn rules_table(&self) -> datafusion::error::Result<RecordBatch> {
        let rules: Vec<Rule> = self.rules.lock().values().cloned().collect();
        let states = self.states.lock();
        let st = |r: &Rule| states.get(&r.name).cloned().unwrap_or_default();
        let json = |pairs: &[(String, String)]| {
            serde_json::to_string(&pairs.iter().cloned().collect::<BTreeMap<_, _>>())
                .unwrap_or_default()
        };
        let duration = |secs: u64| format_duration(secs);
        let columns: Vec<ArrayRef> = vec![
            text(rules.iter().map(|r| Some(r.name.clone()))),
            text(rules.iter().map(|r| Some(r.database.clone()))),
            text(rules.iter().map(|r| Some(r.query.clone()))),
            text(rules.iter().map(|r| {
                Some(
                    if r.paused {
                        "paused"
                    } else {
                        let s = st(r);
                        if s.instances.values().any(|i| i.state == State::Firing) {
                            "firing"
                        } else if s.instances.values().any(|i| i.state == State::Pending) {
                            "pending"
                        } else {
                            "inactive"
                        }
                    }
                    .to_string(),
                )
            })),
            text(rules.iter().map(|r| Some(duration(r.every_secs)))),
            text(rules.iter().map(|r| Some(duration(r.for_secs)))),
            text(rules.iter().map(|r| Some(duration(r.keep_firing_for_secs)))),
            text(rules.iter().map(|r| Some(json(&r.labels)))),
            text(rules.iter().map(|r| Some(json(&r.annotations)))),
            text(
                rules
                    .iter()
                    .map(|r| Some(serde_json::to_string(&r.receivers).unwrap_or_default())),
            ),
            Arc::new(BooleanArray::from(
                rules.iter().map(|r| Some(r.paused)).collect::<Vec<_>>(),
            )),
            timestamps(rules.iter().map(|r| st(r).last_evaluation)),
            Arc::new(Float64Array::from(
                rules
                    .iter()
                    .map(|r| st(r).last_duration_ns.map(|d| d as f64 / 1e6))
                    .collect::<Vec<_>>(),
            )),
            text(rules.iter().map(|r| st(r).last_error)),
            int(rules.iter().map(|r| st(r).evaluations)),
            int(rules.iter().map(|r| st(r).failures)),
            int(rules.iter().map(|r| st(r).missed)),
            int(rules.iter().map(|r| st(r).notification_failures)),
            timestamps(rules.iter().map(|r| Some(r.created_at))),
        ];
        Ok(RecordBatch::try_new(rules_schema(), columns)?)
    }

    fn alerts_table(&self) -> datafusion::error::Result<RecordBatch> {
        let rules = self.rules.lock().clone();
        let states = self.states.lock();
        let mut rows: Vec<(String, Labels, Instance)> = Vec::new();
        let mut names: Vec<&String> = states.keys().collect();
        names.sort();
        for name in names {
            let extra = rules
                .get(name)
                .map(|r| r.labels.clone())
                .unwrap_or_default();
            for i in states[name].instances.values() {
                let mut labels = i.labels.clone();
                labels.extend(extra.iter().cloned());
                rows.push((name.clone(), labels, i.clone()));
            }
        }
        let columns: Vec<ArrayRef> = vec![
            text(rows.iter().map(|(n, _, _)| Some(n.clone()))),
            text(rows.iter().map(|(_, l, _)| serde_json::to_string(l).ok())),
            text(
                rows.iter()
                    .map(|(_, _, i)| Some(i.state.as_str().to_string())),
            ),
            timestamps(rows.iter().map(|(_, _, i)| Some(i.active_at))),
            timestamps(rows.iter().map(|(_, _, i)| i.fired_at)),
            timestamps(rows.iter().map(|(_, _, i)| i.resolved_at)),
            Arc::new(Float64Array::from(
                rows.iter().map(|(_, _, i)| i.value).collect::<Vec<_>>(),
            )),
            timestamps(rows.iter().map(|(_, _, i)| i.last_sent_at)),
            text(rows.iter().map(|(_, _, i)| i.last_error.clone())),
        ];
        Ok(RecordBatch::try_new(alerts_schema(), columns)?)
    }

    fn events_table(&self) -> datafusion::error::Result<RecordBatch> {
        let events = self.events.lock();
        events_batch(
            events.iter().map(|e| {
                (
                    Some(e.rule.as_str()),
                    e.time,
                    &e.labels,
                    e.from,
                    e.to,
                    e.value,
                )
            }),
            true,
        )
    }
}

/// `'1m30s'`-style text of a duration in seconds (`0s` for none).
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

fn text(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values.collect::<Vec<_>>()))
}

fn int(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from(
        values.map(|v| v as i64).collect::<Vec<_>>(),
    ))
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn rules_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("database", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("every", DataType::Utf8, false),
        Field::new("for", DataType::Utf8, false),
        Field::new("keep_firing_for", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("annotations", DataType::Utf8, false),
        Field::new("receivers", DataType::Utf8, false),
        Field::new("paused", DataType::Boolean, false),
        Field::new("last_evaluation", ts_type(), true),
        Field::new("last_duration_ms", DataType::Float64, true),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("evaluations", DataType::Int64, false),
        Field::new("failures", DataType::Int64, false),
        Field::new("missed", DataType::Int64, false),
        Field::new("notification_failures", DataType::Int64, false),
        Field::new("created_at", ts_type(), false),
    ]))
}

fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("alert_name", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("active_at", ts_type(), false),
        Field::new("fired_at", ts_type(), true),
        Field::new("resolved_at", ts_type(), true),
        Field::new("last_value", DataType::Float64, true),
        Field::new("last_sent_at", ts_type(), true),
        Field::new("last_error", DataType::Utf8, true),
    ]))
}

/// The schema of transition rows (`system.alert_events` with `alert_name`; backtests
/// without it).
pub fn events_schema(with_name: bool) -> SchemaRef {
    let mut fields = vec![Field::new("time", ts_type(), false)];
    if with_name {
        fields.push(Field::new("alert_name", DataType::Utf8, false));
    }
    fields.extend([
        Field::new("labels", DataType::Utf8, false),
        Field::new("from_state", DataType::Utf8, false),
        Field::new("to_state", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// Transition rows as a batch.
pub fn events_batch<'a>(
    rows: impl Iterator<Item = (Option<&'a str>, i64, &'a Labels, State, State, Option<f64>)>,
    with_name: bool,
) -> datafusion::error::Result<RecordBatch> {
    let rows: Vec<_> = rows.collect();
    let mut columns: Vec<ArrayRef> = vec![timestamps(rows.iter().map(|r| Some(r.1)))];
    if with_name {
        columns.push(text(rows.iter().map(|r| r.0.map(str::to_string))));
    }
    columns.extend([
        text(rows.iter().map(|r| serde_json::to_string(r.2).ok())),
        text(rows.iter().map(|r| Some(r.3.as_str().to_string()))),
        text(rows.iter().map(|r| Some(r.4.as_str().to_string()))),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        )) as ArrayRef,
    ]);
    Ok(RecordBatch::try_new(events_schema(with_name), columns)?)
}

/// A snapshot as a view (psql's `\dv system.*` lists them, `\dt` does not).
fn system_view(
    name: &str,
    batch: datafusion::error::Result<RecordBatch>,
) -> Option<Arc<dyn TableProvider>> {
    match batch.and_then(|b| crate::query::catalog::snapshot_view(name, b)) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "building a system table failed");
            None
        }
    }
}

#[async_trait]
impl Alerting for Alerts {
    async fn execute(&self, current: &str, stmt: Statement) -> Result<Outcome, StatementError> {
        match stmt {
            Statement::CreateAlert(def) => self.create(current, def).await,
            Statement::DropAlert { name, if_exists } => self.drop_rule(&name, if_exists),
            Statement::AlterAlert { name, paused } => self.set_paused(&name, paused),
            other => Err(fail("XX000", format!("not an alert statement: {other:?}"))),
        }
    }

    fn system_table_names(&self) -> Vec<String> {
        vec![
            "alert_rules".to_string(),
            "alerts".to_string(),
            "alert_events".to_string(),
        ]
    }

    fn system_table(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        match name {
            "alert_rules" => system_view(name, self.rules_table()),
            "alerts" => system_view(name, self.alerts_table()),
            "alert_events" => system_view(name, self.events_table()),
            _ => None,
        }
    }

    fn table_functions(&self, db: &str) -> Vec<(String, Arc<dyn TableFunctionImpl>)> {
        let me = self.me.clone();
        let lookup: backtest::RuleLookup =
            Arc::new(move |name: &str| me.upgrade().and_then(|a| a.rule(name)));
        backtest::functions(self.query.clone(), db, lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ingest::{Ingester, Precision, WriteParams};
    use crate::storage::{DEFAULT_DATABASE, Engine, StorageConfig};

    const T0: i64 = 1_714_557_600 * NS; // 2024-05-01T10:00:00Z, a multiple of 10 s

    async fn write(ingester: &Ingester, lines: &str) {
        let summary = ingester
            .write_lp(
                DEFAULT_DATABASE,
                bytes::Bytes::from(lines.to_string()),
                WriteParams {
                    precision: Precision::Second,
                    accept_partial: true,
                    sync: true,
                },
            )
            .await
            .unwrap();
        assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    }

    async fn tick(alerts: &Arc<Alerts>, clock: &ManualClock, at: i64) {
        clock.set(at);
        for h in alerts.run_due(at) {
            h.await.unwrap();
        }
    }

    /// The whole path — schedule, query with `now()` = the slot, state machine, history,
    /// persistence — driven by an injected clock.
    #[tokio::test]
    async fn evaluations_follow_an_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::open(dir.path(), StorageConfig::default()).unwrap();
        let query = Arc::new(QueryEngine::new(engine.clone()));
        let open = |clock: Arc<ManualClock>| {
            Alerts::open(
                dir.path(),
                query.clone(),
                clock,
                "http://sundial".into(),
                CancellationToken::new(),
            )
            .unwrap()
        };
        let alerts = open(clock.clone());
        query.set_alerting(alerts.clone());
        let ingester = Ingester::new(engine.clone(), clock.clone());
        let t0 = T0 / NS;
        write(
            &ingester,
            &format!(
                "cpu,hostname=a u=50 {t0}\ncpu,hostname=a u=95 {}\ncpu,hostname=a u=96 {}\n\
                 cpu,hostname=a u=97 {}\ncpu,hostname=a u=20 {}\ncpu,hostname=b u=99 {}\n",
                t0 + 10,
                t0 + 20,
                t0 + 30,
                t0 + 40,
                t0 + 20
            ),
        )
        .await;
        let created = alerts
            .execute(
                DEFAULT_DATABASE,
                crate::query::statements::parse(
                    "CREATE ALERT hot EVERY '10s' FOR '20s' AS SELECT hostname, max(u) AS value \
                     FROM cpu WHERE time > now() - INTERVAL '10 seconds' AND time <= now() \
                     GROUP BY hostname HAVING max(u) > 90",
                )
                .unwrap()
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(created.tag, "CREATE ALERT");
        let slot = |k: i64| {
            schedule::next_after(
                T0 + (k - 1) * 10 * NS,
                10 * NS,
                schedule::offset("hot", 10 * NS),
            )
        };
        // Nothing runs before the first slot.
        assert!(alerts.run_due(slot(1) - 1).is_empty());
        // Slot k, in (T0 + 10(k-1) s, T0 + 10k s], sees one row per host in its window:
        // a goes pending, b (one hot row) pending then dropped, a firing after FOR, then
        // resolved when its row falls to 20 or is gone.
        for k in 1..=4 {
            tick(&alerts, &clock, slot(k)).await;
        }
        let st = alerts.state("hot").unwrap();
        assert_eq!(st.evaluations, 4);
        assert_eq!(st.missed, 0);
        assert_eq!(st.last_evaluation, Some(slot(4)));
        // The clock jumps two intervals: the latest slot runs, one was missed.
        tick(&alerts, &clock, slot(6) + NS).await;
        let st = alerts.state("hot").unwrap();
        assert_eq!((st.evaluations, st.missed), (5, 1));
        // History: a went pending then firing after FOR; b pending then dropped; a resolved.
        let events: Vec<(String, &str, &str)> = alerts
            .events
            .lock()
            .iter()
            .map(|e| (e.labels["hostname"].clone(), e.from.as_str(), e.to.as_str()))
            .collect();
        assert!(
            events.contains(&("a".into(), "pending", "firing")),
            "{events:?}"
        );
        assert!(
            events.contains(&("b".into(), "pending", "inactive")),
            "{events:?}"
        );
        assert!(
            events.contains(&("a".into(), "firing", "resolved")),
            "{events:?}"
        );
        let fired = alerts
            .state("hot")
            .unwrap()
            .instances
            .values()
            .find(|i| i.labels["hostname"] == "a")
            .cloned()
            .unwrap();
        assert!(
            fired.fired_at.unwrap() - fired.active_at >= 20 * NS,
            "{fired:?}"
        );
        // Reopened (a restart): definitions and instances come back as they were.
        drop(alerts);
        let reopened = open(clock.clone());
        assert_eq!(reopened.rule("hot").unwrap().for_secs, 20);
        assert_eq!(
            reopened.state("hot").unwrap().instances.values().next(),
            Some(&fired)
        );
        assert_eq!(reopened.events.lock().len(), events.len());
    }
}
