//! PostgreSQL's text form of floats (`float8out`/`float4out`: `20`, `1e+20`,
//! `0.30000000000000004`), for the wire encoder and for casts to text: DataFusion's
//! `x::text` of a float prints `20.0`, so an analyzer rule ([`FloatText`]) turns such
//! casts into calls of `float8out`/`float4out`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::optimizer::AnalyzerRule;

/// PostgreSQL's `float8out`/`float4out`.
pub fn format_float(value: f64, extra_float_digits: i32, single: bool) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let significant = if single { 6 } else { 15 };
    if extra_float_digits > 0 {
        // Shortest round-trip digits; exponent form outside [1e-4, 1e15) for float8
        // (outside [1e-4, 1e6) for float4), as PostgreSQL's ryu-based output does.
        let mut buf = ryu::Buffer::new();
        let text = if single {
            buf.format_finite(value as f32)
        } else {
            buf.format_finite(value)
        };
        let (negative, digits, exp) = decimal_digits(text);
        return layout(negative, &digits, exp, exp < -4 || exp >= significant);
    }
    // %.{p}g with p = DBL_DIG (FLT_DIG) + extra_float_digits.
    let precision = (significant + extra_float_digits).max(1);
    let text = format!("{:.*e}", precision as usize - 1, value);
    let (negative, digits, exp) = decimal_digits(&text);
    layout(negative, &digits, exp, exp < -4 || exp >= precision)
}

/// Splits a decimal rendering (`-12.50`, `1.5e-5`, `2e20`) into sign, significant digits
/// without leading/trailing zeros, and the decimal exponent of the first digit.
fn decimal_digits(text: &str) -> (bool, String, i32) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut point = int.len() as i32 + exp;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    if digits.is_empty() {
        digits.push('0');
    }
    (negative, digits, point - 1)
}

fn layout(negative: bool, digits: &str, exp: i32, exponent_form: bool) -> String {
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if exponent_form {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// `float8out(x)`/`float4out(x)`: a float as PostgreSQL prints it.
pub fn udf(single: bool) -> ScalarUDF {
    let (name, input) = if single {
        ("float4out", DataType::Float32)
    } else {
        ("float8out", DataType::Float64)
    };
    create_udf(
        name,
        vec![input],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let text = |v: f64| format_float(v, 1, single);
            let out: StringArray = if single {
                let a = arrays[0].as_primitive::<Float32Type>();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| text(a.value(i) as f64)))
                    .collect()
            } else {
                let a = arrays[0].as_primitive::<Float64Type>();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| text(a.value(i))))
                    .collect()
            };
            let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
            let out = ColumnarValue::Array(Arc::new(out));
            if scalar {
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&out.into_array(1)?, 0)?,
                ))
            } else {
                Ok(out)
            }
        }),
    )
}

/// Replaces casts of floats to text with `float8out`/`float4out`, after type coercion
/// (which adds the implicit casts of `'x' || 1.5` and the like).
#[derive(Debug, Default)]
pub struct FloatText;

impl AnalyzerRule for FloatText {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<LogicalPlan> {
        let f8 = Arc::new(udf(false));
        let f4 = Arc::new(udf(true));
        plan.transform_up_with_subqueries(|node| {
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    let Expr::Cast(cast) = &e else {
                        return Ok(Transformed::no(e));
                    };
                    if !matches!(
                        cast.field.data_type(),
                        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                    ) {
                        return Ok(Transformed::no(e));
                    }
                    let func = match cast.expr.get_type(&schema) {
                        Ok(DataType::Float64) => f8.clone(),
                        Ok(DataType::Float32) => f4.clone(),
                        _ => return Ok(Transformed::no(e)),
                    };
                    let call = Expr::ScalarFunction(ScalarFunction::new_udf(
                        func,
                        vec![cast.expr.as_ref().clone()],
                    ));
                    // Keep the text type the cast asked for.
                    let call = if cast.field.data_type() == &DataType::Utf8 {
                        call
                    } else {
                        call.cast_to(cast.field.data_type(), &schema)?
                    };
                    Ok(Transformed::yes(call))
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "float_text"
    }
}
