//! `version()`: PostgreSQL 16's shape (SQLAlchemy parses it, so it must begin
//! `PostgreSQL 16.x`), naming Sundial's version. Replaces DataFusion's own `version()`.
//!
//! ```sql
//! SELECT version();  -- PostgreSQL 16.6 on x86_64-pc-linux-gnu, compiled by rustc, 64-bit (Sundial 0.1.0)
//! ```

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

/// `version()`'s text.
pub fn version_text() -> String {
    format!(
        "PostgreSQL 16.6 on {}-pc-linux-gnu, compiled by rustc, 64-bit (Sundial {})",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// The `version()` function.
pub fn udf() -> ScalarUDF {
    super::stubs::const_udf("version", vec![], ScalarValue::Utf8(Some(version_text())))
}
