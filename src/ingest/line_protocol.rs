//! InfluxDB line protocol parser.
//!
//! Grammar (one point per line):
//!
//! ```text
//! measurement[,tag_key=tag_value…] field_key=field_value[,field_key=field_value…] [timestamp]
//! ```
//!
//! * `\` escapes `,`, ` `, `=` and `\` in measurement names, tag keys, tag values and field
//!   keys; before any other byte it is a literal backslash (as in InfluxDB).
//! * String field values are double quoted; inside them `\"` and `\\` are escapes.
//! * Numbers: `1.5`, `-2e3`, `-0.0` and `7` are floats; `7i` is a signed and `7u` an unsigned
//!   integer. Booleans: `t T true True TRUE f F false False FALSE`.
//! * Blank lines and lines whose first non-blank byte is `#` are skipped; `\r\n` is accepted.
//!
//! The parser works on bytes, allocates only for escaped names, and never panics on any input
//! (see the property test below).

use std::borrow::Cow;

/// A typed field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// `1.5`, `7`, `-2e3`.
    Float(f64),
    /// `7i`.
    Integer(i64),
    /// `7u`.
    UInteger(u64),
    /// `"text"`.
    String(Cow<'a, str>),
    /// `t`, `true`, `F`, …
    Boolean(bool),
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<'a> {
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// The timestamp as written, in the request's precision.
    pub timestamp: Option<i64>,
}

/// Why a line was rejected, with the byte column (1-based) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at column {column}")]
pub struct ParseError {
    pub reason: &'static str,
    pub column: usize,
}

