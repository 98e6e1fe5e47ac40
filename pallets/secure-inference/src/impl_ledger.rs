//! The ledger's rules behind the calls: registration, charging and refunding both budgets,
//! assignment, restarts, lineages, deposits, timeouts and pruning.

use crate::pallet::*;
use crate::privacy::{self, MAX_DELTA_EXPONENT, MIN_DELTA_EXPONENT};
use crate::types::*;
use crate::{BalanceOf, BoundsOf, PolicyOf, LOG_TARGET};
use frame_support::{
    ensure,
    pallet_prelude::*,
    traits::{fungible::MutateHold, tokens::Precision},
    BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_core::H256;
use sp_runtime::traits::{CheckedAdd, Saturating, Zero};

impl<T: Config> Pallet<T> {
    /// Register a model (shared by the call and genesis, which takes no deposits).
    // The call's arguments plus the genesis flag: a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_register(
        owner: T::AccountId,
        workers: BoundedVec<T::AccountId, T::MaxWorkers>,
        weights_commitment: H256,
        dataset_commitment: H256,
        policy: PolicyOf<T>,
        lineage: LineageChoice,
        privacy: PrivacyMode,
        deposits: bool,
    ) -> Result<ModelId, DispatchError> {
        Self::ensure_unique(&workers)?;
        let (cost_per_query, account_budget) = Self::derive_costs(&policy)?;
        let training_cost = Self::training_cost_of(&privacy, &policy.accounting)?;
        let model_id = NextModelId::<T>::get();
        let next = model_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
        let lineage_id = Self::place_in_lineage(
            &owner,
            lineage,
            None,
            dataset_commitment,
            &policy.accounting,
            cost_per_query,
            deposits,
        )?;
        Self::charge_training(model_id, lineage_id, training_cost)?;
        if deposits {
            Self::hold_deposit(&owner, HoldReason::ModelDeposit, T::ModelDeposit::get())?;
        }
        let now = frame_system::Pallet::<T>::block_number();
        let model = ModelInfo::<T> {
            owner: owner.clone(),
            workers,
            weights_commitment,
            dataset_commitment,
            lineage: lineage_id,
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
            privacy,
            training_cost,
            answers: 0,
        };
        Models::<T>::insert(model_id, model);
        NextModelId::<T>::put(next);
        Self::deposit_event(Event::ModelRegistered {
            model_id,
            owner,
            weights_commitment,
            dataset_commitment,
            lineage_id,
            policy,
            privacy,
        });
        Ok(model_id)
    }

    /// What training weights in `privacy` mode costs the lineage, in the accounting unit:
    /// nothing for per-query models; ε (pure) or the largest ρ whose (ε, δ) conversion stays
    /// within ε (zCDP; the trainer calibrates its noise to exactly this ρ) for private models.
    pub(crate) fn training_cost_of(
        privacy: &PrivacyMode,
        accounting: &Accounting,
    ) -> Result<PrivacyUnits, DispatchError> {
        let PrivacyMode::PrivateModel {
            training_epsilon,
            answers_per_account,
            answers_per_generation,
        } = *privacy
        else {
            return Ok(0);
        };
        ensure!(
            training_epsilon > 0
                && training_epsilon <= Bounds::<T>::get().max_lineage_budget
                && answers_per_account >= 1
                && answers_per_generation >= answers_per_account,
            Error::<T>::InvalidPrivacyMode
        );
        if let Accounting::Zcdp { delta_exponent } = accounting {
            ensure!(
                (MIN_DELTA_EXPONENT..=MAX_DELTA_EXPONENT).contains(delta_exponent),
                Error::<T>::InvalidDelta
            );
        }
        let cost = Self::training_cost(training_epsilon, accounting).ok_or(Error::<T>::Overflow)?;
        // An ε too small to be a whole micro-ρ would train with infinite noise.
        ensure!(cost > 0, Error::<T>::InvalidPrivacyMode);
        Ok(cost)
    }

    /// A training ε in the accounting unit (no validation; `None` on overflow).
    pub(crate) fn training_cost(
        training_epsilon: PrivacyUnits,
        accounting: &Accounting,
    ) -> Option<PrivacyUnits> {
        match accounting {
            Accounting::PureEpsilon => Some(training_epsilon),
            Accounting::Zcdp { delta_exponent } => {
                privacy::rho_budget(training_epsilon, *delta_exponent)
            }
        }
    }

    /// Charge a private model's training to its lineage, once, when its weights come in.
    fn charge_training(
        model_id: ModelId,
        lineage_id: LineageId,
        cost: PrivacyUnits,
    ) -> DispatchResult {
        if cost == 0 {
            return Ok(());
        }
        let spent = Lineages::<T>::try_mutate(lineage_id, |l| -> Result<_, DispatchError> {
            let l = l.as_mut().ok_or(Error::<T>::LineageNotFound)?;
            let spent = l.spent.checked_add(cost).ok_or(Error::<T>::Overflow)?;
            ensure!(spent <= l.budget, Error::<T>::LineageBudgetExhausted);
            l.spent = spent;
            Ok(spent)
        })?;
        Self::deposit_event(Event::TrainingCharged {
            model_id,
            lineage_id,
            cost,
            lineage_spent: spent,
        });
        Ok(())
    }

    /// Whether the lineage `choice` resolves to can pay `cost` on top of what it has spent.
    fn check_training_fits(
        choice: &LineageChoice,
        current: LineageId,
        accounting: &Accounting,
        cost: PrivacyUnits,
    ) -> DispatchResult {
        let (spent, budget) = match choice {
            LineageChoice::Continue | LineageChoice::Join(_) => {
                let id = match choice {
                    LineageChoice::Join(id) => *id,
                    _ => current,
                };
                let l = Lineages::<T>::get(id).ok_or(Error::<T>::LineageNotFound)?;
                (l.spent, l.budget)
            }
            LineageChoice::New { epsilon_budget } => {
                (0, Self::lineage_budget(*epsilon_budget, accounting, 0)?)
            }
        };
        let total = spent.checked_add(cost).ok_or(Error::<T>::Overflow)?;
        ensure!(total <= budget, Error::<T>::LineageBudgetExhausted);
        Ok(())
    }

    /// The lineage a model spends after registration or a retrain, opening a new one (with
    /// its deposit, if `deposits`) when asked. Checks ownership and accounting.
    fn place_in_lineage(
        owner: &T::AccountId,
        choice: LineageChoice,
        current: Option<LineageId>,
        dataset_commitment: H256,
        accounting: &Accounting,
        cost_per_query: PrivacyUnits,
        deposits: bool,
    ) -> Result<LineageId, DispatchError> {
        match choice {
            LineageChoice::Continue => {
                let id = current.ok_or(Error::<T>::NoLineageToContinue)?;
                Self::check_joinable(id, owner, accounting)?;
                Ok(id)
            }
            LineageChoice::Join(id) => {
                Self::check_joinable(id, owner, accounting)?;
                Ok(id)
            }
            LineageChoice::New { epsilon_budget } => {
                let budget = Self::lineage_budget(epsilon_budget, accounting, cost_per_query)?;
                let id = NextLineageId::<T>::get();
                let next = id.checked_add(1).ok_or(Error::<T>::Overflow)?;
                if deposits {
                    Self::hold_deposit(owner, HoldReason::ModelDeposit, T::LineageDeposit::get())?;
                }
                Lineages::<T>::insert(
                    id,
                    Lineage::<T> {
                        owner: owner.clone(),
                        accounting: *accounting,
                        epsilon_budget,
                        budget,
                        spent: 0,
                        dataset_commitment,
                        created_at: frame_system::Pallet::<T>::block_number(),
                    },
                );
                NextLineageId::<T>::put(next);
                Self::deposit_event(Event::LineageOpened {
                    lineage_id: id,
                    owner: owner.clone(),
                    accounting: *accounting,
                    epsilon_budget,
                    budget,
                    dataset_commitment,
                });
                Ok(id)
            }
        }
    }

    fn check_joinable(
        id: LineageId,
        owner: &T::AccountId,
        accounting: &Accounting,
    ) -> DispatchResult {
        let lineage = Lineages::<T>::get(id).ok_or(Error::<T>::LineageNotFound)?;
        ensure!(&lineage.owner == owner, Error::<T>::NotLineageOwner);
        ensure!(
            &lineage.accounting == accounting,
            Error::<T>::AccountingMismatch
        );
        Ok(())
    }

    /// A declared lineage budget in the accounting unit; it must pay for at least one query.
    pub(crate) fn lineage_budget(
        epsilon_budget: PrivacyUnits,
        accounting: &Accounting,
        cost_per_query: PrivacyUnits,
    ) -> Result<PrivacyUnits, DispatchError> {
        ensure!(
            epsilon_budget > 0 && epsilon_budget <= Bounds::<T>::get().max_lineage_budget,
            Error::<T>::InvalidLineageBudget
        );
        let budget = match accounting {
            Accounting::PureEpsilon => epsilon_budget,
            Accounting::Zcdp { delta_exponent } => {
                privacy::rho_budget(epsilon_budget, *delta_exponent).ok_or(Error::<T>::Overflow)?
            }
        };
        ensure!(budget >= cost_per_query, Error::<T>::InvalidLineageBudget);
        Ok(budget)
    }

    /// `request_inference`: check both budgets, charge them, hold fee and deposit, assign.
    pub(crate) fn do_request(
        who: T::AccountId,
        model_id: ModelId,
        input_commitment: H256,
    ) -> DispatchResult {
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
        let worker_count = model.workers.len() as u64;
        ensure!(worker_count > 0, Error::<T>::NoWorkers);

        let stored = Usage::<T>::get(model_id, &who);
        let first_use = stored.is_none();
        let mut usage = stored.unwrap_or_default();
        Self::normalise(&mut usage, &model);
        // Per-query mode charges ε to the account and the lineage; a private model's answers
        // are post-processing of DP weights and only count against the answer limits.
        let (cost, mut lineage) = match model.privacy {
            PrivacyMode::PerQuery => (
                model.cost_per_query,
                Some(Lineages::<T>::get(model.lineage).ok_or(Error::<T>::LineageNotFound)?),
            ),
            PrivacyMode::PrivateModel {
                answers_per_account,
                answers_per_generation,
                ..
            } => {
                ensure!(
                    usage.answers < answers_per_account,
                    Error::<T>::AccountAnswerLimitReached
                );
                ensure!(
                    model.answers < answers_per_generation,
                    Error::<T>::GenerationAnswerLimitReached
                );
                (0, None)
            }
        };
        let spent = usage.spent.checked_add(cost).ok_or(Error::<T>::Overflow)?;
        ensure!(spent <= model.account_budget, Error::<T>::BudgetExhausted);
        let lineage_spent = match &lineage {
            Some(l) => {
                let total = l.spent.checked_add(cost).ok_or(Error::<T>::Overflow)?;
                ensure!(total <= l.budget, Error::<T>::LineageBudgetExhausted);
                total
            }
            None => {
                Lineages::<T>::get(model.lineage)
                    .ok_or(Error::<T>::LineageNotFound)?
                    .spent
            }
        };

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
        if first_use {
            usage.deposit =
                Self::hold_deposit(&who, HoldReason::UsageDeposit, T::UsageDeposit::get())?;
        }
        // Round-robin by request id: deterministic, balanced, and neither the requester nor a
        // worker can pick who answers (and so whose noise draw is used).
        let index = (request_id % worker_count) as usize;
        let worker = model.workers[index].clone();

        usage.queries = usage.queries.checked_add(1).ok_or(Error::<T>::Overflow)?;
        usage.answers = usage.answers.checked_add(1).ok_or(Error::<T>::Overflow)?;
        usage.spent = spent;
        usage.last_request = now;
        if let Some(l) = lineage.as_mut() {
            l.spent = lineage_spent;
        }
        model.answers = model.answers.checked_add(1).ok_or(Error::<T>::Overflow)?;
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
                lineage: model.lineage,
                requester: who.clone(),
                worker: worker.clone(),
                input_commitment,
                eval_key_commitment,
                submitted_at: now,
                deadline,
                privacy_charged: cost,
                fee,
                status: RequestStatus::Pending,
            },
        );
        NextRequestId::<T>::put(next_request_id);
        Usage::<T>::insert(model_id, &who, &usage);
        if let Some(l) = lineage {
            Lineages::<T>::insert(model.lineage, l);
        }
        let (epoch, queries) = (model.epoch, model.queries);
        Models::<T>::insert(model_id, model);

        Self::deposit_event(Event::InferenceRequested {
            request_id,
            model_id,
            epoch,
            requester: who,
            worker,
            input_commitment,
            eval_key_commitment,
            account_queries: usage.queries,
            epoch_queries: queries,
            privacy_charged: cost,
            privacy_spent: usage.spent,
            lineage_spent,
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

    /// Only the request's assigned worker, while still a worker of the model, may settle it.
    pub(crate) fn ensure_assigned(
        model: &ModelInfo<T>,
        request: &InferenceRequest<T>,
        who: &T::AccountId,
    ) -> DispatchResult {
        ensure!(model.workers.contains(who), Error::<T>::NotWorker);
        ensure!(&request.worker == who, Error::<T>::NotAssignedWorker);
        Ok(())
    }

    /// `retrain_model`: the owner at any time; a worker on a locked model with the owner's
    /// authorisation for exactly `to`, which it consumes.
    pub(crate) fn do_retrain(
        who: T::AccountId,
        model_id: ModelId,
        to: RetrainAuthorisation,
    ) -> DispatchResult {
        let mut model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
        Self::ensure_may_restart(model_id, &model, &who)?;
        if model.owner != who {
            let authorised = RetrainAuthorisations::<T>::get(model_id);
            ensure!(
                authorised.as_ref() == Some(&to),
                Error::<T>::RetrainNotAuthorised
            );
        }
        let (policy, release) = Self::check_retrain(model_id, &model, &to)?;
        let moves = to.lineage != LineageChoice::Continue;
        let (cost, _) = Self::costs_of(&policy)?;
        let training_cost = Self::training_cost_of(&to.privacy, &policy.accounting)?;
        let lineage_id = Self::place_in_lineage(
            &model.owner,
            to.lineage,
            Some(model.lineage),
            to.dataset_commitment,
            &policy.accounting,
            cost,
            true,
        )?;
        Self::charge_training(model_id, lineage_id, training_cost)?;
        RetrainAuthorisations::<T>::remove(model_id);
        let previous_epoch = model.epoch;
        model.generation = model
            .generation
            .checked_add(1)
            .ok_or(Error::<T>::Overflow)?;
        model.weights_commitment = to.weights_commitment;
        model.dataset_commitment = to.dataset_commitment;
        model.lineage = lineage_id;
        model.privacy = to.privacy;
        model.training_cost = training_cost;
        model.answers = 0;
        let policy_changed = Self::start_epoch(&mut model, moves)?;
        let (epoch, generation) = (model.epoch, model.generation);
        Models::<T>::insert(model_id, model);
        Self::deposit_event(Event::ModelRetrained {
            model_id,
            previous_epoch,
            epoch,
            generation,
            weights_commitment: to.weights_commitment,
            dataset_commitment: to.dataset_commitment,
            lineage_id,
            privacy: to.privacy,
            by: who,
            policy_changed,
        });
        if let Some(release_id) = release {
            Self::mark_release_used(model_id, release_id, generation)?;
        }
        Ok(())
    }

    /// Whether a retrain to `to` is possible for the model as it stands; returns the policy
    /// that would be in force after it and the dataset release it trains on, if any (a model
    /// with an aggregator must name an unused release of its own).
    pub(crate) fn check_retrain(
        model_id: ModelId,
        model: &ModelInfo<T>,
        to: &RetrainAuthorisation,
    ) -> Result<(PolicyOf<T>, Option<ReleaseId>), DispatchError> {
        let release = Self::release_for_retrain(model_id, to.dataset_commitment)?;
        ensure!(
            to.weights_commitment != model.weights_commitment,
            Error::<T>::CommitmentUnchanged
        );
        let moves = to.lineage != LineageChoice::Continue;
        let policy = Self::policy_after_epoch(model, moves);
        let (cost, _) = Self::costs_of(&policy)?;
        match to.lineage {
            LineageChoice::Continue => {
                Self::check_joinable(model.lineage, &model.owner, &policy.accounting)?
            }
            LineageChoice::Join(id) => Self::check_joinable(id, &model.owner, &policy.accounting)?,
            LineageChoice::New { epsilon_budget } => {
                ensure!(
                    to.dataset_commitment != model.dataset_commitment,
                    Error::<T>::CommitmentUnchanged
                );
                Self::lineage_budget(epsilon_budget, &policy.accounting, cost)?;
            }
        }
        let training_cost = Self::training_cost_of(&to.privacy, &policy.accounting)?;
        Self::check_training_fits(
            &to.lineage,
            model.lineage,
            &policy.accounting,
            training_cost,
        )?;
        Ok((policy, release))
    }

    pub(crate) fn ensure_unique(workers: &[T::AccountId]) -> DispatchResult {
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
            Accounting::PureEpsilon => (policy.epsilon_per_query, policy.account_epsilon_budget),
            Accounting::Zcdp { delta_exponent } => {
                ensure!(
                    (MIN_DELTA_EXPONENT..=MAX_DELTA_EXPONENT).contains(&delta_exponent),
                    Error::<T>::InvalidDelta
                );
                let cost =
                    privacy::rho_per_query(policy.epsilon_per_query).ok_or(Error::<T>::Overflow)?;
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
            return PolicyApplication::NextLineage;
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
                && b.max_lineage_budget > 0
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

    /// The account's usage normalised to the model's current epoch and lineage.
    pub(crate) fn current_usage(
        model_id: ModelId,
        model: &ModelInfo<T>,
        who: &T::AccountId,
    ) -> AccountUsage<BalanceOf<T>, BlockNumberFor<T>> {
        let mut usage = Usage::<T>::get(model_id, who).unwrap_or_default();
        Self::normalise(&mut usage, model);
        usage
    }

    fn normalise(usage: &mut AccountUsage<BalanceOf<T>, BlockNumberFor<T>>, model: &ModelInfo<T>) {
        if usage.epoch != model.epoch {
            usage.epoch = model.epoch;
            usage.queries = 0;
        }
        if usage.lineage != model.lineage {
            usage.lineage = model.lineage;
            usage.spent = 0;
        }
        if usage.generation != model.generation {
            usage.generation = model.generation;
            usage.answers = 0;
        }
    }

    /// Reset or retrain: owner or worker, not retired; a worker only on a locked model.
    pub(crate) fn ensure_may_restart(
        model_id: ModelId,
        model: &ModelInfo<T>,
        who: &T::AccountId,
    ) -> DispatchResult {
        let is_owner = &model.owner == who;
        ensure!(
            is_owner || model.workers.contains(who),
            Error::<T>::NotOwnerOrWorker
        );
        ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
        if !is_owner {
            Self::ensure_epoch_ended(model)?;
        }
        // A worker ends an epoch only on every worker's record of having shredded it: the
        // chain then holds each worker's final root for every worker-ended epoch.
        ensure!(
            is_owner || Self::erasure_attested(model_id, model),
            Error::<T>::ErasureNotAttested
        );
        Ok(())
    }

    /// [`Pallet::attest_erasure`]: one worker's record of having shredded the ended epoch.
    pub(crate) fn do_attest_erasure(
        who: T::AccountId,
        model_id: ModelId,
        epoch: EpochIndex,
        final_root: Option<H256>,
        accesses: u64,
    ) -> DispatchResult {
        let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
        ensure!(model.workers.contains(&who), Error::<T>::NotWorker);
        ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
        ensure!(epoch == model.epoch, Error::<T>::WrongEpoch);
        Self::ensure_epoch_ended(&model)?;
        let now = frame_system::Pallet::<T>::block_number();
        // A newer epoch's first attestation replaces the older epoch's record.
        let mut record = Erasures::<T>::get(model_id)
            .filter(|r| r.epoch == epoch)
            .unwrap_or(EpochErasure {
                epoch,
                attestations: BoundedVec::new(),
            });
        ensure!(
            !record.attestations.iter().any(|a| a.worker == who),
            Error::<T>::ErasureAlreadyAttested
        );
        // Only current workers count (their attestations stay in the events): current
        // workers are unique and at most MaxWorkers, so the push always fits.
        record
            .attestations
            .retain(|a| model.workers.contains(&a.worker));
        record
            .attestations
            .try_push(ErasureAttestation {
                worker: who.clone(),
                final_root,
                accesses,
                at: now,
            })
            .map_err(|_| Error::<T>::Overflow)?;
        Erasures::<T>::insert(model_id, record);
        Self::deposit_event(Event::EpochErased {
            model_id,
            epoch,
            final_root,
            accesses,
            by: who,
        });
        Ok(())
    }

    /// The model's current epoch is over: exhausted (N ≥ K) or expired (t ≥ T).
    fn ensure_epoch_ended(model: &ModelInfo<T>) -> DispatchResult {
        let now = frame_system::Pallet::<T>::block_number();
        let (state, _) = Self::effective_state(model, now);
        ensure!(
            matches!(state, ModelState::Exhausted | ModelState::Expired),
            Error::<T>::ResetNotAllowed
        );
        Ok(())
    }

    /// Whether every current worker of the model attested the erasure of its current epoch.
    fn erasure_attested(model_id: ModelId, model: &ModelInfo<T>) -> bool {
        Erasures::<T>::get(model_id)
            .filter(|r| r.epoch == model.epoch)
            .is_some_and(|r| {
                model
                    .workers
                    .iter()
                    .all(|w| r.attestations.iter().any(|a| &a.worker == w))
            })
    }

    /// The policy in force after the next epoch starts: a waiting loosening applies at any new
    /// epoch, a waiting budget or accounting change only when the model changes lineage.
    fn policy_after_epoch(model: &ModelInfo<T>, lineage_moves: bool) -> PolicyOf<T> {
        match &model.next_policy {
            Some((p, PolicyApplication::NextLineage)) if lineage_moves => p.clone(),
            Some((p, PolicyApplication::NextEpoch)) => p.clone(),
            Some((p, PolicyApplication::Now)) => p.clone(),
            _ => model.policy.clone(),
        }
    }

    /// Open the next epoch, applying a waiting policy if allowed. Returns whether the
    /// policy changed.
    pub(crate) fn start_epoch(
        model: &mut ModelInfo<T>,
        lineage_moves: bool,
    ) -> Result<bool, DispatchError> {
        let now = frame_system::Pallet::<T>::block_number();
        model.epoch = model.epoch.checked_add(1).ok_or(Error::<T>::Overflow)?;
        model.epoch_start = now;
        model.last_used = now;
        model.queries = 0;
        model.state = ModelState::Active;
        let apply = match &model.next_policy {
            Some((_, PolicyApplication::NextLineage)) => lineage_moves,
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

    /// Return a pending request's fee, privacy charge (account and lineage) and (same epoch)
    /// counters. Called only for requests that got no answer.
    pub(crate) fn refund(request: &InferenceRequest<T>, mut model: ModelInfo<T>) -> DispatchResult {
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
            if usage.lineage == request.lineage {
                usage.spent = usage.spent.saturating_sub(request.privacy_charged);
            }
            if request.epoch == model.epoch && usage.epoch == model.epoch {
                usage.queries = usage.queries.saturating_sub(1);
                // Same epoch, so same weights: the answer was never given. (After a reset the
                // allowance is not returned: against the spender.)
                if usage.generation == model.generation {
                    usage.answers = usage.answers.saturating_sub(1);
                }
            }
            Usage::<T>::insert(model_id, &request.requester, usage);
        }
        Lineages::<T>::mutate(request.lineage, |l| {
            if let Some(l) = l {
                l.spent = l.spent.saturating_sub(request.privacy_charged);
            }
        });
        if request.epoch == model.epoch {
            model.queries = model.queries.saturating_sub(1);
            model.answers = model.answers.saturating_sub(1);
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
    pub(crate) fn time_out(request_id: RequestId) {
        let Some(mut request) = Requests::<T>::get(request_id) else {
            return;
        };
        // A completed request stays charged: its answer may have been fetched.
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

    /// Remove a finished request whose retention window passed.
    pub(crate) fn prune(request_id: RequestId) {
        // Queued only after its deadline, so never pending; checked all the same so that a
        // pending request can never lose its refund.
        if Requests::<T>::get(request_id).is_some_and(|r| r.status != RequestStatus::Pending) {
            Requests::<T>::remove(request_id);
        }
    }

    /// Hold a storage deposit; returns the amount held (recorded, so a later change of the
    /// constant releases exactly what was taken).
    pub(crate) fn hold_deposit(
        who: &T::AccountId,
        reason: HoldReason,
        amount: BalanceOf<T>,
    ) -> Result<BalanceOf<T>, DispatchError> {
        if !amount.is_zero() {
            T::Currency::hold(&reason.into(), who, amount)
                .map_err(|_| Error::<T>::CannotPayDeposit)?;
        }
        Ok(amount)
    }

    pub(crate) fn release_deposit(who: &T::AccountId, reason: HoldReason, amount: BalanceOf<T>) {
        if amount.is_zero() {
            return;
        }
        if let Err(e) = T::Currency::release(&reason.into(), who, amount, Precision::BestEffort) {
            log::error!(target: LOG_TARGET, "releasing a deposit failed: {e:?}");
        }
    }
}
