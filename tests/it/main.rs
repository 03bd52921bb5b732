//! Integration tests: the real `sundial` binary on port 0 in a temp dir, driven by real
//! clients (HTTP, tokio-postgres, the `psql` binary).

mod clients;
mod config;
mod durability;
mod errors;
mod harness;
mod lifecycle;
mod line_protocol;
mod load;
mod segments;
mod slt;
mod writes;
