//! Sundial against the databases users would pick instead, on the TSBS devops (cpu-only)
//! workload: DuckDB (in-memory table loaded from CSV), PostgreSQL 15 (`COPY`, index on
//! `(hostname, time)`) and InfluxDB 1.6 (line protocol over HTTP, InfluxQL), each started
//! by this harness on free ports, one system at a time so that each has the machine alone.
//!
//! For every scale it generates the data (`sundial::devops`, integer fields), loads it into
//! each system (Sundial and InfluxDB over HTTP with durable acks, `--writers` concurrent
//! 5 000-line bodies), checks that every query returns the same rows everywhere (row count
//! and the sum of all numeric values), and prints the median of `--runs` runs after a
//! warm-up, with Sundial/peer ratios, plus ingest rows/s, bytes/value and peak memory (PSS
//! of the server's processes).
//!
//! Run everything (installs the peers): `bash scripts/tsbs.sh`. By hand:
//! `cargo bench --bench tsbs -- --bench [--scales 100x24,1000x12] [--systems
//! sundial,duckdb,postgres,influxdb] [--runs 5] [--writers 2]`; a system `NAME=PATH` is
//! another Sundial binary, to compare two builds in one run; `--queries a,b` runs only
//! those. Under `cargo test` it runs
//! a small Sundial-only version whose answers are checked against a reference computed
//! here from the generated rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

#[path = "../common/mod.rs"]
mod common;
#[path = "peers.rs"]
mod peers;
#[path = "queries.rs"]
mod queries;
#[path = "reference.rs"]
mod reference;

use common::{arg, arg_text};
use peers::{Fingerprint, Peer};

/// One scale's data: the line-protocol bodies and the same rows as CSV.
struct Data {
    hosts: usize,
    hours: i64,
    rows: usize,
    bodies: Vec<bytes::Bytes>,
    csv: std::path::PathBuf,
}

