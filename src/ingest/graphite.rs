//! The Graphite plaintext protocol: `path value [timestamp]` lines, and the tagged form
//! `path;tag=value;… value [timestamp]`. Dotted paths map to table, tags and field with
//! InfluxDB-style templates:
//!
//! ```toml
//! templates = [
//!   "servers.* .host.measurement.field",   # filter, then template
//!   "measurement.measurement.field*",      # no filter: the default
//!   "stats.* .measurement.host region=eu", # extra tags after the template
//! ]
//! ```
//!
//! Template parts name the path segment at their position: `measurement` (joined with
//! `separator` when several), `field`, any other word a tag, an empty part skips the
//! segment; `measurement*`/`field*` take the rest of the path. The first template whose
//! filter matches (`*` matches one segment) applies; without one, the whole path is the
//! table and the field is `value`. Timestamps are seconds (fractions allowed); a missing
//! or negative one means now.

use crate::storage::{Point, Value};

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Skip,
    Measurement,
    MeasurementRest,
    Field,
    FieldRest,
    Tag(String),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    filter: Option<Vec<String>>,
    parts: Vec<Part>,
    tags: Vec<(String, String)>,
}

impl Template {
    /// Parses `"[filter ]template[ tag=value,…]"`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (filter, template, tags) = match words.as_slice() {
            [t] => (None, *t, None),
            [a, b] if b.contains('=') => (None, *a, Some(*b)),
            [f, t] => (Some(*f), *t, None),
            [f, t, tags] => (Some(*f), *t, Some(*tags)),
            _ => return Err(format!("invalid template {text:?}")),
        };
        let parts: Vec<Part> = template
            .split('.')
            .map(|p| match p {
                "" => Part::Skip,
                "measurement" => Part::Measurement,
                "measurement*" => Part::MeasurementRest,
                "field" => Part::Field,
                "field*" => Part::FieldRest,
                tag => Part::Tag(tag.to_string()),
            })
            .collect();
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Measurement | Part::MeasurementRest))
        {
            return Err(format!("template {text:?} names no measurement"));
        }
        let tags = match tags {
            None => Vec::new(),
            Some(t) => t
                .split(',')
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| format!("invalid tag {kv:?} in template {text:?}"))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Template {
            filter: filter.map(|f| f.split('.').map(str::to_string).collect()),
            parts,
            tags,
        })
    }

    fn matches(&self, segments: &[&str]) -> bool {
        match &self.filter {
            None => true,
            Some(f) => {
                f.len() <= segments.len()
                    && f.iter()
                        .zip(segments)
                        .all(|(pat, seg)| pat == "*" || pat == seg)
            }
        }
    }
}

/// How paths become rows.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub templates: Vec<Template>,
    /// Joins several measurement or field segments (default `.`).
    pub separator: String,
}

impl Mapping {
    pub fn new(templates: &[String], separator: &str) -> Result<Mapping, String> {
        Ok(Mapping {
            templates: templates
                .iter()
                .map(|t| Template::parse(t))
                .collect::<Result<_, _>>()?,
            separator: if separator.is_empty() {
                ".".into()
            } else {
                separator.into()
            },
        })
    }

    /// Table, tags and field of a dotted path.
    fn map(&self, path: &str) -> (String, Vec<(String, String)>, String) {
        let segments: Vec<&str> = path.split('.').collect();
        // The most specific filter wins; among equals, the first template.
        let best = self.templates.iter().filter(|t| t.matches(&segments)).fold(
            None::<&Template>,
            |best, t| {
                let rank = |t: &Template| t.filter.as_ref().map_or(0, |f| f.len() + 1);
                match best {
                    Some(b) if rank(b) >= rank(t) => Some(b),
                    _ => Some(t),
                }
            },
        );
        let Some(t) = best else {
            return (path.to_string(), Vec::new(), "value".into());
        };
        let (mut measurement, mut field, mut tags) = (Vec::new(), Vec::new(), t.tags.clone());
        for (i, seg) in segments.iter().enumerate() {
            match t.parts.get(i) {
                Some(Part::Measurement) => measurement.push(*seg),
                Some(Part::Field) => field.push(*seg),
                Some(Part::Tag(name)) => tags.push((name.clone(), seg.to_string())),
                Some(Part::MeasurementRest) => {
                    measurement.extend(&segments[i..]);
                    break;
                }
                Some(Part::FieldRest) => {
                    field.extend(&segments[i..]);
                    break;
                }
                Some(Part::Skip) | None => {}
            }
        }
        let field = if field.is_empty() {
            "value".to_string()
        } else {
            field.join(&self.separator)
        };
        (measurement.join(&self.separator), tags, field)
    }
}

