//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text format: parses a
//! scrape body into samples (`name{labels} value [timestamp]`). `# HELP`, `# TYPE` and
//! `# UNIT` lines are checked and skipped (storage keeps samples by their own names),
//! label values are unescaped (`\\`, `\"`, `\n`), values take `+Inf`/`-Inf`/`NaN`,
//! timestamps are integer milliseconds (Prometheus) or float seconds (OpenMetrics),
//! OpenMetrics exemplars (`… # {trace_id="x"} 1.0`) are checked and dropped, and an
//! OpenMetrics body must end with `# EOF`. Errors name the line and column.

/// Which text format a body is in (from the response's Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header names (`application/openmetrics-text` or
    /// anything else, read as the Prometheus text format).
    pub fn from_content_type(content_type: &str) -> Format {
        if content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")
        {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, if the sample has a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// Why a body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

const TYPES: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "unknown",
    "info",
    "stateset",
    "gaugehistogram",
];

struct Line<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Line<'a> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: self.pos + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (metric names) or without `:` (label names).
    fn name(&mut self, colons: bool) -> Result<&'a str, ParseError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphabetic()
                || c == b'_'
                || (colons && c == b':')
                || (self.pos > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(if colons {
                "expected a metric name"
            } else {
                "expected a label name"
            }));
        }
        // Only ASCII was accepted, so this is valid UTF-8.
        Ok(std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default())
    }

    /// A quoted label value with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self) -> Result<String, ParseError> {
        if !self.eat(b'"') {
            return Err(self.error("expected '\"' to start a label value"));
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated label value")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'"') => out.push(b'"'),
                        Some(b'n') => out.push(b'\n'),
                        _ => return Err(self.error("invalid escape in label value")),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.error("label value is not UTF-8"))
    }

    /// `{name="value",…}` (a trailing comma is allowed).
    fn labels(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut labels: Vec<(String, String)> = Vec::new();
        // Names seen, once there are many (a scan per label would be quadratic).
        let mut seen: Option<std::collections::HashSet<String>> = None;
        if !self.eat(b'{') {
            return Ok(labels);
        }
        loop {
            self.skip_blanks();
            if self.eat(b'}') {
                return Ok(labels);
            }
            let name = self.name(false)?.to_string();
            self.skip_blanks();
            if !self.eat(b'=') {
                return Err(self.error("expected '=' after a label name"));
            }
            self.skip_blanks();
            let value = self.quoted()?;
            let duplicate = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None if labels.len() >= 32 => {
                    let mut names: std::collections::HashSet<String> =
                        labels.iter().map(|(n, _)| n.clone()).collect();
                    let duplicate = !names.insert(name.clone());
                    seen = Some(names);
                    duplicate
                }
                None => labels.iter().any(|(n, _)| *n == name),
            };
            if duplicate {
                return Err(self.error(format!("duplicate label \"{name}\"")));
            }
            labels.push((name, value));
            self.skip_blanks();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(labels);
            }
            return Err(self.error("expected ',' or '}' in the label set"));
        }
    }

    /// Skips `{…}` without checking its content: up to the first `}` outside quotes.
    fn skip_label_set(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut quoted = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\\' if quoted => self.pos += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => return Ok(()),
                _ => {}
            }
        }
        self.pos = start;
        // Let the full parser say exactly what is wrong.
        self.labels().map(|_| ())
    }

    /// The next blank-delimited token.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c != b' ' && c != b'\t') {
            self.pos += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("")
    }
}

/// A sample value as Prometheus writes them (Go's `ParseFloat` plus `Inf`/`NaN` spellings).
fn float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if text.is_empty()
            || text
                .bytes()
                .any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

/// Parses a whole body.
pub fn parse(body: &[u8], format: Format) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for_each_sample(body, format, |raw| {
        let (name, labels) = raw.parse_series()?;
        samples.push(Sample {
            name,
            labels,
            value: raw.value,
            timestamp_ms: raw.timestamp_ms,
        });
        Ok(())
    })?;
    Ok(samples)
}

/// One sample line with its metric name and label set not yet parsed: the text
/// `name{…}` is the key of a scrape cache, parsed ([`RawSample::parse_series`]) only the
/// first time a target exposes it.
pub struct RawSample<'a> {
    line: &'a [u8],
    line_no: usize,
    /// `line[series.0..series.1]` is the name and label set as written.
    series: (usize, usize),
    pub value: f64,
    /// Milliseconds since the epoch, if the sample has a timestamp.
    pub timestamp_ms: Option<i64>,
}

