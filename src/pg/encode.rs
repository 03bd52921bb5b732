//! Arrow results → Postgres rows, in PostgreSQL's own text forms.
//!
//! `arrow-pg` encodes most types; this module wraps it and takes over the ones whose text
//! form drivers and people read: `float8`/`float4` print as PostgreSQL prints them (`20`,
//! `1e+20`, `0.1`, shortest round-trip digits unless `extra_float_digits` < 1) and
//! timestamps print as `2016-01-01 00:00:10+00`, with `.ffffff` only when needed and
//! `timestamptz` shown in the session's `TimeZone`; intervals print as `1 day 02:00:03.5`.
//! Binary forms are PostgreSQL's too
//! (timestamps as microseconds since 2000-01-01).

use std::error::Error;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Timelike, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Schema, TimeUnit, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion_postgres::arrow_pg;
use datafusion_postgres::pgwire;
use futures::{Stream, StreamExt, stream};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};

pub use crate::query::float_text::format_float;

/// How values are shown to one session.
#[derive(Clone, Debug)]
pub struct OutputOptions {
    /// `extra_float_digits`: ≥ 1 shortest round-trip digits; otherwise 15 (6 for `float4`)
    /// plus this many significant digits.
    pub extra_float_digits: i32,
    /// The session's `TimeZone`, for `timestamptz` text.
    pub time_zone: SessionZone,
    /// The rest, for arrow-pg's encoders (`DateStyle`, `IntervalStyle`, `bytea_output`).
    pub format: Arc<FormatOptions>,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            extra_float_digits: 1,
            time_zone: SessionZone::Utc,
            format: Arc::new(FormatOptions::default()),
        }
    }
}

/// A session time zone: UTC, a fixed offset, or a named IANA zone.
#[derive(Clone, Copy, Debug)]
pub enum SessionZone {
    Utc,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl SessionZone {
    /// Parses a `TimeZone` value as PostgreSQL accepts the common forms: `UTC`, `GMT`,
    /// `Z`, IANA names (`Europe/Berlin`), and offsets (`+05:30`, `-8`). Note that a POSIX
    /// offset such as `UTC+3` is not accepted (PostgreSQL's sign convention for it is the
    /// reverse of ISO's, a classic trap).
    pub fn parse(text: &str) -> Option<SessionZone> {
        let t = text.trim();
        if ["utc", "gmt", "z", "zulu", "etc/utc", "etc/gmt", "universal"]
            .contains(&t.to_ascii_lowercase().as_str())
        {
            return Some(SessionZone::Utc);
        }
        if let Some(offset) = parse_offset(t) {
            return Some(SessionZone::Fixed(offset));
        }
        let tz: chrono_tz::Tz = t.parse().ok().or_else(|| {
            // Case-insensitive match, as PostgreSQL's zone lookup is.
            chrono_tz::TZ_VARIANTS
                .iter()
                .find(|z| z.name().eq_ignore_ascii_case(t))
                .copied()
        })?;
        Some(SessionZone::Named(tz))
    }

    fn offset_at(&self, utc: &DateTime<Utc>) -> FixedOffset {
        match self {
            SessionZone::Utc => FixedOffset::east_opt(0).expect("zero offset"),
            SessionZone::Fixed(o) => *o,
            SessionZone::Named(tz) => tz.offset_from_utc_datetime(&utc.naive_utc()).fix(),
        }
    }
}

/// `+05:30`, `-08`, `+0530`, `5` (hours east of UTC, ISO 8601 sign).
fn parse_offset(t: &str) -> Option<FixedOffset> {
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        b'0'..=b'9' => (1, t),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        // Byte slicing: only for ASCII text (client bytes may be anything).
        None if rest.len() == 4 && rest.is_ascii() => {
            (rest[..2].parse().ok()?, rest[2..].parse().ok()?)
        }
        None => (rest.parse::<i32>().ok()?, 0),
    };
    if h > 15 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A float with PostgreSQL's text form (binary form unchanged).
#[derive(Debug)]
struct PgFloat {
    value: f64,
    single: bool,
    extra_float_digits: i32,
}

impl ToSql for PgFloat {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if self.single {
            (self.value as f32).to_sql(ty, out)
        } else {
            self.value.to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::FLOAT4 | Type::FLOAT8)
    }

    to_sql_checked!();
}

impl ToSqlText for PgFloat {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(format_float(self.value, self.extra_float_digits, self.single).as_bytes());
        Ok(IsNull::No)
    }
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A timestamp (microseconds since 1970, UTC) with PostgreSQL's text and binary forms.
#[derive(Debug)]
struct PgTimestamp {
    micros: i64,
    /// `timestamptz`: shown in this zone with its offset. `None`: `timestamp`, no zone.
    zone: Option<SessionZone>,
}

