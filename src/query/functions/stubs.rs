//! Catalog functions that Sundial has no real value for, answered with a constant as a
//! PostgreSQL without the feature would: NULL sizes and descriptions (psql's `\dt+`,
//! `\d+`, `\df`), no advisory locks or sequences (asyncpg's pool reset, SQLAlchemy's
//! reflection), every collation and function visible. Each is one line here rather than
//! a file of its own: they share one body, a constant.
//!
//! ```sql
//! SELECT obj_description(16384, 'pg_class');  -- NULL
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// A function that always answers `value` (of `value`'s type), whatever its arguments.
pub fn const_udf(name: &str, inputs: Vec<DataType>, value: ScalarValue) -> ScalarUDF {
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
pub fn null_udf(name: &str, inputs: Vec<DataType>, output: DataType) -> ScalarUDF {
    let null =
        ScalarValue::try_from(&output).expect("a typed null exists for every type used here");
    const_udf(name, inputs, null)
}

/// The constant-answer functions.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        null_udf("pg_table_size", vec![DataType::Int64], DataType::Int64),
        null_udf(
            "obj_description",
            vec![DataType::Int64, DataType::Utf8],
            DataType::Utf8,
        ),
        null_udf(
            "col_description",
            vec![DataType::Int64, DataType::Int64],
            DataType::Utf8,
        ),
        null_udf(
            "pg_get_function_result",
            vec![DataType::Int64],
            DataType::Utf8,
        ),
        null_udf(
            "pg_get_function_arguments",
            vec![DataType::Int64],
            DataType::Utf8,
        ),
        // asyncpg's pool reset calls it; there are no advisory locks to release.
        null_udf("pg_advisory_unlock_all", vec![], DataType::Utf8),
        // SQLAlchemy's column reflection: there are no sequences, and collations are all visible.
        null_udf(
            "pg_get_serial_sequence",
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Utf8,
        ),
        const_udf(
            "pg_collation_is_visible",
            vec![DataType::Int64],
            ScalarValue::Boolean(Some(true)),
        ),
        // Every function is in the search path (there is no other schema with functions).
        const_udf(
            "pg_function_is_visible",
            vec![DataType::Int64],
            ScalarValue::Boolean(Some(true)),
        ),
    ]
}
