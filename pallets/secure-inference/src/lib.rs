//! # Secure-inference pallet
//!
//! The policy ledger of smidl: privacy-preserving ML inference where clients send encrypted
//! feature vectors to an off-chain worker that evaluates a model homomorphically. The chain
//! never sees data or weights; it records who may use which model, how often, for how long and
//! at what privacy cost, plus commitments (BLAKE2-256 hashes) that let anyone audit integrity.
//!
//! ## Concepts
//! - **Model**: registered by an owner with a weights commitment, a dataset commitment, a set
//!   of authorised worker accounts and a [`Policy`].
//! - **Epoch**: a model's usage window. Per epoch the pallet counts every account's requests
//!   n_i and their sum N. The model locks ([`ModelState::Exhausted`]) when N reaches K
//!   (`max_queries_per_epoch`) and expires when the epoch lifetime T or the idle timeout
//!   passes. A worker (after deleting the epoch's client data off-chain) or the owner then
//!   calls [`Pallet::reset_model`] (same weights, new epoch) or [`Pallet::retrain_model`] (new
//!   weights and dataset: privacy budgets restart).
//! - **Privacy budget**: every request spends the model's per-query ε from the account's
//!   budget, composed linearly in pure-ε mode or as zCDP (ρ = ε²/2 per query). Amounts are
//!   fixed-point integers (see [`privacy`]); every rounding goes against the spender.
//! - **Request**: created by [`Pallet::request_inference`] with the commitment of the encrypted
//!   input; completed by a worker's [`Pallet::submit_result`] with the output commitment, or
//!   rejected ([`Pallet::reject_request`]) or timed out, both of which refund budget, counters
//!   and fee.
//!
//! ## Calls
//! Owner: `register_model`, `update_policy`, `set_workers`, `retire_model`. Clients:
//! `register_eval_key`, `request_inference`. Workers: `submit_result`, `reject_request`.
//! Worker or owner: `reset_model`, `retrain_model`. Anyone: `expire_model` (records a time-based
//! expiry). Root: `set_bounds`.
//!
//! Off-chain workers are driven only by this pallet's events and storage.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

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