impl ToSql for PgTimestamp {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_i64(self.micros - PG_EPOCH_MICROS);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }

    to_sql_checked!();
}

impl ToSqlText for PgTimestamp {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(format_timestamp(self.micros, self.zone.as_ref()).as_bytes());
        Ok(IsNull::No)
    }
}

/// PostgreSQL's ISO timestamp text: `2016-01-01 00:00:10+00`, `… 00:00:10.25+05:30`.
pub fn format_timestamp(micros: i64, zone: Option<&SessionZone>) -> String {
    let utc = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    let (local, offset) = match zone {
        Some(z) => {
            let offset = z.offset_at(&utc);
            (utc.with_timezone(&offset).naive_local(), Some(offset))
        }
        None => (utc.naive_utc(), None),
    };
    let year = local.year();
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        if year <= 0 { 1 - year } else { year },
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    let frac = local.nanosecond() / 1000;
    if frac != 0 {
        let f = format!(".{frac:06}");
        s.push_str(f.trim_end_matches('0'));
    }
    if let Some(offset) = offset {
        let secs = offset.local_minus_utc();
        let sign = if secs < 0 { '-' } else { '+' };
        let secs = secs.abs();
        s.push_str(&format!("{sign}{:02}", secs / 3600));
        if secs % 3600 != 0 {
            s.push_str(&format!(":{:02}", secs % 3600 / 60));
            if secs % 60 != 0 {
                s.push_str(&format!(":{:02}", secs % 60));
            }
        }
    }
    if year <= 0 {
        s.push_str(" BC");
    }
    s
}

/// An interval with PostgreSQL's text form (`IntervalStyle` `postgres`: `1 day 02:00:03.5`)
/// and binary form (microseconds, days, months).
#[derive(Debug)]
struct PgInterval {
    months: i32,
    days: i32,
    micros: i64,
}

impl ToSql for PgInterval {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INTERVAL)
    }

    to_sql_checked!();
}

impl ToSqlText for PgInterval {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(format_interval(self.months, self.days, self.micros).as_bytes());
        Ok(IsNull::No)
    }
}

/// PostgreSQL's `interval_out` in the default `postgres` style: `1 year 2 mons 3 days
/// 04:05:06.5`, `-1 days +02:00:00`, `00:00:00` for zero; hours beyond 24 stay hours.
pub fn format_interval(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    // Whether the last field printed was negative: a positive one after it gets a `+`.
    let mut before_negative = false;
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if before_negative && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value != 1 { "s" } else { "" }
        ));
        before_negative = value < 0;
    }
    if micros != 0 || out.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        } else if before_negative {
            out.push('+');
        }
        let abs = micros.unsigned_abs();
        let secs = abs / 1_000_000;
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
        let frac = abs % 1_000_000;
        if frac != 0 {
            let f = format!(".{frac:06}");
            out.push_str(f.trim_end_matches('0'));
        }
    }
    out
}

/// Timestamp array value → microseconds since 1970 (nanoseconds are floored, as
/// PostgreSQL keeps microseconds).
fn timestamp_micros(array: &ArrayRef, unit: &TimeUnit, idx: usize) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(idx) * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(idx) * 1000,
        TimeUnit::Microsecond => array
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("microsecond timestamps")
            .value(idx),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(idx)
            .div_euclid(1000),
    }
}

/// Encodes one value of `array` into the row being built.
fn encode_value(
    encoder: &mut DataRowEncoder,
    array: &ArrayRef,
    idx: usize,
    arrow_field: &Field,
    pg_field: &FieldInfo,
    options: &OutputOptions,
) -> PgWireResult<()> {
    // arrow-pg's Encoder: encodes with the field's type, format and format options.
    use arrow_pg::encoder::Encoder;
    let present = !array.is_null(idx);
    let float = |value: f64, single: bool| {
        present.then_some(PgFloat {
            value,
            single,
            extra_float_digits: options.extra_float_digits,
        })
    };
    match arrow_field.data_type() {
        DataType::Float64 => Encoder::encode_field(
            encoder,
            &float(array.as_primitive::<Float64Type>().value(idx), false),
            pg_field,
        ),
        DataType::Float32 => Encoder::encode_field(
            encoder,
            &float(array.as_primitive::<Float32Type>().value(idx) as f64, true),
            pg_field,
        ),
        DataType::Timestamp(unit, tz) => {
            let value = present.then(|| PgTimestamp {
                micros: timestamp_micros(array, unit, idx),
                zone: tz.as_ref().map(|_| options.time_zone),
            });
            Encoder::encode_field(encoder, &value, pg_field)
        }
        DataType::Interval(unit) => {
            let value = present.then(|| interval_parts(array, unit, idx));
            Encoder::encode_field(encoder, &value, pg_field)
        }
        _ => arrow_pg::encoder::encode_value(encoder, array, idx, arrow_field, pg_field),
    }
}

