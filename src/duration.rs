//! Durations, parsed and printed one way for the whole server: TTLs and alert clauses
//! (`'30 days'`, `'1h30m'`), scrape settings and CLI flags (`"15s"`, `"250ms"`), Postgres
//! settings (`statement_timeout = 5000`, `'2min'`). A leaf: it imports nothing of Sundial.
//!
//! Every parsed duration is positive and at most [`MAX_SECS`], so that converting it to
//! nanoseconds (`i64`) can never overflow.

use std::time::Duration as StdDuration;

/// The longest duration accepted: what fits in `i64` nanoseconds (about 292 years).
pub const MAX_SECS: u64 = (i64::MAX / 1_000_000_000) as u64;

/// Seconds per unit name, as PostgreSQL's interval input and Prometheus spell them.
fn unit_secs(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        "mon" | "mons" | "month" | "months" => 2_592_000,
        "y" | "yr" | "yrs" | "year" | "years" => 31_536_000,
        _ => return None,
    })
}

/// A whole number of seconds written as interval text (`'30 days'`, `'1 hour 30
/// minutes'`) or as a Prometheus duration (`'1h30m'`, `'7d'`). `None` for anything else,
/// for zero, and for more than [`MAX_SECS`].
pub fn parse_secs(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if letters == 0 {
            return None;
        }
        total = total.checked_add(n.checked_mul(unit_secs(&rest[..letters])?)?)?;
        rest = &rest[letters..];
    }
    (total > 0 && total <= MAX_SECS).then_some(total)
}

/// Like [`parse_secs`], and also whole milliseconds (`"250ms"`): scrape settings and
/// CLI flags.
pub fn parse(text: &str) -> Option<StdDuration> {
    parse_secs(text).map(StdDuration::from_secs).or_else(|| {
        text.trim()
            .strip_suffix("ms")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0 && *ms / 1000 <= MAX_SECS)
            .map(StdDuration::from_millis)
    })
}

/// A Postgres time setting in milliseconds (`statement_timeout`): a bare number is
/// milliseconds; units `us`, `ms`, `s`, `min`, `h`, `d`; fractions allowed (`1.5 s`).
pub fn parse_setting_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let n: f64 = t[..split].parse().ok()?;
    let factor = match t[split..].trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = (n * factor).round();
    (ms.is_finite() && ms >= 0.0 && ms <= (MAX_SECS * 1000) as f64).then_some(ms as u64)
}

/// A Postgres time setting as `SHOW` prints it: `0`, `250ms`, `5s`, `2min`, `1h`.
pub fn format_setting_ms(ms: u64) -> String {
    match ms {
        0 => "0".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}min", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// Seconds as a Prometheus-style duration: `1d2h`, `90s` → `1m30s`, `0s`.
pub fn format_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Seconds as nanoseconds (saturating; parsed durations always fit).
pub fn secs_to_nanos(secs: u64) -> i64 {
    (secs.min(MAX_SECS) as i64).saturating_mul(1_000_000_000)
}

/// A duration in a config file: text as [`parse`] reads it (`"15s"`, `"1m"`, `"250ms"`),
/// written back as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(StdDuration::from_secs(secs))
    }

    pub const fn get(self) -> StdDuration {
        self.0
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        if d.subsec_nanos() != 0 || d.as_secs() == 0 {
            write!(f, "{}ms", d.as_millis())
        } else {
            f.write_str(&format_secs(d.as_secs()))
        }
    }
}

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Duration, String> {
        parse(text)
            .map(Duration)
            .ok_or_else(|| format!("invalid duration {text:?}: use a duration like \"15s\""))
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Text (`"15s"`), or a whole number of seconds (`600`, as `…_secs` keys hold).
impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration like \"15s\" or a number of seconds")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Duration, E> {
                if secs == 0 || secs > MAX_SECS {
                    return Err(E::custom(format!(
                        "{secs} seconds is out of range (1 to {MAX_SECS})"
                    )));
                }
                Ok(Duration::from_secs(secs))
            }

            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Duration, E> {
                match u64::try_from(secs) {
                    Ok(s) => self.visit_u64(s),
                    Err(_) => Err(E::custom(format!("{secs} seconds is negative"))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_text_and_prometheus_durations() {
        assert_eq!(parse_secs("30 days"), Some(30 * 86_400));
        assert_eq!(parse_secs("1 hour 30 minutes"), Some(5_400));
        assert_eq!(parse_secs("1h30m"), Some(5_400));
        assert_eq!(parse_secs("7d"), Some(604_800));
        assert_eq!(parse_secs("2 WEEKS"), Some(1_209_600));
        for bad in ["", "days", "5", "1 fortnight", "-1d", "0s", "300 years"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
        assert_eq!(parse("250ms"), Some(StdDuration::from_millis(250)));
        assert_eq!(parse("15s"), Some(StdDuration::from_secs(15)));
        assert_eq!(parse("0ms"), None);
    }

    #[test]
    fn settings_and_printing() {
        assert_eq!(parse_setting_ms("5000"), Some(5000));
        assert_eq!(parse_setting_ms("5s"), Some(5000));
        assert_eq!(parse_setting_ms("2min"), Some(120_000));
        assert_eq!(parse_setting_ms("1.5 s"), Some(1500));
        assert_eq!(parse_setting_ms("x"), None);
        assert_eq!(format_setting_ms(5000), "5s");
        assert_eq!(format_setting_ms(250), "250ms");
        assert_eq!(format_setting_ms(0), "0");
        assert_eq!(format_secs(90), "1m30s");
        assert_eq!(format_secs(93_600), "1d2h");
        assert_eq!(Duration::from_secs(60).to_string(), "1m");
        assert_eq!("250ms".parse::<Duration>().unwrap().to_string(), "250ms");
        #[derive(serde::Deserialize)]
        struct C {
            d: Duration,
        }
        let c: C = toml::from_str("d = 600").unwrap();
        assert_eq!(c.d, Duration::from_secs(600));
        let c: C = toml::from_str("d = \"1h30m\"").unwrap();
        assert_eq!(c.d, Duration::from_secs(5_400));
        assert!(toml::from_str::<C>("d = -5").is_err());
        assert!(toml::from_str::<C>("d = \"soon\"").is_err());
    }
}
