//! PostgreSQL run-time settings as Sundial answers them: names, defaults, and which ones
//! a server reports to the client in `ParameterStatus` when they change. Session values
//! (`SET`) are kept by the Postgres front end (its session settings); this table is what a fresh
//! session sees, and what `current_setting()` answers where there is no session.

/// One setting.
pub struct Setting {
    /// PostgreSQL's spelling (`TimeZone`, `DateStyle`, `search_path`, …).
    pub name: &'static str,
    /// The value a new session starts with.
    pub default: fn() -> String,
    /// Reported in `ParameterStatus` at startup and whenever it changes (`GUC_REPORT`).
    pub reported: bool,
    /// `pg_settings.short_desc`-style description, shown by `SHOW ALL`.
    pub description: &'static str,
}

/// PostgreSQL's version that Sundial speaks for, as `server_version` announces it.
pub fn server_version() -> String {
    format!("16.6 (Sundial {})", env!("CARGO_PKG_VERSION"))
}

macro_rules! setting {
    ($name:literal, $default:literal, $reported:literal, $desc:literal) => {
        Setting {
            name: $name,
            default: || $default.to_string(),
            reported: $reported,
            description: $desc,
        }
    };
}

/// Every setting Sundial knows, sorted by lower-cased name.
pub const SETTINGS: &[Setting] = &[
    setting!(
        "application_name",
        "",
        true,
        "Sets the application name to be reported in statistics and logs."
    ),
    setting!(
        "block_size",
        "8192",
        false,
        "Shows the size of a disk block."
    ),
    setting!(
        "bytea_output",
        "hex",
        false,
        "Sets the output format for bytea."
    ),
    setting!(
        "client_encoding",
        "UTF8",
        true,
        "Sets the client's character set encoding."
    ),
    setting!(
        "client_min_messages",
        "notice",
        false,
        "Sets the message levels that are sent to the client."
    ),
    setting!(
        "DateStyle",
        "ISO, MDY",
        true,
        "Sets the display format for date and time values."
    ),
    setting!(
        "default_transaction_isolation",
        "read committed",
        false,
        "Sets the transaction isolation level of each new transaction."
    ),
    setting!(
        "default_transaction_read_only",
        "off",
        true,
        "Sets the default read-only status of new transactions."
    ),
    setting!(
        "extra_float_digits",
        "1",
        false,
        "Sets the number of digits displayed for floating-point values."
    ),
    setting!(
        "idle_in_transaction_session_timeout",
        "0",
        false,
        "Sets the maximum allowed idle time between queries, when in a transaction."
    ),
    setting!(
        "in_hot_standby",
        "off",
        true,
        "Shows whether hot standby is currently active."
    ),
    setting!(
        "integer_datetimes",
        "on",
        true,
        "Shows whether datetimes are integer based."
    ),
    setting!(
        "IntervalStyle",
        "postgres",
        true,
        "Sets the display format for interval values."
    ),
    setting!(
        "is_superuser",
        "on",
        true,
        "Shows whether the current user is a superuser."
    ),
    setting!(
        "lc_collate",
        "C",
        false,
        "Shows the collation order locale."
    ),
    setting!(
        "lc_ctype",
        "C",
        false,
        "Shows the character classification and case conversion locale."
    ),
    setting!(
        "lc_messages",
        "C",
        false,
        "Sets the language in which messages are displayed."
    ),
    setting!(
        "lock_timeout",
        "0",
        false,
        "Sets the maximum allowed duration of any wait for a lock."
    ),
    setting!(
        "max_connections",
        "1000",
        false,
        "Sets the maximum number of concurrent connections."
    ),
    setting!(
        "max_identifier_length",
        "63",
        false,
        "Shows the maximum identifier length."
    ),
    setting!(
        "search_path",
        "\"$user\", public",
        true,
        "Sets the schema search order for names that are not schema-qualified."
    ),
    Setting {
        name: "server_encoding",
        default: || "UTF8".to_string(),
        reported: true,
        description: "Shows the server (database) character set encoding.",
    },
    Setting {
        name: "server_version",
        default: server_version,
        reported: true,
        description: "Shows the server version.",
    },
    setting!(
        "server_version_num",
        "160006",
        false,
        "Shows the server version as an integer."
    ),
    setting!(
        "session_authorization",
        "sundial",
        true,
        "Sets the session user name."
    ),
    setting!(
        "standard_conforming_strings",
        "on",
        true,
        "Causes '...' strings to treat backslashes literally."
    ),
    setting!(
        "statement_timeout",
        "0",
        false,
        "Sets the maximum allowed duration of any statement."
    ),
    setting!(
        "TimeZone",
        "UTC",
        true,
        "Sets the time zone for displaying and interpreting time stamps."
    ),
    setting!(
        "transaction_isolation",
        "read committed",
        false,
        "Sets the current transaction's isolation level."
    ),
    setting!(
        "transaction_read_only",
        "off",
        false,
        "Sets the current transaction's read-only status."
    ),
];

/// The setting called `name` (any case).
pub fn lookup(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// A setting's value in a session without changes: its default.
pub fn default_value(name: &str) -> Option<String> {
    lookup(name).map(|s| (s.default)())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<String> = SETTINGS.iter().map(|s| s.name.to_lowercase()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(lookup("timezone").unwrap().name, "TimeZone");
        assert_eq!(default_value("SERVER_VERSION_NUM").unwrap(), "160006");
        assert!(lookup("no_such_thing").is_none());
    }
}
