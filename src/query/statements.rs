//! Sundial's own SQL statements, recognized before DataFusion sees the query:
//!
//! ```sql
//! CREATE DATABASE [IF NOT EXISTS] name [WITH (ttl = '30 days')]
//! DROP DATABASE [IF EXISTS] name
//! ALTER DATABASE name SET (ttl = '30 days') | ALTER DATABASE name RESET (ttl)
//! ALTER TABLE name SET (ttl = '7d')         | ALTER TABLE name RESET (ttl)
//! DROP TABLE [IF EXISTS] name
//! DELETE FROM name [WHERE <time range and tag predicates>]
//! CREATE ALERT [IF NOT EXISTS] name [EVERY 'dur'] [FOR 'dur'] [KEEP FIRING FOR 'dur']
//!     [LABELS (k = 'v', …)] [ANNOTATIONS (k = 'template', …)]
//!     [NOTIFY ALERTMANAGER 'url' | WEBHOOK 'url' [, …]] AS <select>
//! DROP ALERT [IF EXISTS] name
//! ALTER ALERT name PAUSE | RESUME
//! SHOW ALERTS                               (answered from system.alert_rules)
//! ```
//!
//! The clauses of CREATE ALERT may come in any order before `AS`.
//!
//! Durations are PostgreSQL interval text (`'30 days'`, `'1 hour 30 minutes'`) or
//! Prometheus durations (`'1h30m'`, `'7d'`, `'2w'`).

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::StatementError;
use crate::duration::parse_secs as parse_duration;
use crate::error::SqlState;

/// A parsed Sundial statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        ttl_secs: Option<u64>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    AlterDatabaseTtl {
        name: String,
        ttl_secs: Option<u64>,
    },
    AlterTableTtl {
        table: String,
        ttl_secs: Option<u64>,
    },
    DropTable {
        table: String,
        if_exists: bool,
    },
    /// `where_sql` is the text after `WHERE`, planned by DataFusion.
    Delete {
        table: String,
        where_sql: Option<String>,
    },
    CreateAlert(AlertDefinition),
    DropAlert {
        name: String,
        if_exists: bool,
    },
    AlterAlert {
        name: String,
        paused: bool,
    },
    /// Session and transaction statements drivers send that change nothing here (there are
    /// no multi-statement transactions, cursors across statements, or notifications):
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `DISCARD ALL`, `CLOSE ALL`,
    /// `UNLISTEN`, `DEALLOCATE`. Answered with PostgreSQL's command tag.
    NoOp {
        tag: &'static str,
    },
}

impl Statement {
    /// The command, as PostgreSQL names it in its messages (`DROP TABLE`).
    pub fn command(&self) -> &'static str {
        match self {
            Statement::CreateDatabase { .. } => "CREATE DATABASE",
            Statement::DropDatabase { .. } => "DROP DATABASE",
            Statement::AlterDatabaseTtl { .. } => "ALTER DATABASE",
            Statement::AlterTableTtl { .. } => "ALTER TABLE",
            Statement::DropTable { .. } => "DROP TABLE",
            Statement::Delete { .. } => "DELETE",
            Statement::CreateAlert(_) => "CREATE ALERT",
            Statement::DropAlert { .. } => "DROP ALERT",
            Statement::AlterAlert { .. } => "ALTER ALERT",
            Statement::NoOp { tag } => tag,
        }
    }

    /// Whether it changes stored data or definitions (everything but the no-ops). Such
    /// statements take effect at once, so they cannot run inside a transaction block.
    pub fn writes(&self) -> bool {
        !matches!(self, Statement::NoOp { .. })
    }
}

/// What `CREATE ALERT` defines (durations in seconds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertDefinition {
    pub name: String,
    pub if_not_exists: bool,
    pub every_secs: Option<u64>,
    pub for_secs: u64,
    pub keep_firing_for_secs: u64,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub receivers: Vec<Receiver>,
    /// The query text after `AS`.
    pub query: String,
}

/// Where an alert's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "url", rename_all = "lowercase")]
pub enum Receiver {
    /// An Alertmanager, by its base URL (`http://am:9093`), as Prometheus takes it.
    Alertmanager(String),
    /// A URL that gets Alertmanager's webhook JSON.
    Webhook(String),
}

