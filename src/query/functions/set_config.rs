//! `set_config(name, value, is_local)`: answers the value, as PostgreSQL does. The
//! Postgres front end applies the change to the session when the statement runs; the
//! function itself changes nothing.
//!
//! ```sql
//! SELECT set_config('application_name', 'grafana', false);  -- grafana
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The `set_config` function.
pub fn udf() -> ScalarUDF {
    create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| Ok(args[1].clone())),
    )
}
