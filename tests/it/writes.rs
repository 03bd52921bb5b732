//! HTTP write endpoints, databases, and queries over tokio-postgres and psql.

use crate::harness::{TestServer, count};

#[tokio::test]
async fn write_endpoints_databases_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let (s, _) = server
        .post(
            "/write?db=telegraf&precision=s",
            "cpu,host=a usage_user=1.5 1451606400\n",
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = server
        .post(
            "/api/v2/write?bucket=telegraf&org=x&precision=ms",
            "cpu,host=b usage_user=2.5 1451606400000\n",
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = server
        .post(
            "/api/v3/write_lp?db=metrics&precision=auto",
            "mem,host=a used=7i 1451606400\n",
        )
        .await;
    assert_eq!(s, 204);

    let tg = server.pg("telegraf").await;
    assert_eq!(count(&tg, "SELECT count(*) FROM cpu").await, 2);
    let rows = tg
        .query("SELECT host, usage_user, time FROM cpu ORDER BY host", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "a");
    assert_eq!(rows[1].get::<_, f64>(1), 2.5);
    let t: std::time::SystemTime = rows[0].get(2);
    assert_eq!(
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        1_451_606_400
    );
    // Tables of another database are not visible.
    assert!(tg.query("SELECT * FROM mem", &[]).await.is_err());
    let m = server.pg("metrics").await;
    assert_eq!(count(&m, "SELECT count(*) FROM mem").await, 1);
    // `sundial` always exists.
    server
        .pg("sundial")
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();

    // psql sees the tables unqualified and lists them with \dt.
    assert_eq!(
        server.psql("telegraf", "SELECT count(*) FROM cpu").trim(),
        "2"
    );
    let dt = server.psql("telegraf", "\\dt");
    assert!(dt.contains("public|cpu|table"), "{dt}");
    assert!(!dt.contains("mem"), "{dt}");

    let server = server.restart();
    let tg = server.pg("telegraf").await;
    assert_eq!(count(&tg, "SELECT count(*) FROM cpu").await, 2);
    assert_eq!(
        count(&server.pg("metrics").await, "SELECT count(*) FROM mem").await,
        1
    );
}

#[tokio::test]
async fn gzip_bodies_and_precisions() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"m v=1 1\nm v=2 2\n").unwrap();
    let resp = reqwest::Client::new()
        .post(server.url("/write?db=d&precision=h"))
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    for (p, ts) in [
        ("n", "7"),
        ("u", "7"),
        ("ms", "7"),
        ("us", "7"),
        ("m", "7"),
        ("s", "7"),
    ] {
        let (s, body) = server
            .post(
                &format!("/write?db=d&precision={p}"),
                format!("p{p} v=1 {ts}"),
            )
            .await;
        assert_eq!(s, 204, "{p}: {body}");
    }
    let c = server.pg("d").await;
    let secs = |sql: &str| {
        let c = &c;
        let sql = sql.to_string();
        async move { c.query_one(&sql, &[]).await.unwrap().get::<_, f64>(0) }
    };
    assert_eq!(
        secs("SELECT extract(epoch FROM max(time)) FROM m").await,
        7200.0
    );
    assert_eq!(
        secs("SELECT extract(epoch FROM max(time)) FROM pm").await,
        420.0
    );
    assert_eq!(
        secs("SELECT extract(epoch FROM max(time)) * 1000 FROM pms").await,
        7.0
    );
    let (s, body) = server.post("/write?db=d&precision=auto", "m v=1").await;
    assert_eq!(s, 400, "v1 has no auto precision: {body}");
}
