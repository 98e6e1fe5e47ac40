#!/usr/bin/env bash
# cargo with the project's environment: the persistent target dir and the wasm toolchain that
# scripts/setup.sh selected.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smidl-target}"
if [ -f "$here/.wasm-toolchain.env" ]; then
  set -a; . "$here/.wasm-toolchain.env"; set +a
fi
cd "$here"
exec cargo "$@"
