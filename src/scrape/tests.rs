use super::*;
use crate::storage::{self, Engine};

#[test]
fn targets_from_static_configs_and_relabeling() {
    let config: ScrapeConfig = toml::from_str(
        r#"
        job_name = "node"
        scrape_interval = "15s"
        metrics_path = "/m"
        params = { collect = ["cpu", "mem"] }
        [[static_configs]]
        targets = ["127.0.0.1:9100", "10.1.1.1:9100"]
        labels = { env = "dev" }
        [[relabel_configs]]
        source_labels = ["__address__"]
        regex = "10\\..*"
        action = "drop"
        "#,
    )
    .unwrap();
    let job = Job::new(config).unwrap();
    assert_eq!(job.interval, Duration::from_secs(15));
    assert_eq!(job.timeout, Duration::from_secs(10));
    let targets = job.targets();
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].url,
        "http://127.0.0.1:9100/m?collect=cpu&collect=mem"
    );
    assert_eq!(
        targets[0].labels,
        Labels::from([
            ("env".into(), "dev".into()),
            ("instance".into(), "127.0.0.1:9100".into()),
            ("job".into(), "node".into())
        ])
    );
    assert!(toml::from_str::<ScrapeConfig>("job_name = 'x'\nscrape_interval = 'soon'").is_err());
    for bad in [
        "job_name = 'x'\nscheme = 'ftp'",
        "scrape_interval = '1m'",
        "job_name = 'x'\n[[metric_relabel_configs]]\nregex = '('",
    ] {
        assert!(Job::new(toml::from_str(bad).unwrap()).is_err(), "{bad}");
    }
}

/// The scrape cache across scrapes of a changing target: known series take the
/// cached path, new ones are parsed and relabeled, dropped ones stay dropped, a series
/// whose text changes is a new series, and a series the target stops exposing leaves
/// the cache.
#[tokio::test]
async fn scrape_cache_follows_the_target() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = Arc::new(parking_lot::Mutex::new(String::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = body.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let text = served.lock().clone();
            let _ = sock
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Default::default()).unwrap();
    let clock = Arc::new(crate::clock::ManualClock::new(1_000_000_000));
    let metrics = crate::metrics::Metrics::new();
    let ingester = Arc::new(Ingester::new(
        engine.clone(),
        clock.clone(),
        metrics.clone(),
    ));
    let scraper = Scraper::new(ingester, clock.clone(), crate::tasks::Tasks::new());
    let job = Job::new(
        toml::from_str(&format!(
            "job_name = 'j'\n[[static_configs]]\ntargets = ['127.0.0.1:{port}']\n\
             [[metric_relabel_configs]]\nsource_labels = ['__name__']\nregex = 'dropped'\naction = 'drop'\n"
        ))
        .unwrap(),
    )
    .unwrap();
    let target = job.targets().remove(0);
    let mut cache = ScrapeCache::default();
    let rows = |table: &str| {
        let t = engine.database("sundial").unwrap().table(table).unwrap();
        let fields = t.schema().fields.clone();
        let out = t
            .scan(
                &storage::ScanRequest {
                    range: storage::TimeRange::ALL,
                    tags: Vec::new(),
                    fields,
                },
                engine.stats(),
            )
            .unwrap();
        (0..out.rows.len())
            .map(|i| {
                let key = &out.keys[out.rows.series[i] as usize];
                let storage::rows::Column::Float(v) = &out.rows.columns[0] else {
                    panic!("float column")
                };
                (
                    key.get("k").unwrap_or("").to_string(),
                    out.rows.time[i] / 1_000_000_000,
                    v[i].unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    *body.lock() = "m{k=\"a\"} 1\nm{k=\"b\"} 2\ndropped 9\n".into();
    let r = scraper.scrape(&job, &target, &mut cache).await;
    assert!(r.up, "{r:?}");
    assert_eq!((r.scraped, r.post_relabel), (3, 2));
    assert_eq!(cache.series.len(), 3);
    clock.set(2_000_000_000);
    // Same texts with new values, one series gone, one new, one with its labels
    // written differently (spacing): a different text, parsed as the same series.
    *body.lock() = "m{k=\"a\"} 10\nm{ k=\"c\" } 30\ndropped 9\nm{k=\"a\",} 11\n".into();
    let r = scraper.scrape(&job, &target, &mut cache).await;
    assert_eq!((r.scraped, r.post_relabel), (4, 3));
    let mut got = rows("m");
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        got,
        vec![
            ("a".into(), 1, 1.0),
            ("a".into(), 2, 11.0),
            ("b".into(), 1, 2.0),
            ("c".into(), 2, 30.0)
        ]
    );
    assert!(
        engine
            .database("sundial")
            .unwrap()
            .table("dropped")
            .is_none()
    );
    assert_eq!(rows("up"), vec![("".into(), 1, 1.0), ("".into(), 2, 1.0)]);
    clock.set(3_000_000_000);
    *body.lock() = "m{k=\"c\"} 31\n".into();
    let r = scraper.scrape(&job, &target, &mut cache).await;
    assert_eq!(r.scraped, 1);
    assert_eq!(
        cache.series.len(),
        1,
        "series gone for a scrape leave the cache"
    );
    // A body that does not parse: the scrape is down and stores none of it.
    clock.set(4_000_000_000);
    *body.lock() = "m{k=\"z\"} 1\nm{k=\"a\" 2\n".into();
    let r = scraper.scrape(&job, &target, &mut cache).await;
    assert!(!r.up);
    assert!(r.error.unwrap().contains("line 2"));
    assert!(!rows("m").iter().any(|(k, _, _)| k == "z"));
    assert_eq!(rows("up").last(), Some(&("".into(), 4, 0.0)));
}

/// Sundial's own /metrics output is valid exposition text (it scrapes itself).
#[test]
fn self_metrics_parse_as_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Default::default()).unwrap();
    let metrics = crate::metrics::Metrics::default();
    metrics.rows_ingested.add("line_protocol", 3);
    engine.stats().wal_fsync.observe(Duration::from_micros(300));
    let out = crate::metrics::render(&metrics, &engine);
    let parsed = exposition::parse(out.as_bytes(), exposition::Format::Prometheus).unwrap();
    assert!(parsed.len() > 20, "{out}");
    engine.shutdown();
}
