//! Ingest: turns InfluxDB line protocol bodies into points for the storage engine, with
//! per-line errors (line number, reason) for the lines that cannot be stored.

pub mod graphite;
pub mod line_protocol;
pub mod remote_write;

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::{Classify, Kind};
use crate::metrics::Metrics;
pub use crate::storage::{
    DEFAULT_DATABASE, PreparedSeries, SchemaError, TableSamples, WriteOutcome,
};
use crate::storage::{Engine, Point, Value, WriteOptions};
use line_protocol::{FieldValue, ParsedLine};

/// Timestamp precision of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    /// Guess per timestamp from its magnitude (InfluxDB 3's `auto`).
    Auto,
}

/// Which API named the precision; each accepts its own spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1,
    V2,
    V3,
}

impl Precision {
    /// Parses a `precision` query parameter as the given API spells it.
    pub fn parse(s: &str, api: Api) -> Option<Precision> {
        Some(match (s, api) {
            ("ns" | "nanosecond", _) => Precision::Nanosecond,
            ("us" | "microsecond", _) => Precision::Microsecond,
            ("ms" | "millisecond", _) => Precision::Millisecond,
            ("s" | "second", _) => Precision::Second,
            ("n", Api::V1) => Precision::Nanosecond,
            ("u", Api::V1) => Precision::Microsecond,
            ("m", Api::V1) => Precision::Minute,
            ("h", Api::V1) => Precision::Hour,
            ("auto", Api::V3) => Precision::Auto,
            _ => return None,
        })
    }

    /// Converts a timestamp in this precision to nanoseconds; `None` when out of range.
    pub fn to_nanos(self, ts: i64) -> Option<i64> {
        let factor: i64 = match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => 1_000_000_000,
            Precision::Minute => 60_000_000_000,
            Precision::Hour => 3_600_000_000_000,
            Precision::Auto => {
                let a = ts.unsigned_abs();
                if a < 5_000_000_000 {
                    1_000_000_000
                } else if a < 5_000_000_000_000 {
                    1_000_000
                } else if a < 5_000_000_000_000_000 {
                    1_000
                } else {
                    1
                }
            }
        };
        ts.checked_mul(factor)
    }
}

/// A line that was not stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LineError {
    pub original_line: String,
    pub line_number: usize,
    pub error_message: String,
}

/// The result of a line protocol write.
#[derive(Debug, Default)]
pub struct WriteSummary {
    pub lines_stored: usize,
    pub errors: Vec<LineError>,
}

/// Errors that are not about individual lines.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Storage(e) => e.kind(),
            Error::Internal(_) => Kind::Internal,
        }
    }
}

/// How to treat a request body.
#[derive(Debug, Clone, Copy)]
pub struct WriteParams {
    pub precision: Precision,
    pub accept_partial: bool,
    pub sync: bool,
}

/// The one entry point of every write path (HTTP line protocol and remote write, Graphite,
/// scrapes): parses what needs parsing, stores through the engine, and counts rows, bytes
/// and errors by protocol into the server's [`Metrics`].
pub struct Ingester {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

const MAX_ORIGINAL_LINE: usize = 256;

fn line_error(line_number: usize, line: &[u8], message: String) -> LineError {
    let mut original = String::from_utf8_lossy(line).into_owned();
    if original.len() > MAX_ORIGINAL_LINE {
        let mut cut = MAX_ORIGINAL_LINE;
        while !original.is_char_boundary(cut) {
            cut -= 1;
        }
        original.truncate(cut);
    }
    LineError {
        original_line: original,
        line_number,
        error_message: message,
    }
}

/// Converts a parsed line to a point with a nanosecond timestamp.
pub fn to_point(
    line: ParsedLine<'_>,
    precision: Precision,
    default_time: i64,
) -> Result<Point, String> {
    let time = match line.timestamp {
        Some(ts) => precision
            .to_nanos(ts)
            .ok_or_else(|| format!("timestamp {ts} is out of range for precision"))?,
        None => default_time,
    };
    Ok(Point {
        table: line.measurement.into_owned(),
        tags: line
            .tags
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        fields: line
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    FieldValue::Float(x) => Value::Float(x),
                    FieldValue::Integer(x) => Value::Integer(x),
                    FieldValue::UInteger(x) => Value::UInteger(x),
                    FieldValue::String(x) => Value::String(x.into_owned()),
                    FieldValue::Boolean(x) => Value::Boolean(x),
                };
                (k.into_owned(), v)
            })
            .collect(),
        time,
    })
}

/// A parsed body: the points, where each came from, and the lines that failed to parse.
struct ParsedBody {
    points: Vec<Point>,
    /// Line number and byte range in the body of each point.
    origins: Vec<(usize, std::ops::Range<usize>)>,
    errors: Vec<LineError>,
}

