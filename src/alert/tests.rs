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
            Metrics::new(),
            Tasks::new(),
        )
        .unwrap()
    };
    let alerts = open(clock.clone());
    query.set_alerting(alerts.clone());
    let ingester = Ingester::new(engine.clone(), clock.clone(), Metrics::new());
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
