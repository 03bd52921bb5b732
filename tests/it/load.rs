//! A TSBS-style load: 100 000 lines in 20 requests, counted exactly, also after `kill -9`.

use sundial::devops::{self, Options};

use crate::harness::TestServer;

#[tokio::test]
async fn tsbs_load_is_counted_exactly_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let opts = Options {
        hosts: 100,
        steps: 1000,
        ..Options::default()
    };
    let steps: Vec<String> = devops::generate(&opts).collect();
    for chunk in steps.chunks(50) {
        let body: String = chunk.concat();
        let (s, text) = server.post("/write?db=benchmark", body).await;
        assert_eq!(s, 204, "{text}");
    }
    assert_eq!(
        server.psql("benchmark", "SELECT count(*) FROM cpu").trim(),
        "100000"
    );
    let q = "SELECT date_bin(INTERVAL '1 minute', time) AS t, hostname, max(usage_user) FROM cpu \
             WHERE time >= '2016-01-01T00:00:00Z' AND time < '2016-01-01T01:00:00Z' GROUP BY 1, 2 ORDER BY 1, 2";
    let before = server.psql("benchmark", q);
    assert_eq!(before.lines().count(), 60 * 100);

    let server = server.crash_and_restart();
    assert_eq!(
        server.psql("benchmark", "SELECT count(*) FROM cpu").trim(),
        "100000"
    );
    assert_eq!(server.psql("benchmark", q), before);
    let hosts = server.psql("benchmark", "SELECT count(DISTINCT hostname) FROM cpu");
    assert_eq!(hosts.trim(), "100");
}
