//! # Secure-inference pallet
//!
//! The policy ledger of smidl: privacy-preserving ML inference where clients send encrypted
//! feature vectors to an off-chain worker that evaluates a model homomorphically. The chain
//! never sees data or weights; it records who may use which model, how often, for how long and
//! at what privacy cost, plus salted commitments that let an auditor check integrity.
//!
//! ## Concepts
//! - **Lineage**: the training rows behind one or more models and their one privacy budget.
//!   Every query on a model spends its lineage: the total loss all accounts together spend,
//!   over every epoch, reset and retrain on those rows, never exceeds the lineage's budget.
//!   That is the guarantee a data subject cares about; it holds against any coalition of
//!   accounts (Sybils included) and against the workers. Only the owner opens a lineage (at
//!   registration, or by declaring genuinely new rows at a retrain) and lineages are kept
//!   forever.
//! - **Model**: registered by an owner with weights and dataset commitments, the worker
//!   accounts that serve it, a [`Policy`] and a [`LineageChoice`].
//! - **Epoch**: a model's usage window. Per epoch the pallet counts every account's requests
//!   n_i and their sum N. The model locks ([`ModelState::Exhausted`]) when N reaches K
//!   (`max_queries_per_epoch`) and expires when the epoch lifetime T or the idle timeout
//!   passes. A worker (once every worker shredded its epoch data off-chain and attested it
//!   with [`Pallet::attest_erasure`]) or the owner then calls [`Pallet::reset_model`] (same weights, same lineage, new epoch). Only the owner
//!   retrains ([`Pallet::retrain_model`]), directly or through a worker holding its
//!   [`RetrainAuthorisation`] for exactly the new commitments.
//! - **Privacy budget**: every request spends the model's per-query cost from the account's
//!   allocation on the model *and* from the lineage, composed linearly in pure-ε mode or as
//!   zCDP (ρ = ε²/2 per query, budgets converted once). Amounts are fixed-point integers (see
//!   [`privacy`]); every rounding goes against the spender.
//! - **Request**: created by [`Pallet::request_inference`] with the commitment of the encrypted
//!   input and assigned to exactly one of the model's workers (by request id), which alone may
//!   complete it with [`Pallet::submit_result`] or refuse it ([`Pallet::reject_request`]).
//!   Only a request that got no answer is refunded (rejection or timeout): a completed request
//!   stays charged. Finished requests are pruned after `RequestRetention` blocks (events keep
//!   the history).
//! - **Aggregator**: an account the owner names for a model ([`Pallet::set_aggregator`]),
//!   independent of the provider: never the model's owner or one of its workers. Clinics seal
//!   their records to its key off-chain; it runs Mondrian k-anonymisation with l-diversity on
//!   their union and publishes the result. While a model has an aggregator it is retrained
//!   only on a published release of its own, each release once ([`Error::DatasetNotReleased`],
//!   [`Error::ReleaseAlreadyUsed`]), so the provider never trains on raw records. The chain
//!   checks accounts, not who stands behind them; a removal (`None`) is public in the event.
//! - **Contribution**: a clinic's batch of records for a model's next generation
//!   ([`Pallet::contribute_data`]): only its commitment, row count and the aggregator it was
//!   sealed to are on chain. Any account but the model's owner and workers may contribute;
//!   an unreleased contribution may be withdrawn ([`Pallet::withdraw_contribution`]).
//! - **Release**: a k-anonymous, l-diverse dataset the model's current aggregator derived from
//!   contributions sealed to it ([`Pallet::publish_dataset`]): its salted commitment, k, l, the
//!   quasi-identifier names, its row count and the contributions it aggregates. The retrain's
//!   dataset commitment names it; the lineage choice is independent of this (the lineage rules
//!   still decide whether budgets carry on). Releases and released contributions are kept
//!   forever, like lineages: they are the record of what each generation was trained on.
//! - **Deposits**: models, lineages, evaluation-key records, usage records, contributions and
//!   releases are paid for with held deposits; evaluation-key and usage records come back with
//!   [`Pallet::remove_eval_key`] and [`Pallet::clear_usage`], an unreleased contribution's with
//!   [`Pallet::withdraw_contribution`]. A model's aggregator entry (one per model) rides on the
//!   model deposit.
//!
//! ## Calls
//! Owner: `register_model`, `update_policy`, `set_workers`, `retire_model`,
//! `authorise_retrain`, `revoke_retrain`, `retrain_model`, `set_aggregator`. Clients:
//! `register_eval_key`, `remove_eval_key`, `request_inference`, `clear_usage`. Clinics (any
//! account but the owner and workers): `contribute_data`, `withdraw_contribution`.
//! Aggregator: `publish_dataset`. Assigned worker: `submit_result`, `reject_request`. Worker
//! or owner: `reset_model`; worker with the owner's authorisation: `retrain_model`. Worker,
//! before its reset or retrain: `attest_erasure`. Anyone:
//! `expire_model`. Root: `set_bounds`.
//!
//! Off-chain workers are driven only by this pallet's events and storage.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

mod impl_data;
mod impl_ledger;
mod impl_status;
pub mod privacy;
pub mod runtime_api;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use types::*;
pub use weights::WeightInfo;

use frame_support::traits::fungible;

/// Balance type of the currency that pays fees and deposits.
pub type BalanceOf<T> =
    <<T as Config>::Currency as fungible::Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// Policy type of a runtime.
pub type PolicyOf<T> = Policy<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;

/// Global bounds type of a runtime.
pub type BoundsOf<T> = GlobalBounds<frame_system::pallet_prelude::BlockNumberFor<T>>;