fn syntax(message: impl Into<String>) -> StatementError {
    StatementError::new(SqlState::SYNTAX_ERROR, message)
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::new(SqlState::INVALID_PARAMETER_VALUE, message)
}

struct Cursor {
    tokens: Vec<Token>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&mut self, kw: Keyword) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.keyword == kw && w.quote_style.is_none())
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A word that is not a reserved keyword of the dialect (`EVERY`, `KEEP`, …).
    fn word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn token(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An identifier: unquoted ones fold to lower case, as in PostgreSQL.
    fn ident(&mut self) -> Result<String, StatementError> {
        match self.peek().cloned() {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(if w.quote_style.is_some() {
                    w.value
                } else {
                    w.value.to_lowercase()
                })
            }
            other => Err(syntax(format!(
                "expected a name, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn string(&mut self) -> Result<String, StatementError> {
        match self.peek().cloned() {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s)
            }
            other => Err(syntax(format!(
                "expected a quoted string, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn expect(&mut self, t: Token) -> Result<(), StatementError> {
        if self.token(&t) {
            Ok(())
        } else {
            Err(syntax(format!(
                "expected {t}, found {}",
                describe(self.peek())
            )))
        }
    }

    fn end(&mut self) -> Result<(), StatementError> {
        while self.token(&Token::SemiColon) {}
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(syntax(format!(
                "unexpected {t} at the end of the statement"
            ))),
        }
    }
}

fn describe(t: Option<&Token>) -> String {
    t.map_or_else(|| "end of input".to_string(), |t| format!("{t}"))
}

/// `(ttl = 'dur')`
fn ttl_option(c: &mut Cursor) -> Result<u64, StatementError> {
    c.expect(Token::LParen)?;
    let key = c.ident()?;
    if key != "ttl" {
        return Err(syntax(format!(
            "unknown option \"{key}\" (only ttl is supported)"
        )));
    }
    c.expect(Token::Eq)?;
    let text = c.string()?;
    c.expect(Token::RParen)?;
    parse_duration(&text).ok_or_else(|| {
        invalid(format!(
            "invalid duration '{text}': use interval text like '30 days' or a duration like '12h'"
        ))
    })
}

/// Recognizes Sundial's own statements. `None`: not one of ours (DataFusion's turn).
pub fn parse(sql: &str) -> Option<Result<Statement, StatementError>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut c = Cursor { tokens, pos: 0 };
    let ours = if c.keyword(Keyword::CREATE) {
        if c.word("alert") {
            create_alert(&mut c, sql)
        } else if c.keyword(Keyword::DATABASE) {
            create_database(&mut c)
        } else {
            return None;
        }
    } else if c.keyword(Keyword::DROP) {
        if c.word("alert") {
            drop_(&mut c, |name, if_exists| Statement::DropAlert {
                name,
                if_exists,
            })
        } else if c.keyword(Keyword::DATABASE) {
            drop_(&mut c, |name, if_exists| Statement::DropDatabase {
                name,
                if_exists,
            })
        } else if c.keyword(Keyword::TABLE) {
            drop_(&mut c, |table, if_exists| Statement::DropTable {
                table,
                if_exists,
            })
        } else {
            return None;
        }
    } else if c.keyword(Keyword::ALTER) {
        if c.word("alert") {
            alter_alert(&mut c)
        } else if c.keyword(Keyword::DATABASE) {
            alter_ttl(&mut c, |name, ttl_secs| Statement::AlterDatabaseTtl {
                name,
                ttl_secs,
            })
        } else if c.keyword(Keyword::TABLE) {
            alter_ttl(&mut c, |table, ttl_secs| Statement::AlterTableTtl {
                table,
                ttl_secs,
            })
        } else {
            return None;
        }
    } else if c.keyword(Keyword::DELETE) {
        delete(&mut c, sql)
    } else if let Some(tag) = no_op(&mut c) {
        Ok(Statement::NoOp { tag })
    } else {
        return None;
    };
    Some(ours)
}

/// Recognizes the statements answered as no-ops (see [`Statement::NoOp`]).
fn no_op(c: &mut Cursor) -> Option<&'static str> {
    let start = c.pos;
    let tag = if c.keyword(Keyword::SAVEPOINT) {
        "SAVEPOINT"
    } else if c.keyword(Keyword::RELEASE) {
        "RELEASE"
    } else if c.keyword(Keyword::ROLLBACK) && c.keyword(Keyword::TO) {
        "ROLLBACK"
    } else if c.keyword(Keyword::DISCARD) {
        "DISCARD ALL"
    } else if c.keyword(Keyword::CLOSE) && c.keyword(Keyword::ALL) {
        "CLOSE CURSOR ALL"
    } else if c.keyword(Keyword::UNLISTEN) {
        "UNLISTEN"
    } else if c.keyword(Keyword::DEALLOCATE) {
        if c.keyword(Keyword::ALL) {
            "DEALLOCATE ALL"
        } else {
            "DEALLOCATE"
        }
    } else {
        c.pos = start;
        return None;
    };
    Some(tag)
}

/// The tokens of `sql` (whitespace included) with the byte offset where each starts, so
/// that statement text can be cut from the source as written (a token's display form does
/// not re-escape quotes: `'it''s'` would come back as `'it's'`).
fn tokens_at(sql: &str) -> Option<Vec<(Token, usize)>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    // Byte offset of each line start; columns count characters.
    let mut line_starts = vec![0];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get((line.max(1) - 1) as usize)
            .copied()
            .unwrap_or(sql.len());
        sql[start..]
            .char_indices()
            .nth((column.max(1) - 1) as usize)
            .map_or(sql.len(), |(i, _)| start + i)
    };
    Some(
        tokens
            .into_iter()
            .filter(|t| t.token != Token::EOF)
            .map(|t| {
                let at = offset(t.span.start.line, t.span.start.column);
                (t.token, at)
            })
            .collect(),
    )
}

