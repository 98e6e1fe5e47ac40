//! Read-only views for the runtime API, and the invariants `try_state` checks.

use crate::pallet::*;
use crate::privacy;
use crate::types::*;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::Saturating;

impl<T: Config> Pallet<T> {
    /// Status of a model at the current block (runtime API).
    pub fn model_status(model_id: ModelId) -> Option<ModelStatus<BlockNumberFor<T>>> {
        let model = Models::<T>::get(model_id)?;
        let now = frame_system::Pallet::<T>::block_number();
        let (state, expiry) = Self::effective_state(&model, now);
        let one: BlockNumberFor<T> = 1u32.into();
        let lineage_remaining = Lineages::<T>::get(model.lineage)
            .map(|l| l.budget.saturating_sub(l.spent))
            .unwrap_or(0);
        Some(ModelStatus {
            state,
            expiry,
            epoch: model.epoch,
            generation: model.generation,
            lineage: model.lineage,
            lineage_remaining,
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
            privacy: model.privacy,
            answers: model.answers,
        })
    }

    /// An account's counters and remaining budgets for a model (runtime API).
    pub fn account_status(model_id: ModelId, who: &T::AccountId) -> Option<AccountStatus> {
        let model = Models::<T>::get(model_id)?;
        let usage = Self::current_usage(model_id, &model, who);
        let remaining = model.account_budget.saturating_sub(usage.spent);
        let lineage_remaining = Lineages::<T>::get(model.lineage)
            .map(|l| l.budget.saturating_sub(l.spent))
            .unwrap_or(0);
        Some(AccountStatus {
            queries: usage.queries,
            spent: usage.spent,
            budget: model.account_budget,
            remaining,
            lineage_remaining,
            queries_left_by_budget: match model.privacy {
                PrivacyMode::PerQuery => remaining
                    .min(lineage_remaining)
                    .checked_div(model.cost_per_query)
                    .unwrap_or(0),
                PrivacyMode::PrivateModel {
                    answers_per_account,
                    answers_per_generation,
                    ..
                } => answers_per_account
                    .saturating_sub(usage.answers)
                    .min(answers_per_generation.saturating_sub(model.answers))
                    .into(),
            },
            spent_epsilon: Self::as_epsilon(usage.spent, &model.policy.accounting),
            accounting: model.policy.accounting,
        })
    }

    /// A lineage's budget and what everyone spent (runtime API).
    pub fn lineage_status(lineage_id: LineageId) -> Option<LineageStatus> {
        let l = Lineages::<T>::get(lineage_id)?;
        Some(LineageStatus {
            accounting: l.accounting,
            epsilon_budget: l.epsilon_budget,
            budget: l.budget,
            spent: l.spent,
            spent_epsilon: Self::as_epsilon(l.spent, &l.accounting),
        })
    }

    /// A spent amount as an ε guarantee in micro-ε, rounded up.
    fn as_epsilon(spent: PrivacyUnits, accounting: &Accounting) -> PrivacyUnits {
        match accounting {
            Accounting::PureEpsilon => spent,
            Accounting::Zcdp { delta_exponent } => {
                privacy::epsilon_from_rho(spent, *delta_exponent).unwrap_or(u64::MAX)
            }
        }
    }

