//! Alerts end to end: a real Alertmanager (Debian's `prometheus-alertmanager`, started here
//! on a free port) receiving Sundial's alerts and passing them on to a webhook; Sundial's
//! own webhooks; a receiver that fails and is retried; a dead receiver that never blocks
//! evaluation; and a restart in the middle of `FOR`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{TestServer, free_port, wait_for as eventually};

/// An HTTP receiver that records every POSTed JSON body; the first `fail_first` requests
/// are answered 500.
#[derive(Clone)]
struct Hook {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Hook {
    async fn start(fail_first: usize) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = Hook {
            addr: listener.local_addr().unwrap(),
            bodies: Arc::default(),
            requests: Arc::default(),
        };
        let h = hook.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut sock).await else {
                        return;
                    };
                    let n = {
                        let mut r = h.requests.lock();
                        *r += 1;
                        *r
                    };
                    let status = if n <= fail_first {
                        "500 Internal Server Error"
                    } else {
                        if let Ok(v) = serde_json::from_slice(&body) {
                            h.bodies.lock().push(v);
                        }
                        "200 OK"
                    };
                    let _ = sock
                        .write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        hook
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().clone()
    }
}

/// Reads one HTTP request; its body.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
    }
}

/// A real Alertmanager that routes everything to `hook` at once (group_wait 0s).
struct Alertmanager {
    url: String,
    child: Child,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn alertmanager(dir: &Path, hook: &Hook) -> Alertmanager {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            hook.url("/from-alertmanager")
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prometheus-alertmanager (scripts/test.sh installs it)");
    let am = Alertmanager {
        url: format!("http://127.0.0.1:{port}"),
        child,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/-/ready", am.url)).send().await
            && r.status().is_success()
        {
            return am;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Writes `host`'s CPU at the current time.
async fn cpu(server: &TestServer, host: &str, value: f64) {
    let (status, body) = server
        .post(
            "/write?db=sundial",
            format!("cpu,hostname={host} usage_user={value} {}\n", now_ns()),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// `SELECT …` → the rows as `|`-joined text.
async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// The alert of Alertmanager's API whose labels include `alertname` = `name`.
async fn am_alert(am: &Alertmanager, name: &str) -> Option<Value> {
    let list: Value = reqwest::get(format!("{}/api/v2/alerts", am.url))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    list.as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == name)
        .cloned()
}

const HIGH_CPU: &str = "SELECT hostname, max(usage_user) AS value FROM cpu \
     WHERE time > now() - INTERVAL '2 seconds' GROUP BY hostname HAVING max(usage_user) > 90";

#[tokio::test]
async fn alertmanager_gets_firing_then_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start(0).await;
    let am = alertmanager(dir.path(), &hook).await;
    let server = TestServer::start(&dir.path().join("data"), &[]);
    let pg = server.pg("sundial").await;
    // The table must exist: CREATE ALERT plans the query.
    cpu(&server, "b", 10.0).await;
    pg.batch_execute(&format!(
        "CREATE ALERT high_cpu EVERY '1s' FOR '3s' LABELS (severity = 'page') \
         ANNOTATIONS (summary = 'CPU {{{{ value }}}} on {{{{ hostname }}}}') \
         NOTIFY ALERTMANAGER '{}' AS {HIGH_CPU}",
        am.url
    ))
    .await
    .unwrap();
    // Host a runs hot, host b does not.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (w, url) = (writing.clone(), server.url("/write?db=sundial"));
    let writer = tokio::spawn(async move {
        let client = reqwest::Client::new();
        while w.load(std::sync::atomic::Ordering::SeqCst) {
            let t = now_ns();
            let r = client
                .post(&url)
                .body(format!(
                    "cpu,hostname=a usage_user=95 {t}\ncpu,hostname=b usage_user=10 {t}\n"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 204);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let firing = eventually(30, "the alert in Alertmanager", || {
        am_alert(&am, "high_cpu")
    })
    .await;
    assert_eq!(firing["labels"]["hostname"], "a", "{firing}");
    assert_eq!(firing["labels"]["severity"], "page", "{firing}");
    assert_eq!(firing["annotations"]["summary"], "CPU 95 on a", "{firing}");
    assert_eq!(firing["status"]["state"], "active", "{firing}");
    assert!(
        firing["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/alerts/high_cpu"),
        "{firing}"
    );
    // It went through pending for FOR before firing.
    let states = rows(
        &pg,
        "SELECT state, extract(epoch from fired_at - active_at) >= 3 FROM system.alerts",
    )
    .await;
    assert_eq!(states, ["firing|t"]);
    // Alertmanager passed it on.
    let via_am = eventually(30, "Alertmanager's firing webhook", || {
        let b = hook.bodies();
        async move { b.into_iter().find(|v| v["status"] == "firing") }
    })
    .await;
    assert_eq!(via_am["alerts"][0]["labels"]["alertname"], "high_cpu");
    // Recovery: the row goes away, the alert resolves, Alertmanager says so.
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    cpu(&server, "a", 20.0).await;
    eventually(30, "Alertmanager's resolved webhook", || {
        let b = hook.bodies();
        async move { b.into_iter().find(|v| v["status"] == "resolved") }
    })
    .await;
    let history = rows(
        &pg,
        "SELECT from_state, to_state, labels FROM system.alert_events ORDER BY time",
    )
    .await;
    assert_eq!(
        history,
        [
            "inactive|pending|{\"hostname\":\"a\"}",
            "pending|firing|{\"hostname\":\"a\"}",
            "firing|resolved|{\"hostname\":\"a\"}"
        ]
    );
    let rule = rows(
        &pg,
        "SELECT state, last_error, notification_failures FROM system.alert_rules",
    )
    .await;
    assert_eq!(rule, ["inactive|NULL|0"]);
}

#[tokio::test]
async fn webhook_payload_retries_and_dead_receivers() {
    let dir = tempfile::tempdir().unwrap();
    // Fails twice, then accepts: the delivery is retried with back-off.
    let flaky = Hook::start(2).await;
    let server = TestServer::in_process(dir.path(), |_| {});
    let pg = server.pg("sundial").await;
    cpu(&server, "a", 99.0).await;
    pg.batch_execute(&format!(
        "CREATE ALERT hot EVERY '1s' NOTIFY WEBHOOK '{}' \
         ANNOTATIONS (summary = '{{{{ hostname }}}} at {{{{ value }}}}') \
         AS SELECT hostname, max(usage_user) AS value FROM cpu GROUP BY hostname HAVING max(usage_user) > 90; \
         CREATE ALERT hot_dead EVERY '1s' NOTIFY WEBHOOK 'http://127.0.0.1:{}/gone' \
         AS SELECT hostname, max(usage_user) AS value FROM cpu GROUP BY hostname HAVING max(usage_user) > 90",
        flaky.url("/hook"),
        free_port()
    ))
    .await
    .unwrap();
    let body = eventually(30, "the webhook", || {
        let b = flaky.bodies();
        async move { b.into_iter().next() }
    })
    .await;
    assert_eq!(*flaky.requests.lock(), 3, "two failures, then success");
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "sundial");
    assert_eq!(body["groupLabels"]["alertname"], "hot");
    assert_eq!(body["commonLabels"]["hostname"], "a");
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "hot");
    assert_eq!(alert["annotations"]["summary"], "a at 99");
    assert!(
        alert["startsAt"].as_str().unwrap().ends_with('Z'),
        "{alert}"
    );
    assert!(alert["fingerprint"].is_string(), "{alert}");
    // The dead receiver's failure is visible; evaluation goes on regardless.
    let failed = eventually(30, "the dead receiver's failure", || {
        let pg = &pg;
        async move {
            let r = rows(
                pg,
                "SELECT notification_failures, evaluations FROM system.alert_rules WHERE name = 'hot_dead'",
            )
            .await;
            let (failures, evals) = r[0].split_once('|').unwrap();
            (failures != "0").then(|| evals.parse::<i64>().unwrap())
        }
    })
    .await;
    assert!(failed >= 5, "evaluations kept running: {failed}");
    let err = rows(
        &pg,
        "SELECT last_error FROM system.alerts WHERE alert_name = 'hot_dead'",
    )
    .await;
    assert!(
        err[0].contains("/gone") && err[0].contains("after 5 attempts"),
        "{err:?}"
    );
    let ok = rows(
        &pg,
        "SELECT last_error FROM system.alerts WHERE alert_name = 'hot'",
    )
    .await;
    assert_eq!(ok, ["NULL"]);
    // The extended protocol (pgx, as Grafana sends statements) works too.
    assert_eq!(
        pg.execute("ALTER ALERT hot_dead PAUSE", &[]).await.unwrap(),
        0
    );
    let shown = pg.query("SHOW ALERTS", &[]).await.unwrap();
    let shown: Vec<(String, String)> = shown
        .iter()
        .map(|r| (r.get("name"), r.get("state")))
        .collect();
    assert_eq!(
        shown,
        [
            ("hot".to_string(), "firing".to_string()),
            ("hot_dead".to_string(), "paused".to_string())
        ]
    );
}

#[tokio::test]
async fn for_timer_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let pg = server.pg("sundial").await;
    cpu(&server, "a", 99.0).await;
    pg.batch_execute(
        "CREATE ALERT slow_burn EVERY '1s' FOR '8s' \
         AS SELECT hostname, max(usage_user) AS value FROM cpu GROUP BY hostname HAVING max(usage_user) > 90",
    )
    .await
    .unwrap();
    let active_at = eventually(20, "pending", || {
        let pg = &pg;
        async move {
            rows(pg, "SELECT state, active_at FROM system.alerts")
                .await
                .first()
                .and_then(|r| r.strip_prefix("pending|").map(str::to_string))
        }
    })
    .await;
    // Pending for 4 s before the restart: a timer restarted by it could not fire before
    // 4 + 8 s after `active_at`, one kept fires at 8 s (plus evaluation lag).
    crate::harness::eventually(
        &pg,
        "SELECT extract(epoch from now() - active_at) >= 4 FROM system.alerts",
        |v| v == "t",
    )
    .await;
    drop(pg);
    let server = server.crash_and_restart();
    let pg = server.pg("sundial").await;
    // The timer was kept: same start, still pending right after the restart…
    let after = rows(&pg, "SELECT state, active_at FROM system.alerts").await;
    assert_eq!(after, [format!("pending|{active_at}")]);
    // …and firing once FOR has passed since then, not since the restart.
    let fired = eventually(30, "firing", || {
        let pg = &pg;
        async move {
            rows(
                pg,
                "SELECT active_at, extract(epoch from fired_at - active_at) FROM system.alerts WHERE state = 'firing'",
            )
            .await
            .into_iter()
            .next()
        }
    })
    .await;
    let (start, waited) = fired.split_once('|').unwrap();
    assert_eq!(start, active_at);
    let waited: f64 = waited.parse().unwrap();
    assert!(
        (8.0..12.0).contains(&waited),
        "fired {waited} s after it became pending"
    );
    let history = rows(
        &pg,
        "SELECT from_state, to_state FROM system.alert_events ORDER BY time",
    )
    .await;
    assert_eq!(history, ["inactive|pending", "pending|firing"]);
}

/// `FOR` measured on an injected clock (an in-process server): a five-minute window
/// passes in seconds of real time, and the alert fires exactly at the first evaluation
/// five minutes after it became pending — no margins needed.
#[tokio::test]
async fn for_window_on_a_manual_clock() {
    const MINUTE: i64 = 60_000_000_000;
    let t0 = 1_714_557_600 * 1_000_000_000; // 2024-05-01T10:00:00Z
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(sundial::clock::ManualClock::new(t0));
    let server = TestServer::in_process_with_clock(dir.path(), |_| {}, clock.clone());
    let (status, body) = server
        .post(
            "/write?db=sundial&precision=s",
            format!("cpu,hostname=a usage_user=99 {}\n", t0 / 1_000_000_000),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let pg = server.pg("sundial").await;
    pg.batch_execute(
        "CREATE ALERT burn EVERY '1m' FOR '5m' AS SELECT hostname, max(usage_user) AS value \
         FROM cpu WHERE time > now() - INTERVAL '1 hour' GROUP BY hostname \
         HAVING max(usage_user) > 90",
    )
    .await
    .unwrap();
    let mut states = Vec::new();
    for minute in 1..=6 {
        clock.set(t0 + minute * MINUTE);
        crate::harness::eventually(
            &pg,
            "SELECT evaluations FROM system.alert_rules WHERE name = 'burn'",
            |v| v == minute.to_string(),
        )
        .await;
        states.extend(rows(&pg, "SELECT state FROM system.alerts").await);
    }
    assert_eq!(
        states,
        [
            "pending", "pending", "pending", "pending", "pending", "firing"
        ]
    );
    let waited = rows(
        &pg,
        "SELECT extract(epoch from fired_at - active_at) FROM system.alerts",
    )
    .await;
    assert_eq!(waited, ["300"]);
}