fn parse_body(body: &[u8], precision: Precision, now: i64) -> ParsedBody {
    let mut out = ParsedBody {
        points: Vec::new(),
        origins: Vec::new(),
        errors: Vec::new(),
    };
    let base = body.as_ptr() as usize;
    for (n, line) in line_protocol::lines(body) {
        let parsed = line_protocol::parse_line(line)
            .map_err(|e| e.to_string())
            .and_then(|p| to_point(p, precision, now));
        match parsed {
            Ok(p) => {
                let start = line.as_ptr() as usize - base;
                out.points.push(p);
                out.origins.push((n, start..start + line.len()));
            }
            Err(msg) => out.errors.push(line_error(n, line, msg)),
        }
    }
    out
}

impl Ingester {
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Ingester {
        Ingester {
            engine,
            clock,
            metrics,
        }
    }

    /// The storage engine it writes to.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The server's self-metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The server's clock.
    pub fn now_nanos(&self) -> i64 {
        self.clock.now_nanos()
    }

    /// Stores points parsed elsewhere (Graphite), durably and partially: the outcome names
    /// the rejected ones. Rows and rejections are counted under `protocol`.
    pub async fn write_points(
        &self,
        db: &str,
        points: Vec<Point>,
        protocol: &str,
    ) -> Result<WriteOutcome, Error> {
        let opts = WriteOptions {
            accept_partial: true,
            sync: true,
        };
        let outcome = self.engine.write(db, points, opts).await?;
        self.count(protocol, outcome.stored, outcome.rejected.len());
        Ok(outcome)
    }

    /// Stores float samples of prepared series (the scrape fast path, see
    /// [`Engine::write_samples`]), counted under `protocol`.
    pub async fn write_samples(
        &self,
        db: &str,
        tables: Vec<TableSamples>,
        protocol: &str,
    ) -> Result<WriteOutcome, Error> {
        let outcome = self.engine.write_samples(db, tables, true).await?;
        self.count(protocol, outcome.stored, outcome.rejected.len());
        Ok(outcome)
    }

    fn count(&self, protocol: &str, stored: usize, rejected: usize) {
        self.metrics.rows_ingested.add(protocol, stored as u64);
        if rejected > 0 {
            self.metrics.write_errors.add(protocol, rejected as u64);
        }
    }

    /// Stores a Prometheus remote-write body (snappy + protobuf, at most `limit` bytes
    /// once decompressed) in `db`, durably. `Ok` carries the rejected samples' reasons
    /// (say a series with a `time` label, or a float written to an integer column).
    pub async fn write_remote(
        &self,
        db: &str,
        body: bytes::Bytes,
        limit: usize,
    ) -> Result<Result<Vec<String>, remote_write::DecodeError>, Error> {
        self.metrics
            .bytes_ingested
            .add("remote_write", body.len() as u64);
        let decoded = tokio::task::spawn_blocking(move || remote_write::decode(&body, limit))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                self.metrics.write_errors.add("remote_write", 1);
                return Ok(Err(e));
            }
        };
        let mut rejected = decoded.invalid;
        if !rejected.is_empty() {
            self.metrics
                .write_errors
                .add("remote_write", rejected.len() as u64);
        }
        if !decoded.tables.is_empty() {
            let outcome = self
                .write_samples(db, decoded.tables, "remote_write")
                .await?;
            rejected.extend(outcome.rejected.iter().map(|(_, e)| e.to_string()));
        }
        Ok(Ok(rejected))
    }

    /// Parses `body` (off the async threads) and stores its points in `db`. Lines that fail
    /// to parse or do not fit their table are reported; the others are stored unless
    /// `accept_partial` is off.
    pub async fn write_lp(
        &self,
        db: &str,
        body: bytes::Bytes,
        params: WriteParams,
    ) -> Result<WriteSummary, Error> {
        let now = self.clock.now_nanos();
        self.metrics
            .bytes_ingested
            .add("line_protocol", body.len() as u64);
        let (body, parsed) = tokio::task::spawn_blocking(move || {
            let parsed = parse_body(&body, params.precision, now);
            (body, parsed)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let ParsedBody {
            points,
            origins,
            mut errors,
        } = parsed;
        if !params.accept_partial && !errors.is_empty() {
            return Ok(WriteSummary {
                lines_stored: 0,
                errors,
            });
        }
        let mut stored = 0;
        if !points.is_empty() {
            let outcome = self
                .engine
                .write(
                    db,
                    points,
                    WriteOptions {
                        accept_partial: params.accept_partial,
                        sync: params.sync,
                    },
                )
                .await?;
            stored = outcome.stored;
            for (i, e) in outcome.rejected {
                let (n, range) = origins[i].clone();
                errors.push(line_error(n, &body[range], e.to_string()));
            }
            errors.sort_by_key(|e| e.line_number);
        }
        self.count("line_protocol", stored, errors.len());
        Ok(WriteSummary {
            lines_stored: stored,
            errors,
        })
    }
}