impl<'a> RawSample<'a> {
    /// The metric name and label set as written (`name{…}`).
    pub fn series(&self) -> &'a [u8] {
        &self.line[self.series.0..self.series.1]
    }

    /// The metric name and labels, checked (names, quoting, escapes, duplicates).
    pub fn parse_series(&self) -> Result<(String, Vec<(String, String)>), ParseError> {
        let mut l = Line {
            bytes: &self.line[..self.series.1],
            pos: self.series.0,
            line: self.line_no,
        };
        let name = l.name(true)?.to_string();
        let labels = l.labels()?;
        if l.peek().is_some() {
            return Err(l.error("unexpected text after the label set"));
        }
        Ok((name, labels))
    }
}

/// Checks a whole body line by line and calls `f` with each sample; stops at the first
/// error, from the body or from `f`.
pub fn for_each_sample<'a>(
    body: &'a [u8],
    format: Format,
    mut f: impl FnMut(RawSample<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut eof = false;
    let mut lines = 0;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        lines = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut l = Line {
            bytes: raw,
            pos: 0,
            line: i + 1,
        };
        if eof {
            if raw.is_empty() {
                continue;
            }
            return Err(l.error("content after # EOF"));
        }
        l.skip_blanks();
        match l.peek() {
            None => continue,
            Some(b'#') => {
                l.pos += 1;
                l.skip_blanks();
                let keyword = l.token();
                match keyword {
                    "EOF" if format == Format::OpenMetrics => eof = true,
                    "HELP" | "TYPE" | "UNIT" => {
                        l.skip_blanks();
                        l.name(true)?;
                        if keyword == "TYPE" {
                            l.skip_blanks();
                            let t = l.token();
                            if !TYPES.contains(&t) {
                                return Err(l.error(format!("unknown metric type \"{t}\"")));
                            }
                        }
                    }
                    // Other comments are allowed in the Prometheus format.
                    _ if format == Format::Prometheus => {}
                    _ => return Err(l.error("unexpected comment")),
                }
            }
            Some(_) => f(sample(&mut l, format)?)?,
        }
    }
    if format == Format::OpenMetrics && !eof {
        return Err(ParseError {
            line: lines,
            column: 1,
            message: "OpenMetrics body does not end with # EOF".into(),
        });
    }
    Ok(())
}