const LOG_TARGET: &str = "runtime::secure-inference";

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use crate::privacy::{self, MAX_DELTA_EXPONENT};
    use alloc::vec::Vec;
    use frame_support::{
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, InspectHold, Mutate, MutateHold},
            tokens::{Fortitude, Precision, Restriction},
        },
    };
    use frame_system::pallet_prelude::*;
    use sp_core::H256;
    use sp_runtime::traits::{Saturating, Zero};

    /// The in-code storage version. 2: lineages, request assignment, deposits, pruning.
    /// 3: privacy modes (per-query or private model) and answer limits.
    /// 4: aggregators, data contributions and dataset releases (new storage only, empty at
    /// the upgrade, existing records unchanged: no migration needed).
    const STORAGE_VERSION: StorageVersion = StorageVersion::new(4);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    /// Configuration of the pallet.
    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// Currency in which per-query fees and storage deposits are held.
        type Currency: Inspect<Self::AccountId>
            + Mutate<Self::AccountId>
            + InspectHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

        /// The overarching hold reason.
        type RuntimeHoldReason: From<HoldReason>;

        /// Most worker accounts one model may authorise.
        #[pallet::constant]
        type MaxWorkers: Get<u32>;

        /// Most requests that may share one timeout block. Bounds the work `on_initialize`
        /// does to time requests out and prune them, and hence the requests accepted per block.
        #[pallet::constant]
        type MaxRequestsPerBlock: Get<u32>;

        /// Deposit held from the owner for every model record (kept while the record is).
        #[pallet::constant]
        type ModelDeposit: Get<BalanceOf<Self>>;

        /// Deposit held from the owner for every lineage it opens (lineages are kept forever:
        /// they are the record that the budget held).
        #[pallet::constant]
        type LineageDeposit: Get<BalanceOf<Self>>;

        /// Deposit held from an account for its evaluation-key record of a model; returned by
        /// `remove_eval_key`.
        #[pallet::constant]
        type EvalKeyDeposit: Get<BalanceOf<Self>>;

        /// Deposit held from an account for its usage record of a model, taken at its first
        /// request; returned by `clear_usage` once the record no longer backs a budget.
        #[pallet::constant]
        type UsageDeposit: Get<BalanceOf<Self>>;

        /// Blocks a finished request stays in storage after its deadline (clients and workers
        /// read its status meanwhile); then `on_initialize` removes it. Events keep history.
        #[pallet::constant]
        type RequestRetention: Get<BlockNumberFor<Self>>;

        /// Deposit held from a clinic for every data contribution; returned when an unreleased
        /// contribution is withdrawn, kept with a released one (kept forever).
        #[pallet::constant]
        type ContributionDeposit: Get<BalanceOf<Self>>;

        /// Deposit held from an account while it publishes a sealing key; returned when it
        /// removes the key.
        #[pallet::constant]
        type SealingKeyDeposit: Get<BalanceOf<Self>>;

        /// Deposit held from an aggregator for every dataset release (kept forever).
        #[pallet::constant]
        type ReleaseDeposit: Get<BalanceOf<Self>>;

        /// Most quasi-identifier columns one release may name.
        #[pallet::constant]
        type MaxQuasiIdentifiers: Get<u32>;

        /// Longest quasi-identifier name, in bytes.
        #[pallet::constant]
        type MaxQiNameLen: Get<u32>;

        /// Most contributions one release may aggregate.
        #[pallet::constant]
        type MaxContributionsPerRelease: Get<u32>;

        /// Most records one contribution may declare.
        #[pallet::constant]
        type MaxContributionRows: Get<u32>;

        /// Smallest k a release may declare (at least 2: k = 1 anonymises nothing).
        #[pallet::constant]
        type MinAnonymityK: Get<u32>;

        /// Weights of this pallet's calls.
        type WeightInfo: WeightInfo;
    }

    /// Why the pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A per-query fee escrowed until the result is delivered (or refunded).
        InferenceFee,
        /// The storage deposit of a model or lineage record.
        ModelDeposit,
        /// The storage deposit of an evaluation-key record.
        EvalKeyDeposit,
        /// The storage deposit of a usage record.
        UsageDeposit,
        /// The storage deposit of a data contribution or a dataset release.
        DataDeposit,
    }

    /// Default chain-wide bounds, used until `Root` or the genesis config sets them.
    #[pallet::type_value]
    pub fn DefaultBounds<T: Config>() -> BoundsOf<T> {
        GlobalBounds {
            max_queries_per_epoch: 1_000_000,
            // About six months of 3-second blocks.
            max_epoch_lifetime: 5_184_000u32.into(),
            max_epsilon_per_query: 10 * privacy::PRIVACY_SCALE,
            max_account_budget: 1_000 * privacy::PRIVACY_SCALE,
            max_lineage_budget: 1_000 * privacy::PRIVACY_SCALE,
            request_timeout: 100u32.into(),
        }
    }

    /// Chain-wide bounds on model policies and the request timeout, set by `Root`.
    #[pallet::storage]
    pub type Bounds<T: Config> = StorageValue<_, BoundsOf<T>, ValueQuery, DefaultBounds<T>>;

    /// Identifier the next registered model receives.
    #[pallet::storage]
    pub type NextModelId<T: Config> = StorageValue<_, ModelId, ValueQuery>;

    /// Registered models: owner, workers, commitments, lineage, policy and the current epoch's
    /// counters (N, epoch number and start, last use, state).
    #[pallet::storage]
    pub type Models<T: Config> =
        StorageMap<_, Blake2_128Concat, ModelId, ModelInfo<T>, OptionQuery>;

    /// Identifier the next lineage receives.
    #[pallet::storage]
    pub type NextLineageId<T: Config> = StorageValue<_, LineageId, ValueQuery>;

    /// Dataset lineages and what all accounts together spent on them.
    #[pallet::storage]
    pub type Lineages<T: Config> =
        StorageMap<_, Blake2_128Concat, LineageId, Lineage<T>, OptionQuery>;

    /// The owner's authorisation for a worker to retrain a model (one per model, consumed).
    #[pallet::storage]
    pub type RetrainAuthorisations<T: Config> =
        StorageMap<_, Blake2_128Concat, ModelId, RetrainAuthorisation, OptionQuery>;

    /// Per model: the erasure attestations of the latest epoch any worker attested (one entry
    /// per model, at most `MaxWorkers` attestations, riding on the model deposit;
    /// [`Event::EpochErased`] keeps every epoch's).
    #[pallet::storage]
    pub type Erasures<T: Config> =
        StorageMap<_, Blake2_128Concat, ModelId, EpochErasure<T>, OptionQuery>;

    /// Per model and account: n_i for the epoch it names and the privacy loss spent against the
    /// lineage it names (both read as zero once the model moved on).
    #[pallet::storage]
    pub type Usage<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        ModelId,
        Blake2_128Concat,
        T::AccountId,
        AccountUsage<BalanceOf<T>, BlockNumberFor<T>>,
        OptionQuery,
    >;

    /// Per account and model: commitment of the evaluation key the account uploaded to the
    /// model's workers, so workers and auditors know which key its requests use.
    #[pallet::storage]
    pub type EvalKeys<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        T::AccountId,
        Blake2_128Concat,
        ModelId,
        EvalKeyInfo<BalanceOf<T>, BlockNumberFor<T>>,
        OptionQuery,
    >;

    /// Identifier the next inference request receives.
    #[pallet::storage]
    pub type NextRequestId<T: Config> = StorageValue<_, RequestId, ValueQuery>;

    /// Inference requests with their input/output commitments, assigned worker and status.
    #[pallet::storage]
    pub type Requests<T: Config> =
        StorageMap<_, Blake2_128Concat, RequestId, InferenceRequest<T>, OptionQuery>;

    /// Requests by the block at which they time out if still pending.
    #[pallet::storage]
    pub type RequestDeadlines<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<RequestId, T::MaxRequestsPerBlock>,
        ValueQuery,
    >;

    /// Finished requests by the block at which they are removed from `Requests`.
    #[pallet::storage]
    pub type PruneQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<RequestId, T::MaxRequestsPerBlock>,
        ValueQuery,
    >;

    /// The independent aggregator of a model: clinics seal their records to it, it alone
    /// publishes the model's dataset releases, and while it is set the model retrains only on
    /// such a release. Never the model's owner or one of its workers.
    #[pallet::storage]
    pub type Aggregators<T: Config> =
        StorageMap<_, Blake2_128Concat, ModelId, T::AccountId, OptionQuery>;

    /// Accounts' published X25519 sealing keys (with the deposit each holds): a clinic seals
    /// its records to the key of the model's aggregator read here, so no key ever travels
    /// through the provider. Set and removed only by the account itself.
    #[pallet::storage]
    pub type SealingKeys<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, SealingKeyRecord<BalanceOf<T>>, OptionQuery>;

    /// Identifier the next data contribution receives.
    #[pallet::storage]
    pub type NextContributionId<T: Config> = StorageValue<_, ContributionId, ValueQuery>;

    /// Clinics' data contributions: commitment and row count of records sealed to an
    /// aggregator. Unreleased ones may be withdrawn; released ones are kept forever.
    #[pallet::storage]
    pub type Contributions<T: Config> = StorageMap<
        _,
        Blake2_128Concat,
        ContributionId,
        Contribution<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
        OptionQuery,
    >;

    /// Identifier the next dataset release receives.
    #[pallet::storage]
    pub type NextReleaseId<T: Config> = StorageValue<_, ReleaseId, ValueQuery>;

    /// Published k-anonymous dataset releases (kept forever).
    #[pallet::storage]
    pub type Releases<T: Config> =
        StorageMap<_, Blake2_128Concat, ReleaseId, DatasetRelease<T>, OptionQuery>;

    /// Releases by model and commitment: what a retrain's dataset commitment is looked up in.
    #[pallet::storage]
    pub type ReleaseByCommitment<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        ModelId,
        Blake2_128Concat,
        H256,
        ReleaseId,
        OptionQuery,
    >;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Chain-wide bounds; `None` keeps the defaults.
        pub bounds: Option<GlobalBounds<u32>>,
        /// Models registered at genesis, each on a lineage of its own (no deposits).
        pub models: Vec<GenesisModel<T::AccountId>>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            if let Some(b) = &self.bounds {
                let bounds = GlobalBounds {
                    max_queries_per_epoch: b.max_queries_per_epoch,
                    max_epoch_lifetime: b.max_epoch_lifetime.into(),
                    max_epsilon_per_query: b.max_epsilon_per_query,
                    max_account_budget: b.max_account_budget,
                    max_lineage_budget: b.max_lineage_budget,
                    request_timeout: b.request_timeout.into(),
                };
                Pallet::<T>::check_bounds(&bounds).expect("genesis bounds are invalid");
                Bounds::<T>::put(bounds);
            }
            for m in &self.models {
                let fee: BalanceOf<T> = m
                    .fee_per_query
                    .try_into()
                    .ok()
                    .expect("genesis model fee does not fit the balance type");
                let policy = Policy {
                    max_queries_per_epoch: m.max_queries_per_epoch,
                    epoch_lifetime: m.epoch_lifetime.into(),
                    idle_timeout: m.idle_timeout.into(),
                    epsilon_per_query: m.epsilon_per_query,
                    account_epsilon_budget: m.account_epsilon_budget,
                    accounting: match m.zcdp_delta_exponent {
                        None => Accounting::PureEpsilon,
                        Some(k) => Accounting::Zcdp { delta_exponent: k },
                    },
                    fee_per_query: fee,
                };
                let workers: BoundedVec<_, _> = m
                    .workers
                    .clone()
                    .try_into()
                    .expect("too many genesis workers");
                Pallet::<T>::do_register(
                    m.owner.clone(),
                    workers,
                    m.weights_commitment,
                    m.dataset_commitment,
                    policy,
                    LineageChoice::New {
                        epsilon_budget: m.lineage_epsilon_budget,
                    },
                    PrivacyMode::PerQuery,
                    false,
                )
                .expect("genesis model is invalid");
            }
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(crate) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A model was registered; its first epoch (0) starts now.
        ModelRegistered {
            model_id: ModelId,
            owner: T::AccountId,
            weights_commitment: H256,
            dataset_commitment: H256,
            lineage_id: LineageId,
            policy: PolicyOf<T>,
            privacy: PrivacyMode,
        },
        /// A private model's training was charged to its lineage, once, as its weights came in
        /// (registration or retrain). Its answers charge nothing.
        TrainingCharged {
            model_id: ModelId,
            lineage_id: LineageId,
            /// The training's cost in the accounting unit.
            cost: PrivacyUnits,
            /// Everyone's total spent against the lineage after this charge.
            lineage_spent: PrivacyUnits,
        },
        /// An owner opened a lineage: new training rows with their own total budget.
        LineageOpened {
            lineage_id: LineageId,
            owner: T::AccountId,
            accounting: Accounting,
            /// Declared budget, micro-ε.
            epsilon_budget: PrivacyUnits,
            /// Budget in the accounting unit.
            budget: PrivacyUnits,
            dataset_commitment: H256,
        },
        /// The owner changed the policy; `applies` says when it takes effect.
        PolicyUpdated {
            model_id: ModelId,
            policy: PolicyOf<T>,
            applies: PolicyApplication,
        },
        /// The owner replaced the set of workers. Pending requests assigned to a removed
        /// worker can no longer be answered and time out (refunded).
        WorkersSet {
            model_id: ModelId,
            workers: Vec<T::AccountId>,
        },
        /// The owner retired the model: no new requests, ever.
        ModelRetired { model_id: ModelId },
        /// The owner authorised its workers to retrain the model with exactly these
        /// commitments and lineage choice.
        RetrainAuthorised {
            model_id: ModelId,
            authorisation: RetrainAuthorisation,
        },
        /// The owner withdrew its retrain authorisation.
        RetrainRevoked { model_id: ModelId },
        /// An account registered the commitment of its evaluation key for a model.
        EvalKeyRegistered {
            who: T::AccountId,
            model_id: ModelId,
            commitment: H256,
        },
        /// An account removed its evaluation-key record; its deposit was returned.
        EvalKeyRemoved {
            who: T::AccountId,
            model_id: ModelId,
        },
        /// An account removed a usage record that no longer backs a budget; its deposit was
        /// returned.
        UsageCleared {
            who: T::AccountId,
            model_id: ModelId,
        },
        /// A request was accepted: `worker` must fetch the ciphertext hashing to
        /// `input_commitment` and answer before `deadline`.
        InferenceRequested {
            request_id: RequestId,
            model_id: ModelId,
            epoch: EpochIndex,
            requester: T::AccountId,
            worker: T::AccountId,
            input_commitment: H256,
            eval_key_commitment: Option<H256>,
            /// n_i after this request.
            account_queries: u32,
            /// N after this request.
            epoch_queries: u32,
            /// Privacy charged, in the model's accounting unit.
            privacy_charged: PrivacyUnits,
            /// The account's total spent on this model against the lineage after this request.
            privacy_spent: PrivacyUnits,
            /// Everyone's total spent against the lineage after this request.
            lineage_spent: PrivacyUnits,
            fee: BalanceOf<T>,
            deadline: BlockNumberFor<T>,
        },
        /// N reached K: the model is locked until a reset or retrain.
        QueryLimitReached {
            model_id: ModelId,
            epoch: EpochIndex,
            queries: u32,
        },
        /// The assigned worker delivered the encrypted result of a request. The charge is
        /// final: the request can no longer be refunded.
        ResultSubmitted {
            request_id: RequestId,
            model_id: ModelId,
            epoch: EpochIndex,
            worker: T::AccountId,
            requester: T::AccountId,
            output_commitment: H256,
        },
        /// The assigned worker refused a request; budget, counters and fee were refunded.
        RequestRejected {
            request_id: RequestId,
            model_id: ModelId,
            worker: T::AccountId,
            requester: T::AccountId,
            reason: RejectReason,
        },
        /// A request stayed pending past its deadline; budget, counters and fee were refunded.
        RequestTimedOut {
            request_id: RequestId,
            model_id: ModelId,
            requester: T::AccountId,
        },
        /// The epoch's lifetime or idle timeout passed: the model is locked until reset.
        ModelExpired {
            model_id: ModelId,
            epoch: EpochIndex,
            reason: ExpiryReason,
        },
        /// A worker shredded its part of the epoch's client data (its ORAM key destroyed, its
        /// objects deleted); `final_root` commits to what the worker's store for it held.
        EpochErased {
            model_id: ModelId,
            epoch: EpochIndex,
            final_root: Option<H256>,
            accesses: u64,
            by: T::AccountId,
        },
        /// A new epoch started with the same weights; per-account counters restart, budgets
        /// (account and lineage) are kept.
        ModelReset {
            model_id: ModelId,
            previous_epoch: EpochIndex,
            epoch: EpochIndex,
            by: T::AccountId,
            policy_changed: bool,
        },
        /// A new epoch started with new weights. Budgets restart only if `lineage_id` is
        /// another lineage than before (the owner declared other rows).
        ModelRetrained {
            model_id: ModelId,
            previous_epoch: EpochIndex,
            epoch: EpochIndex,
            generation: u32,
            weights_commitment: H256,
            dataset_commitment: H256,
            lineage_id: LineageId,
            privacy: PrivacyMode,
            by: T::AccountId,
            policy_changed: bool,
        },
        /// `Root` changed the chain-wide bounds.
        BoundsUpdated { bounds: BoundsOf<T> },
        /// The owner set (`Some`) or removed (`None`) the model's independent aggregator.
        /// Clinics seal their records to the aggregator in force; while one is set, the model
        /// retrains only on its published releases.
        AggregatorSet {
            model_id: ModelId,
            aggregator: Option<T::AccountId>,
        },
        /// A clinic recorded a batch of records sealed to `aggregator`.
        DataContributed {
            contribution_id: ContributionId,
            model_id: ModelId,
            contributor: T::AccountId,
            aggregator: T::AccountId,
            /// The aggregator's sealing key the records were sealed to.
            sealing_key: [u8; 32],
            commitment: H256,
            rows: u32,
        },
        /// An account published (`Some`) or removed (`None`) its sealing key.
        SealingKeySet {
            who: T::AccountId,
            key: Option<[u8; 32]>,
        },
        /// A clinic withdrew an unreleased contribution; its deposit was returned.
        ContributionWithdrawn {
            contribution_id: ContributionId,
            model_id: ModelId,
            contributor: T::AccountId,
        },
        /// The aggregator published a k-anonymous, l-diverse release of these contributions.
        DatasetPublished {
            release_id: ReleaseId,
            model_id: ModelId,
            aggregator: T::AccountId,
            commitment: H256,
            k: u32,
            l: u32,
            quasi_identifiers: Vec<Vec<u8>>,
            rows: u32,
            contributions: Vec<ContributionId>,
        },
        /// A retrain installed weights trained on this release; it cannot train another.
        ReleaseUsed {
            release_id: ReleaseId,
            model_id: ModelId,
            generation: u32,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No model has this id.
        ModelNotFound,
        /// Only the model's owner may do this.
        NotOwner,
        /// Only a worker of the model may do this.
        NotWorker,
        /// Only the model's owner or one of its workers may do this.
        NotOwnerOrWorker,
        /// The request is assigned to another worker of the model.
        NotAssignedWorker,
        /// The model has no worker to assign the request to.
        NoWorkers,
        /// The same account appears twice in the worker list.
        DuplicateWorker,
        /// K must be at least 1 and at most the global bound.
        InvalidQueryLimit,
        /// The epoch lifetime must be at least 1 block and at most the global bound.
        InvalidEpochLifetime,
        /// The idle timeout must be at least 1 block.
        InvalidIdleTimeout,
        /// ε per query must be positive and at most the global bound.
        InvalidEpsilon,
        /// The account budget must cover at least one query and be at most the global bound.
        InvalidBudget,
        /// δ = 10^-k needs 1 ≤ k ≤ 30.
        InvalidDelta,
        /// The global bounds must all be positive.
        InvalidBounds,
        /// The lineage budget must cover at least one query and be at most the global bound.
        InvalidLineageBudget,
        /// No lineage has this id.
        LineageNotFound,
        /// A model may only join a lineage of its own owner.
        NotLineageOwner,
        /// Every model on a lineage must use the lineage's accounting mode.
        AccountingMismatch,
        /// A new model has no lineage to continue: open one or join one.
        NoLineageToContinue,
        /// The model is retired.
        ModelRetired,
        /// The epoch's query limit K is reached: wait for a reset or retrain.
        ModelExhausted,
        /// The epoch's lifetime T has passed: wait for a reset or retrain.
        EpochLifetimeExpired,
        /// The model was idle longer than its idle timeout: wait for a reset or retrain.
        IdleTimeoutExpired,
        /// `expire_model` was called but no time limit has passed.
        ModelNotExpired,
        /// A worker may reset or retrain only an exhausted or expired model.
        ResetNotAllowed,
        /// A worker may reset or retrain only once every worker of the model attested that it
        /// shredded the ending epoch's client data ([`Pallet::attest_erasure`]).
        ErasureNotAttested,
        /// The erasure attestation names another epoch than the model's current one.
        WrongEpoch,
        /// This worker already attested the epoch's erasure (an attestation is never replaced).
        ErasureAlreadyAttested,
        /// A worker may retrain only with the owner's authorisation for exactly these
        /// commitments and lineage choice.
        RetrainNotAuthorised,
        /// The model has no retrain authorisation to revoke.
        NoRetrainAuthorisation,
        /// Retraining needs a new weights commitment (and, for a new lineage, a new dataset
        /// commitment).
        CommitmentUnchanged,
        /// This request would exceed the account's privacy budget on the model.
        BudgetExhausted,
        /// This request would exceed the lineage's budget: all accounts together have spent
        /// what these training rows allow.
        LineageBudgetExhausted,
        /// A private-model mode needs a training ε above 0 (at least one micro-ρ in zCDP mode)
        /// and within the lineage bound, and answer limits of at least 1 per account, with the
        /// generation's limit at least the account's.
        InvalidPrivacyMode,
        /// The account has had all the answers one account may get from these weights.
        AccountAnswerLimitReached,
        /// All accounts together have had all the answers these weights may give.
        GenerationAnswerLimitReached,
        /// The requester cannot pay (hold) the per-query fee.
        CannotPayFee,
        /// The caller cannot pay (hold) the storage deposit.
        CannotPayDeposit,
        /// Paying the held fee to the owner failed.
        FeeTransferFailed,
        /// No request has this id (or it was pruned).
        RequestNotFound,
        /// The request was already completed, rejected or timed out.
        RequestNotPending,
        /// The request belongs to an earlier epoch; it can only be rejected.
        StaleEpoch,
        /// Too many requests already time out at the same block; retry in the next block.
        TooManyRequestsInBlock,
        /// The caller has no evaluation-key record for this model.
        EvalKeyNotFound,
        /// The caller has no usage record for this model.
        UsageNotFound,
        /// The usage record still backs the account's budget on the model's lineage (or a
        /// request is pending): it cannot be cleared.
        UsageInUse,
        /// A counter or identifier would overflow.
        Overflow,
        /// The aggregator must be independent of the provider: neither the model's owner nor
        /// one of its workers (and no worker may be the aggregator).
        AggregatorNotIndependent,
        /// The model has no aggregator: there is nobody to seal records to or to remove.
        NoAggregator,
        /// The account has published no sealing key (a model's aggregator must, before clinics
        /// can seal records to it).
        NoSealingKey,
        /// A sealing key must be a valid X25519 public key: not all zeros.
        InvalidSealingKey,
        /// Only the model's current aggregator may do this.
        NotAggregator,
        /// The model's owner and workers may not contribute records to it.
        ContributorNotIndependent,
        /// A contribution holds at least 1 and at most `MaxContributionRows` records; a
        /// release at least k and at most the records of its contributions.
        InvalidRowCount,
        /// No contribution has this id.
        ContributionNotFound,
        /// Only the clinic that contributed the records may withdraw them.
        NotContributor,
        /// The contribution is part of a published release: it stays on record.
        ContributionReleased,
        /// A release must aggregate at least one contribution.
        NoContributions,
        /// The same contribution appears twice in a release.
        DuplicateContribution,
        /// The contribution is for another model or was sealed to another aggregator.
        ContributionNotUsable,
        /// k must be at least `MinAnonymityK`, and l between 1 and k.
        InvalidAnonymity,
        /// A release names at least one quasi-identifier; names are non-empty and distinct.
        InvalidQuasiIdentifiers,
        /// This model already has a release with this commitment.
        ReleaseExists,
        /// The model has an aggregator: it retrains only on a published release of its own,
        /// and the dataset commitment is not one.
        DatasetNotReleased,
        /// The release already trained a generation of the model.
        ReleaseAlreadyUsed,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            let due = RequestDeadlines::<T>::take(now);
            let timed = due.len() as u32;
            for id in due.iter() {
                Self::time_out(*id);
            }
            // Every request due now is finished (answered, refused or just timed out): it
            // leaves storage after the retention window.
            if !due.is_empty() {
                let at = now.saturating_add(T::RequestRetention::get());
                PruneQueue::<T>::mutate(at, |queue| {
                    for id in due {
                        // Only a retention change by runtime upgrade can make two blocks share
                        // a slot; what does not fit then stays stored (no loss of state).
                        if queue.try_push(id).is_err() {
                            break;
                        }
                    }
                });
            }
            let old = PruneQueue::<T>::take(now);
            let pruned = old.len() as u32;
            for id in old {
                Self::prune(id);
            }
            T::WeightInfo::on_initialize(timed, pruned)
        }

        fn integrity_test() {
            assert!(T::MaxWorkers::get() > 0, "MaxWorkers must be positive");
            let k = T::MinAnonymityK::get();
            assert!(k >= 2, "MinAnonymityK must be at least 2");
            assert!(
                T::MaxContributionRows::get() >= k,
                "MaxContributionRows below MinAnonymityK: no release could be published"
            );
            assert!(
                T::MaxQuasiIdentifiers::get() > 0 && T::MaxQiNameLen::get() > 0,
                "a release must be able to name a quasi-identifier"
            );
            assert!(
                T::MaxContributionsPerRelease::get() > 0,
                "MaxContributionsPerRelease must be positive"
            );
            let max = T::MaxRequestsPerBlock::get();
            assert!(max > 0, "MaxRequestsPerBlock must be positive");
            assert!(
                !T::RequestRetention::get().is_zero(),
                "RequestRetention must be positive"
            );
            let b = <DefaultBounds<T> as Get<BoundsOf<T>>>::get();
            // The largest allowed ε must square without overflow in the zCDP arithmetic.
            assert!(privacy::rho_per_query(b.max_epsilon_per_query).is_some());
            assert!(privacy::rho_budget(b.max_account_budget, MAX_DELTA_EXPONENT).is_some());
            assert!(privacy::rho_budget(b.max_lineage_budget, MAX_DELTA_EXPONENT).is_some());
            assert!(
                Pallet::<T>::check_bounds(&b).is_ok(),
                "default bounds are invalid"
            );
            // The busiest on_initialize (every slot timing out and every slot pruned) must fit
            // beside a block full of normal transactions: it is mandatory and runs first.
            let busiest = T::WeightInfo::on_initialize(max, max);
            let weights = <T as frame_system::Config>::BlockWeights::get();
            let normal = weights
                .get(frame_support::dispatch::DispatchClass::Normal)
                .max_total
                .unwrap_or(weights.max_block);
            let room = weights.max_block.saturating_sub(normal);
            assert!(
                busiest.ref_time() <= room.ref_time(),
                "on_initialize at MaxRequestsPerBlock ({busiest:?}) does not fit beside the \
                 normal class ({normal:?}) in a block ({:?})",
                weights.max_block
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(now: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state(now)
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Register a model owned by the caller, with its workers, salted commitments, policy
        /// and lineage: `New` opens a lineage for these rows with its own total budget, `Join`
        /// spends an existing lineage of the caller's (the rows are already covered by it).
        /// Holds the model deposit (and the lineage deposit for `New`). Epoch 0 starts now.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register_model(workers.len() as u32))]
        pub fn register_model(
            origin: OriginFor<T>,
            workers: BoundedVec<T::AccountId, T::MaxWorkers>,
            weights_commitment: H256,
            dataset_commitment: H256,
            policy: PolicyOf<T>,
            lineage: LineageChoice,
            privacy: PrivacyMode,
        ) -> DispatchResult {
            let owner = ensure_signed(origin)?;
            Self::do_register(
                owner,
                workers,
                weights_commitment,
                dataset_commitment,
                policy,
                lineage,
                privacy,
                true,
            )?;
            Ok(())
        }

        /// Change a model's policy (owner). Pure tightenings (lower K, T or idle timeout, lower
        /// fee, everything else equal) apply at once; loosenings wait for the next epoch; a
        /// lower account budget or a new accounting mode waits for a retrain onto another
        /// lineage.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::update_policy())]
        pub fn update_policy(
            origin: OriginFor<T>,
            model_id: ModelId,
            policy: PolicyOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            ensure!(model.owner == who, Error::<T>::NotOwner);
            ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
            Self::derive_costs(&policy)?;
            let applies = Self::classify_update(&model.policy, &policy);
            if applies == PolicyApplication::Now {
                model.policy = policy.clone();
                model.next_policy = None;
                if model.state == ModelState::Active
                    && model.queries >= policy.max_queries_per_epoch
                {
                    model.state = ModelState::Exhausted;
                    Self::deposit_event(Event::QueryLimitReached {
                        model_id,
                        epoch: model.epoch,
                        queries: model.queries,
                    });
                }
            } else {
                model.next_policy = Some((policy.clone(), applies));
            }
            Models::<T>::insert(model_id, model);
            Self::deposit_event(Event::PolicyUpdated {
                model_id,
                policy,
                applies,
            });
            Ok(())
        }

        /// Replace the model's workers (owner). Requests already assigned to a removed worker
        /// can no longer be answered; they time out and are refunded. The model's aggregator
        /// cannot be one of them.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::set_workers(workers.len() as u32))]
        pub fn set_workers(
            origin: OriginFor<T>,
            model_id: ModelId,
            workers: BoundedVec<T::AccountId, T::MaxWorkers>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::ensure_unique(&workers)?;
            Models::<T>::try_mutate(model_id, |m| -> DispatchResult {
                let model = m.as_mut().ok_or(Error::<T>::ModelNotFound)?;
                ensure!(model.owner == who, Error::<T>::NotOwner);
                ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
                // A worker serves the provider: it must never hold the records' key.
                if let Some(aggregator) = Aggregators::<T>::get(model_id) {
                    ensure!(
                        !workers.contains(&aggregator),
                        Error::<T>::AggregatorNotIndependent
                    );
                }
                model.workers = workers.clone();
                Ok(())
            })?;
            Self::deposit_event(Event::WorkersSet {
                model_id,
                workers: workers.into_inner(),
            });
            Ok(())
        }

        /// Retire a model for good (owner). Pending requests may still be answered.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::retire_model())]
        pub fn retire_model(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Models::<T>::try_mutate(model_id, |m| -> DispatchResult {
                let model = m.as_mut().ok_or(Error::<T>::ModelNotFound)?;
                ensure!(model.owner == who, Error::<T>::NotOwner);
                ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
                model.state = ModelState::Retired;
                Ok(())
            })?;
            RetrainAuthorisations::<T>::remove(model_id);
            Self::deposit_event(Event::ModelRetired { model_id });
            Ok(())
        }

        /// Record the commitment (BLAKE2-256) of the evaluation key the caller uploaded to the
        /// model's workers. Replaces an earlier registration; the first one holds the
        /// evaluation-key deposit.
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::register_eval_key())]
        pub fn register_eval_key(
            origin: OriginFor<T>,
            model_id: ModelId,
            commitment: H256,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
            let registered_at = frame_system::Pallet::<T>::block_number();
            let deposit = match EvalKeys::<T>::get(&who, model_id) {
                Some(old) => old.deposit,
                None => {
                    Self::hold_deposit(&who, HoldReason::EvalKeyDeposit, T::EvalKeyDeposit::get())?
                }
            };
            EvalKeys::<T>::insert(
                &who,
                model_id,
                EvalKeyInfo {
                    commitment,
                    registered_at,
                    deposit,
                },
            );
            Self::deposit_event(Event::EvalKeyRegistered {
                who,
                model_id,
                commitment,
            });
            Ok(())
        }

        /// Ask for an inference on the encrypted input whose BLAKE2-256 is `input_commitment`.
        ///
        /// Checks the model is usable (not retired, N < K, within its lifetime and idle
        /// timeout) and that both the caller's budget on the model and the lineage's budget
        /// cover the query; holds the fee (and, on the caller's first request, the usage
        /// deposit); increments n_i and N; spends the privacy cost from both budgets; assigns
        /// the request to one worker. Locks the model when N reaches K.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::request_inference())]
        pub fn request_inference(
            origin: OriginFor<T>,
            model_id: ModelId,
            input_commitment: H256,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_request(who, model_id, input_commitment)
        }

        /// Deliver the encrypted result of a pending request of the current epoch (its
        /// assigned worker only). Pays the held fee to the owner. From here on the charge is
        /// final: neither a rejection nor the timeout can refund the request.
        #[pallet::call_index(6)]
        #[pallet::weight(T::WeightInfo::submit_result())]
        pub fn submit_result(
            origin: OriginFor<T>,
            request_id: RequestId,
            output_commitment: H256,
        ) -> DispatchResult {
            let worker = ensure_signed(origin)?;
            let mut request = Requests::<T>::get(request_id).ok_or(Error::<T>::RequestNotFound)?;
            ensure!(
                request.status == RequestStatus::Pending,
                Error::<T>::RequestNotPending
            );
            let mut model = Models::<T>::get(request.model_id).ok_or(Error::<T>::ModelNotFound)?;
            Self::ensure_assigned(&model, &request, &worker)?;
            ensure!(request.epoch == model.epoch, Error::<T>::StaleEpoch);

            if !request.fee.is_zero() {
                T::Currency::transfer_on_hold(
                    &HoldReason::InferenceFee.into(),
                    &request.requester,
                    &model.owner,
                    request.fee,
                    Precision::Exact,
                    Restriction::Free,
                    Fortitude::Polite,
                )
                .map_err(|_| Error::<T>::FeeTransferFailed)?;
            }
            request.status = RequestStatus::Completed { output_commitment };
            model.pending = model.pending.saturating_sub(1);
            let event = Event::ResultSubmitted {
                request_id,
                model_id: request.model_id,
                epoch: request.epoch,
                worker,
                requester: request.requester.clone(),
                output_commitment,
            };
            Models::<T>::insert(request.model_id, model);
            Requests::<T>::insert(request_id, request);
            Self::deposit_event(event);
            Ok(())
        }

        /// Refuse a pending request, of any epoch (its assigned worker only). Refunds the
        /// requester's fee, its privacy charge (account and lineage) and, if the epoch is still
        /// current, the counters n_i and N. A worker refuses only requests it did not answer.
        #[pallet::call_index(7)]
        #[pallet::weight(T::WeightInfo::reject_request())]
        pub fn reject_request(
            origin: OriginFor<T>,
            request_id: RequestId,
            reason: RejectReason,
        ) -> DispatchResult {
            let worker = ensure_signed(origin)?;
            let mut request = Requests::<T>::get(request_id).ok_or(Error::<T>::RequestNotFound)?;
            ensure!(
                request.status == RequestStatus::Pending,
                Error::<T>::RequestNotPending
            );
            let model = Models::<T>::get(request.model_id).ok_or(Error::<T>::ModelNotFound)?;
            Self::ensure_assigned(&model, &request, &worker)?;
            Self::refund(&request, model)?;
            request.status = RequestStatus::Rejected { reason };
            let (model_id, requester) = (request.model_id, request.requester.clone());
            Requests::<T>::insert(request_id, request);
            Self::deposit_event(Event::RequestRejected {
                request_id,
                model_id,
                worker,
                requester,
                reason,
            });
            Ok(())
        }

        /// Start a new epoch with the same weights (worker or owner): N and every n_i restart;
        /// account and lineage budgets are kept (same rows). A worker may do this only once
        /// the model is exhausted or expired and every worker attested the epoch's erasure
        /// ([`Pallet::attest_erasure`]); the owner at any time.
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::reset_model())]
        pub fn reset_model(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            Self::ensure_may_restart(model_id, &model, &who)?;
            let previous_epoch = model.epoch;
            let policy_changed = Self::start_epoch(&mut model, false)?;
            let epoch = model.epoch;
            Models::<T>::insert(model_id, model);
            Self::deposit_event(Event::ModelReset {
                model_id,
                previous_epoch,
                epoch,
                by: who,
                policy_changed,
            });
            Ok(())
        }

        /// Start a new epoch with retrained weights. `lineage` says which rows they were
        /// trained on: `Continue` (the same or overlapping rows: budgets carry on), `Join` or
        /// `New` (other rows: the model spends another lineage from now on). The owner may
        /// retrain at any time; a worker only an exhausted or expired model whose erasure every
        /// worker attested, and only with the owner's [`RetrainAuthorisation`] for exactly these
        /// arguments, which it consumes.
        /// A model with an aggregator retrains only onto an unused release of its own
        /// (`dataset_commitment` is the release's commitment), which the retrain marks used.
        #[pallet::call_index(9)]
        #[pallet::weight(T::WeightInfo::retrain_model())]
        pub fn retrain_model(
            origin: OriginFor<T>,
            model_id: ModelId,
            weights_commitment: H256,
            dataset_commitment: H256,
            lineage: LineageChoice,
            privacy: PrivacyMode,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_retrain(
                who,
                model_id,
                RetrainAuthorisation {
                    weights_commitment,
                    dataset_commitment,
                    lineage,
                    privacy,
                },
            )
        }

        /// Set the chain-wide bounds on policies and the request timeout (`Root`). Existing
        /// policies and lineages are not re-checked; policies meet the new bounds at their
        /// next update.
        #[pallet::call_index(10)]
        #[pallet::weight(T::WeightInfo::set_bounds())]
        pub fn set_bounds(origin: OriginFor<T>, bounds: BoundsOf<T>) -> DispatchResult {
            ensure_root(origin)?;
            Self::check_bounds(&bounds)?;
            Bounds::<T>::put(&bounds);
            Self::deposit_event(Event::BoundsUpdated { bounds });
            Ok(())
        }

        /// Record that a model's epoch expired by time (anyone). Lets watchers react to an
        /// expiry that no request has revealed yet.
        #[pallet::call_index(11)]
        #[pallet::weight(T::WeightInfo::expire_model())]
        pub fn expire_model(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            ensure_signed(origin)?;
            let now = frame_system::Pallet::<T>::block_number();
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            ensure!(
                model.state == ModelState::Active,
                Error::<T>::ModelNotExpired
            );
            let reason = match Self::effective_state(&model, now) {
                (ModelState::Expired, Some(reason)) => reason,
                _ => return Err(Error::<T>::ModelNotExpired.into()),
            };
            model.state = ModelState::Expired;
            let epoch = model.epoch;
            Models::<T>::insert(model_id, model);
            Self::deposit_event(Event::ModelExpired {
                model_id,
                epoch,
                reason,
            });
            Ok(())
        }

        /// Authorise the model's workers to retrain it with exactly these commitments and
        /// lineage choice (owner). Checked now and again when used (including the release
        /// rule of a model with an aggregator); replaces an earlier one.
        #[pallet::call_index(12)]
        #[pallet::weight(T::WeightInfo::authorise_retrain())]
        pub fn authorise_retrain(
            origin: OriginFor<T>,
            model_id: ModelId,
            authorisation: RetrainAuthorisation,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            ensure!(model.owner == who, Error::<T>::NotOwner);
            ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
            Self::check_retrain(model_id, &model, &authorisation)?;
            RetrainAuthorisations::<T>::insert(model_id, &authorisation);
            Self::deposit_event(Event::RetrainAuthorised {
                model_id,
                authorisation,
            });
            Ok(())
        }

        /// Withdraw the model's retrain authorisation (owner).
        #[pallet::call_index(13)]
        #[pallet::weight(T::WeightInfo::revoke_retrain())]
        pub fn revoke_retrain(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            ensure!(model.owner == who, Error::<T>::NotOwner);
            RetrainAuthorisations::<T>::take(model_id).ok_or(Error::<T>::NoRetrainAuthorisation)?;
            Self::deposit_event(Event::RetrainRevoked { model_id });
            Ok(())
        }

        /// Remove the caller's evaluation-key record for a model and return its deposit.
        /// Later requests carry no evaluation-key commitment.
        #[pallet::call_index(14)]
        #[pallet::weight(T::WeightInfo::remove_eval_key())]
        pub fn remove_eval_key(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let info = EvalKeys::<T>::take(&who, model_id).ok_or(Error::<T>::EvalKeyNotFound)?;
            Self::release_deposit(&who, HoldReason::EvalKeyDeposit, info.deposit);
            Self::deposit_event(Event::EvalKeyRemoved { who, model_id });
            Ok(())
        }

        /// Remove the caller's usage record of a model and return its deposit, once it no
        /// longer backs a budget: the model moved to another lineage, or it is retired with no
        /// request pending.
        #[pallet::call_index(15)]
        #[pallet::weight(T::WeightInfo::clear_usage())]
        pub fn clear_usage(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let usage = Usage::<T>::get(model_id, &who).ok_or(Error::<T>::UsageNotFound)?;
            let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            let stale = usage.lineage != model.lineage
                || (model.state == ModelState::Retired && model.pending == 0);
            ensure!(stale, Error::<T>::UsageInUse);
            Usage::<T>::remove(model_id, &who);
            Self::release_deposit(&who, HoldReason::UsageDeposit, usage.deposit);
            Self::deposit_event(Event::UsageCleared { who, model_id });
            Ok(())
        }

        /// Set (`Some`) or remove (`None`) the model's independent aggregator (owner). Clinics
        /// seal their records to it off-chain and it alone publishes the model's dataset
        /// releases; while one is set, the model retrains only on such a release, once each, so
        /// the provider never trains on raw records. It may be neither the owner nor one of
        /// the model's workers (the chain checks accounts, not who stands behind them).
        /// Removing it lets the owner retrain on its own data again; the event makes every
        /// change public. Contributions sealed to an earlier aggregator can no longer be
        /// released (only the current aggregator publishes, and only what was sealed to it):
        /// their clinics withdraw them.
        #[pallet::call_index(16)]
        #[pallet::weight(T::WeightInfo::set_aggregator())]
        pub fn set_aggregator(
            origin: OriginFor<T>,
            model_id: ModelId,
            aggregator: Option<T::AccountId>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_set_aggregator(who, model_id, aggregator)
        }

        /// Record a batch of `rows` patient records for the model's next generation, sealed
        /// off-chain to the model's current aggregator, by its salted `commitment`. Any account
        /// but the model's owner and workers (a clinic); the model must have an aggregator and
        /// not be retired. Holds the contribution deposit, returned by `withdraw_contribution`
        /// until the records are released.
        #[pallet::call_index(17)]
        #[pallet::weight(T::WeightInfo::contribute_data())]
        pub fn contribute_data(
            origin: OriginFor<T>,
            model_id: ModelId,
            commitment: H256,
            rows: u32,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_contribute(who, model_id, commitment, rows)
        }

        /// Withdraw one of the caller's contributions not yet part of a release, and get its
        /// deposit back. Released contributions stay on record for good.
        #[pallet::call_index(18)]
        #[pallet::weight(T::WeightInfo::withdraw_contribution())]
        pub fn withdraw_contribution(
            origin: OriginFor<T>,
            contribution_id: ContributionId,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_withdraw(who, contribution_id)
        }

        /// Publish a k-anonymous, l-diverse release of `contributions` (the model's current
        /// aggregator only): the salted `commitment` of the release file, k ≥
        /// `MinAnonymityK`, 1 ≤ l ≤ k, the generalised quasi-identifier columns (non-empty,
        /// distinct names) and its `rows` (k ≤ rows ≤ the contributions' rows; suppression may
        /// drop some). Every contribution must be distinct, for this model, sealed to the
        /// caller and unreleased. Holds the release deposit; the release and its
        /// contributions are kept forever. The model's owner may then retrain on it, once.
        #[pallet::call_index(19)]
        #[pallet::weight(T::WeightInfo::publish_dataset(
            contributions.len() as u32,
            quasi_identifiers.len() as u32,
        ))]
        // The release's fields: a struct would only rename them.
        #[allow(clippy::too_many_arguments)]
        pub fn publish_dataset(
            origin: OriginFor<T>,
            model_id: ModelId,
            commitment: H256,
            k: u32,
            l: u32,
            quasi_identifiers: BoundedVec<BoundedVec<u8, T::MaxQiNameLen>, T::MaxQuasiIdentifiers>,
            rows: u32,
            contributions: BoundedVec<ContributionId, T::MaxContributionsPerRelease>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_publish(
                who,
                model_id,
                commitment,
                k,
                l,
                quasi_identifiers,
                rows,
                contributions,
            )
        }

        /// Publish (`Some`) or remove (`None`) the caller's X25519 sealing key, the key clinics
        /// seal records to when the caller is a model's aggregator. Publishing holds the
        /// sealing-key deposit once; replacing keeps it; removing returns it. Records sealed
        /// to a replaced key can only be opened with the old secret: the contribution names the
        /// key it was sealed to.
        #[pallet::call_index(20)]
        #[pallet::weight(T::WeightInfo::set_sealing_key())]
        pub fn set_sealing_key(origin: OriginFor<T>, key: Option<[u8; 32]>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_set_sealing_key(who, key)
        }

        /// Attest that the calling worker shredded its part of the model's current epoch's
        /// client data (a worker of the model, once the epoch is exhausted or expired, once per
        /// worker and epoch): its store key for the epoch is destroyed and its objects
        /// deleted, so even a storage host that kept copies holds ciphertext nobody can open.
        /// `final_root` is that store's last Merkle root (`None` if it never stored anything)
        /// and `accesses` its access count. A worker may reset or retrain only once every
        /// worker of the model attested the epoch.
        #[pallet::call_index(21)]
        #[pallet::weight(T::WeightInfo::attest_erasure())]
        pub fn attest_erasure(
            origin: OriginFor<T>,
            model_id: ModelId,
            epoch: EpochIndex,
            final_root: Option<H256>,
            accesses: u64,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_attest_erasure(who, model_id, epoch, final_root, accesses)
        }
    }
}