fn generate(dir: &Path, hosts: usize, hours: i64, lines_per_body: usize) -> Data {
    use std::io::Write;
    let opts = sundial::devops::Options {
        hosts,
        steps: (hours * 360) as usize,
        ..Default::default()
    };
    let csv = dir.join(format!("cpu-{hosts}x{hours}.csv"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv file"));
    writeln!(
        out,
        "time,hostname,region,datacenter,rack,os,arch,team,service,service_version,\
         service_environment,{}",
        sundial::devops::FIELDS.join(",")
    )
    .unwrap();
    let mut bodies = Vec::new();
    let mut body = String::new();
    let mut in_body = 0;
    let mut rows = 0;
    for step in sundial::devops::generate(&opts) {
        for line in step.lines() {
            csv_row(&mut out, line);
            body.push_str(line);
            body.push('\n');
            in_body += 1;
            rows += 1;
            if in_body == lines_per_body {
                bodies.push(bytes::Bytes::from(std::mem::take(&mut body)));
                in_body = 0;
            }
        }
    }
    if !body.is_empty() {
        bodies.push(bytes::Bytes::from(body));
    }
    out.flush().unwrap();
    Data {
        hosts,
        hours,
        rows,
        bodies,
        csv,
    }
}

/// One devops line (`cpu,tag=v,... f=1i,... ns`, no escapes) as a CSV row.
fn csv_row(out: &mut impl std::io::Write, line: &str) {
    let mut parts = line.split(' ');
    let (tags, fields, ts) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let ns: i64 = ts.parse().unwrap();
    let time = chrono::DateTime::from_timestamp_nanos(ns);
    let mut row = time.format("%Y-%m-%d %H:%M:%S%.f+00").to_string();
    for tag in tags.split(',').skip(1) {
        row.push(',');
        row.push_str(tag.split_once('=').unwrap().1);
    }
    for field in fields.split(',') {
        row.push(',');
        row.push_str(field.split_once('=').unwrap().1.trim_end_matches('i'));
    }
    writeln!(out, "{row}").unwrap();
}

fn median(ms: &[f64]) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What one system measured at one scale.
#[derive(Default)]
struct Measured {
    load: String,
    bytes_per_value: Option<f64>,
    peak_mib: f64,
    /// PostgreSQL's time to return high-cpu-all's rows from a table holding them.
    floor: Option<f64>,
    /// Query name → (fingerprint, median ms), or the error.
    queries: BTreeMap<&'static str, Result<(Fingerprint, f64), String>>,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scales = arg_text("--scales")
        .unwrap_or_else(|| (if full { "100x24,1000x12" } else { "8x6" }).into());
    let systems = arg_text("--systems").unwrap_or_else(|| {
        (if full {
            "sundial,duckdb,postgres,influxdb"
        } else {
            "sundial"
        })
        .into()
    });
    let systems: Vec<String> = systems.split(',').map(str::to_string).collect();
    let runs: usize = arg("--runs", if full { 5 } else { 2 });
    let writers: usize = arg("--writers", 2);
    let lines_per_body: usize = arg("--lines", 5000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failed = false;
    for scale in scales.split(',') {
        let (hosts, hours) = scale.split_once('x').expect("--scales HOSTSxHOURS,...");
        let (hosts, hours): (usize, i64) = (hosts.parse().unwrap(), hours.parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let data = generate(dir.path(), hosts, hours, lines_per_body);
        let values = data.rows * sundial::devops::FIELDS.len();
        println!(
            "\n## {hosts} hosts x {hours} h: {} rows, {values} values (generated in {:.1} s)",
            data.rows,
            t.elapsed().as_secs_f64()
        );
        let only = arg_text("--queries");
        let queries: Vec<queries::Query> = queries::all(data.hosts, data.hours)
            .into_iter()
            .filter(|q| {
                only.as_ref()
                    .is_none_or(|o| o.split(',').any(|n| n == q.name))
            })
            .collect();
        let mut measured: Vec<(String, Measured)> = Vec::new();
        for system in &systems {
            let scratch = tempfile::tempdir().unwrap();
            let m = runtime.block_on(measure(
                system,
                scratch.path(),
                &data,
                &queries,
                runs,
                writers,
            ));
            let name = system.split('=').next().unwrap_or(system);
            measured.push((name.to_string(), m));
        }
        if !full {
            let expected = reference::fingerprints(hosts, hours, &queries);
            measured.push((
                "reference".into(),
                Measured {
                    queries: expected
                        .into_iter()
                        .map(|(k, f)| (k, Ok((f, 0.0))))
                        .collect(),
                    ..Default::default()
                },
            ));
        }
        failed |= report(&measured, &queries, values);
    }
    if failed {
        eprintln!("some systems disagree or failed (see above)");
        std::process::exit(1);
    }
}

async fn measure(
    system: &str,
    dir: &Path,
    data: &Data,
    queries: &[queries::Query],
    runs: usize,
    writers: usize,
) -> Measured {
    let values = (data.rows * sundial::devops::FIELDS.len()) as f64;
    let mut peer = Peer::start(system, dir).await;
    let load = peer.load(data, writers).await;
    let bytes = peer.ready_for_queries().await;
    println!("{system}: {load}");
    let mut m = Measured {
        load,
        bytes_per_value: bytes.map(|b| b as f64 / values),
        ..Default::default()
    };
    for q in queries {
        let r = peer
            .run(q, runs + 1)
            .await
            .map(|(f, ms)| (f, median(&ms[1..])));
        match &r {
            Ok((f, ms)) => println!("{system} {}: {ms:.2} ms, {}", q.name, f.describe()),
            Err(e) => println!("{system} {}: {e}", q.name),
        }
        m.queries.insert(q.name, r);
    }
    if let Some(q) = queries.iter().find(|q| q.name == "high-cpu-all")
        && let Some(ms) = peer.result_floor(q, runs).await
    {
        m.floor = Some(ms);
    }
    m.peak_mib = peer.stop().await as f64 / (1 << 20) as f64;
    m
}

/// Prints the table; true if any system failed a query or disagreed with the first.
fn report(measured: &[(String, Measured)], queries: &[queries::Query], _values: usize) -> bool {
    let mut failed = false;
    let first = &measured[0];
    let mut header = format!("| {:24} |", "query");
    for (name, _) in measured {
        header += &format!(" {name:>10} ms |");
    }
    for (name, _) in &measured[1..] {
        header += &format!(" {}/{name} |", first.0);
    }
    header += " rows |";
    println!("{header}");
    println!("|{}", "---|".repeat(header.matches('|').count() - 1));
    for q in queries {
        let mut line = format!("| {:24} |", q.name);
        let base = first.1.queries.get(q.name).and_then(|r| r.as_ref().ok());
        for (_, m) in measured {
            line += &match m.queries.get(q.name) {
                Some(Ok((_, ms))) => format!(" {ms:>13.2} |"),
                _ => format!(" {:>13} |", "error"),
            };
        }
        for (_, m) in &measured[1..] {
            let cell = match (base, m.queries.get(q.name)) {
                (Some((bf, bms)), Some(Ok((f, ms)))) => {
                    if !bf.agrees(f) {
                        failed = true;
                        format!("MISMATCH {} vs {}", bf.describe(), f.describe())
                    } else if *ms > 0.0 {
                        format!("{:.2}", bms / ms)
                    } else {
                        "same".into()
                    }
                }
                _ => {
                    failed = true;
                    "-".into()
                }
            };
            line += &format!(" {cell:>8} |");
        }
        line += &format!(
            " {} |",
            base.map_or("-".into(), |(f, _)| f.rows.to_string())
        );
        println!("{line}");
    }
    for (_, m) in measured {
        if let Some(ms) = m.floor {
            println!(
                "high-cpu-all floor: {ms:.2} ms for PostgreSQL to return the same rows from a \
                 table that holds just them (sending and decoding them over the protocol)"
            );
        }
    }
    for (name, m) in measured {
        if m.load.is_empty() {
            continue;
        }
        println!(
            "{name:>10}: {}; {} bytes/value; peak {:.0} MiB",
            m.load,
            m.bytes_per_value.map_or("-".into(), |b| format!("{b:.3}")),
            m.peak_mib
        );
    }
    failed
}
