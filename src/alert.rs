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
mod statements;
mod store;
mod system;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::tasks::Tasks;
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

use crate::clock::Clock;
use crate::error::{Classify, Kind, SqlState};
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

impl Classify for Error {
    fn kind(&self) -> Kind {
        Kind::Unavailable
    }

    fn sqlstate(&self) -> SqlState {
        SqlState::IO_ERROR
    }
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
    /// Serializes CREATE/DROP/ALTER ALERT across the awaits of their file writes.
    ddl: tokio::sync::Mutex<()>,
    /// The server's self-metrics (evaluations, failures).
    metrics: Arc<Metrics>,
    /// Where the scheduler, evaluations and notifiers run.
    tasks: Tasks,
    notifier: notify::Notifier,
    /// Itself, for the backtest functions' rule lookups.
    me: std::sync::Weak<Alerts>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("dir", &self.dir).finish()
    }
}

use store::*;
use system::*;
pub use system::{events_batch, events_schema};

impl Alerts {
    /// Opens (or creates) the alert store under `data_dir/alerts`. `external_url` is
    /// Sundial's HTTP address as notifications link to it.
    pub fn open(
        data_dir: &Path,
        query: Arc<QueryEngine>,
        clock: Arc<dyn Clock>,
        external_url: String,
        metrics: Arc<Metrics>,
        tasks: Tasks,
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
                notifier: notify::Notifier::new(external_url, report, tasks.clone()),
                ddl: tokio::sync::Mutex::new(()),
                metrics,
                tasks,
                me: me.clone(),
            }
        }))
    }

    /// Runs the scheduler until background work stops.
    pub fn spawn_scheduler(self: &Arc<Self>) {
        let alerts = self.clone();
        let shutdown = self.tasks.background();
        self.tasks.spawn("alert scheduler", async move {
            loop {
                let now = alerts.clock.now_nanos();
                for handle in alerts.run_due(now) {
                    drop(handle);
                }
                let next = alerts.scheduler.lock().next_wakeup();
                let wait = next
                    .map(|n| n.saturating_sub(alerts.clock.now_nanos()).max(0))
                    .unwrap_or(NS);
                let wait = Duration::from_nanos(wait as u64).min(alerts.clock.max_sleep());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
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
                self.tasks.spawn("alert evaluation", async move {
                    alerts.evaluate(&d.name, d.at, d.missed).await
                })
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
            self.metrics
                .alert_evaluations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !matches!(result, Ok(Ok(_))) {
                self.metrics
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
                self.metrics
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
}

#[async_trait]
impl Alerting for Alerts {
    async fn execute(&self, current: &str, stmt: Statement) -> Result<Outcome, StatementError> {
        match stmt {
            Statement::CreateAlert(def) => self.create(current, def).await,
            Statement::DropAlert { name, if_exists } => self.drop_rule(&name, if_exists).await,
            Statement::AlterAlert { name, paused } => self.set_paused(&name, paused).await,
            other => Err(StatementError::internal(format!(
                "not an alert statement: {other:?}"
            ))),
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

    fn table_function_parameters(&self, function: &str) -> Option<&'static [&'static str]> {
        backtest::PARAMETERS
            .iter()
            .find(|(name, _)| *name == function)
            .map(|(_, params)| *params)
    }
}
