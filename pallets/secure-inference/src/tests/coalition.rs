//! The lineage budget against coalitions: Sybil accounts, resets, retrains, refunds after an
//! answer, and a compromised worker key. Each attack first shows that the per-account rule
//! alone would have let it through, so it keeps attacking the path the lineage protects.

use super::*;

/// Every account asks until refused; returns the queries granted and the refusals.
fn drain(id: ModelId, accounts: &[u64]) -> (u64, Vec<(u64, DispatchError)>) {
    let mut granted = 0;
    let mut refusals = Vec::new();
    for &a in accounts {
        loop {
            match SecureInference::request_inference(RuntimeOrigin::signed(a), id, h(7)) {
                Ok(()) => granted += 1,
                // A block's request slots are full: the attacker just waits for the next.
                Err(e) if e == Err::TooManyRequestsInBlock.into() => {
                    run_to_block(System::block_number() + 1)
                }
                Err(e) => {
                    refusals.push((a, e));
                    break;
                }
            }
        }
    }
    (granted, refusals)
}

#[test]
fn sybil_coalition_is_bounded_by_the_lineage() {
    test(|| {
        let id = register_with(roomy());
        let cost = model(id).cost_per_query;
        let accounts = sybils(8);
        // The unprotected path: eight accounts of ε 2.0 each could spend ε 16 on these rows.
        let per_account: u64 = accounts.iter().map(|a| usage(id, *a).remaining).sum();
        assert!(
            per_account > LINEAGE_EPSILON,
            "the attack must exceed the lineage"
        );

        let (granted, refusals) = drain(id, &accounts);
        assert_eq!(
            granted * cost,
            LINEAGE_EPSILON,
            "the coalition spends exactly the lineage"
        );
        assert_eq!(lineage(id).spent, LINEAGE_EPSILON);
        // The accounts that were refused by the lineage still had their own budget left.
        let by_lineage: Vec<_> = refusals
            .iter()
            .filter(|(_, e)| *e == Err::LineageBudgetExhausted.into())
            .collect();
        assert!(by_lineage.len() >= 3, "{refusals:?}");
        for (a, _) in by_lineage {
            assert!(
                usage(id, *a).remaining >= cost,
                "account {a} was not budget-limited"
            );
            assert_eq!(usage(id, *a).queries_left_by_budget, 0);
        }
    });
}

#[test]
fn resets_and_continuing_retrains_do_not_refill_the_lineage() {
    test(|| {
        let id = register_with(roomy());
        let accounts = sybils(6);
        let (first, _) = drain(id, &accounts[..3]);
        assert_eq!(first, 12, "three accounts of four queries each");
        // A worker reset (after the model locks) and an owner reset: same rows, same lineage.
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        let (second, refusals) = drain(id, &accounts[3..]);
        assert_eq!(second, 8, "only ε 4 of the lineage was left: {refusals:?}");
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        // A retrain on the same or overlapping rows continues the lineage.
        assert_ok!(retrain(id, 8, 9, LineageChoice::Continue));
        assert_eq!(model(id).epoch, 3);
        let fresh = sybils(9);
        let (third, refusals) = drain(id, &fresh[6..]);
        assert_eq!(third, 0);
        assert!(refusals
            .iter()
            .all(|(_, e)| *e == Err::LineageBudgetExhausted.into()));
        // Only the owner's declaration of new rows opens a new budget.
        assert_ok!(retrain(
            id,
            10,
            11,
            LineageChoice::New {
                epsilon_budget: PRIVACY_SCALE
            }
        ));
        let (fourth, _) = drain(id, &fresh[6..]);
        assert_eq!(fourth, 2, "the new lineage's ε 1.0");
    });
}

#[test]
fn models_joining_a_lineage_share_its_budget() {
    test(|| {
        let a = register_with(roomy());
        let b = register_on(roomy(), LineageChoice::Join(model(a).lineage));
        assert_eq!(model(a).lineage, model(b).lineage);
        assert_eq!(NextLineageId::<Test>::get(), 1);
        let accounts = sybils(6);
        let (on_a, _) = drain(a, &accounts[..3]);
        let (on_b, refusals) = drain(b, &accounts[3..]);
        assert_eq!((on_a + on_b) * model(a).cost_per_query, LINEAGE_EPSILON);
        assert_eq!(on_b, 8, "{refusals:?}");
    });
}

