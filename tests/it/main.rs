//! Integration tests: the real `sundial` binary on port 0 in a temp dir, driven by real
//! clients (HTTP, tokio-postgres, `psql`, psycopg, asyncpg, pgjdbc, lib/pq, pgx) and real
//! neighbours (Alertmanager, node_exporter).

mod agent;
mod alerts;
mod architecture;
mod bad_input;
mod clients;
mod config;
mod crash_loop;
mod drivers;
mod durability;
mod errors;
mod faults;
mod fuzz;
mod graphite;
mod harness;
mod lifecycle;
mod limits;
mod line_protocol;
mod load;
mod scrape;
mod segments;
mod slt;
mod writes;
