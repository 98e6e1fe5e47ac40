//! What smidl's worker and its clients share, with no server code, so that a client (the
//! `smidl` CLI) links neither the worker's HTTP server, its store nor its FHE pipeline:
//!
//! * [`chain`]: the chain client (subxt, compiled against the checked-in runtime metadata),
//!   submission and the reads both sides need;
//! * [`wire`]: the worker API's request and response bodies;
//! * [`auth`]: the signed request headers (both signing and verification);
//! * [`api_client`]: the signed HTTP client of the worker API;
//! * [`commit`]: the salted commitments of weights and datasets, and their openings.

pub mod api_client;
pub mod auth;
pub mod chain;
pub mod commit;
pub mod wire;
