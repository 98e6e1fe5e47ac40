//! Benchmarks of every call and of `on_initialize` (FRAME benchmarking v2).

use super::*;
use crate::privacy::PRIVACY_SCALE;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::{
    traits::{
        fungible::{Inspect, Mutate},
        Get, Hooks,
    },
    BoundedVec,
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_core::H256;

fn policy<T: Config>() -> PolicyOf<T> {
    Policy {
        // Above any MaxRequestsPerBlock the benchmarks fill (twice, for on_initialize).
        max_queries_per_epoch: 10_000,
        epoch_lifetime: 10_000u32.into(),
        idle_timeout: 1_000u32.into(),
        epsilon_per_query: PRIVACY_SCALE / 10,
        // zCDP is the costlier accounting path.
        account_epsilon_budget: 100 * PRIVACY_SCALE,
        accounting: Accounting::Zcdp { delta_exponent: 6 },
        fee_per_query: T::Currency::minimum_balance(),
    }
}

fn funded<T: Config>(name: &'static str, i: u32) -> T::AccountId {
    let who: T::AccountId = account(name, i, 0);
    // Enough for many fees, small enough that funding several accounts cannot overflow issuance.
    T::Currency::set_balance(&who, T::Currency::minimum_balance() * 1_000_000u32.into());
    who
}

fn workers<T: Config>(n: u32) -> BoundedVec<T::AccountId, T::MaxWorkers> {
    (0..n)
        .map(|i| funded::<T>("worker", i))
        .collect::<Vec<_>>()
        .try_into()
        .expect("n ≤ MaxWorkers")
}

fn new_lineage() -> LineageChoice {
    LineageChoice::New {
        epsilon_budget: 1_000 * PRIVACY_SCALE,
    }
}

/// The costlier mode for registration and retrain: it charges the lineage its training.
fn private_mode() -> PrivacyMode {
    PrivacyMode::PrivateModel {
        training_epsilon: PRIVACY_SCALE,
        answers_per_account: 100,
        answers_per_generation: 10_000,
    }
}

fn model<T: Config>(owner: &T::AccountId) -> ModelId {
    Pallet::<T>::do_register(
        owner.clone(),
        workers::<T>(T::MaxWorkers::get()),
        H256::repeat_byte(1),
        H256::repeat_byte(2),
        policy::<T>(),
        new_lineage(),
        PrivacyMode::PerQuery,
        true,
    )
    .expect("valid model")
}

fn assigned<T: Config>(r: RequestId) -> T::AccountId {
    Requests::<T>::get(r).expect("request").worker
}

/// Lock the model as a worker would find it at a limit.
fn exhaust<T: Config>(id: ModelId) {
    Models::<T>::mutate(id, |m| {
        if let Some(m) = m {
            m.state = ModelState::Exhausted;
            m.queries = m.policy.max_queries_per_epoch;
        }
    });
}

/// Every worker of the model attests the current epoch's erasure, as they must before one
/// of them resets or retrains; returns the last (the one the scans find last).
fn attested<T: Config>(id: ModelId) -> T::AccountId {
    let m = Models::<T>::get(id).expect("model");
    for w in m.workers.iter() {
        Pallet::<T>::attest_erasure(
            RawOrigin::Signed(w.clone()).into(),
            id,
            m.epoch,
            Some(H256::repeat_byte(8)),
            1,
        )
        .expect("attested");
    }
    m.workers.last().expect("a worker").clone()
}

fn pending_request<T: Config>(model_id: ModelId, who: &T::AccountId) -> RequestId {
    let id = NextRequestId::<T>::get();
    Pallet::<T>::request_inference(
        RawOrigin::Signed(who.clone()).into(),
        model_id,
        H256::repeat_byte(7),
    )
    .expect("request accepted");
    id
}

/// Give the model an aggregator (independent of its owner and workers).
fn aggregated<T: Config>(model_id: ModelId, owner: &T::AccountId) -> T::AccountId {
    let aggregator = funded::<T>("aggregator", 0);
    Pallet::<T>::set_sealing_key(RawOrigin::Signed(aggregator.clone()).into(), Some([7; 32]))
        .expect("sealing key published");
    Pallet::<T>::set_aggregator(
        RawOrigin::Signed(owner.clone()).into(),
        model_id,
        Some(aggregator.clone()),
    )
    .expect("aggregator set");
    aggregator
}

/// A contribution of `MinAnonymityK` rows by clinic `i`, sealed to the model's aggregator.
fn contribution<T: Config>(model_id: ModelId, i: u32) -> ContributionId {
    let id = NextContributionId::<T>::get();
    Pallet::<T>::contribute_data(
        RawOrigin::Signed(funded::<T>("clinic", i)).into(),
        model_id,
        H256::from_low_u64_be(u64::from(i) + 1),
        T::MinAnonymityK::get(),
    )
    .expect("contributed");
    id
}

/// `q` distinct quasi-identifier names of the longest length.
fn quasi_identifiers<T: Config>(
    q: u32,
) -> BoundedVec<BoundedVec<u8, T::MaxQiNameLen>, T::MaxQuasiIdentifiers> {
    let len = T::MaxQiNameLen::get() as usize;
    (0..q)
        .map(|i| {
            let mut name = alloc::vec![b'q'; len];
            for (b, x) in name.iter_mut().zip(i.to_le_bytes()) {
                *b = x.wrapping_add(b'a');
            }
            name.try_into().expect("len = MaxQiNameLen")
        })
        .collect::<Vec<_>>()
        .try_into()
        .expect("q ≤ MaxQuasiIdentifiers")
}

/// Publish a release with `commitment` of `c` fresh contributions (the model has its
/// aggregator).
fn release<T: Config>(model_id: ModelId, aggregator: &T::AccountId, commitment: H256, c: u32) {
    let contributions: BoundedVec<_, _> = (0..c)
        .map(|i| contribution::<T>(model_id, i))
        .collect::<Vec<_>>()
        .try_into()
        .expect("c ≤ MaxContributionsPerRelease");
    let k = T::MinAnonymityK::get();
    Pallet::<T>::publish_dataset(
        RawOrigin::Signed(aggregator.clone()).into(),
        model_id,
        commitment,
        k,
        k,
        quasi_identifiers::<T>(1),
        k,
        contributions,
    )
    .expect("published");
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_model(w: Linear<0, { T::MaxWorkers::get() }>) {
        let owner = funded::<T>("owner", 0);
        let ws = workers::<T>(w);
        #[extrinsic_call]
        _(
            RawOrigin::Signed(owner),
            ws,
            H256::repeat_byte(1),
            H256::repeat_byte(2),
            policy::<T>(),
            new_lineage(),
            private_mode(),
        );
        assert_eq!(NextModelId::<T>::get(), 1);
        assert_eq!(NextLineageId::<T>::get(), 1);
    }

    #[benchmark]
    fn update_policy() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let looser = Policy {
            max_queries_per_epoch: 20_000,
            ..policy::<T>()
        };
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id, looser);
        assert!(Models::<T>::get(id).expect("model").next_policy.is_some());
    }

    #[benchmark]
    fn set_workers(w: Linear<0, { T::MaxWorkers::get() }>) {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        // With an aggregator: the new list is checked against it.
        aggregated::<T>(id, &owner);
        let ws: BoundedVec<_, _> = (0..w)
            .map(|i| funded::<T>("new-worker", i))
            .collect::<Vec<_>>()
            .try_into()
            .expect("w ≤ MaxWorkers");
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id, ws);
        assert_eq!(Models::<T>::get(id).expect("model").workers.len() as u32, w);
    }

    #[benchmark]
    fn retire_model() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id);
        assert_eq!(
            Models::<T>::get(id).expect("model").state,
            ModelState::Retired
        );
    }

    #[benchmark]
    fn register_eval_key() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(client.clone()), id, H256::repeat_byte(9));
        assert!(EvalKeys::<T>::contains_key(&client, id));
    }

    #[benchmark]
    fn request_inference() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        // Worst case: the caller's first request (usage deposit held), an eval key to read,
        // a deadline slot one short of full, and the request that reaches K (extra state
        // write and event).
        Pallet::<T>::register_eval_key(
            RawOrigin::Signed(client.clone()).into(),
            id,
            H256::repeat_byte(9),
        )
        .expect("eval key");
        for i in 1..T::MaxRequestsPerBlock::get() {
            pending_request::<T>(id, &funded::<T>("other", i));
        }
        Models::<T>::mutate(id, |m| {
            if let Some(m) = m {
                m.policy.max_queries_per_epoch = m.queries + 1;
            }
        });
        #[extrinsic_call]
        _(RawOrigin::Signed(client.clone()), id, H256::repeat_byte(8));
        assert_eq!(
            Models::<T>::get(id).expect("model").state,
            ModelState::Exhausted
        );
        assert!(Usage::<T>::contains_key(id, &client));
    }

    #[benchmark]
    fn submit_result() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        let r = pending_request::<T>(id, &client);
        #[extrinsic_call]
        _(RawOrigin::Signed(assigned::<T>(r)), r, H256::repeat_byte(3));
        assert!(matches!(
            Requests::<T>::get(r).expect("request").status,
            RequestStatus::Completed { .. }
        ));
    }

    #[benchmark]
    fn reject_request() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        let r = pending_request::<T>(id, &client);
        #[extrinsic_call]
        _(
            RawOrigin::Signed(assigned::<T>(r)),
            r,
            RejectReason::CommitmentMismatch,
        );
        assert!(matches!(
            Requests::<T>::get(r).expect("request").status,
            RequestStatus::Rejected { .. }
        ));
    }

    #[benchmark]
    fn reset_model() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        // A waiting policy is applied: the costlier path.
        Pallet::<T>::update_policy(
            RawOrigin::Signed(owner.clone()).into(),
            id,
            Policy {
                max_queries_per_epoch: 20_000,
                ..policy::<T>()
            },
        )
        .expect("policy");
        // ... by a worker, which reads its erasure attestation.
        exhaust::<T>(id);
        let worker = attested::<T>(id);
        #[extrinsic_call]
        _(RawOrigin::Signed(worker), id);
        assert_eq!(Models::<T>::get(id).expect("model").epoch, 1);
    }

    #[benchmark]
    fn retrain_model() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        // Worst case: a worker with the owner's authorisation, onto a new lineage (deposit
        // held, zCDP budget converted), applying a waiting policy.
        Pallet::<T>::update_policy(
            RawOrigin::Signed(owner.clone()).into(),
            id,
            Policy {
                account_epsilon_budget: 50 * PRIVACY_SCALE,
                ..policy::<T>()
            },
        )
        .expect("policy");
        // ... onto a published release of the model's aggregator (looked up and marked used).
        let aggregator = aggregated::<T>(id, &owner);
        release::<T>(id, &aggregator, H256::repeat_byte(6), 1);
        let to = RetrainAuthorisation {
            weights_commitment: H256::repeat_byte(5),
            dataset_commitment: H256::repeat_byte(6),
            lineage: new_lineage(),
            privacy: private_mode(),
        };
        Pallet::<T>::authorise_retrain(RawOrigin::Signed(owner).into(), id, to.clone())
            .expect("authorised");
        exhaust::<T>(id);
        let worker = attested::<T>(id);
        #[extrinsic_call]
        _(
            RawOrigin::Signed(worker),
            id,
            to.weights_commitment,
            to.dataset_commitment,
            to.lineage,
            to.privacy,
        );
        let m = Models::<T>::get(id).expect("model");
        assert_eq!((m.generation, m.lineage), (1, 1));
        assert_eq!(
            Releases::<T>::get(0).expect("release").used_by_generation,
            Some(1)
        );
    }

    #[benchmark]
    fn authorise_retrain() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        // Onto a release: the aggregator rule is checked.
        let aggregator = aggregated::<T>(id, &owner);
        release::<T>(id, &aggregator, H256::repeat_byte(6), 1);
        let to = RetrainAuthorisation {
            weights_commitment: H256::repeat_byte(5),
            dataset_commitment: H256::repeat_byte(6),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id, to);
        assert!(RetrainAuthorisations::<T>::contains_key(id));
    }

    #[benchmark]
    fn revoke_retrain() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        RetrainAuthorisations::<T>::insert(
            id,
            RetrainAuthorisation {
                weights_commitment: H256::repeat_byte(5),
                dataset_commitment: H256::repeat_byte(6),
                lineage: LineageChoice::Continue,
                privacy: PrivacyMode::PerQuery,
            },
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id);
        assert!(!RetrainAuthorisations::<T>::contains_key(id));
    }

    #[benchmark]
    fn remove_eval_key() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        Pallet::<T>::register_eval_key(
            RawOrigin::Signed(client.clone()).into(),
            id,
            H256::repeat_byte(9),
        )
        .expect("eval key");
        #[extrinsic_call]
        _(RawOrigin::Signed(client.clone()), id);
        assert!(!EvalKeys::<T>::contains_key(&client, id));
    }

    #[benchmark]
    fn clear_usage() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        pending_request::<T>(id, &client);
        Pallet::<T>::retrain_model(
            RawOrigin::Signed(owner).into(),
            id,
            H256::repeat_byte(5),
            H256::repeat_byte(6),
            new_lineage(),
            PrivacyMode::PerQuery,
        )
        .expect("retrained");
        #[extrinsic_call]
        _(RawOrigin::Signed(client.clone()), id);
        assert!(!Usage::<T>::contains_key(id, &client));
    }

    #[benchmark]
    fn set_bounds() {
        let mut b = Bounds::<T>::get();
        b.request_timeout = 50u32.into();
        #[extrinsic_call]
        _(RawOrigin::Root, b);
        assert_eq!(Bounds::<T>::get().request_timeout, 50u32.into());
    }

    #[benchmark]
    fn expire_model() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let later: BlockNumberFor<T> = frame_system::Pallet::<T>::block_number() + 20_000u32.into();
        frame_system::Pallet::<T>::set_block_number(later);
        let caller = funded::<T>("caller", 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(caller), id);
        assert_eq!(
            Models::<T>::get(id).expect("model").state,
            ModelState::Expired
        );
    }

    #[benchmark]
    fn on_initialize(
        t: Linear<0, { T::MaxRequestsPerBlock::get() }>,
        p: Linear<0, { T::MaxRequestsPerBlock::get() }>,
    ) {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        // p answered requests from an earlier block, queued for pruning now ...
        let mut finished = Vec::new();
        for i in 0..p {
            let r = pending_request::<T>(id, &funded::<T>("done", i));
            Pallet::<T>::submit_result(
                RawOrigin::Signed(assigned::<T>(r)).into(),
                r,
                H256::repeat_byte(3),
            )
            .expect("answered");
            finished.push(r);
        }
        let later = frame_system::Pallet::<T>::block_number() + 1u32.into();
        frame_system::Pallet::<T>::set_block_number(later);
        // ... and t pending requests that time out now (the refund path), each on a model and
        // lineage of its own: the worst case reads and writes every record of every refund.
        let deadline = later + Bounds::<T>::get().request_timeout;
        for i in 0..t {
            let other = model::<T>(&funded::<T>("owner", i + 1));
            pending_request::<T>(other, &funded::<T>("client", i));
        }
        let queue: BoundedVec<_, _> = finished.try_into().expect("p ≤ MaxRequestsPerBlock");
        PruneQueue::<T>::insert(deadline, queue);
        #[block]
        {
            Pallet::<T>::on_initialize(deadline);
        }
        assert!(Models::<T>::iter_values().all(|m| m.pending == 0));
        assert_eq!(Requests::<T>::iter().count() as u32, t);
    }

    #[benchmark]
    fn set_aggregator() {
        let owner = funded::<T>("owner", 0);
        // MaxWorkers workers to check the aggregator against.
        let id = model::<T>(&owner);
        let aggregator = funded::<T>("aggregator", 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id, Some(aggregator.clone()));
        assert_eq!(Aggregators::<T>::get(id), Some(aggregator));
    }

    #[benchmark]
    fn set_sealing_key() {
        // First publication: the path that holds the deposit.
        let who = funded::<T>("aggregator", 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), Some([9; 32]));
        assert_eq!(SealingKeys::<T>::get(&who).map(|r| r.key), Some([9; 32]));
    }

    #[benchmark]
    fn attest_erasure() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        exhaust::<T>(id);
        // Worst case: all other workers attested before; the last one completes the record
        // (the longest membership scans).
        let workers = Models::<T>::get(id).expect("model").workers;
        let (last, others) = workers.split_last().expect("a worker");
        for w in others {
            Pallet::<T>::attest_erasure(
                RawOrigin::Signed(w.clone()).into(),
                id,
                0,
                Some(H256::repeat_byte(8)),
                1,
            )
            .expect("attested");
        }
        #[extrinsic_call]
        _(
            RawOrigin::Signed(last.clone()),
            id,
            0,
            Some(H256::repeat_byte(8)),
            u64::MAX,
        );
        let record = Erasures::<T>::get(id).expect("record");
        assert_eq!(record.attestations.len(), workers.len());
    }

    #[benchmark]
    fn contribute_data() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        aggregated::<T>(id, &owner);
        let clinic = funded::<T>("clinic", 0);
        #[extrinsic_call]
        _(
            RawOrigin::Signed(clinic),
            id,
            H256::repeat_byte(4),
            T::MaxContributionRows::get(),
        );
        assert!(Contributions::<T>::contains_key(0));
    }

    #[benchmark]
    fn withdraw_contribution() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        aggregated::<T>(id, &owner);
        let c = contribution::<T>(id, 0);
        let clinic = Contributions::<T>::get(c)
            .expect("contribution")
            .contributor;
        #[extrinsic_call]
        _(RawOrigin::Signed(clinic), c);
        assert!(!Contributions::<T>::contains_key(c));
    }

    #[benchmark]
    fn publish_dataset(
        c: Linear<1, { T::MaxContributionsPerRelease::get() }>,
        q: Linear<1, { T::MaxQuasiIdentifiers::get() }>,
    ) {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let aggregator = aggregated::<T>(id, &owner);
        let contributions: BoundedVec<_, _> = (0..c)
            .map(|i| contribution::<T>(id, i))
            .collect::<Vec<_>>()
            .try_into()
            .expect("c ≤ MaxContributionsPerRelease");
        let k = T::MinAnonymityK::get();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(aggregator),
            id,
            H256::repeat_byte(6),
            k,
            k,
            quasi_identifiers::<T>(q),
            k,
            contributions,
        );
        assert_eq!(
            Releases::<T>::get(0).expect("release").contributions.len() as u32,
            c
        );
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
