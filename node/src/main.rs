//! smidl node: a Substrate node (Aura + GRANDPA) running the smidl runtime.

#![warn(missing_docs)]
// The node's fallible functions return sc-cli's and sc-service's error types, which are large by
// their own design; boxing them at every call site would only fight the framework's API.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
    command::run()
}
