//! `current_setting(name)`: a setting's value (Grafana reads `server_version_num`).
//! Sessions substitute their own values before planning (the Postgres front end's
//! rewrite); this function answers with the defaults where there is no session.
//!
//! ```sql
//! SELECT current_setting('server_version_num');  -- 160006
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The `current_setting(name)` function.
pub fn udf() -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |name: &str| {
                // Sessions substitute their own values before planning (the Postgres front end rewrites them in);
                // this answers where there is no session.
                crate::query::settings::default_value(name).ok_or_else(|| {
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
