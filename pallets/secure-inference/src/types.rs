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
/// Identifier of a dataset lineage: the training rows behind one or more models, and the one
/// privacy budget every query on them spends.
pub type LineageId = u32;
/// Privacy loss in millionths of a unit: micro-ε under [`Accounting::PureEpsilon`], micro-ρ
/// under [`Accounting::Zcdp`]. `1_000_000` is ε = 1.0 (or ρ = 1.0).
pub type PrivacyUnits = u64;
/// Identifier of a clinic's data contribution.
pub type ContributionId = u64;
/// Identifier of a published k-anonymous dataset release.
pub type ReleaseId = u32;

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

/// How a model's answers are made differentially private with respect to its training rows.
/// Recorded with the weights (at registration and at every retrain), never changed by a policy
/// update: the mode is a property of how the weights were made.
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
pub enum PrivacyMode {
    /// The worker noises every answer: each request spends the policy's `epsilon_per_query`
    /// against the account's allocation and the lineage.
    PerQuery,
    /// The weights were trained with DP at `training_epsilon`: the lineage is charged once
    /// when they are registered or retrained in (ε, or in zCDP mode the largest ρ whose (ε, δ)
    /// conversion stays within it); every answer is post-processing and charges nothing. The
    /// answer limits bound model extraction, which DP training does not prevent.
    PrivateModel {
        /// ε of the training mechanism, micro-ε.
        training_epsilon: PrivacyUnits,
        /// Answers one account may get from these weights, all epochs together.
        answers_per_account: u32,
        /// Answers all accounts together may get from these weights, all epochs together.
        answers_per_generation: u32,
    },
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
    /// Lowers the account budget or changes the accounting mode: applied only when a retrain
    /// moves the model to another lineage (new or joined), where per-account allocations start
    /// afresh, so nobody's past spending is re-judged under new rules.
    NextLineage,
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
    /// Accounts of the off-chain workers; each request is assigned to one of them, which alone
    /// may answer or reject it. Workers may reset an exhausted or expired model, and retrain it
    /// only as the owner authorised.
    pub workers: BoundedVec<T::AccountId, T::MaxWorkers>,
    /// Salted BLAKE2-256 commitment of the server model (weights and quantisation).
    pub weights_commitment: H256,
    /// Salted commitment of the training rows of the current weights.
    pub dataset_commitment: H256,
    /// Lineage whose budget every request on this model spends.
    pub lineage: LineageId,
    /// Retrain counter: increments at every retrain (informational; budgets follow `lineage`).
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
    /// How answers are made private; set with the weights.
    pub privacy: PrivacyMode,
    /// What the lineage was charged for training these weights (private-model mode; 0 for
    /// per-query), in the accounting unit.
    pub training_cost: PrivacyUnits,
    /// Answers counted against these weights (this generation, all accounts and epochs), net
    /// of refunds within the epoch.
    pub answers: u32,
}

/// What one account did with one model.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen, Default)]
pub struct AccountUsage<Balance, BlockNumber> {
    /// Epoch that `queries` counts; older values read as 0 (lazy reset).
    pub epoch: EpochIndex,
    /// n_i: this account's requests in `epoch`.
    pub queries: u32,
    /// Lineage that `spent` is charged against; another lineage reads as 0.
    pub lineage: LineageId,
    /// This account's privacy loss on this model against `lineage`, in the accounting unit.
    pub spent: PrivacyUnits,
    /// Generation that `answers` counts; older values read as 0 (lazy reset).
    pub generation: u32,
    /// This account's answers from `generation`'s weights (private-model answer limit).
    pub answers: u32,
    /// Block of this account's last request.
    pub last_request: BlockNumber,
    /// Storage deposit held for this record.
    pub deposit: Balance,
}

