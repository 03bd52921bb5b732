//! Grafana's `$__timeGroup` expansions, timed through the Postgres endpoint as Grafana
//! runs them: `floor(extract(epoch from time)/300)*300` (the default), `time_bucket`
//! (TimescaleDB mode) and `date_bin`, each a 5-minute average per host over the whole
//! TSBS-style devops table (100 hosts x 24 h at 10 s = 864 000 rows with `--bench`), and
//! `extract(epoch from date_bin(…))` as a candidate rewrite of the first.
//! The default form should be no slower than `date_bin`.
//!
//! Run: `cargo bench --bench grafana_macros` (`--hosts N --steps N --runs N` to resize).
//! Under `cargo test` it runs a small smoke version.

use std::time::Instant;

use sundial::config::Config;
use sundial::devops::{self, Options};
use sundial::server::Server;

mod common;
use common::arg;

const FORMS: &[(&str, &str)] = &[
    (
        "floor(extract(epoch from time)/300)*300",
        "SELECT floor(extract(epoch from time)/300)*300 AS \"time\", hostname, avg(usage_user) \
         FROM cpu WHERE time BETWEEN '2016-01-01T00:00:00Z' AND '2016-01-02T00:00:00.000000000Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "time_bucket('300.000s', time)",
        "SELECT time_bucket('300.000s', time) AS \"time\", hostname, avg(usage_user) \
         FROM cpu WHERE time BETWEEN '2016-01-01T00:00:00Z' AND '2016-01-02T00:00:00.000000000Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "extract(epoch from date_bin(…))",
        "SELECT extract(epoch from date_bin(INTERVAL '300 seconds', time)) AS \"time\", hostname, avg(usage_user) \
         FROM cpu WHERE time BETWEEN '2016-01-01T00:00:00Z' AND '2016-01-02T00:00:00.000000000Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "date_bin(INTERVAL '300 seconds', time)",
        "SELECT date_bin(INTERVAL '300 seconds', time) AS \"time\", hostname, avg(usage_user) \
         FROM cpu WHERE time BETWEEN '2016-01-01T00:00:00Z' AND '2016-01-02T00:00:00.000000000Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let opts = Options {
        hosts: arg("--hosts", if full { 100 } else { 5 }),
        steps: arg("--steps", if full { 8640 } else { 60 }),
        ..Options::default()
    };
    let runs = arg("--runs", if full { 10 } else { 2 });
    let rows = opts.hosts * opts.steps;
    let requests: Vec<String> = devops::generate(&opts)
        .collect::<Vec<_>>()
        .chunks(50)
        .map(|c| c.concat())
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            pg_addr: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let server = Server::start(config).await.expect("start");
        let url = format!("http://{}/write?db=bench", server.http_addr);
        let client = reqwest::Client::new();
        for body in requests {
            let r = client.post(&url).body(body).send().await.expect("post");
            assert_eq!(r.status().as_u16(), 204);
        }
        let engine = server.engine().clone();
        tokio::task::spawn_blocking(move || engine.flush().expect("flush"))
            .await
            .expect("join");
        let (pg, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=grafana dbname=bench",
                server.pg_addr.port()
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(conn);
        println!(
            "{rows} rows ({} hosts x {} steps), {runs} runs per form, simple protocol (lib/pq's)",
            opts.hosts, opts.steps
        );
        let mut expected = None;
        for (name, sql) in FORMS {
            let mut times = Vec::new();
            let mut result_rows = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let msgs = pg.simple_query(sql).await.expect("query");
                times.push(t.elapsed().as_secs_f64() * 1e3);
                result_rows = msgs
                    .iter()
                    .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                    .count();
            }
            // Every form buckets the same way.
            assert_eq!(*expected.get_or_insert(result_rows), result_rows, "{name}");
            times.sort_by(f64::total_cmp);
            println!(
                "{name:<42} median {:>7.1} ms  min {:>7.1} ms  ({result_rows} buckets)",
                times[times.len() / 2],
                times[0]
            );
        }
        server.shutdown().await;
    });
}
