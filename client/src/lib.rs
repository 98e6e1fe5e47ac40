//! `smidl`: what a chain account uses to get encrypted predictions from a smidl model, what a
//! provider uses to register one, and the one-command demo.
//!
//! * [`keys`]: the client's TFHE keys per model (and its evaluation key upload).
//! * [`model`]: train or import a model, register it on chain, install it on the worker.
//! * [`plan`]: the accuracy/ε trade-off of both privacy modes, simulated before going live.
//! * [`retrain`]: the owner's next version: authorised on chain, staged on the worker.
//! * [`infer`]: encrypt → upload → `request_inference` → wait → fetch → verify → decrypt.
//! * [`status`]: the ledger's view of a model and an account.
//! * [`audit`]: recompute a model's salted commitments from its opening.
//! * [`devnet`]: a temporary dev node and worker (the demo and the end-to-end tests).
//! * [`demo`]: the main job.

pub mod audit;
pub mod clinics;
pub mod ctx;
pub mod data;
pub mod demo;
pub mod devnet;
pub mod infer;
pub mod keys;
pub mod model;
pub mod plan;
pub mod retrain;
pub mod status;
pub mod ui;