/// An evaluation key a client uploaded to the model's workers.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct EvalKeyInfo<Balance, BlockNumber> {
    /// BLAKE2-256 of the serialised evaluation key.
    pub commitment: H256,
    /// Block of registration.
    pub registered_at: BlockNumber,
    /// Storage deposit held for this record.
    pub deposit: Balance,
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
    /// The ciphertext failed to parse, has the wrong parameters or its proof did not verify.
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
    /// Lineage charged.
    pub lineage: LineageId,
    /// Account that asked and alone may fetch the result.
    pub requester: T::AccountId,
    /// The one worker that may answer or reject it (one request, one evaluation, one draw).
    pub worker: T::AccountId,
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
    /// Largest lineage ε budget, in micro-ε.
    pub max_lineage_budget: PrivacyUnits,
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
    /// Retrain counter.
    pub generation: u32,
    /// Lineage charged.
    pub lineage: LineageId,
    /// The lineage's budget left, in the accounting unit.
    pub lineage_remaining: PrivacyUnits,
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
    /// How answers are made private.
    pub privacy: PrivacyMode,
    /// Answers counted against the current weights (all accounts and epochs).
    pub answers: u32,
}

/// An account's standing with a model, for clients (runtime API).
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct AccountStatus {
    /// n_i in the current epoch.
    pub queries: u32,
    /// Spent on this model against its current lineage, in the accounting unit.
    pub spent: PrivacyUnits,
    /// Account budget in the accounting unit.
    pub budget: PrivacyUnits,
    /// Account budget left, in the accounting unit.
    pub remaining: PrivacyUnits,
    /// Budget left in the lineage (all accounts together), in the accounting unit.
    pub lineage_remaining: PrivacyUnits,
    /// Queries the account's and the lineage's remaining budgets still allow (per-query
    /// mode), or the answers the account's and the generation's limits still allow
    /// (private-model mode).
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
    /// Micro-ε budget of the model's own new lineage.
    pub lineage_epsilon_budget: PrivacyUnits,
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

/// Where a model's training rows sit among the owner's lineages, declared by the owner at
/// registration and at every retrain.
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
pub enum LineageChoice {
    /// The same or overlapping rows: keep spending the model's current lineage (retrain only).
    Continue,
    /// Rows already under another lineage of the same owner (same accounting): spend that one.
    Join(LineageId),
    /// Genuinely new rows: open a new lineage with this total ε budget (micro-ε).
    New {
        /// Total ε every query on these rows may spend together, in micro-ε.
        epsilon_budget: PrivacyUnits,
    },
}

/// The training rows behind one or more models and their one privacy budget: the total loss
/// every account spends, over all epochs, resets and retrains on these rows, never exceeds
/// `budget`. Kept forever: it is the record that the guarantee held.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct Lineage<T: Config> {
    /// The data owner who opened it; only their models may join it.
    pub owner: T::AccountId,
    /// Accounting of every model on it (fixed: the sum is only meaningful in one unit).
    pub accounting: Accounting,
    /// The declared budget, in micro-ε.
    pub epsilon_budget: PrivacyUnits,
    /// The budget in the accounting unit (for zCDP the ρ whose (ε, δ) conversion stays within
    /// `epsilon_budget`, converted once).
    pub budget: PrivacyUnits,
    /// Spent by everyone, net of refunds, in the accounting unit.
    pub spent: PrivacyUnits,
    /// Dataset commitment of the rows that opened it.
    pub dataset_commitment: H256,
    /// Block it was opened.
    pub created_at: BlockNumberFor<T>,
}

/// An owner's standing authorisation for a worker to retrain a model with exactly these
/// commitments and lineage choice (consumed by the retrain).
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct RetrainAuthorisation {
    /// Weights commitment the retrain must install.
    pub weights_commitment: H256,
    /// Dataset commitment the retrain must install.
    pub dataset_commitment: H256,
    /// Lineage the retrained model spends.
    pub lineage: LineageChoice,
    /// Privacy mode of the new weights (a private-model retrain charges its training ε).
    pub privacy: PrivacyMode,
}

/// One worker's signed statement that it shredded its part of a model epoch's client data: its
/// store for the epoch has its key destroyed and its objects deleted. `final_root` commits to
/// everything that store held (its bucket tree and access journal), so an auditor holding a
/// copy of the storage host's objects can check that these were what was shredded.
#[derive(
    Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct ErasureAttestation<AccountId, BlockNumber> {
    /// The worker that shredded it.
    pub worker: AccountId,
    /// Final Merkle root of the worker's store for the epoch; `None` if it never stored
    /// anything.
    pub final_root: Option<H256>,
    /// Accesses that store made in its life (each request costs a fixed number).
    pub accesses: u64,
    /// Block of the attestation.
    pub at: BlockNumber,
}