/// An interval array value as PostgreSQL's (months, days, microseconds).
fn interval_parts(array: &ArrayRef, unit: &IntervalUnit, idx: usize) -> PgInterval {
    match unit {
        IntervalUnit::YearMonth => PgInterval {
            months: array.as_primitive::<IntervalYearMonthType>().value(idx),
            days: 0,
            micros: 0,
        },
        IntervalUnit::DayTime => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(idx);
            PgInterval {
                months: 0,
                days: v.days,
                micros: v.milliseconds as i64 * 1000,
            }
        }
        IntervalUnit::MonthDayNano => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(idx);
            PgInterval {
                months: v.months,
                days: v.days,
                micros: v.nanoseconds / 1000,
            }
        }
    }
}

/// Encodes a record batch into rows.
fn encode_batch(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
    options: &OutputOptions,
) -> Vec<PgWireResult<DataRow>> {
    let schema = batch.schema();
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for idx in 0..batch.num_rows() {
        let mut failed = None;
        for col in 0..batch.num_columns() {
            if let Err(e) = encode_value(
                &mut encoder,
                batch.column(col),
                idx,
                schema.field(col),
                &fields[col],
                options,
            ) {
                failed = Some(e);
                break;
            }
        }
        match failed {
            Some(e) => {
                // Start the next row clean, then report the error once.
                let _ = encoder.take_row();
                rows.push(Err(e));
                return rows;
            }
            None => rows.push(Ok(encoder.take_row())),
        }
    }
    rows
}

/// The wire description of result columns: arrow-pg's type mapping, with the column
/// names as the client should see them (see [`crate::pg::rewrite::display_name`]).
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let mut fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)?;
    for f in fields.iter_mut() {
        let name = super::rewrite::display_name(f.name());
        if name != f.name() {
            *f = FieldInfo::new(
                name.to_string(),
                f.table_id(),
                f.column_id(),
                f.datatype().clone(),
                f.format(),
            );
        }
    }
    Ok(fields)
}

/// What may end a statement early.
#[derive(Default)]
pub struct Limits {
    /// `statement_timeout`.
    pub deadline: Option<tokio::time::Instant>,
    /// Cancelled when a CancelRequest for the connection arrives.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// Lists the statement as running until its rows are sent.
    pub running: Option<crate::query::activity::Registration>,
    /// Keeps the connection from counting as idle until its rows are sent.
    pub busy: Option<super::limits::Busy>,
}

/// Streams a result as rows; the stream ends with a 57014 error if the deadline passes or
/// the statement is canceled first.
pub fn query_response(
    schema: &Schema,
    batches: impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static,
    format: &Format,
    options: OutputOptions,
    limits: Limits,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(
        fields(schema, format)?
            .into_iter()
            .map(|f| f.with_format_options(options.format.clone()))
            .collect::<Vec<_>>(),
    );
    let fields_ref = fields.clone();
    let rows = batches
        .map(move |batch| match batch {
            Ok(batch) => encode_batch(&fields_ref, &batch, &options),
            Err(e) => vec![Err(PgWireError::ApiError(Box::new(e)))],
        })
        .flat_map(stream::iter);
    let rows: std::pin::Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>> =
        if limits.deadline.is_none() && limits.cancel.is_none() {
            Box::pin(rows)
        } else {
            Box::pin(with_limits(rows, limits))
        };
    Ok(QueryResponse::new(fields, rows))
}

/// Ends `rows` with a `57014` error once the deadline passes or a cancel arrives.
fn with_limits(
    rows: impl Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    limits: Limits,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send {
    let rows = Box::pin(rows);
    stream::unfold(Some((rows, limits)), move |state| async move {
        let (mut rows, limits) = state?;
        let deadline = limits.deadline;
        let timeout = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cancel = limits.cancel.clone();
        let cancel_request = async move {
            match cancel {
                Some(token) => token.cancelled_owned().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = rows.next() => next.map(|row| (row, Some((rows, limits)))),
            _ = timeout => Some((Err(statement_timeout()), None)),
            _ = cancel_request => Some((Err(canceled()), None)),
        }
    })
}

/// The error PostgreSQL sends when a CancelRequest stops a statement.
pub fn canceled() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        crate::error::SqlState::QUERY_CANCELED.code().to_string(),
        "canceling statement due to user request".to_string(),
    )))
}