/// Splits a simple-protocol query string into statements at top-level semicolons
/// (quotes and comments respected), each as written. `None` if it does not tokenize.
pub fn split(sql: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (token, at) in tokens_at(sql)? {
        if token == Token::SemiColon {
            let part = &sql[start..at];
            if !part.trim().is_empty() {
                out.push(part.to_string());
            }
            start = at + 1;
        }
    }
    let rest = &sql[start.min(sql.len())..];
    if !rest.trim().is_empty() {
        out.push(rest.to_string());
    }
    Some(out)
}

/// `SHOW ALERTS` as the query that answers it; `None` for any other text.
pub fn show_alerts(sql: &str) -> Option<&'static str> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut c = Cursor { tokens, pos: 0 };
    (c.keyword(Keyword::SHOW) && c.word("alerts") && c.end().is_ok()).then_some(
        "SELECT name, database, state, every, \"for\", paused, last_evaluation, last_error \
         FROM system.alert_rules ORDER BY name",
    )
}

fn invalid_duration(text: &str) -> StatementError {
    invalid(format!(
        "invalid duration '{text}': use interval text like '30 seconds' or a duration like '1m30s'"
    ))
}

/// A duration clause's value; `'0s'` (and `'0'`) allowed where zero means "none".
fn duration(c: &mut Cursor, zero_ok: bool) -> Result<u64, StatementError> {
    let text = c.string()?;
    if zero_ok
        && text
            .trim()
            .trim_end_matches(|ch: char| ch.is_ascii_alphabetic() || ch == ' ')
            .trim()
            .chars()
            .all(|ch| ch == '0')
        && !text.trim().is_empty()
    {
        return Ok(0);
    }
    let secs = parse_duration(&text).ok_or_else(|| invalid_duration(&text))?;
    if secs > MAX_ALERT_SECS {
        return Err(invalid(format!(
            "duration '{text}' is too long: alert durations are at most 10 years"
        )));
    }
    Ok(secs)
}

/// The longest `EVERY`, `FOR` or `KEEP FIRING FOR`: ten years.
pub const MAX_ALERT_SECS: u64 = 10 * 365 * 86_400;

/// `(k = 'v', …)`
fn pairs(c: &mut Cursor) -> Result<Vec<(String, String)>, StatementError> {
    c.expect(Token::LParen)?;
    let mut out = Vec::new();
    if c.token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let key = c.ident()?;
        c.expect(Token::Eq)?;
        out.push((key, c.string()?));
        if c.token(&Token::RParen) {
            return Ok(out);
        }
        c.expect(Token::Comma)?;
    }
}