#[test]
fn lineage_choices_are_checked() {
    test(|| {
        let a = register_with(roomy());
        let l = model(a).lineage;
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                roomy(),
                LineageChoice::Continue,
                PrivacyMode::PerQuery
            ),
            Err::NoLineageToContinue
        );
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                roomy(),
                LineageChoice::Join(7),
                PrivacyMode::PerQuery
            ),
            Err::LineageNotFound
        );
        // Another owner cannot spend (or pretend to share) these rows.
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(EVE),
                workers(&[WORKER]),
                h(1),
                h(2),
                roomy(),
                LineageChoice::Join(l),
                PrivacyMode::PerQuery
            ),
            Err::NotLineageOwner
        );
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                Policy {
                    epsilon_per_query: PRIVACY_SCALE / 10,
                    accounting: Accounting::Zcdp { delta_exponent: 6 },
                    ..roomy()
                },
                LineageChoice::Join(l),
                PrivacyMode::PerQuery
            ),
            Err::AccountingMismatch
        );
        for epsilon_budget in [0, PRIVACY_SCALE / 4, 1_001 * PRIVACY_SCALE] {
            assert_noop!(
                SecureInference::register_model(
                    RuntimeOrigin::signed(OWNER),
                    workers(&[WORKER]),
                    h(1),
                    h(2),
                    roomy(),
                    LineageChoice::New { epsilon_budget },
                    PrivacyMode::PerQuery
                ),
                Err::InvalidLineageBudget
            );
        }
        assert_eq!(
            events()
                .iter()
                .filter(|e| matches!(e, Event::LineageOpened { .. }))
                .count(),
            1
        );
    });
}

#[test]
fn zcdp_lineage_sums_rho_converted_once() {
    test(|| {
        let zcdp = Policy {
            epsilon_per_query: PRIVACY_SCALE / 10,
            accounting: Accounting::Zcdp { delta_exponent: 5 },
            ..roomy()
        };
        let id = register_on(
            zcdp,
            LineageChoice::New {
                epsilon_budget: PRIVACY_SCALE,
            },
        );
        let l = lineage(id);
        assert_eq!(l.budget, privacy::rho_budget(PRIVACY_SCALE, 5).unwrap());
        let cost = model(id).cost_per_query;
        assert_eq!(cost, 5_000, "ρ = ε²/2 = 0.005");
        let (granted, _) = drain(id, &sybils(3));
        assert_eq!(granted, l.budget / cost);
        let status = SecureInference::lineage_status(model(id).lineage).unwrap();
        assert!(status.spent <= status.budget);
        // The whole coalition's (ε, δ) stays within the declared ε.
        assert!(status.spent_epsilon <= PRIVACY_SCALE, "{status:?}");
    });
}

#[test]
fn a_completed_request_is_never_refunded() {
    test(|| {
        let id = register_with(Policy {
            fee_per_query: 10,
            ..roomy()
        });
        let r = request(ALICE, id);
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            r,
            h(8)
        ));
        let (spent, lineage_spent) = (usage(id, ALICE).spent, lineage(id).spent);
        assert!(spent > 0 && lineage_spent == spent);
        // The answer could be fetched now. The worker cannot take it back by rejecting ...
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(WORKER),
                r,
                RejectReason::EvaluationFailed
            ),
            Err::RequestNotPending
        );
        // ... nor does the deadline refund it.
        let deadline = Requests::<Test>::get(r).unwrap().deadline;
        run_to_block(deadline + 1);
        assert!(matches!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::Completed { .. }
        ));
        assert_eq!(
            (usage(id, ALICE).spent, lineage(id).spent),
            (spent, lineage_spent)
        );
        assert!(!events()
            .iter()
            .any(|e| matches!(e, Event::RequestTimedOut { .. })));
        // Pruned after the retention window: the charge stays.
        run_to_block(deadline + RETENTION);
        assert!(Requests::<Test>::get(r).is_none());
        assert_eq!(lineage(id).spent, lineage_spent);
    });
}

#[test]
fn refunds_return_the_lineage_charge() {
    test(|| {
        let id = register_with(roomy());
        let rejected = request(ALICE, id);
        let timed_out = request(BOB, id);
        assert_eq!(lineage(id).spent, 2 * model(id).cost_per_query);
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            rejected,
            RejectReason::InputMissing
        ));
        assert_eq!(lineage(id).spent, model(id).cost_per_query);
        run_to_block(Requests::<Test>::get(timed_out).unwrap().deadline);
        assert_eq!(lineage(id).spent, 0);
        assert_eq!(usage(id, BOB).spent, 0);
    });
}

