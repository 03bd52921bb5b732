//! `pg_size_pretty(bytes)`: a size as PostgreSQL prints it (psql's `\l+`, `\dt+`).
//!
//! ```sql
//! SELECT pg_size_pretty(123456789);  -- 118 MB
//! ```

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

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

/// The `pg_size_pretty(bytes)` function.
pub fn udf() -> ScalarUDF {
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
