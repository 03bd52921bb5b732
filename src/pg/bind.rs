//! Bound parameters of Sundial's own statements (`DELETE FROM cpu WHERE host = $1`,
//! `CREATE ALERT … AS SELECT … WHERE v > $1`). These are parsed by Sundial, not planned by
//! DataFusion, so each `$N` outside quotes and comments is replaced by its value as a SQL
//! literal before parsing: numbers as numbers, everything else as a quoted string (quotes
//! doubled), NULL as `NULL`. Their parameters are described as `text` unless the client
//! declared a type.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_postgres::pgwire;
use pgwire::api::Type;
use pgwire::api::portal::Portal;

use crate::error::SqlState;

/// The `$N` placeholders of `sql`: (byte range, N), in order.
fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return Vec::new();
    };
    // Byte offset of each line's start; token locations are (line, char column), 1-based.
    let mut line_starts = vec![0];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let skip = usize::try_from(column).ok()?.checked_sub(1)?;
        Some(
            sql[start..]
                .char_indices()
                .nth(skip)
                .map_or(sql.len(), |(i, _)| start + i),
        )
    };
    tokens
        .into_iter()
        .filter_map(|t| match &t.token {
            Token::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                let start = offset(t.span.start.line, t.span.start.column)?;
                Some((start..start + p.len(), n))
            }
            _ => None,
        })
        .collect()
}

/// How many parameters `sql` takes (its highest `$N`).
pub fn parameter_count(sql: &str) -> usize {
    placeholders(sql).iter().map(|(_, n)| *n).max().unwrap_or(0)
}

/// `sql` with the portal's bound values in place of its placeholders.
pub fn bind<S>(sql: &str, portal: &Portal<S>) -> Result<String, (SqlState, String)> {
    let found = placeholders(sql);
    if found.is_empty() {
        return Ok(sql.to_string());
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (range, n) in found {
        let index = n.checked_sub(1).filter(|i| *i < portal.parameters.len());
        let Some(index) = index else {
            return Err((
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "there is no parameter ${n}: {} values were bound",
                    portal.parameters.len()
                ),
            ));
        };
        out.push_str(&sql[at..range.start]);
        let declared = portal
            .statement
            .parameter_types
            .get(index)
            .cloned()
            .flatten();
        out.push_str(&literal(
            portal.parameters[index].as_deref(),
            portal.parameter_format.is_binary(index),
            declared.as_ref(),
            n,
        )?);
        at = range.end;
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

/// One value as a SQL literal.
fn literal(
    value: Option<&[u8]>,
    binary: bool,
    declared: Option<&Type>,
    n: usize,
) -> Result<String, (SqlState, String)> {
    let Some(bytes) = value else {
        return Ok("NULL".into());
    };
    let bad = |why: &str| {
        (
            SqlState::INVALID_PARAMETER_VALUE,
            format!("parameter ${n}: {why}"),
        )
    };
    let fixed = |len: usize| -> Result<&[u8], (SqlState, String)> {
        (bytes.len() == len)
            .then_some(bytes)
            .ok_or_else(|| bad(&format!("expected {len} bytes, got {}", bytes.len())))
    };
    let number = |text: String| -> Result<String, (SqlState, String)> {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|_| text.trim().to_string())
            .ok_or_else(|| bad(&format!("{text:?} is not a number")))
    };
    let text_types = [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ];
    if binary {
        // `fixed(n)` has n bytes, so the conversions to arrays cannot fail.
        return match declared {
            Some(t) if *t == Type::INT2 => {
                Ok(i16::from_be_bytes(fixed(2)?.try_into().unwrap()).to_string())
            }
            Some(t) if *t == Type::INT4 => {
                Ok(i32::from_be_bytes(fixed(4)?.try_into().unwrap()).to_string())
            }
            Some(t) if *t == Type::INT8 => {
                Ok(i64::from_be_bytes(fixed(8)?.try_into().unwrap()).to_string())
            }
            Some(t) if *t == Type::FLOAT4 => {
                number(f32::from_be_bytes(fixed(4)?.try_into().unwrap()).to_string())
            }
            Some(t) if *t == Type::FLOAT8 => {
                number(f64::from_be_bytes(fixed(8)?.try_into().unwrap()).to_string())
            }
            Some(t) if *t == Type::BOOL => Ok((fixed(1)?[0] != 0).to_string()),
            Some(t) if !text_types.contains(t) => Err((
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "parameter ${n}: binary {t} values are not supported here; send it as text"
                ),
            )),
            _ => quoted(bytes).ok_or_else(|| bad("not UTF-8 text")),
        };
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
    let numeric = [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
    ];
    match declared {
        Some(t) if numeric.contains(t) => number(text.to_string()),
        Some(t) if *t == Type::BOOL => Ok(match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "on" => "true".into(),
            "f" | "false" | "0" | "no" | "off" => "false".into(),
            _ => return Err(bad(&format!("{text:?} is not a boolean"))),
        }),
        _ => quoted(bytes).ok_or_else(|| bad("not UTF-8 text")),
    }
}

/// A quoted SQL string literal of UTF-8 `bytes`.
fn quoted(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    Some(format!("'{}'", text.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_and_comments_only() {
        let sql = "DELETE FROM \"t$1\" WHERE a = '$1' AND b = $2 -- $3\n AND c = $1";
        let found: Vec<_> = placeholders(sql)
            .into_iter()
            .map(|(r, n)| (&sql[r], n))
            .collect();
        assert_eq!(found, vec![("$2", 2), ("$1", 1)]);
        assert_eq!(parameter_count(sql), 2);
        let multi = "SELECT 'é' ,\n  'ü', $1";
        let r = placeholders(multi);
        assert_eq!(&multi[r[0].0.clone()], "$1");
    }

    #[test]
    fn literals_are_escaped_and_typed() {
        assert_eq!(literal(Some(b"it's"), false, None, 1).unwrap(), "'it''s'");
        assert_eq!(literal(None, false, None, 1).unwrap(), "NULL");
        assert_eq!(
            literal(Some(b"5"), false, Some(&Type::INT8), 1).unwrap(),
            "5"
        );
        assert!(literal(Some(b"5; DROP"), false, Some(&Type::INT8), 1).is_err());
        assert_eq!(
            literal(Some(&7i64.to_be_bytes()), true, Some(&Type::INT8), 1).unwrap(),
            "7"
        );
        assert!(literal(Some(&[1, 2]), true, Some(&Type::INT8), 1).is_err());
        assert!(literal(Some(&f64::NAN.to_be_bytes()), true, Some(&Type::FLOAT8), 1).is_err());
    }
}
