//! The eight TSBS devops queries, as a user writes them in SQL and in InfluxQL.
//!
//! TSBS draws hosts and windows at random per query; here they are fixed per scale so that
//! every system answers exactly the same question and runs can be compared.

/// One query in each dialect.
pub struct Query {
    pub name: &'static str,
    /// PostgreSQL-dialect SQL, sent unchanged to Sundial, PostgreSQL and DuckDB.
    pub sql: String,
    pub influxql: String,
    /// What it computes, for the reference answer of the smoke run (`reference.rs`).
    pub shape: Shape,
}

/// A window `[from, to)` in minutes after 2016-01-01T00:00:00Z.
pub type Window = (i64, i64);

pub enum Shape {
    /// `max` of `fields` per `bucket` minutes for `hosts` (all if empty), newest `limit` buckets.
    Max {
        hosts: Vec<String>,
        fields: usize,
        bucket: i64,
        window: Window,
        limit: Option<usize>,
    },
    /// `avg` of the first `fields` fields per hour and host.
    AvgPerHost { fields: usize, window: Window },
    /// Every row with `usage_user > 90`.
    HighCpu { window: Window },
    /// Each host's newest row.
    LastPoint,
}

/// 2016-01-01T00:00:00Z plus `minutes`, as an RFC 3339 literal.
fn at(minutes: i64) -> String {
    format!("2016-01-01T{:02}:{:02}:00Z", minutes / 60, minutes % 60)
}

/// `n` host names spread over `hosts`, deterministic.
fn host_names(n: usize, hosts: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("host_{}", (i * hosts / n + 3) % hosts))
        .collect()
}

/// The ten fields, as the generator writes them.
const ALL_FIELDS: [&str; 10] = sundial::devops::FIELDS;

fn aggregates(func: &str, fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("{func}({f})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The queries for a data set of `hosts` hosts and `hours` hours from 2016-01-01.
pub fn all(hosts: usize, hours: i64) -> Vec<Query> {
    let end = hours * 60;
    // TSBS' windows, moved (and cut) to end with the data when it is shorter than they
    // reach; both scales (12 h and 24 h) keep them as they are but the last.
    let fit = |(a, b): Window| {
        if b <= end {
            (a, b)
        } else {
            ((end - (b - a)).max(0), end)
        }
    };
    let hour_window = fit((8 * 60 + 30, 9 * 60 + 30));
    let eight_hours = fit((2 * 60, 10 * 60));
    let twelve_hours = fit((0, 12 * 60));
    let high_cpu = (2 * 60 + 52, 14 * 60 + 52);
    let limit_end = (end - 67).max(60);
    let one = host_names(1, hosts);
    let eight = host_names(8, hosts);
    let sql_in = |names: &[String]| {
        names
            .iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let influx_or = |names: &[String]| {
        names
            .iter()
            .map(|h| format!("hostname = '{h}'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let window_sql = |(a, b): (i64, i64)| format!("time >= '{}' AND time < '{}'", at(a), at(b));
    let five = &ALL_FIELDS[..5];
    let max = |hosts: &[String], fields, bucket, window| Shape::Max {
        hosts: hosts.to_vec(),
        fields,
        bucket,
        window,
        limit: None,
    };
    vec![
        Query {
            name: "single-groupby-1-1-1",
            sql: format!(
                "SELECT date_trunc('minute', time) AS minute, max(usage_user) FROM cpu \
                 WHERE hostname IN ({}) AND {} GROUP BY 1 ORDER BY 1",
                sql_in(&one),
                window_sql(hour_window)
            ),
            influxql: format!(
                "SELECT max(usage_user) FROM cpu WHERE ({}) AND {} GROUP BY time(1m)",
                influx_or(&one),
                window_sql(hour_window)
            ),
            shape: max(&one, 1, 1, hour_window),
        },
        Query {
            name: "single-groupby-5-8-1",
            sql: format!(
                "SELECT date_trunc('minute', time) AS minute, {} FROM cpu \
                 WHERE hostname IN ({}) AND {} GROUP BY 1 ORDER BY 1",
                aggregates("max", five),
                sql_in(&eight),
                window_sql(hour_window)
            ),
            influxql: format!(
                "SELECT {} FROM cpu WHERE ({}) AND {} GROUP BY time(1m)",
                aggregates("max", five),
                influx_or(&eight),
                window_sql(hour_window)
            ),
            shape: max(&eight, 5, 1, hour_window),
        },
        Query {
            name: "cpu-max-all-8",
            sql: format!(
                "SELECT date_trunc('hour', time) AS hour, {} FROM cpu \
                 WHERE hostname IN ({}) AND {} GROUP BY 1 ORDER BY 1",
                aggregates("max", &ALL_FIELDS),
                sql_in(&eight),
                window_sql(eight_hours)
            ),
            influxql: format!(
                "SELECT {} FROM cpu WHERE ({}) AND {} GROUP BY time(1h)",
                aggregates("max", &ALL_FIELDS),
                influx_or(&eight),
                window_sql(eight_hours)
            ),
            shape: max(&eight, 10, 60, eight_hours),
        },
        Query {
            name: "double-groupby-1",
            sql: format!(
                "SELECT date_trunc('hour', time) AS hour, hostname, avg(usage_user) FROM cpu \
                 WHERE {} GROUP BY 1, 2 ORDER BY 1, 2",
                window_sql(twelve_hours)
            ),
            influxql: format!(
                "SELECT mean(usage_user) FROM cpu WHERE {} GROUP BY time(1h), hostname",
                window_sql(twelve_hours)
            ),
            shape: Shape::AvgPerHost {
                fields: 1,
                window: twelve_hours,
            },
        },
        Query {
            name: "double-groupby-all",
            sql: format!(
                "SELECT date_trunc('hour', time) AS hour, hostname, {} FROM cpu \
                 WHERE {} GROUP BY 1, 2 ORDER BY 1, 2",
                aggregates("avg", &ALL_FIELDS),
                window_sql(twelve_hours)
            ),
            influxql: format!(
                "SELECT {} FROM cpu WHERE {} GROUP BY time(1h), hostname",
                aggregates("mean", &ALL_FIELDS),
                window_sql(twelve_hours)
            ),
            shape: Shape::AvgPerHost {
                fields: 10,
                window: twelve_hours,
            },
        },
        Query {
            name: "high-cpu-all",
            sql: format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND {}",
                window_sql(high_cpu)
            ),
            influxql: format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND {}",
                window_sql(high_cpu)
            ),
            shape: Shape::HighCpu { window: high_cpu },
        },
        Query {
            name: "lastpoint",
            sql: "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC".into(),
            influxql: "SELECT * FROM cpu GROUP BY hostname ORDER BY time DESC LIMIT 1".into(),
            shape: Shape::LastPoint,
        },
        Query {
            name: "groupby-orderby-limit",
            sql: format!(
                "SELECT date_trunc('minute', time) AS minute, max(usage_user) FROM cpu \
                 WHERE time < '{}' GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
                at(limit_end)
            ),
            influxql: format!(
                "SELECT max(usage_user) FROM cpu WHERE time < '{}' \
                 GROUP BY time(1m) ORDER BY time DESC LIMIT 5",
                at(limit_end)
            ),
            shape: Shape::Max {
                hosts: Vec::new(),
                fields: 1,
                bucket: 1,
                window: (i64::MIN / 120, limit_end),
                limit: Some(5),
            },
        },
    ]
}
