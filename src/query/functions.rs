//! PostgreSQL functions that drivers call on their own: `version()` (SQLAlchemy parses
//! it, so it must begin `PostgreSQL 16.x`) and `current_setting(name)` (Grafana reads
//! `server_version_num` from it).

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// `version()`'s text.
pub fn version_text() -> String {
    format!(
        "PostgreSQL 16.6 on {}-pc-linux-gnu, compiled by rustc, 64-bit (Sundial {})",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// Server-wide settings as `current_setting()` reports them.
pub fn setting(name: &str) -> Option<String> {
    Some(match name.to_ascii_lowercase().as_str() {
        "server_version" => crate::pg::server_version(),
        "server_version_num" => "160006".to_string(),
        "server_encoding" | "client_encoding" => "UTF8".to_string(),
        "timezone" => "UTC".to_string(),
        "datestyle" => "ISO, MDY".to_string(),
        "intervalstyle" => "postgres".to_string(),
        "search_path" => "\"$user\", public".to_string(),
        "standard_conforming_strings" | "integer_datetimes" => "on".to_string(),
        "max_identifier_length" => "63".to_string(),
        "transaction_isolation" | "default_transaction_isolation" => "read committed".to_string(),
        "transaction_read_only" | "default_transaction_read_only" | "in_hot_standby" => {
            "off".to_string()
        }
        "statement_timeout" => "0".to_string(),
        "extra_float_digits" => "1".to_string(),
        "application_name" => String::new(),
        "is_superuser" => "on".to_string(),
        _ => return None,
    })
}

fn current_setting_udf() -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |name: &str| {
                setting(name).ok_or_else(|| {
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

/// Registers the functions (replacing DataFusion's own `version()`).
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(const_udf(
        "version",
        vec![],
        ScalarValue::Utf8(Some(version_text())),
    ));
    ctx.register_udf(current_setting_udf());
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
    // Every function is in the search path (there is no other schema with functions).
    ctx.register_udf(const_udf(
        "pg_function_is_visible",
        vec![DataType::Int64],
        ScalarValue::Boolean(Some(true)),
    ));
}

/// Server-wide settings that `SHOW` answers here (session settings such as `TimeZone` or
/// `search_path` are left to the session hooks, which track `SET`).
const SHOWN: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "transaction_isolation",
    "default_transaction_isolation",
    "transaction_read_only",
    "default_transaction_read_only",
    "standard_conforming_strings",
    "integer_datetimes",
    "max_identifier_length",
    "is_superuser",
    "in_hot_standby",
];

/// Rewrites `SHOW <server setting>` (and `SHOW TRANSACTION ISOLATION LEVEL`) to a query
/// returning PostgreSQL's value, e.g. `read committed`, `16.6 (Sundial …)`.
pub fn rewrite_show(sql: &str) -> Option<String> {
    let text = sql.trim().trim_end_matches(';').trim();
    text.get(..5).filter(|p| p.eq_ignore_ascii_case("show "))?;
    let words: Vec<String> = text[5..]
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let name = match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["transaction", "isolation", "level"] => "transaction_isolation".to_string(),
        [one] => one.trim_matches('"').to_string(),
        _ => return None,
    };
    if !SHOWN.contains(&name.as_str()) {
        return None;
    }
    let value = setting(&name)?;
    Some(format!(
        "SELECT '{}' AS \"{name}\"",
        value.replace('\'', "''")
    ))
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

    #[test]
    fn show_rewrites() {
        assert_eq!(
            rewrite_show("SHOW TRANSACTION ISOLATION LEVEL;").as_deref(),
            Some("SELECT 'read committed' AS \"transaction_isolation\"")
        );
        assert!(
            rewrite_show("show server_version_num")
                .unwrap()
                .contains("160006")
        );
        assert_eq!(
            rewrite_show("SHOW TimeZone"),
            None,
            "session settings are the hooks' job"
        );
        assert_eq!(rewrite_show("SELECT 1"), None);
    }
}
