//! `json_build_object(k1, v1, …)`: a JSON object as text.
//!
//! ```sql
//! SELECT json_build_object('a', 1, 'b', 'x');  -- {"a":1,"b":"x"}
//! ```

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

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

/// The `json_build_object` function.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}
