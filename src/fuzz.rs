//! Fuzzing on stable Rust: every parser and decoder that client bytes (or bytes read back
//! from disk) reach, driven by structured random inputs and mutations of them.
//!
//! Each [`Target`] makes valid seeds of its format and runs one input through the real
//! code path. [`run`] mutates seeds (bit flips, boundary bytes and numbers, inserted,
//! deleted, duplicated and spliced ranges, truncation), fixes up checksums for the
//! file formats so the decoders behind them are reached too, and records every input
//! that panics. A panic on input is a defect: in the server it would end a connection
//! task or a background thread.
//!
//! `tests/it/fuzz.rs` runs a short pass of each target; `SUNDIAL_FUZZ_INPUTS` sets the
//! long mode (see the README). A top-level module: it names the front ends it drives.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use crate::ingest::{Precision, graphite, line_protocol, remote_write};
use crate::scrape::exposition;
use crate::storage::{FieldType, Point, StorageConfig, TimeRange, Value, segment, wal};

/// xorshift64*: fast, and a run is replayed from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One format and the code that reads it.
pub struct Target {
    pub name: &'static str,
    /// A valid input, built at random.
    seed: fn(&mut Rng) -> Vec<u8>,
    /// Runs one input; it may fail, never panic.
    run: fn(&[u8], &Scratch),
    /// Rewrites checksums so that mutated bytes reach the decoders behind them.
    fix_up: Option<fn(&mut [u8])>,
    /// For code outside Sundial whose panics the server contains: how (its panics are
    /// reported as findings, not failures).
    pub contained: Option<&'static str>,
}

/// A directory for targets that read files.
pub struct Scratch {
    dir: tempfile::TempDir,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub inputs: u64,
    /// Inputs that panicked, with the panic message, hex-encoded (at most 10 kept).
    pub panics: Vec<(String, String)>,
    pub panic_count: u64,
}

/// All targets.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "line_protocol",
            seed: seed_line_protocol,
            run: run_line_protocol,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "exposition",
            seed: seed_exposition,
            run: run_exposition,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "remote_write",
            seed: seed_remote_write,
            run: run_remote_write,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "remote_write_snappy",
            seed: |rng| {
                snap::raw::Encoder::new()
                    .compress_vec(&seed_remote_write(rng))
                    .expect("snappy")
            },
            run: |data, _| {
                let _ = remote_write::decode(data, 1 << 20);
            },
            fix_up: None,
            contained: None,
        },
        Target {
            name: "graphite",
            seed: seed_graphite,
            run: run_graphite,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "sql",
            seed: seed_sql,
            run: run_sql,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "pg_messages",
            seed: seed_pg_messages,
            run: run_pg_messages,
            fix_up: None,
            contained: Some(
                "pgwire 0.41's own decoders; pg::connection turns their panics into FATAL 08P01",
            ),
        },
        Target {
            name: "wal_records",
            seed: seed_wal_record,
            run: run_wal_record,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "wal_files",
            seed: seed_wal_file,
            run: run_wal_file,
            fix_up: Some(fix_wal_crcs),
            contained: None,
        },
        Target {
            name: "column_blocks",
            seed: seed_column_block,
            run: run_column_block,
            fix_up: None,
            contained: None,
        },
        Target {
            name: "segment_files",
            seed: seed_segment_file,
            run: run_segment_file,
            fix_up: Some(fix_segment_footer_crc),
            contained: None,
        },
    ]
}

/// Runs `inputs` inputs of `target`, mutations of fresh seeds, from `seed`.
pub fn run(target: &Target, inputs: u64, seed: u64) -> Report {
    let scratch = Scratch {
        dir: tempfile::tempdir().expect("a temp dir for the fuzz target"),
    };
    let mut rng = Rng::new(seed);
    let mut corpus: Vec<Vec<u8>> = (0..32).map(|_| (target.seed)(&mut rng)).collect();
    let mut report = Report::default();
    // Panics are findings, reported below; keep them off stderr.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..inputs {
        if i % 1024 == 1023 {
            // New seeds now and then, so the run is not stuck with the first 32.
            let at = rng.below(corpus.len());
            corpus[at] = (target.seed)(&mut rng);
        }
        let mut input = corpus[rng.below(corpus.len())].clone();
        if !rng.chance(16) {
            mutate(&mut input, &corpus, &mut rng);
        }
        if let Some(fix) = target.fix_up
            && rng.chance(2)
        {
            fix(&mut input);
        }
        report.inputs += 1;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input, &scratch)));
        if let Err(panic) = outcome {
            report.panic_count += 1;
            if report.panics.len() < 10 {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.panics.push((message, hex(&input)));
            }
        }
    }
    std::panic::set_hook(hook);
    report
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes that end, split or escape tokens in the text formats, and edges of binary ones.
const SPECIAL: &[u8] = b"\n\r\t ,=\"\\{}#;:.-+eE0123456789\x00\xff\x7f\x80";
/// Numbers at the edges of what parsers convert.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "+Inf",
    "-Inf",
    "1.7976931348623157e308",
    "4.9e-324",
    "0x10",
    "1_000",
    "1.",
    ".5",
    "1e",
    "i",
    "u",
];

