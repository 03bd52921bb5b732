//! PostgreSQL functions that drivers call on their own: `version()` (SQLAlchemy parses
//! it, so it must begin `PostgreSQL 16.x`) and `current_setting(name)` (Grafana reads
//! `server_version_num` from it).

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

/// `version()`'s text.
pub fn version_text() -> String {
    format!(
        "PostgreSQL 16.6 on {}-pc-linux-gnu, compiled by rustc, 64-bit (Sundial {})",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

fn current_setting_udf() -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |name: &str| {
                // Sessions substitute their own values before planning (pg::rewrite);
                // this answers where there is no session.
                super::settings::default_value(name).ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "unrecognized configuration parameter \"{name}\""
                    ))
                })
            };
            match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) => Ok(ColumnarValue::Scalar(
                    ScalarValue::Utf8(Some(lookup(name)?)),
                )),
                ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
                ColumnarValue::Array(a) => {
                    let names = a.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                        DataFusionError::Plan("current_setting takes text".into())
                    })?;
                    let values: Vec<Option<String>> = (0..names.len())
                        .map(|i| {
                            if names.is_null(i) {
                                Ok(None)
                            } else {
                                lookup(names.value(i)).map(Some)
                            }
                        })
                        .collect::<Result<_, _>>()?;
                    Ok(ColumnarValue::Array(Arc::new(StringArray::from(values))))
                }
            }
        }),
    )
}

/// PostgreSQL's `pg_size_pretty`: `10 bytes`, `12 kB`, `3 MB`, … (rounded halves up).
pub fn size_pretty(bytes: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes;
    let mut unit = 0;
    // PostgreSQL switches unit once the number would be >= 10 * 1024 of the next smaller.
    while unit + 1 < units.len() && size.unsigned_abs() >= 10 * 1024 {
        size = (size + if size < 0 { -512 } else { 512 }) / 1024;
        unit += 1;
    }
    format!("{size} {}", units[unit])
}

