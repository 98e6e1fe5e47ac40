//! Random call sequences keep every invariant (`try_state`) and the fee holds.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Request(u8),
    Submit(u8),
    Reject(u8),
    Reset(bool),
    /// The worker attests the current epoch's erasure.
    Attest,
    /// 0: continue the lineage, 1: a new lineage, 2: join the first lineage.
    Retrain(u8),
    Expire,
    ClearUsage(u8),
    Tighten(u32),
    Loosen(u32),
    Advance(u8),
    Retire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3).prop_map(Op::Request),
        3 => any::<u8>().prop_map(Op::Submit),
        2 => any::<u8>().prop_map(Op::Reject),
        1 => any::<bool>().prop_map(Op::Reset),
        1 => Just(Op::Attest),
        2 => (0u8..3).prop_map(Op::Retrain),
        1 => (0u8..3).prop_map(Op::ClearUsage),
        1 => Just(Op::Expire),
        1 => (1u32..6).prop_map(Op::Tighten),
        1 => (1u32..20).prop_map(Op::Loosen),
        2 => (1u8..40).prop_map(Op::Advance),
        1 => Just(Op::Retire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn invariants_hold_after_every_call(ops in proptest::collection::vec(op(), 1..60)) {
        new_test_ext().execute_with(|| {
            // A small lineage (ε 3: six queries) so that it binds often, and two workers.
            let id = register_on(
                Policy { max_queries_per_epoch: 6, ..policy() },
                LineageChoice::New { epsilon_budget: 3 * PRIVACY_SCALE },
            );
            assert_ok!(SecureInference::set_workers(
                RuntimeOrigin::signed(OWNER), id, workers(&[WORKER, WORKER2])));
            let mut retrains = 10u8;
            // Every charge ever made, minus every refund, per lineage: what try_state's sums
            // must never exceed and the lineage must record exactly.
            let mut charged: std::collections::BTreeMap<LineageId, i128> = Default::default();
            // (lineage, charge) of every request, remembered here: requests are pruned.
            let mut charges: std::collections::BTreeMap<RequestId, (LineageId, i128)> =
                Default::default();
            for op in ops {
                let accounts = [ALICE, BOB, EVE];
                // Results are ignored: refusals are legitimate; the invariants are what we check.
                let _ = match op {
                    Op::Request(a) => SecureInference::request_inference(
                        RuntimeOrigin::signed(accounts[a as usize]), id, h(7)),
                    Op::Submit(i) => {
                        let r = i as u64 % NextRequestId::<Test>::get().max(1);
                        let w = Requests::<Test>::get(r).map(|r| r.worker).unwrap_or(WORKER);
                        SecureInference::submit_result(RuntimeOrigin::signed(w), r, h(8))
                    },
                    Op::Reject(i) => {
                        let r = i as u64 % NextRequestId::<Test>::get().max(1);
                        let w = Requests::<Test>::get(r).map(|r| r.worker).unwrap_or(WORKER);
                        SecureInference::reject_request(
                            RuntimeOrigin::signed(w), r, RejectReason::InputMissing)
                    },
                    Op::Attest => SecureInference::attest_erasure(
                        RuntimeOrigin::signed(WORKER), id, model(id).epoch, Some(h(9)), 1),
                    Op::Reset(by_owner) => SecureInference::reset_model(
                        RuntimeOrigin::signed(if by_owner { OWNER } else { WORKER }), id),
                    Op::Retrain(choice) => {
                        retrains = retrains.wrapping_add(2);
                        let lineage = match choice {
                            0 => LineageChoice::Continue,
                            1 => LineageChoice::New { epsilon_budget: 3 * PRIVACY_SCALE },
                            _ => LineageChoice::Join(0),
                        };
                        SecureInference::retrain_model(
                            RuntimeOrigin::signed(OWNER), id, h(retrains), h(retrains.wrapping_add(1)), lineage, PrivacyMode::PerQuery)
                    },
                    Op::ClearUsage(a) => SecureInference::clear_usage(
                        RuntimeOrigin::signed(accounts[a as usize]), id),
                    Op::Expire => SecureInference::expire_model(RuntimeOrigin::signed(EVE), id),
                    Op::Tighten(k) | Op::Loosen(k) => SecureInference::update_policy(
                        RuntimeOrigin::signed(OWNER), id, Policy { max_queries_per_epoch: k, ..policy() }),
                    Op::Advance(n) => { run_to_block(System::block_number() + n as u64); Ok(()) },
                    Op::Retire => SecureInference::retire_model(RuntimeOrigin::signed(OWNER), id),
                };
                let now = System::block_number();
                if let Err(e) = SecureInference::do_try_state(now) {
                    panic!("invariant broken: {e:?}");
                }
                // Replay this block's charges and refunds from the events: each lineage records
                // exactly what was charged and not refunded, and never more than its budget.
                for e in events() {
                    match e {
                        Event::InferenceRequested { request_id, privacy_charged, .. } => {
                            let l = Requests::<Test>::get(request_id).unwrap().lineage;
                            charges.insert(request_id, (l, privacy_charged as i128));
                            *charged.entry(l).or_default() += privacy_charged as i128;
                        }
                        Event::RequestRejected { request_id, .. }
                        | Event::RequestTimedOut { request_id, .. } => {
                            let (l, c) = charges[&request_id];
                            *charged.entry(l).or_default() -= c;
                        }
                        _ => {}
                    }
                }
                System::reset_events();
                for (l, sum) in &charged {
                    let lineage = Lineages::<Test>::get(l).unwrap();
                    prop_assert_eq!(lineage.spent as i128, *sum);
                    prop_assert!(lineage.spent <= lineage.budget);
                }
                // Holds always match the pending fees.
                let pending_fees: u64 = Requests::<Test>::iter_values()
                    .filter(|r| r.status == RequestStatus::Pending)
                    .map(|r| r.fee)
                    .sum();
                prop_assert_eq!(pending_fees, held(ALICE) + held(BOB) + held(EVE));
            }
            Ok(())
        })?;
    }
}