fn create_alert(c: &mut Cursor, sql: &str) -> Result<Statement, StatementError> {
    let mut def = AlertDefinition::default();
    if c.keyword(Keyword::IF) {
        if !(c.keyword(Keyword::NOT) && c.keyword(Keyword::EXISTS)) {
            return Err(syntax("expected IF NOT EXISTS"));
        }
        def.if_not_exists = true;
    }
    def.name = c.ident()?;
    loop {
        if c.word("every") {
            def.every_secs = Some(duration(c, false)?);
        } else if c.keyword(Keyword::FOR) {
            def.for_secs = duration(c, true)?;
        } else if c.word("keep") {
            if !(c.word("firing") && c.keyword(Keyword::FOR)) {
                return Err(syntax("expected KEEP FIRING FOR 'duration'"));
            }
            def.keep_firing_for_secs = duration(c, true)?;
        } else if c.word("labels") {
            def.labels = pairs(c)?;
        } else if c.word("annotations") {
            def.annotations = pairs(c)?;
        } else if c.word("notify") {
            loop {
                let receiver = if c.word("alertmanager") {
                    Receiver::Alertmanager(c.string()?)
                } else if c.word("webhook") {
                    Receiver::Webhook(c.string()?)
                } else {
                    return Err(syntax(format!(
                        "expected ALERTMANAGER 'url' or WEBHOOK 'url', found {}",
                        describe(c.peek())
                    )));
                };
                let url = match &receiver {
                    Receiver::Alertmanager(u) | Receiver::Webhook(u) => u,
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(format!(
                        "invalid receiver URL '{url}': expected http:// or https://"
                    )));
                }
                def.receivers.push(receiver);
                if !c.token(&Token::Comma) {
                    break;
                }
            }
        } else if c.keyword(Keyword::AS) {
            break;
        } else {
            return Err(syntax(format!(
                "expected EVERY, FOR, KEEP FIRING FOR, LABELS, ANNOTATIONS, NOTIFY or AS, found {}",
                describe(c.peek())
            )));
        }
    }
    // The query is the source text after the AS at token `c.pos - 1`.
    let tokens = tokens_at(sql).ok_or_else(|| syntax("cannot tokenize the statement"))?;
    let query = tokens
        .iter()
        .filter(|(t, _)| !matches!(t, Token::Whitespace(_)))
        .nth(c.pos)
        .map_or("", |(_, at)| &sql[*at..]);
    let query = query.trim().trim_end_matches(';').trim().to_string();
    if query.is_empty() {
        return Err(syntax("expected a query after AS"));
    }
    def.query = query;
    Ok(Statement::CreateAlert(def))
}

fn alter_alert(c: &mut Cursor) -> Result<Statement, StatementError> {
    let name = c.ident()?;
    let paused = if c.word("pause") {
        true
    } else if c.word("resume") {
        false
    } else {
        return Err(syntax(format!(
            "expected PAUSE or RESUME, found {}",
            describe(c.peek())
        )));
    };
    c.end()?;
    Ok(Statement::AlterAlert { name, paused })
}

fn create_database(c: &mut Cursor) -> Result<Statement, StatementError> {
    let if_not_exists = c.keyword(Keyword::IF);
    if if_not_exists && !(c.keyword(Keyword::NOT) && c.keyword(Keyword::EXISTS)) {
        return Err(syntax("expected IF NOT EXISTS"));
    }
    let name = c.ident()?;
    let ttl_secs = if c.keyword(Keyword::WITH) {
        Some(ttl_option(c)?)
    } else {
        None
    };
    c.end()?;
    Ok(Statement::CreateDatabase {
        name,
        if_not_exists,
        ttl_secs,
    })
}

fn drop_(
    c: &mut Cursor,
    make: impl Fn(String, bool) -> Statement,
) -> Result<Statement, StatementError> {
    let if_exists = c.keyword(Keyword::IF);
    if if_exists && !c.keyword(Keyword::EXISTS) {
        return Err(syntax("expected IF EXISTS"));
    }
    let name = c.ident()?;
    c.end()?;
    Ok(make(name, if_exists))
}

