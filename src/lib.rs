//! Sundial: a metrics database. InfluxDB line protocol in over HTTP, stored durably in a
//! columnar time-series engine, queried with SQL over the Postgres wire protocol.
//!
//! Module map (dependencies flow downward):
//!
//! ```text
//! agent  (`sundial agent`: host metrics pushed as line protocol, with a disk spool)
//! server (wires everything, owns shutdown)
//!  ├─ http     (write API)
//!  ├─ pg       (Postgres wire protocol front end)
//!  ├─ graphite (Graphite plaintext listener)
//!  ├─ scrape   (Prometheus scrape jobs and scrape cache, exposition parser, relabeling,
//!  │           file/http/ZooKeeper-serverset discovery)
//!  ├─ alert    (CREATE ALERT rules, scheduler, state machine, notifiers, backtests)
//!  ├─ query    (DataFusion session per database, table providers)
//!  ├─ ingest   (line protocol parser, points, per-line errors)
//!  └─ storage  (WAL, buffers, segment files, codecs)
//! ```

pub mod agent;
pub mod alert;
pub mod clock;
pub mod config;
pub mod devops;
pub mod graphite;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod pg;
pub mod query;
pub mod scrape;
pub mod server;
pub mod storage;
