#!/usr/bin/env bash
# The README's test command (`make test`). Exits non-zero on the first failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -D warnings"
bash scripts/cargo.sh clippy --workspace --all-targets -- -D warnings

step "the CLI links the shared protocol crate, never the worker (server, store, pipeline)"
if bash scripts/cargo.sh tree -p smidl-cli --prefix none | grep -E '^smidl-worker ' ; then
  echo "smidl-cli depends on smidl-worker" >&2
  exit 1
fi

step "build the binaries the end-to-end tests start (smidl-node, smidl-worker, smidl)"
bash scripts/cargo.sh build -p smidl-node -p smidl-worker -p smidl-cli

step "cargo test --workspace (pallet, runtime, node smoke, FHE engine, worker, CLI, end-to-end)"
start=$(date +%s)
bash scripts/cargo.sh test --workspace
echo "cargo test took $(( $(date +%s) - start )) s"

step "pallet benchmarks as tests (feature runtime-benchmarks; every call's benchmark must run)"
bash scripts/cargo.sh test -p pallet-secure-inference --features runtime-benchmarks

step "polkadot.js end-to-end script against a dev node"
bash scripts/polkadot-js-test.sh
step "all tests passed"