    /// Check the pallet's invariants: every lineage's spending within its budget and equal to
    /// its pending and completed charges where those are still stored, accounts' spending
    /// within their budgets and below their lineage's, N = Σ n_i, states consistent with
    /// counters, pending counts and the deadline index consistent with requests, assignments
    /// within the worker set, identifiers below their counters; aggregators independent of
    /// their models; every release's contributions existing, pointing back to it, of its model
    /// and aggregator and holding at least its rows; the commitment index matching the
    /// releases; the data deposits held matching the records.
    #[cfg(any(feature = "try-runtime", test))]
    pub fn do_try_state(now: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
        use alloc::collections::btree_map::BTreeMap;
        use frame_support::{ensure, traits::Get};
        let next_model = NextModelId::<T>::get();
        let next_lineage = NextLineageId::<T>::get();
        let mut pending: BTreeMap<ModelId, u32> = BTreeMap::new();
        let next_request = NextRequestId::<T>::get();
        for (id, r) in Requests::<T>::iter() {
            ensure!(id < next_request, "request id not below NextRequestId");
            ensure!(r.model_id < next_model, "request of an unknown model");
            ensure!(r.lineage < next_lineage, "request on an unknown lineage");
            if r.status == RequestStatus::Pending {
                *pending.entry(r.model_id).or_default() += 1;
                ensure!(r.deadline > now, "pending request past its deadline");
                ensure!(
                    RequestDeadlines::<T>::get(r.deadline).contains(&id),
                    "pending request missing from the deadline index"
                );
            }
        }
        let mut lineage_accounts: BTreeMap<LineageId, u128> = BTreeMap::new();
        for (id, m) in Models::<T>::iter() {
            ensure!(id < next_model, "model id not below NextModelId");
            let lineage = Lineages::<T>::get(m.lineage).ok_or("model on an unknown lineage")?;
            ensure!(lineage.owner == m.owner, "model on another owner's lineage");
            ensure!(
                lineage.accounting == m.policy.accounting,
                "model's accounting differs from its lineage's"
            );
            let mut sum: u32 = 0;
            let mut answers: u32 = 0;
            for (_, u) in Usage::<T>::iter_prefix(id) {
                if u.epoch == m.epoch {
                    sum = sum.checked_add(u.queries).ok_or("Σ n_i overflows")?;
                }
                if u.generation == m.generation {
                    answers = answers
                        .checked_add(u.answers)
                        .ok_or("Σ answers overflows")?;
                }
                if let PrivacyMode::PrivateModel {
                    answers_per_account,
                    ..
                } = m.privacy
                {
                    ensure!(
                        u.generation != m.generation || u.answers <= answers_per_account,
                        "account past its answer limit"
                    );
                }
                if u.lineage == m.lineage {
                    ensure!(
                        u.spent <= m.account_budget,
                        "spent exceeds the account budget"
                    );
                }
                *lineage_accounts.entry(u.lineage).or_default() += u.spent as u128;
            }
            // A retired model's records may be cleared (deposits returned), so only ≤ there.
            if m.state == ModelState::Retired {
                ensure!(sum <= m.queries, "N below Σ n_i");
                ensure!(answers <= m.answers, "answers below their sum");
            } else {
                ensure!(sum == m.queries, "N differs from Σ n_i");
                ensure!(answers == m.answers, "answers differ from their sum");
            }
            match m.privacy {
                PrivacyMode::PerQuery => {
                    ensure!(m.training_cost == 0, "per-query model with a training cost")
                }
                PrivacyMode::PrivateModel {
                    training_epsilon,
                    answers_per_generation,
                    ..
                } => {
                    ensure!(
                        m.answers <= answers_per_generation,
                        "generation past its answer limit"
                    );
                    let cost = Self::training_cost(training_epsilon, &m.policy.accounting);
                    ensure!(
                        cost == Some(m.training_cost) && m.training_cost > 0,
                        "training cost is stale"
                    );
                }
            }
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
        for (id, e) in Erasures::<T>::iter() {
            let m = Models::<T>::get(id).ok_or("erasure of an unknown model")?;
            ensure!(e.epoch <= m.epoch, "erasure of a future epoch");
            for (i, a) in e.attestations.iter().enumerate() {
                ensure!(a.at <= now, "erasure attested in the future");
                ensure!(
                    !e.attestations[..i].iter().any(|b| b.worker == a.worker),
                    "a worker attested an epoch twice"
                );
            }
        }
        for (id, l) in Lineages::<T>::iter() {
            ensure!(id < next_lineage, "lineage id not below NextLineageId");
            ensure!(l.spent <= l.budget, "lineage spent exceeds its budget");
            // Every account's spending is part of the lineage's: no charge escapes the sum.
            let accounts = lineage_accounts.get(&id).copied().unwrap_or(0);
            ensure!(
                accounts <= l.spent as u128,
                "accounts spent more than their lineage recorded"
            );
        }
        Self::try_state_data()
    }

    /// The data invariants of [`Self::do_try_state`].
    #[cfg(any(feature = "try-runtime", test))]
    fn try_state_data() -> Result<(), sp_runtime::TryRuntimeError> {
        use crate::BalanceOf;
        use alloc::collections::btree_map::BTreeMap;
        use frame_support::{ensure, traits::fungible::InspectHold};
        for (id, a) in Aggregators::<T>::iter() {
            let m = Models::<T>::get(id).ok_or("aggregator of an unknown model")?;
            ensure!(
                a != m.owner && !m.workers.contains(&a),
                "aggregator is the model's owner or one of its workers"
            );
        }
        let mut held: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        let next_contribution = NextContributionId::<T>::get();
        for (id, c) in Contributions::<T>::iter() {
            ensure!(
                id < next_contribution,
                "contribution id not below NextContributionId"
            );
            ensure!(
                Models::<T>::contains_key(c.model_id),
                "contribution for an unknown model"
            );
            ensure!(c.rows >= 1, "contribution without records");
            if let Some(r) = c.release {
                let release = Releases::<T>::get(r).ok_or("contribution of an unknown release")?;
                ensure!(
                    release.contributions.contains(&id),
                    "release does not list its contribution"
                );
            }
            let total = held.entry(c.contributor).or_default();
            *total = total.saturating_add(c.deposit);
        }
        let next_release = NextReleaseId::<T>::get();
        for (id, r) in Releases::<T>::iter() {
            ensure!(id < next_release, "release id not below NextReleaseId");
            let m = Models::<T>::get(r.model_id).ok_or("release for an unknown model")?;
            ensure!(
                r.used_by_generation
                    .is_none_or(|g| g >= 1 && g <= m.generation),
                "release used by a generation the model never had"
            );
            ensure!(
                r.k >= 2 && r.l >= 1 && r.l <= r.k && r.rows >= r.k,
                "release with inconsistent k, l or rows"
            );
            ensure!(
                !r.quasi_identifiers.is_empty(),
                "release without quasi-identifiers"
            );
            ensure!(!r.contributions.is_empty(), "release without contributions");
            let mut rows: u64 = 0;
            for (i, cid) in r.contributions.iter().enumerate() {
                ensure!(
                    !r.contributions[..i].contains(cid),
                    "release lists a contribution twice"
                );
                let c = Contributions::<T>::get(cid).ok_or("release of a missing contribution")?;
                ensure!(
                    c.release == Some(id),
                    "contribution does not point back to its release"
                );
                ensure!(
                    c.model_id == r.model_id && c.aggregator == r.aggregator,
                    "release of another model's or aggregator's contribution"
                );
                rows = rows.saturating_add(u64::from(c.rows));
            }
            ensure!(
                rows >= u64::from(r.rows),
                "release has more rows than its contributions"
            );
            ensure!(
                ReleaseByCommitment::<T>::get(r.model_id, r.commitment) == Some(id),
                "release missing from the commitment index"
            );
            let total = held.entry(r.aggregator).or_default();
            *total = total.saturating_add(r.deposit);
        }
        for (model_id, commitment, id) in ReleaseByCommitment::<T>::iter() {
            let r = Releases::<T>::get(id).ok_or("commitment index names an unknown release")?;
            ensure!(
                r.model_id == model_id && r.commitment == commitment,
                "commitment index disagrees with the release"
            );
        }
        for (who, record) in SealingKeys::<T>::iter() {
            ensure!(
                record.key != [0u8; 32],
                "published sealing key is all zeros"
            );
            let total = held.entry(who).or_default();
            *total = total.saturating_add(record.deposit);
        }
        for (who, amount) in held {
            ensure!(
                T::Currency::balance_on_hold(&HoldReason::DataDeposit.into(), &who) == amount,
                "data deposits held differ from the records'"
            );
        }
        Ok(())
    }
}
