//! One request, one worker, one noise draw: every request is assigned at creation to exactly
//! one of the model's workers, and only that worker may answer or refuse it.

use super::*;

fn two_workers() -> ModelId {
    let id = register_with(Policy {
        max_queries_per_epoch: 50,
        epoch_lifetime: 1_000,
        idle_timeout: 1_000,
        fee_per_query: 0,
        ..policy()
    });
    assert_ok!(SecureInference::set_workers(
        RuntimeOrigin::signed(OWNER),
        id,
        workers(&[WORKER, WORKER2])
    ));
    id
}

#[test]
fn requests_are_assigned_round_robin_by_id() {
    test(|| {
        let id = two_workers();
        for who in [ALICE, BOB, EVE, ALICE] {
            let r = request(who, id);
            let expected = if r.is_multiple_of(2) { WORKER } else { WORKER2 };
            assert_eq!(Requests::<Test>::get(r).unwrap().worker, expected);
            assert!(events().iter().any(|e| matches!(
                e,
                Event::InferenceRequested { request_id, worker, .. }
                    if *request_id == r && *worker == expected
            )));
        }
    });
}

#[test]
fn only_the_assigned_worker_answers_or_refuses() {
    test(|| {
        let id = two_workers();
        let r = request(ALICE, id);
        let assigned = Requests::<Test>::get(r).unwrap().worker;
        let other = if assigned == WORKER { WORKER2 } else { WORKER };
        // The attack: a second authorised worker evaluates too and tries to deliver its own
        // draw (or to refuse, refunding a request the assigned worker may have answered).
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(other), r, h(8)),
            Err::NotAssignedWorker
        );
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(other),
                r,
                RejectReason::InputMissing
            ),
            Err::NotAssignedWorker
        );
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(EVE), r, h(8)),
            Err::NotWorker
        );
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(assigned),
            r,
            h(8)
        ));
        let answers = events()
            .iter()
            .filter(|e| matches!(e, Event::ResultSubmitted { request_id, .. } if *request_id == r))
            .count();
        assert_eq!(answers, 1);
    });
}

#[test]
fn a_removed_workers_requests_time_out_and_are_refunded() {
    test(|| {
        let id = two_workers();
        let r = request(ALICE, id);
        let assigned = Requests::<Test>::get(r).unwrap().worker;
        let other = if assigned == WORKER { WORKER2 } else { WORKER };
        assert_ok!(SecureInference::set_workers(
            RuntimeOrigin::signed(OWNER),
            id,
            workers(&[other])
        ));
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(assigned), r, h(8)),
            Err::NotWorker
        );
        // Not reassigned: the remaining worker cannot answer it either.
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(other), r, h(8)),
            Err::NotAssignedWorker
        );
        run_to_block(Requests::<Test>::get(r).unwrap().deadline);
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::TimedOut
        );
        assert_eq!((usage(id, ALICE).spent, lineage(id).spent), (0, 0));
        // New requests go to the remaining worker.
        let next = request(BOB, id);
        assert_eq!(Requests::<Test>::get(next).unwrap().worker, other);
    });
}

#[test]
fn a_model_without_workers_takes_no_requests() {
    test(|| {
        let id = register();
        assert_ok!(SecureInference::set_workers(
            RuntimeOrigin::signed(OWNER),
            id,
            workers(&[])
        ));
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::NoWorkers
        );
    });
}
