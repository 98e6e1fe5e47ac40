//! Bounded state: deposits for what users can grow, and pruning of finished requests.

use super::*;

#[test]
fn registration_and_new_lineages_hold_deposits() {
    test(|| {
        let id = register();
        assert_eq!(
            held_for(HoldReason::ModelDeposit, OWNER),
            MODEL_DEPOSIT + LINEAGE_DEPOSIT
        );
        register_on(policy(), LineageChoice::Join(model(id).lineage));
        assert_eq!(
            held_for(HoldReason::ModelDeposit, OWNER),
            2 * MODEL_DEPOSIT + LINEAGE_DEPOSIT
        );
        assert_ok!(retrain(id, 8, 9, new_lineage()));
        assert_eq!(
            held_for(HoldReason::ModelDeposit, OWNER),
            2 * MODEL_DEPOSIT + 2 * LINEAGE_DEPOSIT
        );
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(PAUPER),
                workers(&[WORKER]),
                h(1),
                h(2),
                policy(),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::CannotPayDeposit
        );
    });
}

#[test]
fn eval_key_records_hold_a_deposit_until_removed() {
    test(|| {
        let id = register();
        assert_ok!(SecureInference::register_eval_key(
            RuntimeOrigin::signed(ALICE),
            id,
            h(3)
        ));
        assert_ok!(SecureInference::register_eval_key(
            RuntimeOrigin::signed(ALICE),
            id,
            h(4)
        ));
        assert_eq!(
            held_for(HoldReason::EvalKeyDeposit, ALICE),
            EVAL_KEY_DEPOSIT,
            "a replacement holds nothing more"
        );
        assert_eq!(EvalKeys::<Test>::get(ALICE, id).unwrap().commitment, h(4));
        assert_ok!(SecureInference::remove_eval_key(
            RuntimeOrigin::signed(ALICE),
            id
        ));
        assert_eq!(held_for(HoldReason::EvalKeyDeposit, ALICE), 0);
        assert_eq!(
            last_event(),
            Event::EvalKeyRemoved {
                who: ALICE,
                model_id: id
            }
            .into()
        );
        assert_noop!(
            SecureInference::remove_eval_key(RuntimeOrigin::signed(ALICE), id),
            Err::EvalKeyNotFound
        );
        assert_noop!(
            SecureInference::register_eval_key(RuntimeOrigin::signed(PAUPER), id, h(3)),
            Err::CannotPayDeposit
        );
        let r = request(ALICE, id);
        assert_eq!(Requests::<Test>::get(r).unwrap().eval_key_commitment, None);
    });
}

#[test]
fn usage_records_hold_a_deposit_until_they_back_no_budget() {
    test(|| {
        let id = register_with(Policy {
            fee_per_query: 0,
            ..policy()
        });
        request(ALICE, id);
        request(ALICE, id);
        assert_eq!(held_for(HoldReason::UsageDeposit, ALICE), USAGE_DEPOSIT);
        // The record is ALICE's spending on this lineage: clearing it would refill her budget.
        assert_noop!(
            SecureInference::clear_usage(RuntimeOrigin::signed(ALICE), id),
            Err::UsageInUse
        );
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::clear_usage(RuntimeOrigin::signed(ALICE), id),
            Err::UsageInUse
        );
        assert_noop!(
            SecureInference::clear_usage(RuntimeOrigin::signed(BOB), id),
            Err::UsageNotFound
        );
        // Once the model moved to other rows, the record backs nothing.
        assert_ok!(retrain(id, 8, 9, new_lineage()));
        assert_ok!(SecureInference::clear_usage(
            RuntimeOrigin::signed(ALICE),
            id
        ));
        assert_eq!(held_for(HoldReason::UsageDeposit, ALICE), 0);
        assert!(Usage::<Test>::get(id, ALICE).is_none());
        // A retired model's records may go once nothing is pending.
        let r = request(BOB, id);
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::clear_usage(RuntimeOrigin::signed(BOB), id),
            Err::UsageInUse
        );
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            r,
            h(8)
        ));
        // ALICE's two requests of the first epoch are still pending.
        assert_noop!(
            SecureInference::clear_usage(RuntimeOrigin::signed(BOB), id),
            Err::UsageInUse
        );
        run_to_block(Requests::<Test>::get(r).unwrap().deadline);
        assert_eq!(model(id).pending, 0);
        assert_ok!(SecureInference::clear_usage(RuntimeOrigin::signed(BOB), id));
        assert_eq!(held_for(HoldReason::UsageDeposit, BOB), 0);
    });
}

#[test]
fn a_first_request_without_the_usage_deposit_is_refused() {
    test(|| {
        let id = register_with(Policy {
            fee_per_query: 0,
            ..policy()
        });
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(PAUPER), id, h(7)),
            Err::CannotPayDeposit
        );
    });
}

#[test]
fn finished_requests_are_pruned_after_the_retention_window() {
    test(|| {
        let id = register_with(Policy {
            idle_timeout: 1_000,
            ..policy()
        });
        let done = request(ALICE, id);
        let rejected = request(BOB, id);
        let lost = request(EVE, id);
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            done,
            h(8)
        ));
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            rejected,
            RejectReason::InputMissing
        ));
        let deadline = Requests::<Test>::get(lost).unwrap().deadline;
        run_to_block(deadline);
        assert_eq!(
            Requests::<Test>::get(lost).unwrap().status,
            RequestStatus::TimedOut
        );
        assert_eq!(
            PruneQueue::<Test>::get(deadline + RETENTION).to_vec(),
            vec![done, rejected, lost]
        );
        run_to_block(deadline + RETENTION - 1);
        assert!(Requests::<Test>::get(done).is_some());
        run_to_block(deadline + RETENTION);
        for r in [done, rejected, lost] {
            assert!(Requests::<Test>::get(r).is_none(), "request {r} not pruned");
        }
        assert!(PruneQueue::<Test>::get(deadline + RETENTION).is_empty());
        assert_eq!(Requests::<Test>::iter().count(), 0);
    });
}

#[test]
fn pruning_never_drops_a_pending_request() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        SecureInference::prune(r);
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::Pending
        );
    });
}
