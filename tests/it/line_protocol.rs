//! The line protocol grammar end to end: what is written is what SQL reads back.

use crate::harness::{TestServer, count};

#[tokio::test]
async fn every_type_and_escape_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    let body = concat!(
        "# comment line\r\n",
        "\r\n",
        "my\\ table,tag\\,key=va\\=l\\ ue,t2=x f=1.5,i=-3i,u=18446744073709551615u,b=t,s=\"q\\\"uo\\\\te\" 1000\r\n",
        "my\\ table,tag\\,key=other f=-0.0,i=4i,u=0u,b=FALSE,s=\"\" 2000\n",
        "my\\ table,tag\\,key=other f=2e3,b=True 3000\n",
        "no_ts v=1\n",
    );
    let (s, text) = server
        .post("/api/v2/write?bucket=lp&precision=ns", body)
        .await;
    assert_eq!(s, 204, "{text}");
    let c = server.pg("lp").await;
    let rows = c
        .query(
            "SELECT \"tag,key\", t2, f, i, u::text, b, s FROM \"my table\" ORDER BY time",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, &str>(0), "va=l ue");
    assert_eq!(rows[0].get::<_, Option<&str>>(1), Some("x"));
    assert_eq!(rows[0].get::<_, f64>(2), 1.5);
    assert_eq!(rows[0].get::<_, i64>(3), -3);
    assert_eq!(rows[0].get::<_, &str>(4), "18446744073709551615");
    assert!(rows[0].get::<_, bool>(5));
    assert_eq!(rows[0].get::<_, &str>(6), "q\"uo\\te");
    let neg_zero: f64 = rows[1].get(2);
    assert!(neg_zero == 0.0 && neg_zero.is_sign_negative());
    assert!(!rows[1].get::<_, bool>(5));
    assert_eq!(rows[1].get::<_, &str>(6), "");
    assert_eq!(rows[1].get::<_, Option<&str>>(1), None);
    assert_eq!(rows[2].get::<_, f64>(2), 2000.0);
    assert_eq!(rows[2].get::<_, Option<i64>>(3), None);
    // A line without a timestamp gets the server's time.
    let recent = count(
        &c,
        "SELECT count(*) FROM no_ts WHERE time > now() - INTERVAL '1 hour'",
    )
    .await;
    assert_eq!(recent, 1);

    // Column types as Postgres clients see them.
    let stmt = c
        .prepare("SELECT time, \"tag,key\", f, i, u, b, s FROM \"my table\"")
        .await
        .unwrap();
    let types: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.type_().name().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "timestamptz",
            "text",
            "float8",
            "int8",
            "numeric",
            "bool",
            "text"
        ]
    );
}

#[tokio::test]
async fn same_point_merges_fields_and_later_value_wins() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::in_process(dir.path(), |_| {});
    for body in [
        "m,h=a x=1,y=1 10",
        "m,h=a y=2,z=3 10",
        "m,h=a x=9 10\nm,h=a x=10 10",
    ] {
        let (s, _) = server.post("/write?db=d", body).await;
        assert_eq!(s, 204);
    }
    let c = server.pg("d").await;
    let row = c
        .query_one("SELECT x, y, z, count(*) OVER () FROM m", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, f64>(0),
            row.get::<_, f64>(1),
            row.get::<_, f64>(2)
        ),
        (10.0, 2.0, 3.0)
    );
    assert_eq!(row.get::<_, i64>(3), 1);
}