fn alter_ttl(
    c: &mut Cursor,
    make: impl Fn(String, Option<u64>) -> Statement,
) -> Result<Statement, StatementError> {
    let name = c.ident()?;
    let ttl = if c.keyword(Keyword::SET) {
        Some(ttl_option(c)?)
    } else if c.keyword(Keyword::RESET) {
        c.expect(Token::LParen)?;
        let key = c.ident()?;
        if key != "ttl" {
            return Err(syntax(format!(
                "unknown option \"{key}\" (only ttl is supported)"
            )));
        }
        c.expect(Token::RParen)?;
        None
    } else {
        return Err(syntax("expected SET (ttl = '…') or RESET (ttl)"));
    };
    c.end()?;
    Ok(make(name, ttl))
}

fn delete(c: &mut Cursor, sql: &str) -> Result<Statement, StatementError> {
    if !c.keyword(Keyword::FROM) {
        return Err(syntax("expected DELETE FROM"));
    }
    let table = c.ident()?;
    if c.peek().is_none() || c.token(&Token::SemiColon) {
        c.end()?;
        return Ok(Statement::Delete {
            table,
            where_sql: None,
        });
    }
    if !c.keyword(Keyword::WHERE) {
        return Err(syntax(format!(
            "expected WHERE, found {}",
            describe(c.peek())
        )));
    }
    // The WHERE text is everything after the first WHERE keyword.
    let upper = sql.to_ascii_uppercase();
    let at = find_keyword(&upper, "WHERE").ok_or_else(|| syntax("expected WHERE"))?;
    let rest = sql[at + 5..].trim().trim_end_matches(';').trim();
    if rest.is_empty() {
        return Err(syntax("expected a condition after WHERE"));
    }
    Ok(Statement::Delete {
        table,
        where_sql: Some(rest.to_string()),
    })
}

