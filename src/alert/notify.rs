//! Notifications: Alertmanager's API v2 (`POST {base}/api/v2/alerts`, a JSON array of
//! alerts with `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`) and plain
//! webhooks with Alertmanager's webhook JSON (`version` 4, `status`, `alerts`, …).
//!
//! Each receiver URL has its own delivery task and bounded queue, so a slow or dead
//! receiver never blocks evaluation or other receivers. A delivery is retried with
//! exponential back-off (0.5 s, 1 s, 2 s, … up to [`ATTEMPTS`] tries, each with a
//! [`TIMEOUT`]); its outcome is reported back through a callback, which records failures
//! where SQL can see them (`system.alerts.last_error`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::tasks::Tasks;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::state::{Instance, Labels, State};
use crate::query::statements::Receiver;

/// Tries per delivery.
pub const ATTEMPTS: u32 = 5;
/// Time allowed for one HTTP request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries waiting per receiver before new ones are dropped (and counted as failed).
const QUEUE: usize = 256;

/// One alert as sent: what Alertmanager calls a postable alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The instance's key, to report delivery back.
    pub key: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub firing: bool,
}

/// A batch of one rule's alerts for one receiver.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub rule: String,
    pub receiver: Receiver,
    pub alerts: Vec<Outgoing>,
}

/// Reports a delivery's outcome: the rule, the instance keys, and the error if it failed.
pub type Report = Arc<dyn Fn(&str, &[String], Option<String>) + Send + Sync>;

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Fills `{{ name }}` from the labels, `{{ value }}` from the value (Prometheus' `{{
/// $labels.name }}` and `{{ $value }}` work too); unknown names render empty.
pub fn render(template: &str, labels: &Labels, value: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = rest[start + 2..start + len].trim();
        let name = name
            .strip_prefix("$labels.")
            .or_else(|| name.strip_prefix('$'))
            .unwrap_or(name);
        if name == "value" && !labels.contains_key("value") {
            if let Some(v) = value {
                out.push_str(&crate::query::float_text::format_float(v, 1, false));
            }
        } else if let Some(l) = labels.get(name) {
            out.push_str(l);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The outgoing form of an instance of rule `rule` at `now`: firing alerts end
/// `valid_for_ns` ahead (Alertmanager resolves them by itself if re-sends stop), resolved
/// ones at their resolve time.
pub fn outgoing(
    key: &str,
    rule: &str,
    extra_labels: &[(String, String)],
    annotations: &[(String, String)],
    i: &Instance,
    now: i64,
    valid_for_ns: i64,
) -> Outgoing {
    let mut labels = i.labels.clone();
    for (k, v) in extra_labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert("alertname".into(), rule.to_string());
    let annotations = annotations
        .iter()
        .map(|(k, t)| (k.clone(), render(t, &labels, i.value)))
        .collect();
    let firing = i.state == State::Firing;
    Outgoing {
        key: key.to_string(),
        labels,
        annotations,
        starts_at: i.active_at,
        ends_at: if firing {
            now + valid_for_ns
        } else {
            i.resolved_at.unwrap_or(now)
        },
        firing,
    }
}

fn alert_json(a: &Outgoing, generator_url: &str) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.starts_at),
        "endsAt": rfc3339(a.ends_at),
        "generatorURL": generator_url,
    })
}

/// Alertmanager API v2 body.
pub fn alertmanager_body(alerts: &[Outgoing], generator_url: &str) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| alert_json(a, generator_url))
            .collect(),
    )
}

/// A stable fingerprint of a label set (FNV-1a, hex), as Alertmanager's webhook carries.
fn fingerprint(labels: &Labels) -> String {
    let bytes = labels
        .iter()
        .flat_map(|(k, v)| k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]));
    format!("{:016x}", crate::clock::fnv1a(bytes))
}

/// The labels (or annotations) every alert shares.
fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Alertmanager's webhook body for one rule's alerts.
pub fn webhook_body(
    rule: &str,
    alerts: &[Outgoing],
    generator_url: &str,
    external_url: &str,
) -> Value {
    let any_firing = alerts.iter().any(|a| a.firing);
    let labels: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&BTreeMap<String, String>> =
        alerts.iter().map(|a| &a.annotations).collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{rule}\"}}"),
        "truncatedAlerts": 0,
        "status": if any_firing { "firing" } else { "resolved" },
        "receiver": "sundial",
        "groupLabels": { "alertname": rule },
        "commonLabels": common(&labels),
        "commonAnnotations": common(&annotations),
        "externalURL": external_url,
        "alerts": alerts.iter().map(|a| {
            let mut v = alert_json(a, generator_url);
            v["status"] = json!(if a.firing { "firing" } else { "resolved" });
            v["fingerprint"] = json!(fingerprint(&a.labels));
            v
        }).collect::<Vec<_>>(),
    })
}

/// The delivery tasks, one per receiver URL, started on first use.
pub struct Notifier {
    client: reqwest::Client,
    /// Where Sundial's HTTP API is, for `generatorURL` and `externalURL`.
    external_url: String,
    queues: Mutex<HashMap<Receiver, mpsc::Sender<Delivery>>>,
    report: Report,
    /// Where the per-receiver delivery tasks run (tracked for shutdown).
    tasks: Tasks,
}

