//! The shape of the tree, checked: modules name only the modules below them (the module
//! map in `src/lib.rs`), no source file outgrows 900 lines, SQLSTATE codes are spelled
//! only in the error module, and the integration tests wait on events rather than on
//! long fixed sleeps. (DataFusion keeps a dependency check of this kind.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What each top-level module may name with `crate::`. Leaves name nothing; everything
/// else names what lies below it. `config` composes every subsystem's section and
/// `server` wires them all, so both may name anything but each other's callers.
const ALLOWED: &[(&str, &[&str])] = &[
    ("addr", &[]),
    ("clock", &[]),
    ("duration", &[]),
    ("error", &[]),
    ("tasks", &[]),
    ("host", &[]),
    ("devops", &[]),
    ("storage", &["clock", "duration", "error"]),
    ("metrics", &["storage"]),
    (
        "ingest",
        &["storage", "metrics", "clock", "duration", "error"],
    ),
    ("query", &["storage", "clock", "duration", "error"]),
    (
        "alert",
        &[
            "query", "ingest", "metrics", "tasks", "clock", "duration", "error",
        ],
    ),
    (
        "scrape",
        &[
            "ingest", "metrics", "tasks", "clock", "duration", "error", "addr",
        ],
    ),
    ("graphite", &["ingest", "tasks", "addr", "clock", "error"]),
    (
        "pg",
        &["query", "metrics", "tasks", "clock", "duration", "error"],
    ),
    (
        "http",
        &["ingest", "query", "metrics", "tasks", "duration", "error"],
    ),
    ("agent", &["duration", "clock", "error"]),
    (
        "config",
        &[
            "addr", "duration", "storage", "http", "pg", "scrape", "graphite", "ingest", "error",
            "host",
        ],
    ),
    (
        "server",
        &[
            "addr", "clock", "config", "duration", "error", "tasks", "storage", "metrics",
            "ingest", "query", "alert", "scrape", "graphite", "pg", "http", "host",
        ],
    ),
    (
        "fuzz",
        &["ingest", "scrape", "storage", "query", "pg", "duration"],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    crate::harness::files_with_extension(dir, "rs")
}

/// The top-level module a file under `src/` belongs to (`storage/wal.rs` → `storage`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "bin").then_some(name)
}

/// A file's text without its unit tests (`tests.rs` files, `#[cfg(test)] mod tests`).
fn non_test_text(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[test]
fn modules_name_only_what_lies_below_them() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let named = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut violations = Vec::new();
    for path in rust_files(&src()) {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let Some(may) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "{}: module {module} is not in the map",
                path.display()
            ));
            continue;
        };
        for (n, line) in non_test_text(&path).lines().enumerate() {
            for cap in named.captures_iter(line) {
                let target = &cap[1];
                if target != module && !may.contains(&target) {
                    violations.push(format!(
                        "{}:{}: {module} names crate::{target}",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward dependencies:\n{}",
        violations.join("\n")
    );
}

#[test]
fn module_map_names_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let (map, decls) = lib
        .split_once("```\n\n")
        .expect("a module map block in lib.rs");
    for line in decls.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            let word = regex::Regex::new(&format!(r"\b{name}\b")).unwrap();
            assert!(
                word.is_match(map),
                "lib.rs' module map does not name `{name}`"
            );
            assert!(
                ALLOWED.iter().any(|(m, _)| *m == name),
                "{name} has no row in ALLOWED"
            );
        }
    }
}

#[test]
fn source_files_stay_small() {
    let long: Vec<String> = rust_files(&src())
        .into_iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(&p).unwrap().lines().count();
            (lines > 900).then(|| format!("{}: {lines} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over 900 lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn sqlstates_are_spelled_in_the_error_module_only() {
    let code = regex::Regex::new(r#""[0-9A-Z]{5}""#).unwrap();
    let mut files = Vec::new();
    for path in rust_files(&src()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let spelled = code
            .find_iter(&text)
            .any(|m| m.as_str().bytes().any(|b| b.is_ascii_digit()));
        if spelled {
            files.push(path.strip_prefix(src()).unwrap().display().to_string());
        }
    }
    assert_eq!(
        files,
        vec!["error.rs".to_string()],
        "SQLSTATE literals outside the error module"
    );
}

#[test]
fn integration_tests_do_not_sleep_for_long() {
    let sleep =
        regex::Regex::new(r"sleep\(\s*(?:std::time::)?Duration::from_(secs|millis)\((\d+)\)")
            .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut long = Vec::new();
    for path in rust_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for cap in sleep.captures_iter(line) {
                let ms: u64 =
                    cap[2].parse::<u64>().unwrap() * if &cap[1] == "secs" { 1000 } else { 1 };
                if ms >= 1000 {
                    long.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        long.len() <= 3,
        "fixed sleeps of a second or more:\n{}",
        long.join("\n")
    );
}

#[test]
fn query_and_alert_never_name_the_postgres_front_end() {
    let pg = regex::Regex::new(r"\bpg::").unwrap();
    let alert = regex::Regex::new(r"\balert::").unwrap();
    let mut found = Vec::new();
    for path in rust_files(&src()) {
        let module = module_of(&path).unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap();
        let forbidden = match module.as_str() {
            "query" | "alert" => &pg,
            "pg" => &alert,
            _ => continue,
        };
        for (n, line) in text.lines().enumerate() {
            if forbidden.is_match(line) {
                found.push(format!("{}:{}: {line}", path.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
