//! Reference answers for the smoke run: each query's fingerprint computed here, straight
//! from the generated rows, so that `cargo test` checks Sundial's answers, not only that
//! it answers.

use std::collections::BTreeMap;

use super::peers::Fingerprint;
use super::queries::{Query, Shape};

/// One generated row: host, minute after 2016-01-01T00:00:00Z (fractional), ten values.
struct Row {
    host: String,
    minute: f64,
    values: [f64; 10],
}

fn rows(hosts: usize, hours: i64) -> Vec<Row> {
    let opts = sundial::devops::Options {
        hosts,
        steps: (hours * 360) as usize,
        ..Default::default()
    };
    let start = opts.start_nanos;
    let mut out = Vec::new();
    for step in sundial::devops::generate(&opts) {
        for line in step.lines() {
            let mut parts = line.split(' ');
            let (tags, fields, ts) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let host = tags
                .split(',')
                .nth(1)
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_string();
            let mut values = [0.0; 10];
            for (v, field) in values.iter_mut().zip(fields.split(',')) {
                *v = field
                    .split_once('=')
                    .unwrap()
                    .1
                    .trim_end_matches('i')
                    .parse()
                    .unwrap();
            }
            let ns: i64 = ts.parse().unwrap();
            out.push(Row {
                host,
                minute: (ns - start) as f64 / 60e9,
                values,
            });
        }
    }
    out
}

fn inside(row: &Row, (from, to): (i64, i64)) -> bool {
    row.minute >= from as f64 && row.minute < to as f64
}

/// Every query's expected fingerprint.
pub fn fingerprints(
    hosts: usize,
    hours: i64,
    queries: &[Query],
) -> BTreeMap<&'static str, Fingerprint> {
    let rows = rows(hosts, hours);
    queries
        .iter()
        .map(|q| (q.name, expected(&rows, &q.shape)))
        .collect()
}

fn expected(rows: &[Row], shape: &Shape) -> Fingerprint {
    match shape {
        Shape::Max {
            hosts,
            fields,
            bucket,
            window,
            limit,
        } => {
            let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for r in rows.iter().filter(|r| inside(r, *window)) {
                if !hosts.is_empty() && !hosts.contains(&r.host) {
                    continue;
                }
                let b = (r.minute / *bucket as f64).floor() as i64;
                let max = buckets.entry(b).or_insert_with(|| vec![f64::MIN; *fields]);
                for (m, v) in max.iter_mut().zip(&r.values) {
                    *m = m.max(*v);
                }
            }
            let kept: Vec<&Vec<f64>> = match limit {
                Some(n) => buckets.values().rev().take(*n).collect(),
                None => buckets.values().collect(),
            };
            Fingerprint {
                rows: kept.len() as u64,
                sum: kept.iter().flat_map(|v| v.iter()).sum(),
            }
        }
        Shape::AvgPerHost { fields, window } => {
            let mut groups: BTreeMap<(i64, &str), (Vec<f64>, f64)> = BTreeMap::new();
            for r in rows.iter().filter(|r| inside(r, *window)) {
                let g = groups
                    .entry(((r.minute / 60.0).floor() as i64, r.host.as_str()))
                    .or_insert_with(|| (vec![0.0; *fields], 0.0));
                for (s, v) in g.0.iter_mut().zip(&r.values) {
                    *s += v;
                }
                g.1 += 1.0;
            }
            Fingerprint {
                rows: groups.len() as u64,
                sum: groups
                    .values()
                    .map(|(s, n)| s.iter().sum::<f64>() / n)
                    .sum(),
            }
        }
        Shape::HighCpu { window } => {
            let hits: Vec<&Row> = rows
                .iter()
                .filter(|r| inside(r, *window) && r.values[0] > 90.0)
                .collect();
            Fingerprint {
                rows: hits.len() as u64,
                sum: hits.iter().flat_map(|r| r.values.iter()).sum(),
            }
        }
        Shape::LastPoint => {
            let mut last: BTreeMap<&str, &Row> = BTreeMap::new();
            for r in rows {
                let e = last.entry(r.host.as_str()).or_insert(r);
                if r.minute >= e.minute {
                    *e = r;
                }
            }
            Fingerprint {
                rows: last.len() as u64,
                sum: last.values().flat_map(|r| r.values.iter()).sum(),
            }
        }
    }
}
