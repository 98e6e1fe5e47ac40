//! Types stored by the pallet, passed to its calls and returned by its runtime API.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
    pallet_prelude::*, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use frame_system::pallet_prelude::BlockNumberFor;
use scale_info::TypeInfo;
use sp_core::H256;

use crate::{BalanceOf, Config};

/// Identifier of a registered model.
pub type ModelId = u32;
/// Identifier of an inference request.
pub type RequestId = u64;
/// Index of a model epoch: increments at every reset or retrain.
pub type EpochIndex = u32;
/// Privacy loss in millionths of a unit: micro-ε under [`Accounting::PureEpsilon`], micro-ρ
/// under [`Accounting::Zcdp`]. `1_000_000` is ε = 1.0 (or ρ = 1.0).
pub type PrivacyUnits = u64;

/// How an account's privacy loss composes across queries.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum Accounting {
    /// Pure ε-DP, basic composition: every query spends `epsilon_per_query`; the budget is ε.
    PureEpsilon,
    /// Zero-concentrated DP: every query spends ρ = ε²/2; ρ composes linearly and the
    /// account budget is the largest ρ whose (ε, δ) conversion, with δ = 10^-`delta_exponent`,
    /// stays within `account_epsilon_budget`.
    Zcdp {
        /// δ = 10^-delta_exponent, between 1 and 30.
        delta_exponent: u8,
    },
}

/// Usage policy of a model, set by its owner.
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct Policy<Balance, BlockNumber> {
    /// K: queries allowed in one epoch (all accounts together); the model locks at N ≥ K.
    pub max_queries_per_epoch: u32,
    /// T: blocks an epoch may last after it starts.
    pub epoch_lifetime: BlockNumber,
    /// Blocks without any request after which the epoch expires.
    pub idle_timeout: BlockNumber,
    /// ε charged per query, in micro-ε (1_000_000 = ε 1.0).
    pub epsilon_per_query: PrivacyUnits,
    /// Total ε an account may spend against one dataset generation, in micro-ε.
    pub account_epsilon_budget: PrivacyUnits,
    /// How privacy loss composes.
    pub accounting: Accounting,
    /// Fee per query paid to the model owner when the result is delivered (0 = free). Held
    /// from the requester at request time and returned if the request is rejected or times out.
    pub fee_per_query: Balance,
}

/// When a policy update takes effect.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum PolicyApplication {
    /// Only tightens the running epoch: applied at once.
    Now,
    /// Loosens a limit: applied when the next epoch starts (reset or retrain).
    NextEpoch,
    /// Lowers the account budget or changes the accounting mode: applied at the next retrain,
    /// when budgets restart, so nobody's past spending is re-judged under new rules.
    NextGeneration,
}

/// Life-cycle state of a model.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum ModelState {
    /// Accepting requests.
    Active,
    /// N ≥ K in the current epoch: locked until a reset or retrain.
    Exhausted,
    /// The epoch lifetime or the idle timeout passed: locked until a reset or retrain.
    Expired,
    /// Withdrawn by its owner for good.
    Retired,
}

/// Why an epoch expired.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum ExpiryReason {
    /// `epoch_lifetime` blocks passed since the epoch started.
    Lifetime,
    /// `idle_timeout` blocks passed since the last request.
    Idle,
}

/// A model and the state of its current epoch.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct ModelInfo<T: Config> {
    /// Account that registered the model; sets its policy and workers and receives fees.
    pub owner: T::AccountId,
    /// Accounts of the off-chain workers allowed to submit results, reject requests and
    /// reset/retrain the model.
    pub workers: BoundedVec<T::AccountId, T::MaxWorkers>,
    /// BLAKE2-256 commitment of the server model (weights and quantisation).
    pub weights_commitment: H256,
    /// Commitment identifying the training-data generation.
    pub dataset_commitment: H256,
    /// Dataset generation: increments at every retrain; privacy budgets are per generation.
    pub generation: u32,
    /// Current epoch: increments at every reset or retrain.
    pub epoch: EpochIndex,
    /// Block at which the current epoch started.
    pub epoch_start: BlockNumberFor<T>,
    /// Block of the last accepted request (or the epoch start).
    pub last_used: BlockNumberFor<T>,
    /// N: requests accepted in this epoch (Σ n_i), net of refunds.
    pub queries: u32,
    /// Requests of this model still pending (any epoch).
    pub pending: u32,
    /// Stored life-cycle state; see `Pallet::effective_state` for the time-based view.
    pub state: ModelState,
    /// Policy in force.
    pub policy: Policy<BalanceOf<T>, BlockNumberFor<T>>,
    /// A policy update waiting for the next epoch or generation.
    // Spelled out rather than aliased: the field's type name is part of the metadata users read.
    #[allow(clippy::type_complexity)]
    pub next_policy: Option<(Policy<BalanceOf<T>, BlockNumberFor<T>>, PolicyApplication)>,
    /// Per-query cost in the accounting unit (micro-ε or micro-ρ), derived from the policy.
    pub cost_per_query: PrivacyUnits,
    /// Per-account budget in the accounting unit, derived from the policy.
    pub account_budget: PrivacyUnits,
}

/// What one account did with one model.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen, Default)]
pub struct AccountUsage<BlockNumber> {
    /// Epoch that `queries` counts; older values read as 0 (lazy reset).
    pub epoch: EpochIndex,
    /// n_i: this account's requests in `epoch`.
    pub queries: u32,
    /// Dataset generation that `spent` is charged against; older values read as 0.
    pub generation: u32,
    /// Privacy loss spent against `generation`, in the model's accounting unit.
    pub spent: PrivacyUnits,
    /// Block of this account's last request.
    pub last_request: BlockNumber,
}

