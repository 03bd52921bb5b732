//! Helpers the bench binaries share (each includes this with `mod common;`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::str::FromStr;

/// The text after flag `name` on the command line.
pub fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Flag `name` parsed, or `default`.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// User + system CPU seconds of process `pid` (`"self"` for this one), from /proc.
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name, utime and stime are fields 11 and 12 (0-based), in ticks.
    (ticks(11) + ticks(12)) / 100.0
}

/// Waits for `sundial serve`'s ready line on `child`'s piped stderr (then keeps draining
/// it); the HTTP and Postgres addresses it names.
pub fn ready_addresses(child: &mut std::process::Child) -> (String, String) {
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let ready = loop {
        let line = lines
            .next()
            .expect("sundial exited before it was ready")
            .unwrap();
        if line.contains("sundial is ready") {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let field = |name: &str| {
        let at = ready.find(&format!("{name}=")).unwrap() + name.len() + 1;
        ready[at..].split_whitespace().next().unwrap().to_string()
    };
    (field("http_addr"), field("pg_addr"))
}
