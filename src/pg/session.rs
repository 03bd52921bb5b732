//! Per-connection settings: `SET`, `SHOW`, `RESET`, startup parameters and the
//! `ParameterStatus` messages PostgreSQL sends when a reported setting changes.
//!
//! Values live in the connection's metadata map under the lower-cased setting name
//! (where pgwire's and arrow-pg's format options also look for `datestyle`,
//! `extra_float_digits`, …). Unset means the default from [`crate::query::settings`].

use crate::duration::{format_setting_ms, parse_setting_ms};
use crate::error::SqlState;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{Expr, Ident, Reset, Set, Statement, Value};
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;

use super::encode::{self, OutputOptions, SessionZone};
use crate::query::settings::{self, SETTINGS};

/// Prefix of the metadata keys holding startup-packet values, which `RESET` returns to.
const STARTUP: &str = "startup:";

/// Metadata keys that are connection facts, not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "options", "replication"];

fn error(state: SqlState, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        state.code().to_string(),
        message,
    )))
}

fn unrecognized(name: &str) -> PgWireError {
    error(
        SqlState::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

/// The session's value of `name`; `None` for a parameter that is neither known nor set.
/// What [`get`] answers with the connection's pid (not a setting: no client can name it,
/// being upper case where settings are lower).
pub const BACKEND_PID: &str = "Sundial.backend_pid";

pub fn get<C: ClientInfo + ?Sized>(client: &C, name: &str) -> Option<String> {
    if name == BACKEND_PID {
        return Some(client.pid_and_secret_key().0.to_string());
    }
    let key = name.to_ascii_lowercase();
    if NOT_SETTINGS.contains(&key.as_str()) {
        return None;
    }
    if let Some(v) = client.metadata().get(&key) {
        return Some(v.clone());
    }
    if let Some(v) = client.metadata().get(&format!("{STARTUP}{key}")) {
        return Some(v.clone());
    }
    if key == "session_authorization" {
        return client.metadata().get("user").cloned();
    }
    settings::default_value(&key)
}

/// Checks and normalizes a new value for `name`.
fn normalize(name: &str, value: &str) -> PgWireResult<String> {
    // asyncpg sends `client_encoding='utf-8'` quoted, as a GUC string may be.
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value);
    let invalid = || {
        error(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{name}\": \"{value}\""),
        )
    };
    Ok(match name {
        "timezone" => {
            SessionZone::parse(value).ok_or_else(invalid)?;
            value.to_string()
        }
        "extra_float_digits" => {
            let n: i32 = value.trim().parse().map_err(|_| invalid())?;
            if !(-15..=3).contains(&n) {
                return Err(invalid());
            }
            n.to_string()
        }
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            let ms = parse_setting_ms(value).ok_or_else(invalid)?;
            format_setting_ms(ms)
        }
        "client_encoding" => {
            let v = value.to_ascii_uppercase().replace(['-', '_'], "");
            if v != "UTF8" && v != "UNICODE" {
                return Err(error(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("client_encoding {value} is not supported: Sundial speaks UTF8"),
                ));
            }
            "UTF8".to_string()
        }
        "datestyle" => {
            // Only ISO output is produced; accept the orderings drivers send.
            if !value.to_ascii_uppercase().contains("ISO") {
                return Err(error(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("DateStyle \"{value}\" is not supported: Sundial outputs ISO"),
                ));
            }
            if value.contains(',') {
                value.to_string()
            } else {
                "ISO, MDY".to_string()
            }
        }
        "server_version"
        | "server_version_num"
        | "server_encoding"
        | "integer_datetimes"
        | "block_size"
        | "max_identifier_length"
        | "lc_collate"
        | "lc_ctype"
        | "in_hot_standby" => {
            return Err(error(
                SqlState::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{name}\" cannot be changed"),
            ));
        }
        _ => value.to_string(),
    })
}

/// Sets `name` for the session; answers the `ParameterStatus` to send, if the setting
/// is reported.
pub fn set<C: ClientInfo + ?Sized>(
    client: &mut C,
    name: &str,
    value: &str,
) -> PgWireResult<Option<(String, String)>> {
    let key = name.to_ascii_lowercase();
    let known = settings::lookup(&key);
    if known.is_none() && !key.contains('.') {
        // PostgreSQL refuses unknown names; custom ones (`app.x`) are placeholders.
        return Err(unrecognized(name));
    }
    let value = normalize(&key, value)?;
    client.metadata_mut().insert(key, value.clone());
    Ok(known
        .filter(|s| s.reported)
        .map(|s| (s.name.to_string(), value)))
}

