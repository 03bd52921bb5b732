//! Codec comparison: bytes/value and decode throughput of each float codec (raw, pco,
//! Gorilla XOR, decimal scaling) and of the integer and timestamp codecs, on
//! (a) the TSBS-style devops data (integer values as TSBS writes them, and full-precision
//! float random walks) and (b) samples scraped from a real prometheus-node-exporter
//! (`benches/data/node_exporter.prom.gz`, 120 scrapes one second apart).
//!
//! Run: `cargo bench --bench codecs`. Under `cargo test` it runs on a small sample.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use sundial::devops::{self, Options};
use sundial::ingest::line_protocol::{FieldValue, lines, parse_line};
use sundial::storage::codec::{self, id};

fn devops_series(float_values: bool, steps: usize) -> Vec<Vec<f64>> {
    let opts = Options {
        hosts: 100,
        steps,
        float_values,
        ..Options::default()
    };
    let body: String = devops::generate(&opts).collect();
    let mut series: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (_, line) in lines(body.as_bytes()) {
        let p = parse_line(line).expect("valid");
        let host = p.tags[0].1.to_string();
        for (k, v) in p.fields {
            let v = match v {
                FieldValue::Float(x) => x,
                FieldValue::Integer(x) => x as f64,
                _ => continue,
            };
            series
                .entry((host.clone(), k.to_string()))
                .or_default()
                .push(v);
        }
    }
    series.into_values().collect()
}

fn node_exporter_series() -> (Vec<Vec<f64>>, Vec<Vec<i64>>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/node_exporter.prom.gz"
    );
    let gz = std::fs::read(path).expect("node_exporter fixture");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gzip");
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut times = Vec::new();
    for line in text.lines() {
        if let Some(ts) = line.strip_prefix("# SCRAPE ") {
            times.push(ts.trim().parse::<i64>().expect("ms") * 1_000_000);
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let v = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => match v.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        series.entry(key.to_string()).or_default().push(v);
    }
    let n = series.len();
    (series.into_values().collect(), vec![times; n.min(1)])
}

struct Row {
    name: &'static str,
    bytes: usize,
    values: usize,
    decode_secs: f64,
}

fn measure_floats(code: u8, name: &'static str, data: &[Vec<f64>], reps: usize) -> Option<Row> {
    let mut blocks = Vec::new();
    for s in data {
        blocks.push((codec::encode_floats_with(code, s)?, s.len()));
    }
    let bytes = blocks.iter().map(|(b, _)| b.len() + 1).sum();
    let values = data.iter().map(Vec::len).sum();
    let t = Instant::now();
    for _ in 0..reps {
        for (b, n) in &blocks {
            let v = codec::decode_floats_with(code, b, *n).expect("decode");
            std::hint::black_box(v);
        }
    }
    Some(Row {
        name,
        bytes,
        values,
        decode_secs: t.elapsed().as_secs_f64() / reps as f64,
    })
}

fn print(title: &str, rows: &[Row]) {
    println!("\n{title}");
    println!(
        "  {:<10} {:>12} {:>14} {:>16}",
        "codec", "bytes", "bytes/value", "decode GB/s"
    );
    for r in rows {
        let gbs = (r.values * 8) as f64 / r.decode_secs / 1e9;
        println!(
            "  {:<10} {:>12} {:>14.3} {:>16.2}",
            r.name,
            r.bytes,
            r.bytes as f64 / r.values as f64,
            gbs
        );
    }
}

fn float_table(title: &str, data: &[Vec<f64>], reps: usize) {
    let rows: Vec<Row> = [
        (id::RAW, "raw"),
        (id::PCO, "pco"),
        (id::GORILLA, "gorilla"),
        (id::DECIMAL, "decimal"),
    ]
    .into_iter()
    .filter_map(|(c, n)| measure_floats(c, n, data, reps))
    .collect();
    print(title, &rows);
    // What the encoder stores: the smallest per block, as a field column.
    let mut bytes = 0;
    let values: usize = data.iter().map(Vec::len).sum();
    let mut blocks = Vec::new();
    for s in data {
        let col = sundial::storage::rows::Column::Float(s.iter().map(|v| Some(*v)).collect());
        let (b, _) = codec::encode_column(&col);
        bytes += b.len();
        blocks.push((b, s.len()));
    }
    let t = Instant::now();
    for _ in 0..reps {
        for (b, n) in &blocks {
            std::hint::black_box(
                codec::decode_column(b, sundial::storage::FieldType::Float, *n).expect("decode"),
            );
        }
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "  {:<10} {:>12} {:>14.3} {:>16.2}   (per-block choice, as stored, incl. null flag)",
        "chosen",
        bytes,
        bytes as f64 / values as f64,
        (values * 8) as f64 / secs / 1e9
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (steps, reps) = if full { (8640, 5) } else { (60, 1) };

    let ints = devops_series(false, steps);
    float_table(
        &format!(
            "TSBS devops, integer values as floats ({} series x {steps})",
            ints.len()
        ),
        &ints,
        reps,
    );
    // As Sundial stores them: BIGINT columns.
    let int_blocks: Vec<(Vec<u8>, usize)> = ints
        .iter()
        .map(|s| {
            let col = sundial::storage::rows::Column::Integer(
                s.iter().map(|v| Some(*v as i64)).collect(),
            );
            (codec::encode_column(&col).0, s.len())
        })
        .collect();
    let values: usize = ints.iter().map(Vec::len).sum();
    let bytes: usize = int_blocks.iter().map(|(b, _)| b.len()).sum();
    let t = Instant::now();
    for _ in 0..reps {
        for (b, n) in &int_blocks {
            std::hint::black_box(
                codec::decode_column(b, sundial::storage::FieldType::Integer, *n).expect("decode"),
            );
        }
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "  {:<10} {:>12} {:>14.3} {:>16.2}   (BIGINT column, pco)",
        "int64",
        bytes,
        bytes as f64 / values as f64,
        (values * 8) as f64 / secs / 1e9
    );

    let floats = devops_series(true, steps);
    float_table(
        "TSBS devops, full-precision float random walk",
        &floats,
        reps,
    );

    let (ne, times) = node_exporter_series();
    float_table(
        &format!(
            "prometheus-node-exporter samples ({} series x {} scrapes)",
            ne.len(),
            ne.first().map_or(0, Vec::len)
        ),
        &ne,
        reps,
    );
    if let Some(t) = times.first() {
        let block = codec::encode_time(t);
        println!(
            "  scrape timestamps: {} bytes for {} timestamps of one series (jittered, not a fixed step)",
            block.len(),
            t.len()
        );
    }
}