/// Balance type of the currency that pays fees.
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
    use crate::privacy::{self, MAX_DELTA_EXPONENT, MIN_DELTA_EXPONENT};
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
    use sp_runtime::traits::{CheckedAdd, Saturating, Zero};

    /// The in-code storage version.
    const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    /// Configuration of the pallet.
    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// Currency in which per-query fees are held and paid.
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
        /// does to time requests out, and hence the requests accepted per block.
        #[pallet::constant]
        type MaxRequestsPerBlock: Get<u32>;

        /// Weights of this pallet's calls.
        type WeightInfo: WeightInfo;
    }

    /// Why the pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A per-query fee escrowed until the result is delivered (or refunded).
        InferenceFee,
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
            request_timeout: 100u32.into(),
        }
    }

    /// Chain-wide bounds on model policies and the request timeout, set by `Root`.
    #[pallet::storage]
    pub type Bounds<T: Config> = StorageValue<_, BoundsOf<T>, ValueQuery, DefaultBounds<T>>;

    /// Identifier the next registered model receives.
    #[pallet::storage]
    pub type NextModelId<T: Config> = StorageValue<_, ModelId, ValueQuery>;

    /// Registered models: owner, workers, commitments, policy and the current epoch's counters
    /// (N, epoch number and start, last use, state).
    #[pallet::storage]
    pub type Models<T: Config> =
        StorageMap<_, Blake2_128Concat, ModelId, ModelInfo<T>, OptionQuery>;

    /// Per model and account: n_i for the epoch it names and the privacy loss spent against the
    /// dataset generation it names (both read as zero once the model moved on).
    #[pallet::storage]
    pub type Usage<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        ModelId,
        Blake2_128Concat,
        T::AccountId,
        AccountUsage<BlockNumberFor<T>>,
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
        EvalKeyInfo<BlockNumberFor<T>>,
        OptionQuery,
    >;

    /// Identifier the next inference request receives.
    #[pallet::storage]
    pub type NextRequestId<T: Config> = StorageValue<_, RequestId, ValueQuery>;

    /// Inference requests with their input/output commitments and status.
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

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Chain-wide bounds; `None` keeps the defaults.
        pub bounds: Option<GlobalBounds<u32>>,
        /// Models registered at genesis.
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
                )
                .expect("genesis model is invalid");
            }
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A model was registered; its first epoch (0) starts now.
        ModelRegistered {
            model_id: ModelId,
            owner: T::AccountId,
            weights_commitment: H256,
            dataset_commitment: H256,
            policy: PolicyOf<T>,
        },
        /// The owner changed the policy; `applies` says when it takes effect.
        PolicyUpdated {
            model_id: ModelId,
            policy: PolicyOf<T>,
            applies: PolicyApplication,
        },
        /// The owner replaced the set of authorised workers.
        WorkersSet {
            model_id: ModelId,
            workers: Vec<T::AccountId>,
        },
        /// The owner retired the model: no new requests, ever.
        ModelRetired { model_id: ModelId },
        /// An account registered the commitment of its evaluation key for a model.
        EvalKeyRegistered {
            who: T::AccountId,
            model_id: ModelId,
            commitment: H256,
        },
        /// A request was accepted: the worker must fetch the ciphertext hashing to
        /// `input_commitment` and answer before `deadline`.
        InferenceRequested {
            request_id: RequestId,
            model_id: ModelId,
            epoch: EpochIndex,
            requester: T::AccountId,
            input_commitment: H256,
            eval_key_commitment: Option<H256>,
            /// n_i after this request.
            account_queries: u32,
            /// N after this request.
            epoch_queries: u32,
            /// Privacy charged, in the model's accounting unit.
            privacy_charged: PrivacyUnits,
            /// The account's total spent against the current generation after this request.
            privacy_spent: PrivacyUnits,
            fee: BalanceOf<T>,
            deadline: BlockNumberFor<T>,
        },
        /// N reached K: the model is locked until a reset or retrain.
        QueryLimitReached {
            model_id: ModelId,
            epoch: EpochIndex,
            queries: u32,
        },
        /// A worker delivered the encrypted result of a request.
        ResultSubmitted {
            request_id: RequestId,
            model_id: ModelId,
            epoch: EpochIndex,
            worker: T::AccountId,
            requester: T::AccountId,
            output_commitment: H256,
        },
        /// A worker refused a request; budget, counters and fee were refunded.
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
        /// A new epoch started with the same weights; per-account counters restart, budgets
        /// are kept.
        ModelReset {
            model_id: ModelId,
            previous_epoch: EpochIndex,
            epoch: EpochIndex,
            by: T::AccountId,
            policy_changed: bool,
        },
        /// A new epoch started with new weights and a new dataset generation; budgets restart.
        ModelRetrained {
            model_id: ModelId,
            previous_epoch: EpochIndex,
            epoch: EpochIndex,
            generation: u32,
            weights_commitment: H256,
            dataset_commitment: H256,
            by: T::AccountId,
            policy_changed: bool,
        },
        /// `Root` changed the chain-wide bounds.
        BoundsUpdated { bounds: BoundsOf<T> },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No model has this id.
        ModelNotFound,
        /// Only the model's owner may do this.
        NotOwner,
        /// Only an authorised worker of the model may do this.
        NotWorker,
        /// Only the model's owner or one of its workers may do this.
        NotOwnerOrWorker,
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
        /// Retraining needs a new weights commitment and a new dataset commitment.
        CommitmentUnchanged,
        /// This request would exceed the account's privacy budget.
        BudgetExhausted,
        /// The requester cannot pay (hold) the per-query fee.
        CannotPayFee,
        /// Paying the held fee to the owner failed.
        FeeTransferFailed,
        /// No request has this id.
        RequestNotFound,
        /// The request was already completed, rejected or timed out.
        RequestNotPending,
        /// The request belongs to an earlier epoch; it can only be rejected.
        StaleEpoch,
        /// Too many requests already time out at the same block; retry in the next block.
        TooManyRequestsInBlock,
        /// A counter or identifier would overflow.
        Overflow,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            let due = RequestDeadlines::<T>::take(now);
            let n = due.len() as u32;
            for id in due {
                Self::time_out(id);
            }
            T::WeightInfo::on_initialize(n)
        }

        fn integrity_test() {
            assert!(T::MaxWorkers::get() > 0, "MaxWorkers must be positive");
            assert!(
                T::MaxRequestsPerBlock::get() > 0,
                "MaxRequestsPerBlock must be positive"
            );
            let b = <DefaultBounds<T> as Get<BoundsOf<T>>>::get();
            // The largest allowed ε must square without overflow in the zCDP arithmetic.
            assert!(privacy::rho_per_query(b.max_epsilon_per_query).is_some());
            assert!(privacy::rho_budget(b.max_account_budget, MAX_DELTA_EXPONENT).is_some());
            assert!(
                Pallet::<T>::check_bounds(&b).is_ok(),
                "default bounds are invalid"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(now: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state(now)
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Register a model owned by the caller, with its authorised workers, commitments and
        /// policy. Its epoch 0 starts now.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register_model(workers.len() as u32))]
        pub fn register_model(
            origin: OriginFor<T>,
            workers: BoundedVec<T::AccountId, T::MaxWorkers>,
            weights_commitment: H256,
            dataset_commitment: H256,
            policy: PolicyOf<T>,
        ) -> DispatchResult {
            let owner = ensure_signed(origin)?;
            Self::do_register(
                owner,
                workers,
                weights_commitment,
                dataset_commitment,
                policy,
            )?;
            Ok(())
        }

        /// Change a model's policy (owner). Pure tightenings (lower K, T or idle timeout, lower
        /// fee, everything else equal) apply at once; loosenings wait for the next epoch; a
        /// lower budget or a new accounting mode waits for the next retrain.
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

        /// Replace the model's authorised workers (owner).
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
            Self::deposit_event(Event::ModelRetired { model_id });
            Ok(())
        }

        /// Record the commitment (BLAKE2-256) of the evaluation key the caller uploaded to the
        /// model's workers. Replaces an earlier registration.
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
            EvalKeys::<T>::insert(
                &who,
                model_id,
                EvalKeyInfo {
                    commitment,
                    registered_at,
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
        /// timeout) and that the caller's privacy budget covers the query; holds the fee;
        /// increments n_i and N; spends the privacy cost. Locks the model when N reaches K.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::request_inference())]
        pub fn request_inference(
            origin: OriginFor<T>,
            model_id: ModelId,
            input_commitment: H256,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let now = frame_system::Pallet::<T>::block_number();
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            match Self::effective_state(&model, now) {
                (ModelState::Active, _) => {}
                (ModelState::Retired, _) => return Err(Error::<T>::ModelRetired.into()),
                (ModelState::Exhausted, _) => return Err(Error::<T>::ModelExhausted.into()),
                (ModelState::Expired, Some(ExpiryReason::Idle)) => {
                    return Err(Error::<T>::IdleTimeoutExpired.into())
                }
                (ModelState::Expired, _) => return Err(Error::<T>::EpochLifetimeExpired.into()),
            }
            ensure!(
                model.queries < model.policy.max_queries_per_epoch,
                Error::<T>::ModelExhausted
            );

            let mut usage = Self::current_usage(model_id, &model, &who);
            let spent = usage
                .spent
                .checked_add(model.cost_per_query)
                .ok_or(Error::<T>::Overflow)?;
            ensure!(spent <= model.account_budget, Error::<T>::BudgetExhausted);

            let deadline = now
                .checked_add(&Bounds::<T>::get().request_timeout)
                .ok_or(Error::<T>::Overflow)?;
            let request_id = NextRequestId::<T>::get();
            let next_request_id = request_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
            RequestDeadlines::<T>::try_mutate(deadline, |ids| ids.try_push(request_id))
                .map_err(|_| Error::<T>::TooManyRequestsInBlock)?;

            let fee = model.policy.fee_per_query;
            if !fee.is_zero() {
                T::Currency::hold(&HoldReason::InferenceFee.into(), &who, fee)
                    .map_err(|_| Error::<T>::CannotPayFee)?;
            }

            usage.queries = usage.queries.checked_add(1).ok_or(Error::<T>::Overflow)?;
            usage.spent = spent;
            usage.last_request = now;
            model.queries = model.queries.checked_add(1).ok_or(Error::<T>::Overflow)?;
            model.pending = model.pending.checked_add(1).ok_or(Error::<T>::Overflow)?;
            model.last_used = now;
            let exhausted = model.queries >= model.policy.max_queries_per_epoch;
            if exhausted {
                model.state = ModelState::Exhausted;
            }

            let eval_key_commitment = EvalKeys::<T>::get(&who, model_id).map(|k| k.commitment);
            Requests::<T>::insert(
                request_id,
                InferenceRequest {
                    model_id,
                    epoch: model.epoch,
                    generation: model.generation,
                    requester: who.clone(),
                    input_commitment,
                    eval_key_commitment,
                    submitted_at: now,
                    deadline,
                    privacy_charged: model.cost_per_query,
                    fee,
                    status: RequestStatus::Pending,
                },
            );
            NextRequestId::<T>::put(next_request_id);
            Usage::<T>::insert(model_id, &who, &usage);
            let (epoch, queries) = (model.epoch, model.queries);
            let privacy_charged = model.cost_per_query;
            Models::<T>::insert(model_id, model);

            Self::deposit_event(Event::InferenceRequested {
                request_id,
                model_id,
                epoch,
                requester: who,
                input_commitment,
                eval_key_commitment,
                account_queries: usage.queries,
                epoch_queries: queries,
                privacy_charged,
                privacy_spent: usage.spent,
                fee,
                deadline,
            });
            if exhausted {
                Self::deposit_event(Event::QueryLimitReached {
                    model_id,
                    epoch,
                    queries,
                });
            }
            Ok(())
        }

        /// Deliver the encrypted result of a pending request of the current epoch (authorised
        /// worker). Pays the held fee to the owner.
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
            ensure!(model.workers.contains(&worker), Error::<T>::NotWorker);
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

        /// Refuse a pending request (authorised worker), of any epoch. Refunds the requester's
        /// fee, its privacy charge and, if the epoch is still current, the counters n_i and N.
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
            ensure!(model.workers.contains(&worker), Error::<T>::NotWorker);
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

        /// Start a new epoch with the same weights (worker or owner): N and every n_i restart,
        /// privacy budgets are kept (same data). A worker may do this only once the model is
        /// exhausted or expired, after deleting the epoch's client data; the owner at any time.
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::reset_model())]
        pub fn reset_model(origin: OriginFor<T>, model_id: ModelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            Self::ensure_may_restart(&model, &who)?;
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

        /// Start a new epoch with retrained weights on a new dataset generation (worker or
        /// owner, same conditions as `reset_model`). Privacy budgets restart.
        #[pallet::call_index(9)]
        #[pallet::weight(T::WeightInfo::retrain_model())]
        pub fn retrain_model(
            origin: OriginFor<T>,
            model_id: ModelId,
            weights_commitment: H256,
            dataset_commitment: H256,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
            Self::ensure_may_restart(&model, &who)?;
            ensure!(
                weights_commitment != model.weights_commitment
                    && dataset_commitment != model.dataset_commitment,
                Error::<T>::CommitmentUnchanged
            );
            let previous_epoch = model.epoch;
            model.generation = model
                .generation
                .checked_add(1)
                .ok_or(Error::<T>::Overflow)?;
            model.weights_commitment = weights_commitment;
            model.dataset_commitment = dataset_commitment;
            let policy_changed = Self::start_epoch(&mut model, true)?;
            let (epoch, generation) = (model.epoch, model.generation);
            Models::<T>::insert(model_id, model);
            Self::deposit_event(Event::ModelRetrained {
                model_id,
                previous_epoch,
                epoch,
                generation,
                weights_commitment,
                dataset_commitment,
                by: who,
                policy_changed,
            });
            Ok(())
        }

        /// Set the chain-wide bounds on policies and the request timeout (`Root`). Existing
        /// policies are not re-checked; they meet the new bounds at their next update.
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
    }

    impl<T: Config> Pallet<T> {
        /// Register a model (shared by the call and genesis).
        pub(crate) fn do_register(
            owner: T::AccountId,
            workers: BoundedVec<T::AccountId, T::MaxWorkers>,
            weights_commitment: H256,
            dataset_commitment: H256,
            policy: PolicyOf<T>,
        ) -> Result<ModelId, DispatchError> {
            Self::ensure_unique(&workers)?;
            let (cost_per_query, account_budget) = Self::derive_costs(&policy)?;
            let model_id = NextModelId::<T>::get();
            let next = model_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
            let now = frame_system::Pallet::<T>::block_number();
            let model = ModelInfo::<T> {
                owner: owner.clone(),
                workers,
                weights_commitment,
                dataset_commitment,
                generation: 0,
                epoch: 0,
                epoch_start: now,
                last_used: now,
                queries: 0,
                pending: 0,
                state: ModelState::Active,
                policy: policy.clone(),
                next_policy: None,
                cost_per_query,
                account_budget,
            };
            Models::<T>::insert(model_id, model);
            NextModelId::<T>::put(next);
            Self::deposit_event(Event::ModelRegistered {
                model_id,
                owner,
                weights_commitment,
                dataset_commitment,
                policy,
            });
            Ok(model_id)
        }

        fn ensure_unique(workers: &[T::AccountId]) -> DispatchResult {
            for (i, w) in workers.iter().enumerate() {
                ensure!(!workers[..i].contains(w), Error::<T>::DuplicateWorker);
            }
            Ok(())
        }

        /// Validate a policy against the global bounds and derive (cost per query, account
        /// budget) in the accounting unit.
        pub(crate) fn derive_costs(
            policy: &PolicyOf<T>,
        ) -> Result<(PrivacyUnits, PrivacyUnits), DispatchError> {
            let b = Bounds::<T>::get();
            ensure!(
                policy.max_queries_per_epoch >= 1
                    && policy.max_queries_per_epoch <= b.max_queries_per_epoch,
                Error::<T>::InvalidQueryLimit
            );
            ensure!(
                !policy.epoch_lifetime.is_zero() && policy.epoch_lifetime <= b.max_epoch_lifetime,
                Error::<T>::InvalidEpochLifetime
            );
            ensure!(
                !policy.idle_timeout.is_zero(),
                Error::<T>::InvalidIdleTimeout
            );
            ensure!(
                policy.epsilon_per_query > 0 && policy.epsilon_per_query <= b.max_epsilon_per_query,
                Error::<T>::InvalidEpsilon
            );
            ensure!(
                policy.account_epsilon_budget <= b.max_account_budget,
                Error::<T>::InvalidBudget
            );
            Self::costs_of(policy)
        }

        /// (cost per query, account budget) in the policy's accounting unit.
        pub(crate) fn costs_of(
            policy: &PolicyOf<T>,
        ) -> Result<(PrivacyUnits, PrivacyUnits), DispatchError> {
            let (cost, budget) = match policy.accounting {
                Accounting::PureEpsilon => {
                    (policy.epsilon_per_query, policy.account_epsilon_budget)
                }
                Accounting::Zcdp { delta_exponent } => {
                    ensure!(
                        (MIN_DELTA_EXPONENT..=MAX_DELTA_EXPONENT).contains(&delta_exponent),
                        Error::<T>::InvalidDelta
                    );
                    let cost = privacy::rho_per_query(policy.epsilon_per_query)
                        .ok_or(Error::<T>::Overflow)?;
                    let budget = privacy::rho_budget(policy.account_epsilon_budget, delta_exponent)
                        .ok_or(Error::<T>::Overflow)?;
                    (cost, budget)
                }
            };
            // A budget that cannot pay for one query is a mistake, not a policy.
            ensure!(cost > 0 && budget >= cost, Error::<T>::InvalidBudget);
            Ok((cost, budget))
        }

        /// When a policy change may take effect without re-judging anything already done.
        pub(crate) fn classify_update(old: &PolicyOf<T>, new: &PolicyOf<T>) -> PolicyApplication {
            if new.accounting != old.accounting
                || new.account_epsilon_budget < old.account_epsilon_budget
            {
                return PolicyApplication::NextGeneration;
            }
            let tightens = new.max_queries_per_epoch <= old.max_queries_per_epoch
                && new.epoch_lifetime <= old.epoch_lifetime
                && new.idle_timeout <= old.idle_timeout
                && new.fee_per_query <= old.fee_per_query
                && new.epsilon_per_query == old.epsilon_per_query
                && new.account_epsilon_budget == old.account_epsilon_budget;
            if tightens {
                PolicyApplication::Now
            } else {
                PolicyApplication::NextEpoch
            }
        }

        pub(crate) fn check_bounds(b: &BoundsOf<T>) -> DispatchResult {
            ensure!(
                b.max_queries_per_epoch > 0
                    && !b.max_epoch_lifetime.is_zero()
                    && b.max_epsilon_per_query > 0
                    && b.max_account_budget > 0
                    && !b.request_timeout.is_zero()
                    && privacy::rho_per_query(b.max_epsilon_per_query).is_some(),
                Error::<T>::InvalidBounds
            );
            Ok(())
        }

        /// The model's state with its time limits applied at block `now`: an `Active` model
        /// whose lifetime or idle timeout passed reads as `Expired`.
        pub fn effective_state(
            model: &ModelInfo<T>,
            now: BlockNumberFor<T>,
        ) -> (ModelState, Option<ExpiryReason>) {
            if model.state != ModelState::Active {
                return (model.state, None);
            }
            if now
                >= model
                    .epoch_start
                    .saturating_add(model.policy.epoch_lifetime)
            {
                (ModelState::Expired, Some(ExpiryReason::Lifetime))
            } else if now >= model.last_used.saturating_add(model.policy.idle_timeout) {
                (ModelState::Expired, Some(ExpiryReason::Idle))
            } else {
                (ModelState::Active, None)
            }
        }

        /// The account's usage normalised to the model's current epoch and generation.
        fn current_usage(
            model_id: ModelId,
            model: &ModelInfo<T>,
            who: &T::AccountId,
        ) -> AccountUsage<BlockNumberFor<T>> {
            let mut usage = Usage::<T>::get(model_id, who).unwrap_or_default();
            Self::normalise(&mut usage, model);
            usage
        }

        fn normalise(usage: &mut AccountUsage<BlockNumberFor<T>>, model: &ModelInfo<T>) {
            if usage.epoch != model.epoch {
                usage.epoch = model.epoch;
                usage.queries = 0;
            }
            if usage.generation != model.generation {
                usage.generation = model.generation;
                usage.spent = 0;
            }
        }

        fn ensure_may_restart(model: &ModelInfo<T>, who: &T::AccountId) -> DispatchResult {
            let is_owner = &model.owner == who;
            ensure!(
                is_owner || model.workers.contains(who),
                Error::<T>::NotOwnerOrWorker
            );
            ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
            let now = frame_system::Pallet::<T>::block_number();
            let (state, _) = Self::effective_state(model, now);
            ensure!(
                is_owner || matches!(state, ModelState::Exhausted | ModelState::Expired),
                Error::<T>::ResetNotAllowed
            );
            Ok(())
        }

        /// Open the next epoch, applying a waiting policy if allowed. Returns whether the
        /// policy changed.
        fn start_epoch(
            model: &mut ModelInfo<T>,
            new_generation: bool,
        ) -> Result<bool, DispatchError> {
            let now = frame_system::Pallet::<T>::block_number();
            model.epoch = model.epoch.checked_add(1).ok_or(Error::<T>::Overflow)?;
            model.epoch_start = now;
            model.last_used = now;
            model.queries = 0;
            model.state = ModelState::Active;
            let apply = match &model.next_policy {
                Some((_, PolicyApplication::NextGeneration)) => new_generation,
                Some(_) => true,
                None => false,
            };
            if apply {
                if let Some((policy, _)) = model.next_policy.take() {
                    // Validated against the bounds when it was submitted.
                    let (cost, budget) = Self::costs_of(&policy)?;
                    model.policy = policy;
                    model.cost_per_query = cost;
                    model.account_budget = budget;
                }
            }
            Ok(apply)
        }

        /// Return a pending request's fee, privacy charge and (same epoch) counters.
        fn refund(request: &InferenceRequest<T>, mut model: ModelInfo<T>) -> DispatchResult {
            if !request.fee.is_zero() {
                T::Currency::release(
                    &HoldReason::InferenceFee.into(),
                    &request.requester,
                    request.fee,
                    Precision::BestEffort,
                )?;
            }
            let model_id = request.model_id;
            if let Some(mut usage) = Usage::<T>::get(model_id, &request.requester) {
                if request.generation == model.generation && usage.generation == model.generation {
                    usage.spent = usage.spent.saturating_sub(request.privacy_charged);
                }
                if request.epoch == model.epoch && usage.epoch == model.epoch {
                    usage.queries = usage.queries.saturating_sub(1);
                }
                Usage::<T>::insert(model_id, &request.requester, usage);
            }
            if request.epoch == model.epoch {
                model.queries = model.queries.saturating_sub(1);
                // The lock follows the counter: a refunded slot is usable again.
                if model.state == ModelState::Exhausted
                    && model.queries < model.policy.max_queries_per_epoch
                {
                    model.state = ModelState::Active;
                }
            }
            model.pending = model.pending.saturating_sub(1);
            Models::<T>::insert(model_id, model);
            Ok(())
        }

        /// Time out one request if it is still pending (called from `on_initialize`).
        fn time_out(request_id: RequestId) {
            let Some(mut request) = Requests::<T>::get(request_id) else {
                return;
            };
            if request.status != RequestStatus::Pending {
                return;
            }
            let Some(model) = Models::<T>::get(request.model_id) else {
                return;
            };
            if let Err(e) = Self::refund(&request, model) {
                log::error!(target: LOG_TARGET, "refund of timed-out request {request_id} failed: {e:?}");
            }
            request.status = RequestStatus::TimedOut;
            let (model_id, requester) = (request.model_id, request.requester.clone());
            Requests::<T>::insert(request_id, request);
            Self::deposit_event(Event::RequestTimedOut {
                request_id,
                model_id,
                requester,
            });
        }

        /// Status of a model at the current block (runtime API).
        pub fn model_status(model_id: ModelId) -> Option<ModelStatus<BlockNumberFor<T>>> {
            let model = Models::<T>::get(model_id)?;
            let now = frame_system::Pallet::<T>::block_number();
            let (state, expiry) = Self::effective_state(&model, now);
            let one: BlockNumberFor<T> = 1u32.into();
            Some(ModelStatus {
                state,
                expiry,
                epoch: model.epoch,
                generation: model.generation,
                queries: model.queries,
                max_queries: model.policy.max_queries_per_epoch,
                epoch_ends_at: model
                    .epoch_start
                    .saturating_add(model.policy.epoch_lifetime)
                    .saturating_sub(one),
                idle_expires_at: model
                    .last_used
                    .saturating_add(model.policy.idle_timeout)
                    .saturating_sub(one),
                pending: model.pending,
            })
        }

        /// An account's counters and remaining budget for a model (runtime API).
        pub fn account_status(model_id: ModelId, who: &T::AccountId) -> Option<AccountStatus> {
            let model = Models::<T>::get(model_id)?;
            let usage = Self::current_usage(model_id, &model, who);
            let remaining = model.account_budget.saturating_sub(usage.spent);
            let spent_epsilon = match model.policy.accounting {
                Accounting::PureEpsilon => usage.spent,
                Accounting::Zcdp { delta_exponent } => {
                    privacy::epsilon_from_rho(usage.spent, delta_exponent).unwrap_or(u64::MAX)
                }
            };
            Some(AccountStatus {
                queries: usage.queries,
                spent: usage.spent,
                budget: model.account_budget,
                remaining,
                queries_left_by_budget: remaining.checked_div(model.cost_per_query).unwrap_or(0),
                spent_epsilon,
                accounting: model.policy.accounting,
            })
        }

        /// Check the pallet's invariants: N = Σ n_i for the current epoch, spent ≤ budget for
        /// the current generation, states consistent with counters, pending counts consistent
        /// with requests, identifiers below their counters.
        #[cfg(any(feature = "try-runtime", test))]
        pub fn do_try_state(now: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            use alloc::collections::btree_map::BTreeMap;
            let next_model = NextModelId::<T>::get();
            let mut pending: BTreeMap<ModelId, u32> = BTreeMap::new();
            let next_request = NextRequestId::<T>::get();
            for (id, r) in Requests::<T>::iter() {
                ensure!(id < next_request, "request id not below NextRequestId");
                ensure!(r.model_id < next_model, "request of an unknown model");
                if r.status == RequestStatus::Pending {
                    *pending.entry(r.model_id).or_default() += 1;
                    ensure!(r.deadline > now, "pending request past its deadline");
                    ensure!(
                        RequestDeadlines::<T>::get(r.deadline).contains(&id),
                        "pending request missing from the deadline index"
                    );
                }
            }
            for (id, m) in Models::<T>::iter() {
                ensure!(id < next_model, "model id not below NextModelId");
                let mut sum: u32 = 0;
                for (_, u) in Usage::<T>::iter_prefix(id) {
                    if u.epoch == m.epoch {
                        sum = sum.checked_add(u.queries).ok_or("Σ n_i overflows")?;
                    }
                    if u.generation == m.generation {
                        ensure!(u.spent <= m.account_budget, "spent exceeds the budget");
                    }
                }
                ensure!(sum == m.queries, "N differs from Σ n_i");
                ensure!(
                    pending.get(&id).copied().unwrap_or(0) == m.pending,
                    "pending count differs from the pending requests"
                );
                match m.state {
                    ModelState::Active => ensure!(
                        m.queries < m.policy.max_queries_per_epoch,
                        "active model with N ≥ K"
                    ),
                    ModelState::Exhausted => ensure!(
                        m.queries >= m.policy.max_queries_per_epoch,
                        "exhausted model with N < K"
                    ),
                    ModelState::Expired | ModelState::Retired => {}
                }
                ensure!(
                    m.epoch_start <= m.last_used,
                    "last use before the epoch start"
                );
                ensure!(m.last_used <= now, "last use in the future");
                ensure!(
                    m.workers.len() <= T::MaxWorkers::get() as usize,
                    "too many workers"
                );
                let (cost, budget) =
                    Self::costs_of(&m.policy).map_err(|_| "stored policy is invalid")?;
                ensure!(
                    cost == m.cost_per_query && budget == m.account_budget,
                    "derived costs are stale"
                );
            }
            Ok(())
        }
    }
}