/// Applies 1–8 random mutations.
fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = *rng.pick(SPECIAL);
            }
            2 => {
                let at = rng.below(len + 1);
                input.insert(at, *rng.pick(SPECIAL));
            }
            3 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(16)).min(len);
                input.drain(from..to);
            }
            4 if len > 0 => {
                // Duplicate a range (repeated fields, nested lengths).
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                let copy = input[from..to].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let at = rng.below(len + 1);
                input.splice(at..at, rng.pick(NUMBERS).bytes());
            }
            6 => {
                // Splice in part of another seed.
                let other = rng.pick(corpus);
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + 1 + rng.below(128)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[from..to].iter().copied());
                }
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            8 if len >= 4 => {
                // An edge value in what may be a length or count.
                let at = rng.below(len - 3);
                let v: u32 = *rng.pick(&[0, 1, 0x7f, 0x80, 0xffff, 0x7fff_ffff, u32::MAX]);
                input[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let at = rng.below(len + 1);
                let n = rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                input.splice(at..at, bytes);
            }
        }
        if input.len() > 1 << 16 {
            input.truncate(1 << 16);
        }
    }
}

fn word(rng: &mut Rng) -> String {
    const PARTS: &[&str] = &[
        "cpu", "host", "us-west", "a b", "x,y", "k=v", "é", "\\", "\"q\"", "_", "0", "le",
        "__name__", "job", "mem.used", "",
    ];
    (0..1 + rng.below(3)).map(|_| *rng.pick(PARTS)).collect()
}

fn escaped(text: &str, specials: &[char]) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if specials.contains(&c) || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    if out.is_empty() { "x".into() } else { out }
}