/// The error PostgreSQL sends when `statement_timeout` expires.
pub fn statement_timeout() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        crate::error::SqlState::QUERY_CANCELED.code().to_string(),
        "canceling statement due to statement timeout".to_string(),
    )))
}

/// A schema of nullable text columns (what `SHOW` answers).
pub fn text_schema<S: AsRef<str>>(columns: &[S]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.as_ref(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    )
}

/// A small all-text result (for `SHOW` and similar), encoded like any other.
pub fn text_rows<S: AsRef<str>>(
    columns: &[S],
    rows: Vec<Vec<Option<String>>>,
    format: &Format,
    options: OutputOptions,
) -> PgWireResult<QueryResponse> {
    let schema = Arc::new(text_schema(columns));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    query_response(
        &schema,
        stream::iter([Ok(batch)]),
        format,
        options,
        Limits::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgres() {
        let f = |v: f64| format_float(v, 1, false);
        assert_eq!(f(20.0), "20");
        assert_eq!(f(30.25), "30.25");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-1.5), "-1.5");
        assert_eq!(f(1e20), "1e+20");
        assert_eq!(f(1.5e-5), "1.5e-05");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(123456789012345.0), "123456789012345");
        assert_eq!(f(1e15), "1e+15");
        assert_eq!(f(1714557660.123456), "1714557660.123456");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(1e100), "1e+100");
        // extra_float_digits = 0: 15 significant digits, %g style.
        assert_eq!(format_float(0.1 + 0.2, 0, false), "0.3");
        assert_eq!(format_float(1e20, 0, false), "1e+20");
        assert_eq!(format_float(123.456, 0, false), "123.456");
        assert_eq!(format_float(1.0 / 3.0, -3, false), "0.333333333333");
        // float4
        assert_eq!(format_float(1.1f32 as f64, 1, true), "1.1");
        assert_eq!(format_float(1.1f32 as f64, 0, true), "1.1");
    }

    #[test]
    fn intervals_print_like_postgres() {
        let hour = 3_600_000_000;
        assert_eq!(format_interval(0, 0, 0), "00:00:00");
        assert_eq!(format_interval(0, 1, 0), "1 day");
        assert_eq!(
            format_interval(0, 1, 2 * hour + 3_500_000),
            "1 day 02:00:03.5"
        );
        assert_eq!(format_interval(14, 3, 0), "1 year 2 mons 3 days");
        assert_eq!(format_interval(0, -1, 2 * hour), "-1 days +02:00:00");
        assert_eq!(format_interval(0, 0, -300_000_000), "-00:05:00");
        assert_eq!(format_interval(0, 0, 36 * hour), "36:00:00");
        assert_eq!(format_interval(-1, 0, 0), "-1 mons");
    }

    #[test]
    fn timestamps_print_like_postgres() {
        let utc = Some(&SessionZone::Utc);
        assert_eq!(
            format_timestamp(1_451_606_410_000_000, utc),
            "2016-01-01 00:00:10+00"
        );
        assert_eq!(
            format_timestamp(1_451_606_410_250_000, utc),
            "2016-01-01 00:00:10.25+00"
        );
        assert_eq!(
            format_timestamp(1_451_606_410_000_001, None),
            "2016-01-01 00:00:10.000001"
        );
        let kolkata = SessionZone::parse("Asia/Kolkata").unwrap();
        assert_eq!(
            format_timestamp(1_451_606_410_000_000, Some(&kolkata)),
            "2016-01-01 05:30:10+05:30"
        );
        let berlin = SessionZone::parse("europe/berlin").unwrap();
        assert_eq!(
            format_timestamp(1_467_331_200_000_000, Some(&berlin)),
            "2016-07-01 02:00:00+02"
        );
        let fixed = SessionZone::parse("-08:00").unwrap();
        assert_eq!(
            format_timestamp(1_451_606_410_000_000, Some(&fixed)),
            "2015-12-31 16:00:10-08"
        );
        assert!(SessionZone::parse("Mars/Olympus").is_none());
        for text in ["1é9", "+1é9", "-é12", "é"] {
            assert!(SessionZone::parse(text).is_none(), "{text}");
        }
    }

    proptest::proptest! {
        /// Any text a client sends as TimeZone parses or is refused, never panics.
        #[test]
        fn zone_parsing_never_panics(text in "\\PC{0,8}") {
            let _ = SessionZone::parse(&text);
        }
    }
}
