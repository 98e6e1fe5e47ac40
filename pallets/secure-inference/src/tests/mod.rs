//! Unit tests of the secure-inference pallet on the mock runtime, split by concern. Every test
//! ends with `try_state` (see `mock::test`).

mod assignment;
mod calls;
mod coalition;
mod datasets;
mod deposits;
mod erasure;
mod private_model;
mod prop;

use crate::{mock::*, privacy::PRIVACY_SCALE, *};
use frame_support::{
    assert_noop, assert_ok,
    traits::{
        fungible::{InspectHold, Mutate},
        Hooks,
    },
    BoundedVec,
};
use sp_core::H256;
use sp_runtime::{BuildStorage, DispatchError, DispatchResult};

type Err = Error<Test>;

/// A policy where K and the idle timeout never stop the attacker, only the privacy rules
/// (budgets, answer limits) do.
fn roomy() -> Policy<u64, u64> {
    Policy {
        max_queries_per_epoch: 1_000,
        idle_timeout: 1_000,
        fee_per_query: 0,
        ..policy()
    }
}

/// Fresh funded accounts, as free to create as Sybils are.
fn sybils(n: u64) -> Vec<u64> {
    (1_000..1_000 + n)
        .inspect(|a| {
            Balances::set_balance(a, INITIAL_BALANCE);
        })
        .collect()
}

fn h(n: u8) -> H256 {
    H256::repeat_byte(n)
}

fn workers(w: &[u64]) -> BoundedVec<u64, frame_support::traits::ConstU32<MAX_WORKERS>> {
    w.to_vec().try_into().unwrap()
}

fn new_lineage() -> LineageChoice {
    LineageChoice::New {
        epsilon_budget: LINEAGE_EPSILON,
    }
}

fn register_with(p: Policy<u64, u64>) -> ModelId {
    register_on(p, new_lineage())
}

fn register_on(p: Policy<u64, u64>, lineage: LineageChoice) -> ModelId {
    register_mode(p, lineage, PrivacyMode::PerQuery)
}

fn register_mode(p: Policy<u64, u64>, lineage: LineageChoice, mode: PrivacyMode) -> ModelId {
    let id = NextModelId::<Test>::get();
    assert_ok!(SecureInference::register_model(
        RuntimeOrigin::signed(OWNER),
        workers(&[WORKER]),
        h(1),
        h(2),
        p,
        lineage,
        mode
    ));
    id
}

/// The owner retrains `id` onto `lineage` with weights `h(w)` and dataset `h(d)`.
fn retrain(id: ModelId, w: u8, d: u8, lineage: LineageChoice) -> DispatchResult {
    SecureInference::retrain_model(
        RuntimeOrigin::signed(OWNER),
        id,
        h(w),
        h(d),
        lineage,
        PrivacyMode::PerQuery,
    )
}

fn lineage(id: ModelId) -> Lineage<Test> {
    Lineages::<Test>::get(model(id).lineage).unwrap()
}

fn register() -> ModelId {
    register_with(policy())
}

fn request(who: u64, model: ModelId) -> RequestId {
    let id = NextRequestId::<Test>::get();
    assert_ok!(SecureInference::request_inference(
        RuntimeOrigin::signed(who),
        model,
        h(7)
    ));
    id
}

/// `worker` attests that it shredded `id`'s current epoch, as it must before ending it.
fn attest_by(worker: u64, id: ModelId) {
    assert_ok!(SecureInference::attest_erasure(
        RuntimeOrigin::signed(worker),
        id,
        model(id).epoch,
        Some(h(0xee)),
        3
    ));
}

fn attest(id: ModelId) {
    attest_by(WORKER, id)
}

fn model(id: ModelId) -> ModelInfo<Test> {
    Models::<Test>::get(id).unwrap()
}

fn usage(id: ModelId, who: u64) -> AccountStatus {
    SecureInference::account_status(id, &who).unwrap()
}

/// Fees held from `who`.
fn held(who: u64) -> u64 {
    held_for(HoldReason::InferenceFee, who)
}

fn held_for(reason: HoldReason, who: u64) -> u64 {
    Balances::balance_on_hold(&RuntimeHoldReason::SecureInference(reason), &who)
}

fn last_event() -> RuntimeEvent {
    System::events().pop().expect("an event").event
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::SecureInference(e) => Some(e),
            _ => None,
        })
        .collect()
}
