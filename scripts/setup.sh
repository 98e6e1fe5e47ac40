#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian machine for building and testing smidl.
#
# Installs: protoc (the node's libp2p crates need it), a wasm32v1-none toolchain for the runtime
# (via `rustup target add` when it can download, else the offline recipe of ../shared/TOOLCHAIN.md),
# the npm packages of the polkadot.js test, and `s3s-fs` (the S3-speaking server the ORAM tests
# start on loopback, built from crates.io). Safe to run again: every step checks first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM_TARGET=wasm32v1-none
# Name under which the Debian toolchain is linked into rustup (see TOOLCHAIN.md).
LINKED=smidl-wasm
env_file="$here/.wasm-toolchain.env"

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
}

# 1. Native build prerequisites.
apt_install protobuf-compiler pkg-config libssl-dev make
command -v cargo-nextest >/dev/null 2>&1 || log "cargo-nextest not found; tests use plain cargo test"

# 2. The wasm toolchain for the runtime.
wasm_ok() {
  local tc="$1"
  [ -d "$(rustc +"$tc" --print sysroot 2>/dev/null)/lib/rustlib/$WASM_TARGET/lib" ]
}

if wasm_ok stable; then
  log "rustup stable already has $WASM_TARGET"
  echo "WASM_BUILD_TOOLCHAIN=stable" >"$env_file"
elif rustup target add "$WASM_TARGET" --toolchain stable >/dev/null 2>&1 && wasm_ok stable; then
  log "installed $WASM_TARGET with rustup"
  echo "WASM_BUILD_TOOLCHAIN=stable" >"$env_file"
else
  log "rustup cannot download $WASM_TARGET; using Debian's rustc-web (TOOLCHAIN.md recipe)"
  apt_install rustc-web cargo-web rust-web-src
  rustup toolchain list | grep -q "^$LINKED" || rustup toolchain link "$LINKED" /usr
  lld_dir=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin
  if [ ! -x "$lld_dir/rust-lld" ]; then
    $SUDO mkdir -p "$lld_dir"
    $SUDO ln -sf "$(rustc +stable --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld" "$lld_dir/rust-lld"
  fi
  sysroot_lib=/usr/lib/rustlib/$WASM_TARGET/lib
  if ! ls "$sysroot_lib"/libcore-*.rlib >/dev/null 2>&1; then
    log "building the $WASM_TARGET sysroot (core, alloc) once"
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/src"
    cat >"$tmp/Cargo.toml" <<'TOML'
[package]
name = "wasm-sysroot"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["rlib"]
[profile.release]
lto = true
panic = "abort"
TOML
    echo '#![no_std]' >"$tmp/src/lib.rs"
    (cd "$tmp" && RUSTC_BOOTSTRAP=1 cargo +"$LINKED" build -q --release --target "$WASM_TARGET" -Zbuild-std=core,alloc)
    $SUDO mkdir -p "$sysroot_lib"
    for lib in core alloc compiler_builtins; do
      $SUDO cp "$tmp"/target/$WASM_TARGET/release/deps/lib${lib}-*.rlib "$sysroot_lib/"
    done
    rm -rf "$tmp"
  fi
  echo "WASM_BUILD_TOOLCHAIN=$LINKED" >"$env_file"
fi
log "wasm toolchain: $(cat "$env_file")"

# 3. polkadot.js test dependencies (pinned by the committed lockfile).
if [ -f "$here/tests/polkadot-js/package-lock.json" ]; then
  if [ ! -d "$here/tests/polkadot-js/node_modules/@polkadot/api" ]; then
    log "npm ci in tests/polkadot-js"
    (cd "$here/tests/polkadot-js" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
# 4. s3s-fs: a real S3 API server over a directory, for smidl-oram's S3 backend tests and
# benchmark. Built in its own target dir so it never invalidates the workspace's.
S3S_FS_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null 2>&1 || ! s3s-fs --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
  log "cargo install s3s-fs $S3S_FS_VERSION (a few minutes, once)"
  CARGO_TARGET_DIR="$HOME/.cache/s3s-fs-target" cargo install s3s-fs --version "$S3S_FS_VERSION" \
    --features binary --locked --quiet
fi
log "s3s-fs: $(command -v s3s-fs)"
log "done"
