# smidl — the two set-up commands are `make setup` and `make test`; the main job is `make demo`.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/smidl-target
export WASM_BUILD_WORKSPACE_HINT ?= $(CURDIR)

.PHONY: setup test build node lint fmt polkadot-js demo metadata dev-chain bench-dp bench-kanon bench-oram bench-load

## Install what a fresh Debian machine needs (idempotent).
setup:
	bash scripts/setup.sh

## Everything CI runs: format check, clippy, all Rust tests (pallet, runtime, node smoke, FHE engine,
## worker, CLI, end-to-end against a dev node and worker), pallet benchmarks as tests, then the
## polkadot.js script against a real dev node.
test:
	bash scripts/test.sh

## Build the node (debug profile, persistent target dir).
node:
	bash scripts/cargo.sh build -p smidl-node

## Build every binary: smidl-node, smidl-worker, smidl.
build:
	bash scripts/cargo.sh build -p smidl-node -p smidl-worker -p smidl-cli

## The main job: a temporary dev chain and worker, encrypted inferences, K reached, reset.
demo: build
	$(CARGO_TARGET_DIR)/debug/smidl demo

## Regenerate the subxt metadata after a runtime change.
metadata:
	bash scripts/gen-metadata.sh

## Lints (cargo fmt + clippy on all targets).
lint:
	cargo fmt --all -- --check
	bash scripts/cargo.sh clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## Only the polkadot.js script (starts its own dev node).
polkadot-js:
	bash scripts/polkadot-js-test.sh

## Start a dev chain on ws://127.0.0.1:9944 (Ctrl-C to stop).
dev-chain:
	bash scripts/cargo.sh run -p smidl-node -- --dev --tmp --rpc-cors all

## DP utility: accuracy of per-query noise vs a privately trained model, ε ∈ {0.5, 1, 2, 4}, on
## breast cancer and Pima (RESULT lines). The λ/R sweep behind the private defaults:
## `$(CARGO_TARGET_DIR)/release/smidl-dp-bench --sweep` (see dp/src/bin/bench.rs).
bench-dp:
	bash scripts/cargo.sh run --release -p smidl-dp --bin smidl-dp-bench

## k-anonymity: Mondrian time and NCP on Pima (768 rows) and 1M generated rows, then the accuracy
## of models trained on raw vs released rows at k = 5, 10, 25 (RESULT lines).
bench-kanon:
	bash scripts/cargo.sh run --release -p smidl-anon --bin smidl-anon-bench
	bash scripts/cargo.sh run --release -p smidl-dp --bin smidl-dp-bench -- --kanon --draws 20

## ORAM: ms per access of smidl-oram (memory, local filesystem, s3s-fs on loopback) against Meta's
## `oram` crate (in memory, unencrypted) at 2^12 … 2^20 blocks of 64 B and 2^16 × 4096 B (RESULT
## lines). Options after `--`, e.g. `make bench-oram ARGS="--sizes 16 --backends anchor,fs"`.
bench-oram:
	bash scripts/cargo.sh run --release -p smidl-oram --example bench -- $(ARGS)

## The worker at scale: engine throughput, then a dev node and worker under --per-block requests
## per block for --blocks blocks (RESULT lines; defaults 200 × 20, about an hour here, most of it
## the clients proving their inputs). E.g. `make bench-load ARGS="--per-block 40 --blocks 5"`.
## The worker and the bench run optimised (release); the node is the debug build.
bench-load: node
	bash scripts/cargo.sh build --release -p smidl-worker -p smidl-e2e --bin smidl-worker --bin smidl-load-bench
	mkdir -p $(CARGO_TARGET_DIR)/bench-load-bin
	ln -sf $(CARGO_TARGET_DIR)/debug/smidl-node $(CARGO_TARGET_DIR)/release/smidl-worker $(CARGO_TARGET_DIR)/bench-load-bin/
	SMIDL_BIN_DIR=$(CARGO_TARGET_DIR)/bench-load-bin $(CARGO_TARGET_DIR)/release/smidl-load-bench $(ARGS)