/// An evaluation key a client uploaded to the model's workers.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct EvalKeyInfo<BlockNumber> {
    /// BLAKE2-256 of the serialised evaluation key.
    pub commitment: H256,
    /// Block of registration.
    pub registered_at: BlockNumber,
}

/// Why a worker refused to evaluate a request.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum RejectReason {
    /// No uploaded ciphertext hashes to the input commitment.
    InputMissing,
    /// An uploaded ciphertext exists for the request but hashes to another commitment.
    CommitmentMismatch,
    /// The ciphertext failed to parse or has the wrong parameters.
    MalformedInput,
    /// The model needs an evaluation key and none matching the registration was uploaded.
    EvalKeyMissing,
    /// The request belongs to an epoch whose data the worker deleted.
    EpochEnded,
    /// The worker failed to evaluate the model.
    EvaluationFailed,
}

/// State of an inference request.
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub enum RequestStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker delivered an encrypted result with this BLAKE2-256 commitment.
    Completed {
        /// Commitment of the encrypted output.
        output_commitment: H256,
    },
    /// A worker refused it; budget, counters and fee were refunded.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// Nobody answered within the request timeout; budget, counters and fee were refunded.
    TimedOut,
}

/// An inference request.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct InferenceRequest<T: Config> {
    /// Model asked.
    pub model_id: ModelId,
    /// Epoch of the model when asked.
    pub epoch: EpochIndex,
    /// Dataset generation when asked (the budget charge belongs to it).
    pub generation: u32,
    /// Account that asked and alone may fetch the result.
    pub requester: T::AccountId,
    /// BLAKE2-256 of the encrypted input uploaded to the worker.
    pub input_commitment: H256,
    /// Commitment of the requester's registered evaluation key, if any.
    pub eval_key_commitment: Option<H256>,
    /// Block of the request.
    pub submitted_at: BlockNumberFor<T>,
    /// Block at which a still pending request times out.
    pub deadline: BlockNumberFor<T>,
    /// Privacy charged, in the model's accounting unit (refunded on rejection or timeout).
    pub privacy_charged: PrivacyUnits,
    /// Fee held from the requester.
    pub fee: BalanceOf<T>,
    /// Current status.
    pub status: RequestStatus,
}

/// Chain-wide bounds on policies, set by `Root`.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    Clone,
    PartialEq,
    Eq,
    Debug,
    TypeInfo,
    MaxEncodedLen,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalBounds<BlockNumber> {
    /// Largest K a policy may set.
    pub max_queries_per_epoch: u32,
    /// Longest epoch lifetime a policy may set, in blocks.
    pub max_epoch_lifetime: BlockNumber,
    /// Largest ε per query, in micro-ε.
    pub max_epsilon_per_query: PrivacyUnits,
    /// Largest per-account ε budget, in micro-ε.
    pub max_account_budget: PrivacyUnits,
    /// Blocks after which a pending request times out and is refunded.
    pub request_timeout: BlockNumber,
}

/// A model's status as seen at a given block, for clients (runtime API).
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct ModelStatus<BlockNumber> {
    /// State with time limits applied at the queried block.
    pub state: ModelState,
    /// Why the epoch expired, when `state` is `Expired` because of time.
    pub expiry: Option<ExpiryReason>,
    /// Current epoch.
    pub epoch: EpochIndex,
    /// Current dataset generation.
    pub generation: u32,
    /// N.
    pub queries: u32,
    /// K.
    pub max_queries: u32,
    /// Last block at which the epoch still accepts requests (lifetime).
    pub epoch_ends_at: BlockNumber,
    /// Last block at which a request is accepted unless another arrives first (idle timeout).
    pub idle_expires_at: BlockNumber,
    /// Requests still pending.
    pub pending: u32,
}

/// An account's standing with a model, for clients (runtime API).
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct AccountStatus {
    /// n_i in the current epoch.
    pub queries: u32,
    /// Spent against the current generation, in the accounting unit.
    pub spent: PrivacyUnits,
    /// Budget in the accounting unit.
    pub budget: PrivacyUnits,
    /// Budget left, in the accounting unit.
    pub remaining: PrivacyUnits,
    /// Queries the remaining budget still allows.
    pub queries_left_by_budget: u64,
    /// The spent amount as an ε guarantee in micro-ε (equal to `spent` in pure-ε mode; the
    /// (ε, δ) conversion with the model's δ in zCDP mode).
    pub spent_epsilon: PrivacyUnits,
    /// Accounting mode of the model.
    pub accounting: Accounting,
}

/// A model pre-registered at genesis (plain types so that chain-spec JSON stays readable).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisModel<AccountId> {
    /// Owner.
    pub owner: AccountId,
    /// Authorised workers.
    pub workers: alloc::vec::Vec<AccountId>,
    /// Weights commitment.
    pub weights_commitment: H256,
    /// Dataset commitment.
    pub dataset_commitment: H256,
    /// K.
    pub max_queries_per_epoch: u32,
    /// T in blocks.
    pub epoch_lifetime: u32,
    /// Idle timeout in blocks.
    pub idle_timeout: u32,
    /// Micro-ε per query.
    pub epsilon_per_query: PrivacyUnits,
    /// Micro-ε per account.
    pub account_epsilon_budget: PrivacyUnits,
    /// `None` for pure ε, `Some(k)` for zCDP with δ = 10^-k.
    pub zcdp_delta_exponent: Option<u8>,
    /// Fee per query in the chain's smallest balance unit.
    pub fee_per_query: u128,
}
