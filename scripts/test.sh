#!/usr/bin/env bash
# Sets up everything the tests need and runs them: the Python oracle's
# virtual environment, formatting and lint checks, then every test.
# Usage: scripts/test.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-test-env.sh
bash scripts/prosody-env.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test
