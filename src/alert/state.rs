//! The state machine of alert instances, as Prometheus runs alerting rules: each result
//! row of an evaluation is an instance identified by its labels. A row that appears is
//! `pending`; present for `FOR` it is `firing` (at once when `FOR` is zero); a firing
//! instance whose row is gone stays firing for `KEEP FIRING FOR`, then is `resolved`; a
//! pending one whose row is gone is dropped without notification. Resolved instances are
//! kept for [`RESOLVED_RETENTION_NS`] so their resolution can be delivered, then forgotten.
//! Times are nanoseconds since the Unix epoch; nothing here reads a clock.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// An instance's labels: every non-`value` column of its row, plus the rule's `LABELS`.
pub type Labels = BTreeMap<String, String>;

/// How long a resolved instance is kept (Prometheus keeps them 15 minutes).
pub const RESOLVED_RETENTION_NS: i64 = 15 * 60 * 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
        }
    }
}

/// One alert instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub labels: Labels,
    pub state: State,
    /// When its row first appeared (the start of `pending`; Alertmanager's `startsAt`).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// The first evaluation at which a firing instance's row was missing (`KEEP FIRING FOR`
    /// counts from here).
    pub missing_since: Option<i64>,
    /// The `value` column of its latest row.
    pub value: Option<f64>,
    /// When it was last handed to the notifiers.
    pub last_sent_at: Option<i64>,
    /// The last delivery error, cleared by a successful delivery.
    pub last_error: Option<String>,
}

/// A change of an instance's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub time: i64,
    pub labels: Labels,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
}

/// The durations that drive the transitions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    pub for_ns: i64,
    pub keep_firing_for_ns: i64,
}

/// The key an instance is stored under: its labels as JSON (stable, as labels are sorted).
pub fn key(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_default()
}

/// Advances `instances` by one evaluation at `now` whose rows were `rows`; returns the
/// transitions, in order.
pub fn step(
    instances: &mut BTreeMap<String, Instance>,
    rows: Vec<(Labels, Option<f64>)>,
    now: i64,
    timing: Timing,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let transition = |i: &Instance, from: State, to: State| Transition {
        time: now,
        labels: i.labels.clone(),
        from,
        to,
        value: i.value,
    };
    for (labels, value) in rows {
        let k = key(&labels);
        if !seen.insert(k.clone()) {
            // The same labels twice in one result: the first row counts.
            continue;
        }
        match instances.get_mut(&k) {
            Some(i) if i.state != State::Resolved => {
                i.value = value;
                i.missing_since = None;
                if i.state == State::Pending && now - i.active_at >= timing.for_ns {
                    i.state = State::Firing;
                    i.fired_at = Some(now);
                    out.push(transition(i, State::Pending, State::Firing));
                }
            }
            _ => {
                let mut i = Instance {
                    labels,
                    state: State::Pending,
                    active_at: now,
                    fired_at: None,
                    resolved_at: None,
                    missing_since: None,
                    value,
                    last_sent_at: None,
                    last_error: None,
                };
                if timing.for_ns <= 0 {
                    i.state = State::Firing;
                    i.fired_at = Some(now);
                    out.push(transition(&i, State::Inactive, State::Firing));
                } else {
                    out.push(transition(&i, State::Inactive, State::Pending));
                }
                instances.insert(k, i);
            }
        }
    }
    instances.retain(|k, i| {
        if seen.contains(k) {
            return true;
        }
        match i.state {
            State::Pending => {
                out.push(transition(i, State::Pending, State::Inactive));
                false
            }
            State::Firing => {
                let since = *i.missing_since.get_or_insert(now);
                if now - since < timing.keep_firing_for_ns {
                    return true;
                }
                i.state = State::Resolved;
                i.resolved_at = Some(now);
                out.push(transition(i, State::Firing, State::Resolved));
                true
            }
            State::Resolved => i
                .resolved_at
                .is_some_and(|r| now - r < RESOLVED_RETENTION_NS),
            State::Inactive => false,
        }
    });
    out
}

