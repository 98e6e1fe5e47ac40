#!/usr/bin/env bash
# cargo with the project's environment: the persistent target dir and the wasm toolchain that
# scripts/setup.sh selected.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smidl-target}"
# The target dir is outside the workspace: tell the wasm builder where Cargo.lock is.
export WASM_BUILD_WORKSPACE_HINT="$here"
if [ -f "$here/.wasm-toolchain.env" ]; then
  set -a; . "$here/.wasm-toolchain.env"; set +a
fi
cd "$here"
exec cargo "$@"
