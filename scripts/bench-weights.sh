#!/usr/bin/env bash
# Regenerate pallets/secure-inference/src/weights.rs by running the pallet's benchmarks in the
# runtime (wasm) through `smidl-node benchmark pallet`. Builds the node with
# `--features runtime-benchmarks` first (it pulls frame-benchmarking-cli; not part of `make test`).
# STEPS/REPEAT can be lowered for a quick run; the checked-in file says which were used.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
STEPS="${STEPS:-50}"
REPEAT="${REPEAT:-20}"
PROFILE="${PROFILE:-debug}"
flags=()
[ "$PROFILE" = release ] && flags=(--release)
# frame-benchmarking-cli depends on a test runtime (for `benchmark storage`, unused here) whose
# wasm build cannot find itself in our workspace's metadata; skip that one wasm build only.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1
bash scripts/cargo.sh build "${flags[@]}" -p smidl-node --features runtime-benchmarks
target="${CARGO_TARGET_DIR:-$HOME/.cache/smidl-target}"
"$target/$PROFILE/smidl-node" benchmark pallet \
  --chain dev \
  --pallet pallet_secure_inference \
  --extrinsic '*' \
  --steps "$STEPS" \
  --repeat "$REPEAT" \
  --template scripts/weight-template.hbs \
  --output pallets/secure-inference/src/weights.rs
cargo fmt --all
echo "weights.rs regenerated"