fn pg_size_pretty_udf() -> ScalarUDF {
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let sizes = datafusion::common::cast::as_int64_array(&arrays[0])?;
            let out: StringArray = sizes.iter().map(|v| v.map(size_pretty)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// A function that always answers `value` (of `value`'s type), whatever its arguments.
fn const_udf(name: &str, inputs: Vec<DataType>, value: ScalarValue) -> ScalarUDF {
    let output = value.data_type();
    create_udf(
        name,
        inputs,
        output,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

/// A function of catalog objects that Sundial has no value for: answers NULL (psql's
/// `\dt+`, `\d+` and `\df` call these).
fn null_udf(name: &str, inputs: Vec<DataType>, output: DataType) -> ScalarUDF {
    let null =
        ScalarValue::try_from(&output).expect("a typed null exists for every type used here");
    const_udf(name, inputs, null)
}

/// TimescaleDB's `time_bucket(width, time [, origin])`, which Grafana's macros expand to
/// (`time_bucket('300.000s', time)`). Planned as `date_bin` with TimescaleDB's origin,
/// Monday 2000-01-03, so it is exactly as fast; `width` may be interval text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeBucket {
    signature: Signature,
}

/// `json_build_object(k1, v1, …)`: a JSON object as text (SQLAlchemy's reflection builds
/// identity and collation details with it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

fn json_value(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    if v.is_null() {
        return J::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => J::Bool(*b),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => v
            .to_string()
            .parse::<i64>()
            .map(J::from)
            .unwrap_or_else(|_| J::String(v.to_string())),
        ScalarValue::Float32(Some(f)) => J::from(*f as f64),
        ScalarValue::Float64(Some(f)) => J::from(*f),
        other => J::String(other.to_string()),
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::Plan(
                "json_build_object takes an even number of arguments".into(),
            ));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = args.number_rows;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                let key = match key {
                    ScalarValue::Utf8(Some(k)) | ScalarValue::Utf8View(Some(k)) => k,
                    other => other.to_string(),
                };
                object.insert(key, json_value(&value));
            }
            out.push(Some(serde_json::Value::Object(object).to_string()));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

/// 2000-01-03 00:00:00 UTC in nanoseconds: TimescaleDB's default bucket origin.
const TIME_BUCKET_ORIGIN_NS: i64 = 946_857_600_000_000_000;

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        "time_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(args[1].clone())
    }

    fn invoke_with_args(
        &self,
        _args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        Err(DataFusionError::Plan(
            "time_bucket is planned as date_bin; this call could not be simplified".into(),
        ))
    }

    fn simplify(
        &self,
        mut args: Vec<Expr>,
        info: &SimplifyContext,
    ) -> datafusion::common::Result<ExprSimplifyResult> {
        let time_type = info.get_data_type(&args[1])?;
        let origin = if args.len() == 3 {
            args.pop().expect("three arguments")
        } else {
            let tz = match &time_type {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            Expr::Literal(
                ScalarValue::TimestampNanosecond(Some(TIME_BUCKET_ORIGIN_NS), tz),
                None,
            )
        };
        let time = args.pop().expect("two arguments");
        let width = args.pop().expect("two arguments");
        let width = match info.get_data_type(&width)? {
            DataType::Interval(_) => width,
            _ => datafusion::prelude::cast(
                width,
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            ),
        };
        Ok(ExprSimplifyResult::Simplified(
            datafusion::functions::datetime::date_bin().call(vec![width, time, origin]),
        ))
    }
}

/// PostgreSQL's `format_type` names of the types Sundial knows, by any of their names.
fn regtype_name(name: &str) -> Option<&'static str> {
    let n = name
        .trim()
        .trim_start_matches("pg_catalog.")
        .to_ascii_lowercase();
    Some(match n.as_str() {
        "int" | "int4" | "integer" => "integer",
        "int8" | "bigint" => "bigint",
        "int2" | "smallint" => "smallint",
        "float8" | "double precision" => "double precision",
        "float4" | "real" => "real",
        "numeric" | "decimal" => "numeric",
        "text" => "text",
        "varchar" | "character varying" => "character varying",
        "bpchar" | "char" | "character" => "character",
        "bool" | "boolean" => "boolean",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "date" => "date",
        "time" | "time without time zone" => "time without time zone",
        "interval" => "interval",
        "bytea" => "bytea",
        "json" => "json",
        "jsonb" => "jsonb",
        "uuid" => "uuid",
        "oid" => "oid",
        "name" => "name",
        "regclass" => "regclass",
        "regtype" => "regtype",
        "regproc" => "regproc",
        "text[]" | "_text" => "text[]",
        "int4[]" | "_int4" | "integer[]" => "integer[]",
        "int8[]" | "_int8" | "bigint[]" => "bigint[]",
        "float8[]" | "_float8" => "double precision[]",
        "void" => "void",
        "unknown" => "unknown",
        _ => return None,
    })
}

/// Registers the functions (replacing DataFusion's own `version()`).
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(super::float_text::udf(false));
    ctx.register_udf(super::float_text::udf(true));
    ctx.add_analyzer_rule(Arc::new(super::float_text::FloatText));
    ctx.register_udf(const_udf(
        "version",
        vec![],
        ScalarValue::Utf8(Some(version_text())),
    ));
    ctx.register_udf(current_setting_udf());
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(TimeBucket {
        signature: Signature::one_of(
            vec![TypeSignature::Any(2), TypeSignature::Any(3)],
            Volatility::Immutable,
        ),
    }));
    // to_regtype(name): the type's name if it exists, else NULL.
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = datafusion::common::cast::as_string_array(&arrays[0])?;
            let out: StringArray = names.iter().map(|n| n.and_then(regtype_name)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
    ctx.register_udf(pg_size_pretty_udf());
    ctx.register_udf(null_udf(
        "pg_table_size",
        vec![DataType::Int64],
        DataType::Int64,
    ));
    ctx.register_udf(null_udf(
        "obj_description",
        vec![DataType::Int64, DataType::Utf8],
        DataType::Utf8,
    ));
    ctx.register_udf(null_udf(
        "col_description",
        vec![DataType::Int64, DataType::Int64],
        DataType::Utf8,
    ));
    ctx.register_udf(null_udf(
        "pg_get_function_result",
        vec![DataType::Int64],
        DataType::Utf8,
    ));
    ctx.register_udf(null_udf(
        "pg_get_function_arguments",
        vec![DataType::Int64],
        DataType::Utf8,
    ));
    // set_config(name, value, is_local) returns the value; settings are not kept per session
    // yet, so this is accepted and answered as PostgreSQL does, without changing anything.
    ctx.register_udf(create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| Ok(args[1].clone())),
    ));
    // asyncpg's pool reset calls it; there are no advisory locks to release.
    ctx.register_udf(null_udf("pg_advisory_unlock_all", vec![], DataType::Utf8));
    // SQLAlchemy's column reflection: there are no sequences, and collations are all visible.
    ctx.register_udf(null_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
    ));
    ctx.register_udf(const_udf(
        "pg_collation_is_visible",
        vec![DataType::Int64],
        ScalarValue::Boolean(Some(true)),
    ));
    // Every function is in the search path (there is no other schema with functions).
    ctx.register_udf(const_udf(
        "pg_function_is_visible",
        vec![DataType::Int64],
        ScalarValue::Boolean(Some(true)),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(size_pretty(10), "10 bytes");
        assert_eq!(size_pretty(10 * 1024 - 1), "10239 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
    }
}
