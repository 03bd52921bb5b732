#!/usr/bin/env bash
# The project's one gate: installs what the tests need, then fmt, clippy, tests, docs.
# Runs the same locally and in CI (`.ci/run` calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."

# Test neighbours from Debian: psql, pgjdbc and a Java runtime to run it, openssl for
# test certificates, Go with Grafana's drivers, Alertmanager.
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Go with lib/pq and pgx, the drivers of Grafana's PostgreSQL data source.
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/lib/pq ] || need+=(golang-github-lib-pq-dev)
[ -d /usr/share/gocode/src/github.com/jackc/pgx/v4 ] || need+=(golang-github-jackc-pgx-v4-dev)
# A real Alertmanager for the alerting tests (started by the tests on free ports).
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# A real node_exporter for the scrape tests.
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
# A real ZooKeeper for serverset discovery (the tests start it on free ports).
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
# Prometheus 2.42, remote-writing to Sundial in the tests.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Python drivers (psycopg 3, asyncpg) in a venv outside the clone, reused across runs.
export SUNDIAL_VENV="${SUNDIAL_VENV:-$HOME/.cache/sundial-venv}"
if ! "$SUNDIAL_VENV/bin/python" -c "import psycopg, asyncpg" >/dev/null 2>&1; then
  python3 -m venv "$SUNDIAL_VENV"
  "$SUNDIAL_VENV/bin/pip" install -q -r tests/clients/requirements.txt
fi

# node-postgres from the npm registry, outside the clone, reused across runs.
export SUNDIAL_NODE="${SUNDIAL_NODE:-$HOME/.cache/sundial-node}"
if [ ! -d "$SUNDIAL_NODE/node_modules/pg" ]; then
  command -v npm >/dev/null 2>&1 || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null; }
  mkdir -p "$SUNDIAL_NODE"
  npm install --prefix "$SUNDIAL_NODE" --no-audit --no-fund --silent pg@8.23.1
fi

# Reuse one build directory across clones (CI builds in a fresh clone each time).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sundial-target}"
export CARGO_TERM_COLOR=never

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