fn sample<'a>(l: &mut Line<'a>, format: Format) -> Result<RawSample<'a>, ParseError> {
    let start = l.pos;
    l.name(true)?;
    if l.peek() == Some(b'{') {
        l.skip_label_set()?;
    }
    let series = (start, l.pos);
    if l.skip_blanks() == 0 {
        return Err(l.error("expected a space before the value"));
    }
    let text = l.token();
    let value = float(text).ok_or_else(|| l.error(format!("invalid value \"{text}\"")))?;
    l.skip_blanks();
    let mut timestamp_ms = None;
    if l.peek().is_some() && l.peek() != Some(b'#') {
        let text = l.token();
        timestamp_ms = Some(match format {
            Format::Prometheus => text
                .parse::<i64>()
                .map_err(|_| l.error(format!("invalid timestamp \"{text}\"")))?,
            Format::OpenMetrics => {
                let secs = float(text)
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| l.error(format!("invalid timestamp \"{text}\"")))?;
                (secs * 1000.0).round() as i64
            }
        });
        l.skip_blanks();
    }
    if l.peek() == Some(b'#') {
        if format == Format::Prometheus {
            return Err(l.error("unexpected '#' after the sample"));
        }
        // An exemplar: `# {labels} value [timestamp]`.
        l.pos += 1;
        l.skip_blanks();
        if l.peek() != Some(b'{') {
            return Err(l.error("expected an exemplar label set"));
        }
        l.labels()?;
        l.skip_blanks();
        let text = l.token();
        float(text).ok_or_else(|| l.error(format!("invalid exemplar value \"{text}\"")))?;
        l.skip_blanks();
        if l.peek().is_some() {
            let text = l.token();
            float(text).ok_or_else(|| l.error(format!("invalid exemplar timestamp \"{text}\"")))?;
            l.skip_blanks();
        }
    }
    if l.peek().is_some() {
        return Err(l.error("unexpected text after the sample"));
    }
    Ok(RawSample {
        line: l.bytes,
        line_no: l.line,
        series,
        value,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Duplicate labels are found among many as among few, in linear time.
    #[test]
    fn many_labels_duplicates_are_found() {
        let labels: Vec<String> = (0..100_000).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1\n", labels.join(","));
        let samples = parse(line.as_bytes(), Format::Prometheus).unwrap();
        assert_eq!(samples[0].labels.len(), 100_000);
        let dup = format!("m{{{},l5=\"w\"}} 1\n", labels[..40].join(","));
        let e = parse(dup.as_bytes(), Format::Prometheus).unwrap_err();
        assert!(e.to_string().contains("duplicate label \"l5\""), "{e}");
        let dup = format!("m{{{},l5=\"w\"}} 1\n", labels[..10].join(","));
        assert!(parse(dup.as_bytes(), Format::Prometheus).is_err());
    }

    #[test]
    fn prometheus_text() {
        let body = b"# HELP http_requests_total The total.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\",} 3 1395066363000\n\
\n\
# A comment\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
rpc_duration_seconds{quantile=\"0.5\"} NaN\n\
go_gc_duration_seconds_bucket{le=\"-Inf\"}\t-Inf\r\n";
        let s = parse(body, Format::Prometheus).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].name, "http_requests_total");
        assert_eq!(
            s[0].labels,
            vec![
                ("method".into(), "post".into()),
                ("code".into(), "200".into())
            ]
        );
        assert_eq!(
            (s[0].value, s[0].timestamp_ms),
            (1027.0, Some(1_395_066_363_000))
        );
        assert_eq!(s[2].labels[0].1, "C:\\DIR\\FILE.TXT");
        assert_eq!(s[2].labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!(s[3].timestamp_ms, None);
        assert_eq!(s[4].value, f64::INFINITY);
        assert_eq!(s[4].timestamp_ms, Some(-3_982_045));
        assert!(s[5].value.is_nan());
        assert_eq!(s[6].value, f64::NEG_INFINITY);
    }

    #[test]
    fn openmetrics_text() {
        let body = b"# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0 1520879607.789\n\
foo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
foo_bucket{le=\"+Inf\"} 17 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n\
# EOF\n";
        let s = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[1].timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(s[3].labels, vec![("le".into(), "+Inf".into())]);
        assert_eq!(s[3].value, 17.0);
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad = |body: &str, format| parse(body.as_bytes(), format).unwrap_err();
        let e = bad("a 1\nb{x=\"1\" 2\n", Format::Prometheus);
        assert_eq!((e.line, e.column), (2, 9), "{e}");
        assert!(
            bad("a one\n", Format::Prometheus)
                .message
                .contains("invalid value")
        );
        assert!(
            bad("a{x=\"\\q\"} 1\n", Format::Prometheus)
                .message
                .contains("escape")
        );
        assert!(
            bad("a{x=\"1\",x=\"2\"} 1\n", Format::Prometheus)
                .message
                .contains("duplicate")
        );
        assert!(
            bad("# TYPE a thing\n", Format::Prometheus)
                .message
                .contains("type")
        );
        assert!(bad("a 1\n", Format::OpenMetrics).message.contains("EOF"));
        assert!(
            bad("a 1\n# EOF\nb 2\n", Format::OpenMetrics)
                .message
                .contains("after # EOF")
        );
        assert!(
            bad("a 1 # {x=\"y\"} 1\n", Format::Prometheus)
                .message
                .contains("'#'")
        );
        assert!(
            bad("1a 1\n", Format::Prometheus)
                .message
                .contains("metric name")
        );
        assert!(
            bad("a 1 2 3\n", Format::Prometheus)
                .message
                .contains("after the sample")
        );
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::Prometheus
        );
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body, Format::Prometheus);
            let _ = parse(&body, Format::OpenMetrics);
        }

        #[test]
        fn never_panics_on_near_valid_text(body in "[a-z_{}=\",# \\\\\n0-9.eE+-]{0,200}") {
            let _ = parse(body.as_bytes(), Format::Prometheus);
            let _ = parse(body.as_bytes(), Format::OpenMetrics);
        }

        #[test]
        fn label_values_round_trip(v in "\\PC{0,20}") {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let body = format!("m{{l=\"{escaped}\"}} 1\n");
            let s = parse(body.as_bytes(), Format::Prometheus).unwrap();
            prop_assert_eq!(&s[0].labels[0].1, &v);
        }
    }
}
