//! The data rules behind the calls: independent aggregators, clinics' contributions, their
//! k-anonymous releases, and the rule that a model with an aggregator retrains only on one.

use crate::pallet::*;
use crate::types::*;
use alloc::vec::Vec;
use frame_support::{ensure, pallet_prelude::*, BoundedVec};
use sp_core::H256;

impl<T: Config> Pallet<T> {
    /// `set_aggregator`: the owner names (or removes) the model's aggregator, which must be
    /// neither the owner nor one of the model's workers.
    pub(crate) fn do_set_aggregator(
        who: T::AccountId,
        model_id: ModelId,
        aggregator: Option<T::AccountId>,
    ) -> DispatchResult {
        let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
        ensure!(model.owner == who, Error::<T>::NotOwner);
        ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
        match &aggregator {
            Some(a) => {
                // Whoever serves the provider must never hold the key the records are sealed to.
                ensure!(
                    a != &model.owner && !model.workers.contains(a),
                    Error::<T>::AggregatorNotIndependent
                );
                Aggregators::<T>::insert(model_id, a);
            }
            None => {
                Aggregators::<T>::take(model_id).ok_or(Error::<T>::NoAggregator)?;
            }
        }
        Self::deposit_event(Event::AggregatorSet {
            model_id,
            aggregator,
        });
        Ok(())
    }

    /// `contribute_data`: a clinic independent of the provider records a batch sealed to the
    /// model's current aggregator, holding the contribution deposit.
    pub(crate) fn do_contribute(
        who: T::AccountId,
        model_id: ModelId,
        commitment: H256,
        rows: u32,
    ) -> DispatchResult {
        let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
        ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
        let aggregator = Aggregators::<T>::get(model_id).ok_or(Error::<T>::NoAggregator)?;
        let sealing_key = SealingKeys::<T>::get(&aggregator)
            .ok_or(Error::<T>::NoSealingKey)?
            .key;
        ensure!(
            who != model.owner && !model.workers.contains(&who),
            Error::<T>::ContributorNotIndependent
        );
        ensure!(
            rows >= 1 && rows <= T::MaxContributionRows::get(),
            Error::<T>::InvalidRowCount
        );
        let contribution_id = NextContributionId::<T>::get();
        let next = contribution_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
        let deposit =
            Self::hold_deposit(&who, HoldReason::DataDeposit, T::ContributionDeposit::get())?;
        Contributions::<T>::insert(
            contribution_id,
            Contribution {
                model_id,
                contributor: who.clone(),
                aggregator: aggregator.clone(),
                sealing_key,
                commitment,
                rows,
                submitted: frame_system::Pallet::<T>::block_number(),
                deposit,
                release: None,
            },
        );
        NextContributionId::<T>::put(next);
        Self::deposit_event(Event::DataContributed {
            contribution_id,
            model_id,
            contributor: who,
            aggregator,
            sealing_key,
            commitment,
            rows,
        });
        Ok(())
    }

    /// `set_sealing_key`: the caller publishes, replaces or removes its own sealing key,
    /// holding the deposit while one is published.
    pub(crate) fn do_set_sealing_key(who: T::AccountId, key: Option<[u8; 32]>) -> DispatchResult {
        match key {
            Some(key) => {
                // All zeros is the X25519 identity: sealing to it would give every reader the
                // shared secret.
                ensure!(key != [0u8; 32], Error::<T>::InvalidSealingKey);
                let deposit = match SealingKeys::<T>::get(&who) {
                    Some(old) => old.deposit,
                    None => Self::hold_deposit(
                        &who,
                        HoldReason::DataDeposit,
                        T::SealingKeyDeposit::get(),
                    )?,
                };
                SealingKeys::<T>::insert(&who, SealingKeyRecord { key, deposit });
            }
            None => {
                let old = SealingKeys::<T>::take(&who).ok_or(Error::<T>::NoSealingKey)?;
                Self::release_deposit(&who, HoldReason::DataDeposit, old.deposit);
            }
        }
        Self::deposit_event(Event::SealingKeySet { who, key });
        Ok(())
    }

    /// `withdraw_contribution`: the clinic removes an unreleased contribution and gets its
    /// deposit back.
    pub(crate) fn do_withdraw(
        who: T::AccountId,
        contribution_id: ContributionId,
    ) -> DispatchResult {
        let c = Contributions::<T>::get(contribution_id).ok_or(Error::<T>::ContributionNotFound)?;
        ensure!(c.contributor == who, Error::<T>::NotContributor);
        ensure!(c.release.is_none(), Error::<T>::ContributionReleased);
        Contributions::<T>::remove(contribution_id);
        Self::release_deposit(&who, HoldReason::DataDeposit, c.deposit);
        Self::deposit_event(Event::ContributionWithdrawn {
            contribution_id,
            model_id: c.model_id,
            contributor: who,
        });
        Ok(())
    }