/// Parses one line into a row; `now_ns` for lines without a timestamp.
pub fn parse_line(line: &str, mapping: &Mapping, now_ns: i64) -> Result<Point, String> {
    let mut words = line.split_whitespace();
    let (Some(path), Some(value)) = (words.next(), words.next()) else {
        return Err("expected `path value [timestamp]`".into());
    };
    let ts = words.next();
    if words.next().is_some() {
        return Err("too many fields: expected `path value [timestamp]`".into());
    }
    let value: f64 = value
        .parse()
        .map_err(|_| format!("invalid value {value:?}"))?;
    let time = match ts {
        None => now_ns,
        Some(t) => {
            let secs: f64 = t.parse().map_err(|_| format!("invalid timestamp {t:?}"))?;
            if secs < 0.0 {
                now_ns
            } else {
                (secs * 1e9).round() as i64
            }
        }
    };
    let mut pieces = path.split(';');
    let dotted = pieces.next().unwrap_or_default();
    if dotted.is_empty() || dotted.split('.').any(str::is_empty) {
        return Err(format!("invalid path {path:?}"));
    }
    let (table, mut tags, field) = mapping.map(dotted);
    for kv in pieces {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("invalid tag {kv:?}"))?;
        tags.retain(|(name, _)| name != k);
        tags.push((k.to_string(), v.to_string()));
    }
    if table.is_empty() {
        return Err(format!("the template gives {path:?} no table name"));
    }
    Ok(Point {
        table,
        tags,
        fields: vec![(field, Value::Float(value))],
        time,
    })
}

/// Parses a chunk of lines (blank lines skipped); rows and per-line errors.
pub fn parse_lines(
    text: &str,
    first_line: usize,
    mapping: &Mapping,
    now_ns: i64,
) -> (Vec<Point>, Vec<LineError>) {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, mapping, now_ns) {
            Ok(p) => points.push(p),
            Err(reason) => errors.push(LineError {
                line: first_line + i,
                reason,
            }),
        }
    }
    (points, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mapping() -> Mapping {
        Mapping::new(
            &[
                "servers.* .host.measurement.field".to_string(),
                "stats.* .measurement.host region=eu".to_string(),
                "measurement.measurement.field*".to_string(),
            ],
            "_",
        )
        .unwrap()
    }

    #[test]
    fn templates_map_paths() {
        let m = mapping();
        let p = parse_line("servers.web1.cpu.idle 98.5 1714557600", &m, 0).unwrap();
        assert_eq!(p.table, "cpu");
        assert_eq!(p.tags, vec![("host".into(), "web1".into())]);
        assert_eq!(p.fields[0].0, "idle");
        assert_eq!(p.time, 1_714_557_600_000_000_000);
        let p = parse_line("stats.requests.web2 7", &m, 42).unwrap();
        assert_eq!(p.table, "requests");
        assert_eq!(
            p.tags,
            vec![
                ("region".into(), "eu".into()),
                ("host".into(), "web2".into())
            ]
        );
        assert_eq!((p.fields[0].0.as_str(), p.time), ("value", 42));
        let p = parse_line("app.http.requests.count 3 -1", &m, 7).unwrap();
        assert_eq!(
            (p.table.as_str(), p.fields[0].0.as_str(), p.time),
            ("app_http", "requests_count", 7)
        );
        // Tagged form: tags after the path win over template tags.
        let p = parse_line(
            "servers.web1.disk.used;host=other;dc=x 1.5 1714557600.5",
            &m,
            0,
        )
        .unwrap();
        assert_eq!(
            p.tags,
            vec![("host".into(), "other".into()), ("dc".into(), "x".into())]
        );
        assert_eq!(p.time, 1_714_557_600_500_000_000);
        // No templates: the path is the table.
        let p = parse_line("a.b.c 1 1", &Mapping::default(), 0).unwrap();
        assert_eq!(
            (p.table.as_str(), p.fields[0].0.as_str()),
            ("a.b.c", "value")
        );
    }

    #[test]
    fn bad_lines() {
        let m = mapping();
        for bad in [
            "a.b",
            "a.b x 1",
            "a.b 1 soon",
            "a..b 1 1",
            "a;b 1 1",
            "a 1 2 3",
        ] {
            assert!(parse_line(bad, &m, 0).is_err(), "{bad}");
        }
        let (points, errors) = parse_lines("a 1 1\n\nb x 1\nc 2 2\n", 10, &m, 0);
        assert_eq!(points.len(), 2);
        assert_eq!(errors[0].line, 12);
        assert!(Template::parse("a.b host.field").is_err(), "no measurement");
        assert!(Template::parse("a b c d").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let _ = parse_line(&line, &mapping(), 0);
        }
    }
}
