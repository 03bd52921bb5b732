//! `to_regtype(name)`: the type's PostgreSQL name if it exists, else NULL.
//!
//! ```sql
//! SELECT to_regtype('int8');  -- bigint
//! ```

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

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

/// The `to_regtype` function.
pub fn udf() -> ScalarUDF {
    create_udf(
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
    )
}