fn find_keyword(upper: &str, kw: &str) -> Option<usize> {
    let b = upper.as_bytes();
    let mut from = 0;
    while let Some(i) = upper[from..].find(kw).map(|i| i + from) {
        let before =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'"');
        let after = b
            .get(i + kw.len())
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'"'));
        if before && after {
            return Some(i);
        }
        from = i + kw.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_statements() {
        let p = |s: &str| parse(s).unwrap().unwrap();
        let Statement::CreateAlert(def) = p(
            "CREATE ALERT IF NOT EXISTS High_Cpu FOR '2 minutes' EVERY '30s' \
             KEEP FIRING FOR '1m' LABELS (severity = 'page', team = 'ops') \
             ANNOTATIONS (summary = 'CPU {{ value }} on {{ host }}') \
             NOTIFY ALERTMANAGER 'http://127.0.0.1:9093', WEBHOOK 'http://h/x' \
             AS SELECT host, avg(u) AS value FROM cpu WHERE time > now() - INTERVAL '5 minutes' \
             GROUP BY host HAVING avg(u) > 90;",
        ) else {
            panic!("not CREATE ALERT");
        };
        assert_eq!(def.name, "high_cpu");
        assert!(def.if_not_exists);
        assert_eq!(def.every_secs, Some(30));
        assert_eq!(def.for_secs, 120);
        assert_eq!(def.keep_firing_for_secs, 60);
        assert_eq!(def.labels[1], ("team".into(), "ops".into()));
        assert_eq!(def.annotations[0].1, "CPU {{ value }} on {{ host }}");
        assert_eq!(
            def.receivers,
            vec![
                Receiver::Alertmanager("http://127.0.0.1:9093".into()),
                Receiver::Webhook("http://h/x".into())
            ]
        );
        assert_eq!(
            def.query,
            "SELECT host, avg(u) AS value FROM cpu WHERE time > now() - INTERVAL '5 minutes' GROUP BY host HAVING avg(u) > 90"
        );
        let Statement::CreateAlert(def) =
            p("CREATE ALERT q AS SELECT 'it''s' AS x, 1 AS value -- ok")
        else {
            panic!()
        };
        assert_eq!(def.query, "SELECT 'it''s' AS x, 1 AS value -- ok");
        let Statement::CreateAlert(def) = p("create alert a for '0s' as select 1 as value") else {
            panic!()
        };
        assert_eq!((def.for_secs, def.every_secs), (0, None));
        assert_eq!(
            p("DROP ALERT IF EXISTS a"),
            Statement::DropAlert {
                name: "a".into(),
                if_exists: true
            }
        );
        assert_eq!(
            p("alter alert a pause"),
            Statement::AlterAlert {
                name: "a".into(),
                paused: true
            }
        );
        assert!(show_alerts("show alerts;").is_some());
        assert!(show_alerts("show all").is_none());
        for (bad, code) in [
            (
                "CREATE ALERT a EVERY 'soon' AS SELECT 1",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            ("CREATE ALERT a EVERY '1m'", SqlState::SYNTAX_ERROR),
            (
                "CREATE ALERT a NOTIFY PAGER 'x' AS SELECT 1",
                SqlState::SYNTAX_ERROR,
            ),
            (
                "CREATE ALERT a NOTIFY WEBHOOK 'ftp://x' AS SELECT 1",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            ("CREATE ALERT a AS", SqlState::SYNTAX_ERROR),
            ("ALTER ALERT a STOP", SqlState::SYNTAX_ERROR),
        ] {
            assert_eq!(parse(bad).unwrap().unwrap_err().state, code, "{bad}");
        }
    }

    #[test]
    fn statements() {
        let p = |s: &str| parse(s).unwrap().unwrap();
        assert_eq!(
            p("CREATE DATABASE IF NOT EXISTS Metrics WITH (ttl = '30 days');"),
            Statement::CreateDatabase {
                name: "metrics".into(),
                if_not_exists: true,
                ttl_secs: Some(30 * 86_400)
            }
        );
        assert_eq!(
            p("alter table \"Cpu\" set (ttl = '1h')"),
            Statement::AlterTableTtl {
                table: "Cpu".into(),
                ttl_secs: Some(3_600)
            }
        );
        assert_eq!(
            p("ALTER DATABASE d RESET (ttl)"),
            Statement::AlterDatabaseTtl {
                name: "d".into(),
                ttl_secs: None
            }
        );
        assert_eq!(
            p("drop table if exists cpu"),
            Statement::DropTable {
                table: "cpu".into(),
                if_exists: true
            }
        );
        assert_eq!(
            p("DROP DATABASE x"),
            Statement::DropDatabase {
                name: "x".into(),
                if_exists: false
            }
        );
        assert_eq!(
            p("DELETE FROM cpu WHERE host = 'a' AND time < '2020-01-01T00:00:00Z';"),
            Statement::Delete {
                table: "cpu".into(),
                where_sql: Some("host = 'a' AND time < '2020-01-01T00:00:00Z'".into())
            }
        );
        assert_eq!(
            p("delete from cpu"),
            Statement::Delete {
                table: "cpu".into(),
                where_sql: None
            }
        );
        assert!(parse("SELECT 1").is_none());
        assert_eq!(p("SAVEPOINT sp1"), Statement::NoOp { tag: "SAVEPOINT" });
        assert_eq!(
            p("ROLLBACK TO SAVEPOINT sp1"),
            Statement::NoOp { tag: "ROLLBACK" }
        );
        assert_eq!(
            p("CLOSE ALL"),
            Statement::NoOp {
                tag: "CLOSE CURSOR ALL"
            }
        );
        assert_eq!(p("UNLISTEN *"), Statement::NoOp { tag: "UNLISTEN" });
        assert!(
            parse("ROLLBACK").is_none(),
            "plain transactions are the session hooks' job"
        );
        assert_eq!(
            split("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            split("SELECT ';'; SELECT 2").unwrap(),
            vec!["SELECT ';'", " SELECT 2"]
        );
        assert_eq!(
            split("SELECT 'it''s';\nSELECT $$a;b$$ -- c;d\n;").unwrap(),
            vec!["SELECT 'it''s'", "\nSELECT $$a;b$$ -- c;d\n"]
        );
        assert!(parse("CREATE TABLE t (a int)").is_none());
        assert_eq!(
            parse("ALTER TABLE t SET (ttl = 'soon')")
                .unwrap()
                .unwrap_err()
                .state,
            SqlState::INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            parse("DROP DATABASE").unwrap().unwrap_err().state,
            SqlState::SYNTAX_ERROR
        );
        assert_eq!(
            parse("ALTER TABLE t SET (colour = 'red')")
                .unwrap()
                .unwrap_err()
                .state,
            SqlState::SYNTAX_ERROR
        );
    }
}