/// Whether an instance is due to be (re)sent to Alertmanager at `now`: firing and not sent
/// within `resend_ns`, or resolved and its resolution not sent yet.
pub fn due_for_alertmanager(i: &Instance, now: i64, resend_ns: i64) -> bool {
    match i.state {
        State::Firing => i.last_sent_at.is_none_or(|s| now - s >= resend_ns),
        State::Resolved => match (i.last_sent_at, i.resolved_at) {
            (Some(sent), Some(resolved)) => sent < resolved,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn row(host: &str, v: f64) -> (Labels, Option<f64>) {
        (Labels::from([("host".into(), host.into())]), Some(v))
    }

    fn kinds(t: &[Transition]) -> Vec<(String, &'static str, &'static str)> {
        t.iter()
            .map(|t| (t.labels["host"].clone(), t.from.as_str(), t.to.as_str()))
            .collect()
    }

    #[test]
    fn pending_firing_resolved() {
        let timing = Timing {
            for_ns: 60 * S,
            keep_firing_for_ns: 0,
        };
        let mut m = BTreeMap::new();
        let t = step(&mut m, vec![row("a", 95.0)], 0, timing);
        assert_eq!(kinds(&t), [("a".into(), "inactive", "pending")]);
        assert!(step(&mut m, vec![row("a", 96.0)], 30 * S, timing).is_empty());
        let t = step(&mut m, vec![row("a", 97.0)], 60 * S, timing);
        assert_eq!(kinds(&t), [("a".into(), "pending", "firing")]);
        assert_eq!(t[0].value, Some(97.0));
        let i = m.values().next().unwrap();
        assert_eq!((i.active_at, i.fired_at), (0, Some(60 * S)));
        assert!(due_for_alertmanager(i, 60 * S, 60 * S));
        let t = step(&mut m, vec![], 90 * S, timing);
        assert_eq!(kinds(&t), [("a".into(), "firing", "resolved")]);
        let i = m.values().next().unwrap();
        assert_eq!(i.resolved_at, Some(90 * S));
        // Kept for delivery, then forgotten.
        step(&mut m, vec![], 90 * S + RESOLVED_RETENTION_NS, timing);
        assert!(m.is_empty());
    }

    #[test]
    fn pending_that_goes_away_is_dropped_and_returning_starts_over() {
        let timing = Timing {
            for_ns: 60 * S,
            keep_firing_for_ns: 0,
        };
        let mut m = BTreeMap::new();
        step(&mut m, vec![row("a", 95.0), row("b", 99.0)], 0, timing);
        let t = step(&mut m, vec![row("b", 99.0)], 30 * S, timing);
        assert_eq!(kinds(&t), [("a".into(), "pending", "inactive")]);
        assert_eq!(m.len(), 1);
        let t = step(&mut m, vec![row("a", 95.0), row("b", 99.0)], 40 * S, timing);
        assert_eq!(kinds(&t), [("a".into(), "inactive", "pending")]);
        // b fires at 60 s; a's timer started again at 40 s.
        let t = step(&mut m, vec![row("a", 95.0), row("b", 99.0)], 60 * S, timing);
        assert_eq!(kinds(&t), [("b".into(), "pending", "firing")]);
        let t = step(
            &mut m,
            vec![row("a", 95.0), row("b", 99.0)],
            100 * S,
            timing,
        );
        assert_eq!(kinds(&t), [("a".into(), "pending", "firing")]);
    }

    #[test]
    fn zero_for_fires_at_once_and_keep_firing_for_holds() {
        let timing = Timing {
            for_ns: 0,
            keep_firing_for_ns: 30 * S,
        };
        let mut m = BTreeMap::new();
        let t = step(&mut m, vec![row("a", 1.0)], 0, timing);
        assert_eq!(kinds(&t), [("a".into(), "inactive", "firing")]);
        assert!(step(&mut m, vec![], 10 * S, timing).is_empty());
        // Back within KEEP FIRING FOR: still firing, the clock resets.
        assert!(step(&mut m, vec![row("a", 2.0)], 20 * S, timing).is_empty());
        assert!(step(&mut m, vec![], 30 * S, timing).is_empty());
        assert!(step(&mut m, vec![], 50 * S, timing).is_empty());
        let t = step(&mut m, vec![], 60 * S, timing);
        assert_eq!(kinds(&t), [("a".into(), "firing", "resolved")]);
    }

    #[test]
    fn resend_rules() {
        let mut i = Instance {
            labels: Labels::new(),
            state: State::Firing,
            active_at: 0,
            fired_at: Some(0),
            resolved_at: None,
            missing_since: None,
            value: None,
            last_sent_at: Some(10 * S),
            last_error: None,
        };
        assert!(!due_for_alertmanager(&i, 30 * S, 60 * S));
        assert!(due_for_alertmanager(&i, 70 * S, 60 * S));
        i.state = State::Resolved;
        i.resolved_at = Some(20 * S);
        assert!(due_for_alertmanager(&i, 21 * S, 60 * S));
        i.last_sent_at = Some(21 * S);
        assert!(!due_for_alertmanager(&i, 100 * S, 60 * S));
        i.state = State::Pending;
        assert!(!due_for_alertmanager(&i, 100 * S, 60 * S));
    }
}