/// Back to the default; answers the `ParameterStatus` to send, if reported.
pub fn reset<C: ClientInfo + ?Sized>(client: &mut C, name: &str) -> Option<(String, String)> {
    let key = name.to_ascii_lowercase();
    client.metadata_mut().remove(&key);
    let s = settings::lookup(&key)?;
    s.reported
        .then(|| (s.name.to_string(), get(client, &key).unwrap_or_default()))
}

/// `RESET ALL` (and `DISCARD ALL`): every setting back to its startup or default value;
/// answers the `ParameterStatus`es to send.
pub fn reset_all<C: ClientInfo + ?Sized>(client: &mut C) -> Vec<(String, String)> {
    let keys: Vec<String> = client
        .metadata()
        .keys()
        .filter(|k| {
            !NOT_SETTINGS.contains(&k.as_str())
                && !k.starts_with(STARTUP)
                && (settings::lookup(k).is_some() || k.contains('.'))
        })
        .cloned()
        .collect();
    keys.iter().filter_map(|k| reset(client, k)).collect()
}

/// Applies the server's default `statement_timeout`, then the startup packet's parameters that are settings (pgjdbc sends `TimeZone`,
/// `DateStyle`, `extra_float_digits`, …) under their lower-cased names.
pub fn apply_startup<C: ClientInfo + ?Sized>(
    client: &mut C,
    parameters: &std::collections::BTreeMap<String, String>,
    statement_timeout_ms: u64,
) -> PgWireResult<()> {
    // The server's default, as `ALTER DATABASE … SET` would give it: the startup packet
    // and SET override it, RESET comes back to it.
    if statement_timeout_ms > 0 {
        client.metadata_mut().insert(
            format!("{STARTUP}statement_timeout"),
            format_setting_ms(statement_timeout_ms),
        );
    }
    for (k, v) in parameters {
        let key = k.to_ascii_lowercase();
        if NOT_SETTINGS.contains(&key.as_str()) || settings::lookup(&key).is_none() {
            continue;
        }
        match normalize(&key, v) {
            Ok(value) => {
                client
                    .metadata_mut()
                    .insert(format!("{STARTUP}{key}"), value);
            }
            // A read-only setting (server_version, …) in the startup packet: ignored.
            Err(PgWireError::UserError(info))
                if info.code == SqlState::CANT_CHANGE_RUNTIME_PARAM.code() => {}
            Err(PgWireError::UserError(info)) => {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".to_string(),
                    info.code,
                    info.message,
                ))));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Every reported setting with its session value, for the startup `ParameterStatus`es.
pub fn reported<C: ClientInfo + ?Sized>(client: &C) -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .filter(|s| s.reported)
        .map(|s| (s.name.to_string(), get(client, s.name).unwrap_or_default()))
        .collect()
}

/// How this session wants values shown.
pub fn output_options<C: ClientInfo + ?Sized>(client: &C) -> OutputOptions {
    let extra_float_digits = get(client, "extra_float_digits")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let time_zone = get(client, "timezone")
        .and_then(|z| SessionZone::parse(&z))
        .unwrap_or(SessionZone::Utc);
    let mut format = FormatOptions::default();
    let text = |name: &str| get(client, name).unwrap_or_default();
    format.date_style = text("datestyle");
    format.interval_style = text("intervalstyle");
    format.bytea_output = text("bytea_output");
    format.time_zone = text("timezone");
    format.extra_float_digits = extra_float_digits as i8;
    OutputOptions {
        extra_float_digits,
        time_zone,
        format: Arc::new(format),
    }
}

