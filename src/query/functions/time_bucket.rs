//! TimescaleDB's `time_bucket(width, time [, origin])`, which Grafana's macros expand to.
//!
//! ```sql
//! SELECT time_bucket('5 minutes', time) AS t, avg(usage_user) FROM cpu GROUP BY 1;
//! ```

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// TimescaleDB's `time_bucket(width, time [, origin])`, which Grafana's macros expand to
/// (`time_bucket('300.000s', time)`). Planned as `date_bin` with TimescaleDB's origin,
/// Monday 2000-01-03, so it is exactly as fast; `width` may be interval text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeBucket {
    signature: Signature,
}

/// The `time_bucket` function.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TimeBucket {
        signature: Signature::one_of(
            vec![TypeSignature::Any(2), TypeSignature::Any(3)],
            Volatility::Immutable,
        ),
    })
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
