#!/usr/bin/env bash
# Start a temporary dev node and run tests/polkadot-js/test.mjs against it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smidl-target}"
node_bin="$CARGO_TARGET_DIR/debug/smidl-node"
[ -x "$node_bin" ] || bash "$here/scripts/cargo.sh" build -p smidl-node
if [ ! -d "$here/tests/polkadot-js/node_modules/@polkadot/api" ]; then
  (cd "$here/tests/polkadot-js" && npm ci --no-audit --no-fund --loglevel=error)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
p2p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$(mktemp -t smidl-node-XXXX.log)"
"$node_bin" --dev --tmp --no-telemetry --no-prometheus --no-mdns --rpc-port "$port" --port "$p2p" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

# Wait for the RPC server and the first block.
for _ in $(seq 1 120); do
  if curl -fs -H 'Content-Type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[]}' \
      "http://127.0.0.1:$port" 2>/dev/null | grep -q '"number":"0x[1-9a-f]'; then
    break
  fi
  sleep 1
done
cd "$here/tests/polkadot-js"
if ! node test.mjs "ws://127.0.0.1:$port"; then
  echo "--- node log (tail) ---"; tail -40 "$log"; exit 1
fi
