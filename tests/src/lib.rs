//! End-to-end tests of smidl live in `e2e/`; they drive a real `smidl-node --dev` and
//! `smidl-worker` through `smidl_cli::devnet`. Build the binaries first (`make test` does).
