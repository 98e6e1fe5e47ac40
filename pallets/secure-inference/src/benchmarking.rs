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
        max_queries_per_epoch: 1_000,
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

fn model<T: Config>(owner: &T::AccountId) -> ModelId {
    Pallet::<T>::do_register(
        owner.clone(),
        workers::<T>(T::MaxWorkers::get()),
        H256::repeat_byte(1),
        H256::repeat_byte(2),
        policy::<T>(),
    )
    .expect("valid model")
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
        );
        assert_eq!(NextModelId::<T>::get(), 1);
    }

    #[benchmark]
    fn update_policy() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let looser = Policy {
            max_queries_per_epoch: 2_000,
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
        // Worst case: an earlier usage record and an eval key to read, and the request that
        // reaches K (extra state write and event).
        Pallet::<T>::register_eval_key(
            RawOrigin::Signed(client.clone()).into(),
            id,
            H256::repeat_byte(9),
        )
        .expect("eval key");
        pending_request::<T>(id, &client);
        Models::<T>::mutate(id, |m| {
            if let Some(m) = m {
                m.policy.max_queries_per_epoch = 2;
            }
        });
        #[extrinsic_call]
        _(RawOrigin::Signed(client.clone()), id, H256::repeat_byte(8));
        assert_eq!(
            Models::<T>::get(id).expect("model").state,
            ModelState::Exhausted
        );
    }

    #[benchmark]
    fn submit_result() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let client = funded::<T>("client", 0);
        let r = pending_request::<T>(id, &client);
        let worker = Models::<T>::get(id).expect("model").workers[0].clone();
        #[extrinsic_call]
        _(RawOrigin::Signed(worker), r, H256::repeat_byte(3));
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
        let worker = Models::<T>::get(id).expect("model").workers[0].clone();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(worker),
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
                max_queries_per_epoch: 2_000,
                ..policy::<T>()
            },
        )
        .expect("policy");
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), id);
        assert_eq!(Models::<T>::get(id).expect("model").epoch, 1);
    }

    #[benchmark]
    fn retrain_model() {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        Pallet::<T>::update_policy(
            RawOrigin::Signed(owner.clone()).into(),
            id,
            Policy {
                account_epsilon_budget: 50 * PRIVACY_SCALE,
                ..policy::<T>()
            },
        )
        .expect("policy");
        #[extrinsic_call]
        _(
            RawOrigin::Signed(owner),
            id,
            H256::repeat_byte(5),
            H256::repeat_byte(6),
        );
        assert_eq!(Models::<T>::get(id).expect("model").generation, 1);
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
    fn on_initialize(n: Linear<0, { T::MaxRequestsPerBlock::get() }>) {
        let owner = funded::<T>("owner", 0);
        let id = model::<T>(&owner);
        let mut deadline = Default::default();
        for i in 0..n {
            let client = funded::<T>("client", i);
            let r = pending_request::<T>(id, &client);
            deadline = Requests::<T>::get(r).expect("request").deadline;
        }
        #[block]
        {
            Pallet::<T>::on_initialize(deadline);
        }
        assert_eq!(Models::<T>::get(id).expect("model").pending, 0);
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
