//! Runs the SQL behaviour files in `sql/*.slt` through Sundial's own Postgres endpoint
//! (a subset of sqllogictest, plus `write` to load line protocol over HTTP):
//!
//! ```text
//! write db=metrics precision=s      line protocol follows, up to a blank line
//! connect metrics                   later statements run in database `metrics`
//! statement ok                      the SQL must succeed
//! statement error 42P01             the SQL must fail with this SQLSTATE
//! query                             the SQL's rows (text, space-separated, NULL for nulls)
//! query colnames                    the same, after a first line of column names
//! ----                              follow this line, up to a blank line
//! ```
//!
//! Each file gets a fresh server.

use tokio_postgres::SimpleQueryMessage;

use crate::harness::TestServer;

fn blocks(text: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if !line.starts_with('#') {
            cur.push(line);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

async fn run_file(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let mut client = server.pg("sundial").await;
    for block in blocks(&text) {
        let head: Vec<&str> = block[0].split_whitespace().collect();
        let at = format!("{name}: {}", block[0]);
        match head.as_slice() {
            ["write", params @ ..] => {
                let body = block[1..].join("\n");
                let (s, resp) = server
                    .post(&format!("/write?{}", params.join("&")), body)
                    .await;
                assert_eq!(s, 204, "{at}: {resp}");
            }
            ["connect", db] => client = server.pg(db).await,
            ["statement", "ok"] => {
                let sql = block[1..].join("\n");
                if let Err(e) = client.simple_query(&sql).await {
                    panic!("{at}: {sql}: {e:?}");
                }
            }
            ["statement", "error", code] => {
                let sql = block[1..].join("\n");
                let e = client.simple_query(&sql).await.expect_err(&at);
                let got = e.as_db_error().map(|d| d.code().code().to_string());
                assert_eq!(got.as_deref(), Some(*code), "{at}: {sql}: {e:?}");
            }
            ["query", options @ ..] => {
                let colnames = options.contains(&"colnames");
                let split = block
                    .iter()
                    .position(|l| *l == "----")
                    .unwrap_or(block.len());
                let sql = block[1..split].join("\n");
                let expected: Vec<String> = block
                    .get(split + 1..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|l| l.trim().to_string())
                    .collect();
                let msgs = client
                    .simple_query(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{at}: {sql}: {e:?}"));
                let mut got: Vec<String> = msgs
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => Some(
                            (0..r.len())
                                .map(|i| r.get(i).unwrap_or("NULL").to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                        ),
                        _ => None,
                    })
                    .collect();
                if colnames {
                    let names = msgs.iter().find_map(|m| match m {
                        SimpleQueryMessage::RowDescription(cols) => {
                            Some(cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(" "))
                        }
                        _ => None,
                    });
                    got.insert(0, names.unwrap_or_default());
                }
                assert_eq!(got, expected, "{at}: {sql}");
            }
            other => panic!("{at}: unknown directive {other:?}"),
        }
    }
}

#[tokio::test]
async fn sql_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    for f in files {
        run_file(&f).await;
    }
}