/// Splits a body into lines, numbering them from 1, and yields each non-blank,
/// non-comment line with its number. A trailing `\r` is removed.
pub fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let trimmed = trim_start(line);
            if trimmed.is_empty() || trimmed[0] == b'#' {
                None
            } else {
                Some((i + 1, line))
            }
        })
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// Parses one line (without its line terminator).
pub fn parse_line(line: &[u8]) -> Result<ParsedLine<'_>, ParseError> {
    let mut p = Parser { s: line, pos: 0 };
    p.skip_blanks();
    let start = p.pos;
    let measurement = p.name(NameKind::Measurement)?;
    if measurement.is_empty() {
        return Err(p.err_at("missing measurement", start));
    }
    let mut tags: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let mut tag_keys = Keys::default();
    while p.peek() == Some(b',') {
        p.pos += 1;
        let key_at = p.pos;
        let key = p.name(NameKind::TagKey)?;
        if key.is_empty() {
            return Err(p.err_at("missing tag key", key_at));
        }
        if p.peek() != Some(b'=') {
            return Err(p.err("missing '=' after tag key"));
        }
        p.pos += 1;
        let value_at = p.pos;
        let value = p.name(NameKind::TagValue)?;
        if value.is_empty() {
            return Err(p.err_at("missing tag value", value_at));
        }
        if tag_keys.position(&tags, &key).is_some() {
            return Err(p.err_at("duplicate tag key", key_at));
        }
        tag_keys.pushed(&key, tags.len());
        tags.push((key, value));
    }
    if p.peek() != Some(b' ') {
        return Err(p.err("expected a space before the field set"));
    }
    p.skip_spaces();
    let mut fields: Vec<(Cow<'_, str>, FieldValue<'_>)> = Vec::new();
    let mut field_keys = Keys::default();
    loop {
        let key_at = p.pos;
        let key = p.name(NameKind::FieldKey)?;
        if key.is_empty() {
            return Err(p.err_at("missing field key", key_at));
        }
        if p.peek() != Some(b'=') {
            return Err(p.err("missing '=' after field key"));
        }
        p.pos += 1;
        let value = p.field_value()?;
        if let Some(i) = field_keys.position(&fields, &key) {
            fields[i].1 = value;
        } else {
            field_keys.pushed(&key, fields.len());
            fields.push((key, value));
        }
        match p.peek() {
            Some(b',') => p.pos += 1,
            _ => break,
        }
    }
    let mut timestamp = None;
    match p.peek() {
        None => {}
        Some(b' ' | b'\t') => {
            p.skip_blanks();
            if p.peek().is_some() {
                timestamp = Some(p.timestamp()?);
                p.skip_blanks();
                if p.peek().is_some() {
                    return Err(p.err("unexpected text after the timestamp"));
                }
            }
        }
        Some(_) => return Err(p.err("invalid field value")),
    }
    Ok(ParsedLine {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// Finds a key among a line's keys so far: a scan while they are few, a hash map once
/// there are many, so that a line with 200 000 fields is not 2·10¹⁰ comparisons (the
/// point limits refuse such a line later, after parsing).
#[derive(Default)]
struct Keys {
    map: Option<std::collections::HashMap<String, usize>>,
}

impl Keys {
    const SCAN: usize = 32;

    fn position<V>(&mut self, list: &[(Cow<'_, str>, V)], key: &str) -> Option<usize> {
        if list.len() < Self::SCAN {
            return list.iter().position(|(k, _)| k == key);
        }
        let map = self.map.get_or_insert_with(|| {
            list.iter()
                .enumerate()
                .map(|(i, (k, _))| (k.to_string(), i))
                .collect()
        });
        map.get(key).copied()
    }

    /// Notes that `key` now sits at `index`.
    fn pushed(&mut self, key: &str, index: usize) {
        if let Some(map) = &mut self.map {
            map.insert(key.to_string(), index);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, reason: &'static str) -> ParseError {
        self.err_at(reason, self.pos)
    }

    fn err_at(&self, reason: &'static str, pos: usize) -> ParseError {
        ParseError {
            reason,
            column: pos + 1,
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Reads an escaped name up to its unescaped terminator.
    fn name(&mut self, kind: NameKind) -> Result<Cow<'a, str>, ParseError> {
        let start = self.pos;
        let mut escaped = false;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => {
                    escaped = true;
                    self.pos += if self.pos + 1 < self.s.len() { 2 } else { 1 };
                    continue;
                }
                b',' | b' ' => break,
                b'=' if kind != NameKind::Measurement => break,
                b'\t' | b'\r' => return Err(self.err("unescaped control character in a name")),
                _ => self.pos += 1,
            }
        }
        let raw = &self.s[start..self.pos];
        let text = std::str::from_utf8(raw).map_err(|_| self.err_at("invalid UTF-8", start))?;
        if !escaped {
            return Ok(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.clone().next() {
                    Some(n @ (',' | ' ' | '=' | '\\')) => {
                        out.push(n);
                        chars.next();
                    }
                    _ => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        Ok(Cow::Owned(out))
    }

    fn field_value(&mut self) -> Result<FieldValue<'a>, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.string_value(),
            None | Some(b' ' | b',') => Err(self.err("missing field value")),
            Some(_) => {
                while let Some(b) = self.peek() {
                    if b == b',' || b == b' ' || b == b'\t' {
                        break;
                    }
                    self.pos += 1;
                }
                let raw = &self.s[start..self.pos];
                scalar_value(raw).ok_or_else(|| self.err_at("invalid field value", start))
            }
        }
    }

    fn string_value(&mut self) -> Result<FieldValue<'a>, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.err_at("unterminated string field value", open)),
                Some(b'\\') if self.pos + 1 < self.s.len() => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(b'"') => break,
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.s[start..self.pos];
        self.pos += 1; // closing quote
        let text = std::str::from_utf8(raw).map_err(|_| self.err_at("invalid UTF-8", start))?;
        if !escaped {
            return Ok(FieldValue::String(Cow::Borrowed(text)));
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.clone().next() {
                    Some(n @ ('"' | '\\')) => {
                        out.push(n);
                        chars.next();
                    }
                    _ => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        Ok(FieldValue::String(Cow::Owned(out)))
    }

    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        std::str::from_utf8(raw)
            .ok()
            .filter(|t| {
                t.bytes()
                    .enumerate()
                    .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
            })
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| self.err_at("invalid timestamp", start))
    }
}

fn scalar_value(raw: &[u8]) -> Option<FieldValue<'static>> {
    match raw {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => return Some(FieldValue::Boolean(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => return Some(FieldValue::Boolean(false)),
        _ => {}
    }
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(int) = text.strip_suffix('i') {
        if !is_integer_text(int, true) {
            return None;
        }
        return int.parse::<i64>().ok().map(FieldValue::Integer);
    }
    if let Some(uint) = text.strip_suffix('u') {
        if !is_integer_text(uint, false) {
            return None;
        }
        return uint.parse::<u64>().ok().map(FieldValue::UInteger);
    }
    if !is_float_text(text) {
        return None;
    }
    let v = text.parse::<f64>().ok()?;
    v.is_finite().then_some(FieldValue::Float(v))
}

fn is_integer_text(s: &str, signed: bool) -> bool {
    let digits = match s.strip_prefix('-') {
        Some(rest) if signed => rest,
        _ => s,
    };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-]digits[.digits][(e|E)[+-]digits]` or `[-].digits…`; rejects `inf`, `NaN` and `0x…`.
fn is_float_text(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> ParsedLine<'_> {
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn basic_point() {
        let p =
            one("cpu,host=a,region=eu usage=1.5,count=3i,n=7u,ok=t,msg=\"hi\" 1700000000000000000");
        assert_eq!(p.measurement, "cpu");
        assert_eq!(
            p.tags,
            vec![("host".into(), "a".into()), ("region".into(), "eu".into())]
        );
        assert_eq!(p.fields[0], ("usage".into(), FieldValue::Float(1.5)));
        assert_eq!(p.fields[1], ("count".into(), FieldValue::Integer(3)));
        assert_eq!(p.fields[2], ("n".into(), FieldValue::UInteger(7)));
        assert_eq!(p.fields[3], ("ok".into(), FieldValue::Boolean(true)));
        assert_eq!(p.fields[4], ("msg".into(), FieldValue::String("hi".into())));
        assert_eq!(p.timestamp, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn escapes_in_names() {
        let p = one(r"my\ meas\,ure,ta\=g\ k=v\,al\ ue\\ f\=ield\ key=1 10");
        assert_eq!(p.measurement, "my meas,ure");
        assert_eq!(p.tags, vec![("ta=g k".into(), r"v,al ue\".into())]);
        assert_eq!(p.fields[0].0, "f=ield key");
        // A backslash before an ordinary character stays literal.
        let p = one(r"a\b,t=x\y f=1");
        assert_eq!(p.measurement, r"a\b");
        assert_eq!(p.tags[0].1, r"x\y");
        // `=` needs no escape in a measurement.
        assert_eq!(one("a=b f=1").measurement, "a=b");
    }

    #[test]
    fn string_fields() {
        let p = one(r#"m s="a \"quoted\" \\ back\slash, with = and space" 1"#);
        assert_eq!(
            p.fields[0].1,
            FieldValue::String(r#"a "quoted" \ back\slash, with = and space"#.into())
        );
        assert_eq!(
            one(r#"m s="" 1"#).fields[0].1,
            FieldValue::String("".into())
        );
        assert!(parse_line(br#"m s="open 1"#).is_err());
    }

    #[test]
    fn numbers() {
        let f = |s: &str| {
            let line = format!("m v={s}");
            match one(&line).fields[0].1.clone() {
                FieldValue::String(x) => FieldValue::String(Cow::Owned(x.into_owned())),
                FieldValue::Float(x) => FieldValue::Float(x),
                FieldValue::Integer(x) => FieldValue::Integer(x),
                FieldValue::UInteger(x) => FieldValue::UInteger(x),
                FieldValue::Boolean(x) => FieldValue::Boolean(x),
            }
        };
        assert_eq!(f("1"), FieldValue::Float(1.0));
        assert_eq!(f("-1.5e3"), FieldValue::Float(-1500.0));
        assert_eq!(f("1E-2"), FieldValue::Float(0.01));
        assert_eq!(f(".5"), FieldValue::Float(0.5));
        match f("-0.0") {
            FieldValue::Float(v) => assert!(v == 0.0 && v.is_sign_negative()),
            other => panic!("{other:?}"),
        }
        assert_eq!(f("-9223372036854775808i"), FieldValue::Integer(i64::MIN));
        assert_eq!(f("18446744073709551615u"), FieldValue::UInteger(u64::MAX));
        for bad in [
            "9223372036854775808i",
            "-1u",
            "1.5i",
            "abc",
            "inf",
            "NaN",
            "1e",
            "0x10",
            "1ii",
            "i",
            "--1",
        ] {
            assert!(
                parse_line(format!("m v={bad}").as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn booleans() {
        for t in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(
                one(&format!("m b={t}")).fields[0].1,
                FieldValue::Boolean(true)
            );
        }
        for f in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(
                one(&format!("m b={f}")).fields[0].1,
                FieldValue::Boolean(false)
            );
        }
        assert!(parse_line(b"m b=tRUE").is_err());
    }

    #[test]
    fn timestamps_and_whitespace() {
        assert_eq!(one("m v=1").timestamp, None);
        assert_eq!(one("m v=1 ").timestamp, None);
        assert_eq!(one("m v=1 -5").timestamp, Some(-5));
        assert_eq!(one("m v=1  123  ").timestamp, Some(123));
        assert!(parse_line(b"m v=1 12x").is_err());
        assert!(parse_line(b"m v=1 1 2").is_err());
        assert!(parse_line(b"m v=1 99999999999999999999").is_err());
    }

    #[test]
    fn bad_lines_name_the_column() {
        let e = parse_line(b"cpu,host= v=1").unwrap_err();
        assert_eq!(e.reason, "missing tag value");
        assert_eq!(e.column, 10);
        assert!(parse_line(b"cpu").is_err());
        assert!(parse_line(b"cpu ").is_err());
        assert!(parse_line(b",t=1 v=1").is_err());
        assert!(parse_line(b"cpu,t=1,t=2 v=1").is_err());
        assert!(parse_line(b"cpu v=").is_err());
        assert!(parse_line(b"cpu v=1,").is_err());
        assert!(parse_line(b"cpu =1").is_err());
        assert!(parse_line(b"cpu,=x v=1").is_err());
    }

    #[test]
    fn duplicate_field_keeps_last() {
        let p = one("m a=1,a=2");
        assert_eq!(p.fields, vec![("a".into(), FieldValue::Float(2.0))]);
    }

    /// Past the scan threshold keys are found through the map, with the same answers.
    #[test]
    fn many_keys_find_duplicates_in_linear_time() {
        let fields: Vec<String> = (0..200_000).map(|i| format!("f{i}=1")).collect();
        let line = format!("m {},f7=2,f199999=3", fields.join(","));
        let p = one(&line);
        assert_eq!(p.fields.len(), 200_000);
        assert_eq!(p.fields[7].1, FieldValue::Float(2.0));
        assert_eq!(p.fields[199_999].1, FieldValue::Float(3.0));
        let tags: String = (0..100).map(|i| format!(",t{i}=v")).collect();
        assert!(parse_line(format!("m{tags},t50=x f=1").as_bytes()).is_err());
        assert!(parse_line(format!("m{tags},t100=x f=1").as_bytes()).is_ok());
    }

    #[test]
    fn line_splitting() {
        let body = b"# comment\r\n\r\ncpu v=1\r\n   \n  # indented comment\ncpu v=2";
        let got: Vec<_> = lines(body).collect();
        assert_eq!(got, vec![(3, &b"cpu v=1"[..]), (6, &b"cpu v=2"[..])]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for (_, line) in lines(&bytes) {
                let _ = parse_line(line);
            }
        }

        #[test]
        fn never_panics_on_near_valid(s in r#"[a-z\\, =".0-9ieEtTu-]{0,60}"#) {
            let _ = parse_line(s.as_bytes());
        }

        #[test]
        fn round_trips_escaped_names(m in "[a-z ,=\\\\]{1,10}", k in "[a-z ,=\\\\]{1,10}", v in "[a-z ,=\\\\]{1,10}") {
            let esc = |s: &str| s.replace('\\', "\\\\").replace(',', "\\,").replace(' ', "\\ ").replace('=', "\\=");
            let line = format!("{},{}={} f=1i 5", esc(&m), esc(&k), esc(&v));
            let p = parse_line(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(p.measurement.as_ref(), m.as_str());
            proptest::prop_assert_eq!(p.tags[0].0.as_ref(), k.as_str());
            proptest::prop_assert_eq!(p.tags[0].1.as_ref(), v.as_str());
        }
    }
}
