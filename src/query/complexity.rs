//! A statement's shape is checked before it is parsed into a tree: a chain of thousands
//! of operators (`a = 1 OR a = 2 OR …`, `1+1+…`) parses into a tree thousands of levels
//! deep, and walking it — rewriting, planning, even dropping it — recurses once per
//! level, so a long enough chain overflows the thread's stack and aborts the whole
//! server. Such statements are refused with PostgreSQL's `54001` (statement too
//! complex) instead. Lists (`IN (…)`, select lists, `VALUES`) are flat and not limited.
//!
//! The check reads tokens in one loop and keeps one counter per parenthesis level.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, SqlState};

/// Operators one expression may chain at one parenthesis level.
pub const MAX_CHAIN: usize = 1000;
/// Parentheses one statement may nest.
pub const MAX_NESTING: usize = 200;

/// Refuses `sql` if it would parse into a tree too deep to walk safely.
pub fn check(sql: &str) -> Result<(), Error> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        // The parser reports the syntax error itself.
        return Ok(());
    };
    // Operators chained so far at each open parenthesis level.
    let mut chains: Vec<usize> = vec![0];
    for token in &tokens {
        let chain = chains
            .last_mut()
            .expect("the outermost level is never closed");
        match token {
            Token::LParen | Token::LBracket => {
                chains.push(0);
                if chains.len() > MAX_NESTING {
                    return Err(too_complex(format!(
                        "parentheses nest more than {MAX_NESTING} deep"
                    )));
                }
            }
            Token::RParen | Token::RBracket => {
                if chains.len() > 1 {
                    chains.pop();
                }
            }
            // A list item or a new statement starts a new expression.
            Token::Comma | Token::SemiColon => *chain = 0,
            Token::Word(w) => match w.keyword {
                Keyword::AND | Keyword::OR | Keyword::NOT | Keyword::IS => *chain += 1,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::ON
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::UNION => *chain = 0,
                _ => {}
            },
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Placeholder(_)
            | Token::Period
            | Token::DoubleColon
            | Token::EOF => {}
            // Every other token is an operator of some kind.
            _ => *chain += 1,
        }
        if *chains.last().expect("a level") > MAX_CHAIN {
            return Err(too_complex(format!(
                "an expression chains more than {MAX_CHAIN} operators; use IN (…) for long lists"
            )));
        }
    }
    Ok(())
}

fn too_complex(why: String) -> Error {
    Error::new(
        SqlState::STATEMENT_TOO_COMPLEX,
        format!("statement too complex: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chains_are_refused_and_lists_are_not() {
        let ors = |n: usize| format!("SELECT 1 WHERE {}", vec!["a = 1"; n].join(" OR "));
        assert!(check(&ors(500)).is_ok());
        let e = check(&ors(600)).unwrap_err();
        assert_eq!(e.state, SqlState::STATEMENT_TOO_COMPLEX);
        let plus = |n: usize| format!("SELECT {}", vec!["1"; n].join("+"));
        assert!(check(&plus(1000)).is_ok());
        assert!(check(&plus(1002)).is_err());
        let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        assert!(check(&format!("SELECT 1 WHERE a IN ({})", list.join(","))).is_ok());
        assert!(check(&format!("SELECT {}", list.join(", "))).is_ok());
        // Chains in separate clauses and parentheses do not add up.
        let half = vec!["a = 1"; 400].join(" AND ");
        assert!(
            check(&format!(
                "SELECT ({half}) FROM t WHERE ({half}) AND ({half})"
            ))
            .is_ok()
        );
        assert!(check(&format!("SELECT {}1{}", "(".repeat(300), ")".repeat(300))).is_err());
        assert!(check("SELECT 'unterminated").is_ok());
    }
}
