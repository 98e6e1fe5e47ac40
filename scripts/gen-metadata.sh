#!/usr/bin/env bash
# Regenerate the runtime metadata the worker and CLI compile against (subxt static metadata).
# Run it after any change to the runtime's calls, events, storage or types; the test
# `metadata_matches_runtime` in offchain-worker fails until you do.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/cargo.sh" run -q -p smidl-runtime --example export_metadata -- \
  "$here/protocol/metadata/smidl.scale"
