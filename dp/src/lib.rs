//! smidl's differential privacy, with no chain or network code:
//!
//! * [`noise`]: exact discrete Laplace / Gaussian noise (OpenDP's CKS20 samplers, OpenSSL's
//!   CSPRNG) and randomised response: what the worker adds to every answer in per-query mode.
//! * [`accounting`]: the chain's fixed-point units and its zCDP conversions (a copy of the
//!   pallet's arithmetic, with its rounding), and the accounting mode.
//! * [`train`]: **private-model mode**: logistic regression trained with DP by output
//!   perturbation (Chaudhuri–Monteleoni–Sarwate 2011), charged once at a declared ε (or ρ);
//!   every answer of the resulting model is post-processing.
//! * [`plan`]: the accuracy/ε trade-off of both modes by simulation, before a model goes live.
//!
//! See `docs/privacy.md` ("Private-model mode") for the proofs and what is not covered.

pub mod accounting;
pub mod fit;
pub mod noise;
pub mod plan;
pub mod release;
pub mod train;

pub use accounting::{rho_micro_for_epsilon, Accounting};
pub use noise::{DpError, Mechanism, NoisePlan, MICRO};
pub use plan::{plan, PlanConfig, PlanError, PlanMode, PlanRow};
pub use train::{
    compile_private_lr, private_quant_config, train_private_lr, PrivateLr, PrivateLrConfig,
    PrivateLrReport, TrainError, TrainingBudget,
};