/// The session's `statement_timeout`, if any.
pub fn statement_timeout<C: ClientInfo + ?Sized>(client: &C) -> Option<std::time::Duration> {
    let ms = parse_setting_ms(&get(client, "statement_timeout")?)?;
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// The text of a `SET` value: `'x'` → `x`, `public, pg_catalog` → `public, pg_catalog`.
fn value_text(values: &[Expr]) -> String {
    values
        .iter()
        .map(|e| match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s)
                | Value::DoubleQuotedString(s)
                | Value::EscapedStringLiteral(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a session statement did: its response and the `ParameterStatus`es to send first.
pub struct Outcome {
    pub response: Response,
    pub reports: Vec<(String, String)>,
}

/// The setting `SHOW` names (lower-cased); `None` for `SHOW ALL`.
fn shown(variable: &[Ident]) -> Option<String> {
    let parts: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
    Some(match parts.as_slice() {
        [all] if all == "all" => return None,
        [t, i, l] if t == "transaction" && i == "isolation" && l == "level" => {
            "transaction_isolation".to_string()
        }
        [t, z] if t == "time" && z == "zone" => "timezone".to_string(),
        _ => parts.join("."),
    })
}

/// The columns of `SHOW ALL`.
const SHOW_ALL_COLUMNS: [&str; 3] = ["name", "setting", "description"];

/// The columns `SHOW` answers with: one named by the setting's PostgreSQL spelling.
fn show_columns(variable: &[Ident]) -> Vec<String> {
    match shown(variable) {
        None => SHOW_ALL_COLUMNS.map(String::from).to_vec(),
        Some(name) => vec![
            settings::lookup(&name)
                .map(|s| s.name.to_string())
                .unwrap_or(name),
        ],
    }
}

/// The rows `SHOW` answers for `variable`.
fn show_rows<C: ClientInfo + ?Sized>(
    client: &C,
    variable: &[Ident],
) -> PgWireResult<Vec<Vec<Option<String>>>> {
    match shown(variable) {
        None => Ok(SETTINGS
            .iter()
            .map(|s| {
                vec![
                    Some(s.name.to_string()),
                    get(client, s.name),
                    Some(s.description.to_string()),
                ]
            })
            .collect()),
        Some(name) => {
            let value = get(client, &name).ok_or_else(|| unrecognized(&name))?;
            Ok(vec![vec![Some(value)]])
        }
    }
}

/// Result columns of a session statement, for Describe (`None`: not a session statement).
pub fn describe(statement: &Statement) -> Option<Vec<String>> {
    match statement {
        Statement::ShowVariable { variable } => Some(show_columns(variable)),
        Statement::Set(_) | Statement::Reset(_) => Some(Vec::new()),
        _ => None,
    }
}

/// Runs `SET`, `SHOW` or `RESET`; `None` if `statement` is none of them.
pub fn execute<C: ClientInfo + ?Sized>(
    client: &mut C,
    statement: &Statement,
    format: &Format,
) -> Option<PgWireResult<Outcome>> {
    let set_tag = |reports| Outcome {
        response: Response::Execution(Tag::new("SET")),
        reports,
    };
    let result = match statement {
        Statement::ShowVariable { variable } => show_rows(client, variable).and_then(|rows| {
            let columns = show_columns(variable);
            let response = encode::text_rows(&columns, rows, format, output_options(client))?;
            Ok(Outcome {
                response: Response::Query(response),
                reports: Vec::new(),
            })
        }),
        Statement::Set(set_stmt) => match set_stmt {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().trim_matches('"').to_string();
                let is_default = matches!(values.as_slice(), [Expr::Identifier(i)] if i.value.eq_ignore_ascii_case("default"));
                if is_default {
                    Ok(set_tag(reset(client, &name).into_iter().collect()))
                } else {
                    set(client, &name, &value_text(values))
                        .map(|r| set_tag(r.into_iter().collect()))
                }
            }
            Set::SetTimeZone { value, .. } => {
                let text = value_text(std::slice::from_ref(value));
                if text.eq_ignore_ascii_case("local") || text.eq_ignore_ascii_case("default") {
                    Ok(set_tag(reset(client, "timezone").into_iter().collect()))
                } else {
                    set(client, "TimeZone", &text).map(|r| set_tag(r.into_iter().collect()))
                }
            }
            Set::SetNames { charset_name, .. } => {
                set(client, "client_encoding", &charset_name.value)
                    .map(|r| set_tag(r.into_iter().collect()))
            }
            Set::SetNamesDefault {} => Ok(set_tag(
                reset(client, "client_encoding").into_iter().collect(),
            )),
            // SET TRANSACTION / SESSION CHARACTERISTICS, SET ROLE, SET SESSION
            // AUTHORIZATION: every session is read committed and all-powerful here.
            Set::SetTransaction { .. } | Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
                Ok(set_tag(Vec::new()))
            }
            _ => Err(error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unsupported SET form: {statement}"),
            )),
        },
        Statement::Reset(r) => {
            let reports = match &r.reset {
                Reset::ALL => reset_all(client),
                Reset::ConfigurationParameter(name) => {
                    let name = name.to_string().trim_matches('"').to_string();
                    reset(client, &name).into_iter().collect()
                }
            };
            Ok(Outcome {
                response: Response::Execution(Tag::new("RESET")),
                reports,
            })
        }
        _ => return None,
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert!(normalize("timezone", "Europe/Berlin").is_ok());
        assert!(normalize("timezone", "Nowhere/Special").is_err());
        assert!(normalize("extra_float_digits", "4").is_err());
        assert_eq!(normalize("extra_float_digits", "3").unwrap(), "3");
        assert_eq!(normalize("client_encoding", "utf-8").unwrap(), "UTF8");
        assert!(normalize("server_version", "1").is_err());
    }
}