    /// `publish_dataset`: the model's current aggregator records a release of contributions
    /// sealed to it, with its anonymity parameters; holds the release deposit and marks the
    /// contributions released.
    // The call's arguments: a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_publish(
        who: T::AccountId,
        model_id: ModelId,
        commitment: H256,
        k: u32,
        l: u32,
        quasi_identifiers: BoundedVec<BoundedVec<u8, T::MaxQiNameLen>, T::MaxQuasiIdentifiers>,
        rows: u32,
        contributions: BoundedVec<ContributionId, T::MaxContributionsPerRelease>,
    ) -> DispatchResult {
        let model = Models::<T>::get(model_id).ok_or(Error::<T>::ModelNotFound)?;
        ensure!(model.state != ModelState::Retired, Error::<T>::ModelRetired);
        ensure!(
            Aggregators::<T>::get(model_id).as_ref() == Some(&who),
            Error::<T>::NotAggregator
        );

        ensure!(!contributions.is_empty(), Error::<T>::NoContributions);
        let mut records = Vec::with_capacity(contributions.len());
        // u64: a sum of u32 row counts over a bounded list; checked all the same.
        let mut contributed: u64 = 0;
        for (i, id) in contributions.iter().enumerate() {
            ensure!(
                !contributions[..i].contains(id),
                Error::<T>::DuplicateContribution
            );
            let c = Contributions::<T>::get(id).ok_or(Error::<T>::ContributionNotFound)?;
            // Records sealed to another key are not the caller's to release.
            ensure!(
                c.model_id == model_id && c.aggregator == who,
                Error::<T>::ContributionNotUsable
            );
            ensure!(c.release.is_none(), Error::<T>::ContributionReleased);
            contributed = contributed
                .checked_add(u64::from(c.rows))
                .ok_or(Error::<T>::Overflow)?;
            records.push((*id, c));
        }

        ensure!(
            k >= T::MinAnonymityK::get() && l >= 1 && l <= k,
            Error::<T>::InvalidAnonymity
        );
        ensure!(
            !quasi_identifiers.is_empty(),
            Error::<T>::InvalidQuasiIdentifiers
        );
        for (i, name) in quasi_identifiers.iter().enumerate() {
            ensure!(
                !name.is_empty() && !quasi_identifiers[..i].contains(name),
                Error::<T>::InvalidQuasiIdentifiers
            );
        }
        // Suppression may drop rows, never add them; fewer than k rows cannot be k-anonymous.
        ensure!(
            rows >= k && u64::from(rows) <= contributed,
            Error::<T>::InvalidRowCount
        );
        ensure!(
            !ReleaseByCommitment::<T>::contains_key(model_id, commitment),
            Error::<T>::ReleaseExists
        );

        let release_id = NextReleaseId::<T>::get();
        let next = release_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
        let deposit = Self::hold_deposit(&who, HoldReason::DataDeposit, T::ReleaseDeposit::get())?;
        for (id, mut c) in records {
            c.release = Some(release_id);
            Contributions::<T>::insert(id, c);
        }
        let event = Event::DatasetPublished {
            release_id,
            model_id,
            aggregator: who.clone(),
            commitment,
            k,
            l,
            quasi_identifiers: quasi_identifiers
                .iter()
                .map(|name| name.clone().into_inner())
                .collect(),
            rows,
            contributions: contributions.clone().into_inner(),
        };
        Releases::<T>::insert(
            release_id,
            DatasetRelease::<T> {
                model_id,
                aggregator: who,
                commitment,
                k,
                l,
                quasi_identifiers,
                rows,
                contributions,
                published: frame_system::Pallet::<T>::block_number(),
                deposit,
                used_by_generation: None,
            },
        );
        ReleaseByCommitment::<T>::insert(model_id, commitment, release_id);
        NextReleaseId::<T>::put(next);
        Self::deposit_event(event);
        Ok(())
    }

    /// The release a retrain onto `dataset_commitment` trains on. A model with an aggregator
    /// must name an unused release of its own; a model without one may name anything, and an
    /// unused release it names is recorded as used all the same.
    pub(crate) fn release_for_retrain(
        model_id: ModelId,
        dataset_commitment: H256,
    ) -> Result<Option<ReleaseId>, DispatchError> {
        let strict = Aggregators::<T>::contains_key(model_id);
        let release = ReleaseByCommitment::<T>::get(model_id, dataset_commitment)
            .and_then(|id| Releases::<T>::get(id).map(|r| (id, r)));
        match release {
            Some((id, r)) if r.used_by_generation.is_none() => Ok(Some(id)),
            Some(_) if strict => Err(Error::<T>::ReleaseAlreadyUsed.into()),
            None if strict => Err(Error::<T>::DatasetNotReleased.into()),
            _ => Ok(None),
        }
    }

    /// Record that `generation` of the model was trained on the release.
    pub(crate) fn mark_release_used(
        model_id: ModelId,
        release_id: ReleaseId,
        generation: u32,
    ) -> DispatchResult {
        Releases::<T>::try_mutate(release_id, |r| -> DispatchResult {
            let r = r.as_mut().ok_or(Error::<T>::DatasetNotReleased)?;
            ensure!(
                r.used_by_generation.is_none(),
                Error::<T>::ReleaseAlreadyUsed
            );
            r.used_by_generation = Some(generation);
            Ok(())
        })?;
        Self::deposit_event(Event::ReleaseUsed {
            release_id,
            model_id,
            generation,
        });
        Ok(())
    }
}
