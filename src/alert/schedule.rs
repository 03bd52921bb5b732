//! When alerts run: each alert every `EVERY` at aligned times (multiples of `EVERY` since
//! the epoch), shifted by a per-alert offset derived from its name so that many alerts with
//! the same interval spread over it instead of all starting at once (Prometheus does the
//! same for rule groups). An evaluation still running at its next slot, or slots that
//! passed while the server was busy, count as missed. Pure logic: the caller passes `now`.

use std::collections::HashMap;

/// The scheduling state of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub every_ns: i64,
    pub offset_ns: i64,
    /// The next evaluation time.
    pub next: i64,
}

pub use crate::clock::{next_after, offset};

/// What the scheduler decided for one alert at one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub name: String,
    /// The evaluation time (`now()` inside the query).
    pub at: i64,
    /// Slots skipped before this one (the server was too busy to reach them).
    pub missed: u64,
}

/// Schedules a set of alerts.
#[derive(Debug, Default)]
pub struct Scheduler {
    slots: HashMap<String, Slot>,
}

impl Scheduler {
    /// Adds or updates an alert; its first evaluation is the first slot after `now`.
    pub fn set(&mut self, name: &str, every_ns: i64, now: i64) {
        let every_ns = every_ns.max(1);
        if let Some(s) = self.slots.get(name)
            && s.every_ns == every_ns
        {
            return;
        }
        let offset_ns = offset(name, every_ns);
        self.slots.insert(
            name.to_string(),
            Slot {
                every_ns,
                offset_ns,
                next: next_after(now, every_ns, offset_ns),
            },
        );
    }

    pub fn remove(&mut self, name: &str) {
        self.slots.remove(name);
    }

    /// The earliest next evaluation.
    pub fn next_wakeup(&self) -> Option<i64> {
        self.slots.values().map(|s| s.next).min()
    }

    /// The alerts due at `now`, each with its latest due slot; advances them.
    pub fn due(&mut self, now: i64) -> Vec<Due> {
        let mut out = Vec::new();
        for (name, s) in self.slots.iter_mut() {
            if s.next > now {
                continue;
            }
            // The latest slot <= now; the ones between were missed.
            let latest = next_after(now, s.every_ns, s.offset_ns) - s.every_ns;
            let missed = ((latest - s.next) / s.every_ns) as u64;
            out.push(Due {
                name: name.clone(),
                at: latest,
                missed,
            });
            s.next = latest + s.every_ns;
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.name.cmp(&b.name)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const S: i64 = 1_000_000_000;

    #[test]
    fn slots_are_aligned_and_offset() {
        assert_eq!(next_after(0, 10 * S, 0), 10 * S);
        assert_eq!(next_after(9 * S, 10 * S, 3 * S), 13 * S);
        assert_eq!(next_after(13 * S, 10 * S, 3 * S), 23 * S);
        let o = offset("high_cpu", 10 * S);
        assert!((0..10 * S).contains(&o));
        assert_eq!(o, offset("high_cpu", 10 * S));
        // Offsets spread: 100 names over a 10 s interval land in more than 5 distinct seconds.
        let seconds: std::collections::HashSet<i64> = (0..100)
            .map(|i| offset(&format!("a{i}"), 10 * S) / S)
            .collect();
        assert!(seconds.len() > 5, "{seconds:?}");
    }

    #[test]
    fn due_with_an_injected_clock() {
        let clock = ManualClock::new(1_000 * S);
        let mut s = Scheduler::default();
        s.set("a", 10 * S, clock.now_nanos());
        let first = s.next_wakeup().unwrap();
        assert!(first > 1_000 * S && first <= 1_010 * S);
        assert!(s.due(first - 1).is_empty());
        clock.set(first);
        assert_eq!(
            s.due(clock.now_nanos()),
            [Due {
                name: "a".into(),
                at: first,
                missed: 0
            }]
        );
        // Not again in the same slot.
        assert!(s.due(first + S).is_empty());
        // The clock jumps 35 s: the latest slot runs, the two before it were missed.
        clock.set(first + 35 * S);
        assert_eq!(
            s.due(clock.now_nanos()),
            [Due {
                name: "a".into(),
                at: first + 30 * S,
                missed: 2
            }]
        );
        assert_eq!(s.next_wakeup(), Some(first + 40 * S));
        // Same interval again: the schedule stays; a new interval re-aligns.
        s.set("a", 10 * S, first + 36 * S);
        assert_eq!(s.next_wakeup(), Some(first + 40 * S));
        s.remove("a");
        assert!(s.next_wakeup().is_none());
    }
}
