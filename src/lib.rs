//! Sundial: a metrics database. InfluxDB line protocol in over HTTP, stored durably in a
//! columnar time-series engine, queried with SQL over the Postgres wire protocol.
//!
//! Module map (dependencies flow downward; `tests/it/architecture.rs` fails the build
//! when a module names one above it):
//!
//! ```text
//! bin/sundial (CLI: serve, agent, generate)
//! server   (wires everything; owns the tasks and the shutdown order)
//! config   (the TOML file and its sections, defaults < file < env < flags)
//!  ├─ http     (write APIs, remote write, /metrics, /health; kinds → status codes once)
//!  ├─ pg       (Postgres wire front end, sessions, auth; kinds → SQLSTATEs once)
//!  ├─ graphite (Graphite plaintext listener)                                   ─┐
//!  ├─ scrape   (scrape jobs, discovery: file/http/ZooKeeper serversets,         ├─> ingest
//!  │           scrape cache, targets, exposition parser, relabeling)           ─┘
//!  ├─ alert    (CREATE ALERT rules, scheduler, state machine, notifiers,        ─> query, ingest
//!  │           backtests, system tables)
//!  ├─ query    (own statements, DataFusion session per database, UDFs,          ─> storage
//!  │           table providers, planning with SQLSTATE-precise failures)
//!  ├─ ingest   (the one write entry point: line protocol, remote write,         ─> storage
//!  │           Graphite points, scrape samples; per-line errors; counts)
//!  ├─ metrics  (self-monitoring registry of a server; reads storage's stats)    ─> storage
//!  └─ storage  (WAL thread, buffers, flush, segments, codecs, index, compaction,
//!              retention, recovery; its own stats)
//! leaves, used by all: error (kinds and SQLSTATEs), duration, addr (listen
//!   addresses), clock, tasks (the task tracker), host (memory the host allows)
//! agent    (`sundial agent`: host metrics pushed as line protocol with a disk spool;
//!           a client of the HTTP API only)
//! devops   (the TSBS devops data generator: `sundial generate devops`, the benches)
//! fuzz     (fuzz targets for every parser and decoder client or disk bytes reach,
//!           and the stable-Rust mutation driver the fuzz tests run)
//! ```

pub mod addr;
pub mod agent;
pub mod alert;
pub mod clock;
pub mod config;
pub mod devops;
pub mod duration;
pub mod error;
pub mod fuzz;
pub mod graphite;
pub mod host;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod pg;
pub mod query;
pub mod scrape;
pub mod server;
pub mod storage;
pub mod tasks;
