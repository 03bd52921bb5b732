//! The `system` schema's tables: `alert_rules` (definitions), `alerts` (current
//! instances) and `alert_events` (history), as snapshots built when a query plans.

use super::*;

impl Alerts {
    pub(super) fn rules_table(&self) -> datafusion::error::Result<RecordBatch> {
        let rules: Vec<Rule> = self.rules.lock().values().cloned().collect();
        let states = self.states.lock();
        let st = |r: &Rule| states.get(&r.name).cloned().unwrap_or_default();
        let json = |pairs: &[(String, String)]| {
            serde_json::to_string(&pairs.iter().cloned().collect::<BTreeMap<_, _>>())
                .unwrap_or_default()
        };
        let duration = crate::duration::format_secs;
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

    pub(super) fn alerts_table(&self) -> datafusion::error::Result<RecordBatch> {
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

    pub(super) fn events_table(&self) -> datafusion::error::Result<RecordBatch> {
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

pub(super) fn text(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values.collect::<Vec<_>>()))
}

pub(super) fn int(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from(
        values.map(|v| v as i64).collect::<Vec<_>>(),
    ))
}

pub(super) fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

pub(super) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub(super) fn rules_schema() -> SchemaRef {
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

pub(super) fn alerts_schema() -> SchemaRef {
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
pub(super) fn system_view(
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
