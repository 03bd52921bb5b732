#!/usr/bin/env bash
# The project's one gate: installs what the tests need, then fmt, clippy, tests, docs.
# Runs the same locally and in CI (`.ci/run` calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."

# Test neighbours from Debian: the psql client.
if ! command -v psql >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-client >/dev/null
fi

# Reuse one build directory across clones (CI builds in a fresh clone each time).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sundial-target}"
export CARGO_TERM_COLOR=never

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