fn seed_line_protocol(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..1 + rng.below(4) {
        out += &escaped(&word(rng), &[' ', ',']);
        for _ in 0..rng.below(4) {
            out += &format!(
                ",{}={}",
                escaped(&word(rng), &[' ', ',', '=']),
                escaped(&word(rng), &[' ', ',', '='])
            );
        }
        out.push(' ');
        let fields: Vec<String> = (0..1 + rng.below(4))
            .map(|_| {
                let value = match rng.below(6) {
                    0 => format!("{}", rng.next_u64() as i64 as f64 / 1e3),
                    1 => format!("{}i", rng.next_u64() as i64),
                    2 => format!("{}u", rng.next_u64()),
                    3 => rng.pick(&["t", "false", "TRUE", "F"]).to_string(),
                    4 => format!(
                        "\"{}\"",
                        word(rng).replace('\\', "\\\\").replace('"', "\\\"")
                    ),
                    _ => rng.pick(NUMBERS).to_string(),
                };
                format!("{}={value}", escaped(&word(rng), &[' ', ',', '=']))
            })
            .collect();
        out += &fields.join(",");
        if rng.chance(2) {
            out += &format!(" {}", rng.next_u64() as i64 >> rng.below(40));
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn run_line_protocol(data: &[u8], _: &Scratch) {
    for (_, line) in line_protocol::lines(data) {
        if let Ok(parsed) = line_protocol::parse_line(line) {
            for precision in [Precision::Nanosecond, Precision::Second] {
                let _ = crate::ingest::to_point(parsed.clone(), precision, 0);
            }
        }
    }
}

fn seed_exposition(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    let open_metrics = rng.chance(2);
    for _ in 0..1 + rng.below(4) {
        let name = ["http_requests_total", "temp", "req_duration_seconds", "up"][rng.below(4)];
        let kind = *rng.pick(&["counter", "gauge", "histogram", "summary", "untyped"]);
        out += &format!("# HELP {name} some \\\\ help\\n\n# TYPE {name} {kind}\n");
        for _ in 0..1 + rng.below(4) {
            let labels: Vec<String> = (0..rng.below(3))
                .map(|_| {
                    format!(
                        "{}=\"{}\"",
                        ["a", "le", "job", "x_y"][rng.below(4)],
                        word(rng).replace('"', "\\\"")
                    )
                })
                .collect();
            let suffix = if kind == "histogram" {
                *rng.pick(&["_bucket", "_sum", "_count"])
            } else {
                ""
            };
            let value = match rng.below(3) {
                0 => format!("{}", rng.next_u64() as i64 as f64 / 7.0),
                1 => rng.pick(NUMBERS).to_string(),
                _ => format!("{}", rng.below(1000)),
            };
            out += &format!("{name}{suffix}{{{}}} {value}", labels.join(","));
            if rng.chance(2) {
                out += &format!(" {}", rng.next_u64() as i64 >> rng.below(30));
            }
            if open_metrics && rng.chance(4) {
                out += " # {trace_id=\"abc\"} 1.0 1.5";
            }
            out.push('\n');
        }
    }
    if open_metrics {
        out += "# EOF\n";
    }
    out.into_bytes()
}

fn run_exposition(data: &[u8], _: &Scratch) {
    for format in [
        exposition::Format::Prometheus,
        exposition::Format::OpenMetrics,
    ] {
        let _ = exposition::parse(data, format);
        // The scrape path: raw samples, series parsed on a cache miss.
        let _ = exposition::for_each_sample(data, format, |raw| {
            let _ = raw.series();
            raw.parse_series().map(|_| ())
        });
    }
}

fn seed_remote_write(rng: &mut Rng) -> Vec<u8> {
    let names: Vec<String> = (0..1 + rng.below(4)).map(|_| word(rng)).collect();
    let values: Vec<String> = (0..names.len()).map(|_| word(rng)).collect();
    let series: Vec<remote_write::Series<'_>> = (0..1 + rng.below(3))
        .map(|_| {
            let labels = names
                .iter()
                .zip(&values)
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .chain(std::iter::once(("__name__", "metric")))
                .collect();
            let samples = (0..rng.below(4))
                .map(|_| {
                    (
                        rng.next_u64() as i64 as f64,
                        rng.next_u64() as i64 >> rng.below(50),
                    )
                })
                .collect();
            (labels, samples)
        })
        .collect();
    remote_write::encode_request(&series)
}

fn run_remote_write(data: &[u8], _: &Scratch) {
    let _ = remote_write::decode_request(data);
}

fn seed_graphite(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..1 + rng.below(4) {
        let path: Vec<String> = (0..1 + rng.below(4))
            .map(|_| word(rng).replace(' ', ""))
            .collect();
        out += &path.join(".");
        if rng.chance(3) {
            out += &format!(";{}={}", word(rng), word(rng));
        }
        out += &format!(" {}", rng.pick(NUMBERS));
        if rng.chance(2) {
            out += &format!(" {}", rng.next_u64() as i64 >> rng.below(40));
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn run_graphite(data: &[u8], _: &Scratch) {
    let text = String::from_utf8_lossy(data);
    let templates = [
        "host.measurement.field*".to_string(),
        "*.app measurement.tags".to_string(),
    ];
    let mapping = graphite::Mapping::new(&templates, ".").expect("valid templates");
    let _ = graphite::parse_lines(&text, 1, &mapping, 1_700_000_000_000_000_000);
    let _ = graphite::parse_lines(&text, 1, &graphite::Mapping::default(), 0);
}

fn seed_sql(rng: &mut Rng) -> Vec<u8> {
    const STATEMENTS: &[&str] = &[
        "DELETE FROM cpu WHERE host = 'a' AND time >= '2024-01-01T00:00:00Z' AND time < now() - INTERVAL '1 hour'",
        "CREATE ALERT high_cpu EVERY '1m' FOR '5m' KEEP FIRING FOR '10m' LABELS (severity = 'page') AS SELECT host, max(usage) AS value FROM cpu GROUP BY host",
        "SELECT * FROM backtest('high_cpu', '2024-01-01', '2024-01-02', '1m')",
        "CREATE DATABASE metrics WITH (ttl = '30 days')",
        "ALTER TABLE cpu SET (ttl = '10000000000000000000s')",
        "SET statement_timeout = '1.5 s'; SHOW TimeZone; DISCARD ALL",
        "SELECT date_trunc('minute', time), max(v) FROM cpu WHERE host IN ('a', 'b') GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
        "SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC",
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(cpu)$' COLLATE pg_catalog.default",
        "SELECT array(SELECT unnest(ARRAY[1,2])), set_config('search_path', '', false), $1::int, E'\\x00'",
        "DROP ALERT IF EXISTS x; PAUSE ALERT y; RESUME ALERT z; SHOW ALERTS",
        "SELECT * FROM generate_series(1, 10) AS g(n) WHERE n IN (SELECT 1)",
    ];
    let mut sql = rng.pick(STATEMENTS).to_string();
    if rng.chance(2) {
        sql += ";";
        sql += *rng.pick(STATEMENTS);
    }
    sql.into_bytes()
}

fn run_sql(data: &[u8], _: &Scratch) {
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    let sql = String::from_utf8_lossy(data);
    let _ = crate::query::statements::split(&sql);
    let _ = crate::query::statements::show_alerts(&sql);
    let _ = crate::query::statements::parse(&sql);
    let _ = crate::pg::bind::parameter_count(&sql);
    let _ = crate::duration::parse(&sql);
    let _ = crate::duration::parse_setting_ms(&sql);
    if let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, &sql) {
        for mut statement in statements {
            let _ = crate::pg::rewrite::rewrite(&mut statement, &|_| None, &|_| None);
        }
    }
}

fn seed_pg_messages(rng: &mut Rng) -> Vec<u8> {
    fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    if rng.chance(2) {
        let mut startup = 196_608u32.to_be_bytes().to_vec();
        startup.extend_from_slice(b"user\0u\0database\0d\0application_name\0x\0\0");
        out.extend_from_slice(&(startup.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(&startup);
    }
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 => message(&mut out, b'Q', b"SELECT 1\0"),
            1 => message(&mut out, b'P', b"s1\0SELECT $1\0\x00\x01\x00\x00\x00\x17"),
            2 => message(
                &mut out,
                b'B',
                b"\0s1\0\x00\x01\x00\x01\x00\x01\x00\x00\x00\x04\x00\x00\x00\x07\x00\x01\x00\x00",
            ),
            3 => message(&mut out, b'E', b"\0\x00\x00\x00\x0a"),
            4 => message(&mut out, b'D', b"S\0"),
            _ => message(&mut out, b'S', b""),
        }
    }
    out
}

fn run_pg_messages(data: &[u8], _: &Scratch) {
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
    for startup in [true, false] {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = startup;
        ctx.awaiting_frontend_startup = startup;
        let mut buf = bytes::BytesMut::from(data);
        for _ in 0..64 {
            match PgWireFrontendMessage::decode(&mut buf, &ctx) {
                Ok(Some(_)) => {
                    ctx.awaiting_frontend_ssl = false;
                    ctx.awaiting_frontend_startup = false;
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
}

fn random_points(rng: &mut Rng) -> Vec<Point> {
    (0..1 + rng.below(6))
        .map(|i| Point {
            table: ["cpu", "mem", "é"][rng.below(3)].to_string(),
            tags: (0..rng.below(3))
                .map(|k| (format!("t{k}"), word(rng)))
                .collect(),
            fields: vec![
                ("f".to_string(), Value::Float(rng.next_u64() as f64)),
                ("i".to_string(), Value::Integer(rng.next_u64() as i64)),
                ("s".to_string(), Value::String(word(rng))),
                ("b".to_string(), Value::Boolean(rng.chance(2))),
                ("u".to_string(), Value::UInteger(rng.next_u64())),
            ]
            .into_iter()
            .take(1 + rng.below(5))
            .collect(),
            time: 1_700_000_000_000_000_000 + i as i64 * 1_000_000_000,
        })
        .collect()
}

/// A WAL file of a few records of points, as the writer frames them.
fn seed_wal_file(rng: &mut Rng) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = wal::WalWriter::create(dir.path(), 1).expect("create a WAL");
    for _ in 0..1 + rng.below(3) {
        let points = random_points(rng);
        let refs: Vec<&Point> = points.iter().collect();
        writer.append_points("db", &refs).expect("append");
    }
    writer.commit(false).expect("commit");
    drop(writer);
    std::fs::read(dir.path().join(wal::file_name(1))).expect("read the WAL back")
}

fn seed_wal_record(rng: &mut Rng) -> Vec<u8> {
    let file = seed_wal_file(rng);
    // Frames after the 8-byte header: length, CRC, payload.
    let len = u32::from_le_bytes(file[8..12].try_into().expect("4")) as usize;
    file[16..16 + len].to_vec()
}

fn run_wal_record(data: &[u8], _: &Scratch) {
    let _ = wal::FileReplay::default().decode(data);
    let _ = wal::decode_batch(data);
}

/// Recomputes the CRC of every frame whose length fits, so mutated payloads are decoded.
fn fix_wal_crcs(file: &mut [u8]) {
    let mut at = 8;
    while at + 8 <= file.len() {
        let len = u32::from_le_bytes(file[at..at + 4].try_into().expect("4")) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|end| *end <= file.len()) else {
            return;
        };
        let crc = crc32c::crc32c(&file[at + 8..end]);
        file[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn run_wal_file(data: &[u8], scratch: &Scratch) {
    let dir = scratch.dir.path();
    std::fs::write(dir.join(wal::file_name(7)), data).expect("write the input");
    if let Ok(read) = wal::read_file(dir, 7) {
        let mut replay = wal::FileReplay::default();
        for record in &read.records {
            let _ = replay.decode(record);
        }
    }
}

const BLOCK_TYPES: [FieldType; 5] = [
    FieldType::Float,
    FieldType::Integer,
    FieldType::UInteger,
    FieldType::String,
    FieldType::Boolean,
];

/// A column block: a type byte, a row count byte, then the encoded column.
fn seed_column_block(rng: &mut Rng) -> Vec<u8> {
    use crate::storage::rows::Column;
    let rows = 1 + rng.below(40);
    let ty = rng.below(BLOCK_TYPES.len());
    let some = |rng: &mut Rng| !rng.chance(5);
    let column = match BLOCK_TYPES[ty] {
        FieldType::Float => Column::Float(
            (0..rows)
                .map(|i| {
                    some(rng).then_some(if rng.chance(2) {
                        i as f64 * 0.5
                    } else {
                        rng.next_u64() as f64
                    })
                })
                .collect(),
        ),
        FieldType::Integer => Column::Integer(
            (0..rows)
                .map(|i| some(rng).then_some(i as i64 * 3 - (rng.below(5) as i64)))
                .collect(),
        ),
        FieldType::UInteger => Column::UInteger(
            (0..rows)
                .map(|_| some(rng).then_some(rng.next_u64()))
                .collect(),
        ),
        FieldType::String => {
            Column::String((0..rows).map(|_| some(rng).then(|| word(rng))).collect())
        }
        FieldType::Boolean => Column::Boolean(
            (0..rows)
                .map(|_| some(rng).then(|| rng.chance(2)))
                .collect(),
        ),
    };
    let (block, _) = crate::storage::codec::encode_column(&column);
    let mut out = vec![ty as u8, rows as u8];
    if rng.chance(2) {
        // A time block instead.
        out[0] = 0xff;
        let times: Vec<i64> = (0..rows)
            .map(|i| 1_700_000_000 + i as i64 * rng.below(1000) as i64)
            .collect();
        out.extend_from_slice(&crate::storage::codec::encode_time(&times));
    } else {
        out.extend_from_slice(&block);
    }
    out
}

fn run_column_block(data: &[u8], _: &Scratch) {
    let [ty, rows, block @ ..] = data else { return };
    let rows = *rows as usize;
    match BLOCK_TYPES.get(*ty as usize) {
        Some(ty) => {
            let _ = crate::storage::codec::decode_column(block, *ty, rows);
        }
        None => {
            let _ = crate::storage::codec::decode_time(block, rows);
        }
    }
}

/// A segment file as a flush writes it.
fn seed_segment_file(rng: &mut Rng) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine =
        crate::storage::Engine::open(dir.path(), StorageConfig::default()).expect("open an engine");
    let points = random_points(rng);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(engine.write(
            "db",
            points,
            crate::storage::WriteOptions {
                accept_partial: true,
                sync: false,
            },
        ))
        .expect("write");
    engine.flush().expect("flush");
    let file = find_segment(dir.path()).expect("the flush wrote a segment");
    let bytes = std::fs::read(file).expect("read the segment");
    engine.shutdown();
    bytes
}

fn find_segment(dir: &Path) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_segment(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "seg") {
            return Some(path);
        }
    }
    None
}

/// Recomputes the footer CRC (the trailer is the last 16 bytes: length, CRC, magic).
fn fix_segment_footer_crc(file: &mut [u8]) {
    let len = file.len();
    if len < 24 {
        return;
    }
    let flen = u32::from_le_bytes(file[len - 16..len - 12].try_into().expect("4")) as usize;
    if flen + 24 > len {
        return;
    }
    let crc = crc32c::crc32c(&file[len - 16 - flen..len - 16]);
    file[len - 12..len - 8].copy_from_slice(&crc.to_le_bytes());
}

fn run_segment_file(data: &[u8], scratch: &Scratch) {
    let path = scratch.dir.path().join(segment::file_name(1, 0));
    std::fs::write(&path, data).expect("write the input");
    let _ = segment::verify_file(&path);
    let mut registry = crate::storage::schema::SeriesRegistry::default();
    if let Ok(seg) = segment::Segment::open(&path, &mut registry)
        && let Ok((footer, _)) = segment::read_footer(&path)
    {
        let _ = seg.read(TimeRange::ALL, None, &footer.fields);
    }
}
