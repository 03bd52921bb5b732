//! `date_trunc` as DataFusion has it, except that `date_trunc('hour' | 'day', time)` on a
//! UTC timestamp (Sundial's `time` column) is planned as `date_bin` from the epoch:
//! DataFusion truncates hours and days of a timestamp with a time zone through a
//! calendar conversion per value, even for UTC where an hour and a day are always the
//! same length, and that dominated TSBS' hourly aggregates (`double-groupby-*`,
//! `cpu-max-all-8`). Finer units already take DataFusion's arithmetic path; other units,
//! zones and types are DataFusion's `date_trunc` unchanged. The output column keeps the
//! `date_trunc(…)` name (expression simplification preserves names).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef, IntervalMonthDayNano};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

#[derive(Debug)]
struct DateTrunc {
    inner: Arc<ScalarUDF>,
}

identity_of_inner!(DateTrunc);

/// The `date_trunc` function (see the module docs).
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateTrunc {
        inner: datafusion::functions::datetime::date_trunc(),
    })
}

fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "utc" | "+00:00" | "Z" | "Etc/UTC")
}

impl ScalarUDFImpl for DateTrunc {
    delegate_to_inner!();

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let unit = match args.first() {
            Some(Expr::Literal(ScalarValue::Utf8(Some(u)) | ScalarValue::Utf8View(Some(u)), _)) => {
                u.to_ascii_lowercase()
            }
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let stride = match unit.as_str() {
            "hour" => NANOS_PER_HOUR,
            "day" => 24 * NANOS_PER_HOUR,
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let Some(time) = args.get(1) else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let tz = match info.get_data_type(time)? {
            DataType::Timestamp(_, Some(tz)) if is_utc(&tz) => tz,
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let mut args = args;
        let time = args.swap_remove(1);
        let stride = Expr::Literal(
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 0, stride))),
            None,
        );
        let origin = Expr::Literal(ScalarValue::TimestampNanosecond(Some(0), Some(tz)), None);
        Ok(ExprSimplifyResult::Simplified(
            datafusion::functions::datetime::date_bin().call(vec![stride, time, origin]),
        ))
    }
}