#[test]
fn a_worker_key_cannot_restart_budgets() {
    test(|| {
        let id = register_with(Policy {
            max_queries_per_epoch: 1,
            ..roomy()
        });
        request(ALICE, id);
        assert_eq!(model(id).state, ModelState::Exhausted);
        attest(id);
        // The compromised worker may reset (same rows, same lineage) but not retrain, with any
        // lineage choice, without the owner's authorisation.
        for choice in [
            LineageChoice::Continue,
            LineageChoice::New {
                epsilon_budget: LINEAGE_EPSILON,
            },
        ] {
            assert_noop!(
                SecureInference::retrain_model(
                    RuntimeOrigin::signed(WORKER),
                    id,
                    h(8),
                    h(9),
                    choice,
                    PrivacyMode::PerQuery
                ),
                Err::RetrainNotAuthorised
            );
        }
        let auth = RetrainAuthorisation {
            weights_commitment: h(8),
            dataset_commitment: h(9),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            auth.clone()
        ));
        // Anything but exactly what the owner signed is refused.
        let attempts = [
            (h(66), h(9), LineageChoice::Continue),
            (h(8), h(66), LineageChoice::Continue),
            (
                h(8),
                h(9),
                LineageChoice::New {
                    epsilon_budget: LINEAGE_EPSILON,
                },
            ),
        ];
        for (w, d, l) in attempts {
            assert_noop!(
                SecureInference::retrain_model(
                    RuntimeOrigin::signed(WORKER),
                    id,
                    w,
                    d,
                    l,
                    PrivacyMode::PerQuery
                ),
                Err::RetrainNotAuthorised
            );
        }
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(WORKER),
            id,
            h(8),
            h(9),
            LineageChoice::Continue,
            PrivacyMode::PerQuery
        ));
        assert_eq!(model(id).weights_commitment, h(8));
        assert_eq!(
            usage(id, ALICE).spent,
            model(id).cost_per_query,
            "budgets carried on"
        );
        // Consumed: the next lock cannot reuse it.
        assert!(RetrainAuthorisations::<Test>::get(id).is_none());
        request(ALICE, id);
        attest(id);
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                h(10),
                h(9),
                LineageChoice::Continue,
                PrivacyMode::PerQuery
            ),
            Err::RetrainNotAuthorised
        );
    });
}

#[test]
fn retrain_authorisation_rules() {
    test(|| {
        let id = register_with(roomy());
        let auth = |w: u8, l: LineageChoice| RetrainAuthorisation {
            weights_commitment: h(w),
            dataset_commitment: h(9),
            lineage: l,
            privacy: PrivacyMode::PerQuery,
        };
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(WORKER),
                id,
                auth(8, LineageChoice::Continue)
            ),
            Err::NotOwner
        );
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(OWNER),
                id,
                auth(1, LineageChoice::Continue)
            ),
            Err::CommitmentUnchanged
        );
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(OWNER),
                id,
                auth(8, LineageChoice::Join(5))
            ),
            Err::LineageNotFound
        );
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(OWNER),
                id,
                auth(8, LineageChoice::New { epsilon_budget: 0 })
            ),
            Err::InvalidLineageBudget
        );
        assert_noop!(
            SecureInference::revoke_retrain(RuntimeOrigin::signed(OWNER), id),
            Err::NoRetrainAuthorisation
        );
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            auth(8, LineageChoice::Continue)
        ));
        assert_eq!(
            last_event(),
            Event::RetrainAuthorised {
                model_id: id,
                authorisation: auth(8, LineageChoice::Continue)
            }
            .into()
        );
        // A worker with an authorisation still waits for the lock.
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                h(8),
                h(9),
                LineageChoice::Continue,
                PrivacyMode::PerQuery
            ),
            Err::ResetNotAllowed
        );
        assert_noop!(
            SecureInference::revoke_retrain(RuntimeOrigin::signed(EVE), id),
            Err::NotOwner
        );
        assert_ok!(SecureInference::revoke_retrain(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert!(RetrainAuthorisations::<Test>::get(id).is_none());
        // The owner's own retrain (or retirement) drops a standing authorisation.
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            auth(8, LineageChoice::Continue)
        ));
        assert_ok!(retrain(id, 12, 13, LineageChoice::Continue));
        assert!(RetrainAuthorisations::<Test>::get(id).is_none());
    });
}