impl Notifier {
    pub fn new(external_url: String, report: Report, tasks: Tasks) -> Notifier {
        Notifier {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            external_url,
            queues: Mutex::new(HashMap::new()),
            report,
            tasks,
        }
    }

    /// Queues a delivery; never waits. A full queue fails the delivery at once.
    pub fn send(&self, delivery: Delivery) {
        if delivery.alerts.is_empty() {
            return;
        }
        let sender = {
            let mut queues = self.queues.lock();
            queues
                .entry(delivery.receiver.clone())
                .or_insert_with(|| self.start())
                .clone()
        };
        if let Err(e) = sender.try_send(delivery) {
            let delivery = match e {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            let keys: Vec<String> = delivery.alerts.iter().map(|a| a.key.clone()).collect();
            (self.report)(
                &delivery.rule,
                &keys,
                Some("notification queue full: receiver too slow or down".into()),
            );
        }
    }

    fn start(&self) -> mpsc::Sender<Delivery> {
        let (tx, mut rx) = mpsc::channel::<Delivery>(QUEUE);
        let client = self.client.clone();
        let external = self.external_url.clone();
        let report = self.report.clone();
        let shutdown = self.tasks.background();
        self.tasks.spawn("alert notifier", async move {
            loop {
                let delivery = tokio::select! {
                    d = rx.recv() => match d { Some(d) => d, None => return },
                    _ = shutdown.cancelled() => return,
                };
                let generator = format!("{external}/alerts/{}", delivery.rule);
                let (url, body) = match &delivery.receiver {
                    Receiver::Alertmanager(base) => (
                        format!("{}/api/v2/alerts", base.trim_end_matches('/')),
                        alertmanager_body(&delivery.alerts, &generator),
                    ),
                    Receiver::Webhook(url) => (
                        url.clone(),
                        webhook_body(&delivery.rule, &delivery.alerts, &generator, &external),
                    ),
                };
                let keys: Vec<String> = delivery.alerts.iter().map(|a| a.key.clone()).collect();
                let outcome = tokio::select! {
                    r = post_with_retries(&client, &url, &body) => r,
                    _ = shutdown.cancelled() => return,
                };
                if let Err(e) = &outcome {
                    tracing::warn!(rule = %delivery.rule, %url, error = %e, "alert notification failed");
                }
                report(&delivery.rule, &keys, outcome.err());
            }
        });
        tx
    }
}

/// POSTs `body` until a 2xx answer or [`ATTEMPTS`] tries, backing off between them.
async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(), String> {
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                last = format!("{url}: HTTP {status}: {}", text.trim());
            }
            Err(e) => last = format!("{url}: {e}"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: State) -> Instance {
        Instance {
            labels: Labels::from([("hostname".into(), "h1".into())]),
            state,
            active_at: 1_714_557_600_000_000_000,
            fired_at: Some(1_714_557_660_000_000_000),
            resolved_at: (state == State::Resolved).then_some(1_714_557_720_000_000_000),
            missing_since: None,
            value: Some(97.5),
            last_sent_at: None,
            last_error: None,
        }
    }

    #[test]
    fn templates() {
        let l = Labels::from([("hostname".into(), "h1".into())]);
        assert_eq!(
            render(
                "CPU {{ value }} on {{hostname}} ({{ $labels.hostname }}, {{ $value }}) {{ nope }}!",
                &l,
                Some(97.5)
            ),
            "CPU 97.5 on h1 (h1, 97.5) !"
        );
        assert_eq!(render("open {{ x", &l, None), "open {{ x");
    }

    #[test]
    fn alertmanager_and_webhook_bodies() {
        let now = 1_714_557_680_000_000_000;
        let a = outgoing(
            "k",
            "high_cpu",
            &[("severity".into(), "page".into())],
            &[("summary".into(), "CPU {{ value }} on {{ hostname }}".into())],
            &instance(State::Firing),
            now,
            40_000_000_000,
        );
        let body = alertmanager_body(std::slice::from_ref(&a), "http://s/alerts/high_cpu");
        assert_eq!(
            body,
            json!([{
                "labels": {"alertname": "high_cpu", "hostname": "h1", "severity": "page"},
                "annotations": {"summary": "CPU 97.5 on h1"},
                "startsAt": "2024-05-01T10:00:00.000Z",
                "endsAt": "2024-05-01T10:02:00.000Z",
                "generatorURL": "http://s/alerts/high_cpu",
            }])
        );
        let r = outgoing(
            "k",
            "high_cpu",
            &[],
            &[],
            &instance(State::Resolved),
            now,
            1,
        );
        assert_eq!(rfc3339(r.ends_at), "2024-05-01T10:02:00.000Z");
        let hook = webhook_body("high_cpu", &[a, r], "g", "http://s");
        assert_eq!(hook["status"], "firing");
        assert_eq!(hook["version"], "4");
        assert_eq!(hook["alerts"][1]["status"], "resolved");
        assert_eq!(
            hook["commonLabels"],
            json!({"alertname": "high_cpu", "hostname": "h1"})
        );
        assert_eq!(hook["groupLabels"], json!({"alertname": "high_cpu"}));
        assert_eq!(hook["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
    }
}
