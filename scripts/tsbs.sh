#!/usr/bin/env bash
# Sundial against DuckDB, PostgreSQL 15 and InfluxDB 1.6 on the TSBS devops queries
# (benches/tsbs): installs the peers, then runs the harness in the release profile.
# Arguments go to the harness, e.g. `bash scripts/tsbs.sh --scales 100x24 --runs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  # The packages' own services are not used: the harness starts its own instances.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# DuckDB from PyPI (the crate's C++ build would cost many minutes), in a venv outside the clone.
export SUNDIAL_BENCH_VENV="${SUNDIAL_BENCH_VENV:-$HOME/.cache/sundial-bench-venv}"
if ! "$SUNDIAL_BENCH_VENV/bin/python" -c "import duckdb" >/dev/null 2>&1; then
  python3 -m venv "$SUNDIAL_BENCH_VENV"
  "$SUNDIAL_BENCH_VENV/bin/pip" install -q duckdb==2.0.1
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sundial-target}"
exec cargo bench --locked --bench tsbs -- --bench "$@"