/// The erasure attestations of a model's latest attested epoch, at most one per worker.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct EpochErasure<T: Config> {
    /// The epoch they cover.
    pub epoch: EpochIndex,
    /// One per worker that attested, in the order they came.
    pub attestations:
        BoundedVec<ErasureAttestation<T::AccountId, BlockNumberFor<T>>, T::MaxWorkers>,
}

/// A lineage's budget as seen by clients and auditors (runtime API).
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct LineageStatus {
    /// Accounting unit of `budget` and `spent`.
    pub accounting: Accounting,
    /// Declared ε budget, micro-ε.
    pub epsilon_budget: PrivacyUnits,
    /// Budget in the accounting unit.
    pub budget: PrivacyUnits,
    /// Spent by all accounts together, in the accounting unit.
    pub spent: PrivacyUnits,
    /// `spent` as an ε guarantee in micro-ε (rounded up).
    pub spent_epsilon: PrivacyUnits,
}

/// A batch of patient records a clinic contributed to a model's next generation. The records
/// themselves never reach the chain or the model provider: the clinic sealed them (off-chain)
/// to `aggregator`'s key and records here only their commitment and row count.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Contribution<AccountId, Balance, BlockNumber> {
    /// Model whose next generation the records are for.
    pub model_id: ModelId,
    /// The clinic that contributed them; alone may withdraw them while unreleased.
    pub contributor: AccountId,
    /// The account the records were sealed to: the model's aggregator at submission. Only
    /// this account, while still the model's aggregator, may publish a release of them.
    pub aggregator: AccountId,
    /// The aggregator's sealing key at submission, the one the records were sealed to.
    pub sealing_key: [u8; 32],
    /// Salted commitment of the sealed batch.
    pub commitment: H256,
    /// Number of records in the batch.
    pub rows: u32,
    /// Block of submission.
    pub submitted: BlockNumber,
    /// Storage deposit held from the contributor (kept while the record is).
    pub deposit: Balance,
    /// The release that aggregated these records; set once, then the record is kept forever.
    pub release: Option<ReleaseId>,
}

/// An account's published X25519 sealing key and the deposit it holds.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct SealingKeyRecord<Balance> {
    /// The X25519 public key (32 bytes, as `smidl_anon::seal` encodes it).
    pub key: [u8; 32],
    /// Storage deposit held while the key is published.
    pub deposit: Balance,
}

/// A k-anonymous (and l-diverse) dataset an aggregator derived off-chain from clinics'
/// contributions (Mondrian generalisation of the quasi-identifiers, suppression of rows that
/// do not fit). A model with an aggregator may be retrained only on such a release, once.
/// Kept forever: it is the record of what the model was trained on.
#[derive(
    Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct DatasetRelease<T: Config> {
    /// Model the release is for.
    pub model_id: ModelId,
    /// The aggregator that published it.
    pub aggregator: T::AccountId,
    /// Salted commitment of the release file; the retrain's dataset commitment.
    pub commitment: H256,
    /// Every combination of generalised quasi-identifiers occurs in at least k rows.
    pub k: u32,
    /// Every such equivalence class holds at least l distinct sensitive values (l ≤ k).
    pub l: u32,
    /// Names of the quasi-identifier columns that were generalised.
    pub quasi_identifiers: BoundedVec<BoundedVec<u8, T::MaxQiNameLen>, T::MaxQuasiIdentifiers>,
    /// Rows in the release (at most the contributed rows: suppression may drop some).
    pub rows: u32,
    /// The contributions it aggregates.
    pub contributions: BoundedVec<ContributionId, T::MaxContributionsPerRelease>,
    /// Block of publication.
    pub published: BlockNumberFor<T>,
    /// Storage deposit held from the aggregator (kept with the record).
    pub deposit: BalanceOf<T>,
    /// The model generation trained on it; a release trains one generation only.
    pub used_by_generation: Option<u32>,
}
