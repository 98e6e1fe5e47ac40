//! The calls one by one: effects, events and every refusal.

use super::*;

// ---------------------------------------------------------------- register_model

#[test]
fn register_model_stores_model_and_emits_event() {
    test(|| {
        let id = register();
        assert_eq!(id, 0);
        let m = model(id);
        assert_eq!(m.owner, OWNER);
        assert_eq!(m.workers.to_vec(), vec![WORKER]);
        assert_eq!((m.weights_commitment, m.dataset_commitment), (h(1), h(2)));
        assert_eq!(
            (m.epoch, m.generation, m.queries, m.epoch_start),
            (0, 0, 0, 1)
        );
        assert_eq!(m.state, ModelState::Active);
        assert_eq!(
            (m.cost_per_query, m.account_budget),
            (PRIVACY_SCALE / 2, 2 * PRIVACY_SCALE)
        );
        assert_eq!(
            last_event(),
            Event::ModelRegistered {
                model_id: 0,
                owner: OWNER,
                weights_commitment: h(1),
                dataset_commitment: h(2),
                lineage_id: 0,
                policy: policy(),
                privacy: PrivacyMode::PerQuery,
            }
            .into()
        );
        assert_eq!(register(), 1);
        assert_eq!(NextModelId::<Test>::get(), 2);
    });
}

#[test]
fn register_model_rejects_invalid_policies() {
    test(|| {
        let bounds = Bounds::<Test>::get();
        let cases: Vec<(Policy<u64, u64>, Err)> = vec![
            (
                Policy {
                    max_queries_per_epoch: 0,
                    ..policy()
                },
                Err::InvalidQueryLimit,
            ),
            (
                Policy {
                    max_queries_per_epoch: bounds.max_queries_per_epoch + 1,
                    ..policy()
                },
                Err::InvalidQueryLimit,
            ),
            (
                Policy {
                    epoch_lifetime: 0,
                    ..policy()
                },
                Err::InvalidEpochLifetime,
            ),
            (
                Policy {
                    epoch_lifetime: bounds.max_epoch_lifetime + 1,
                    ..policy()
                },
                Err::InvalidEpochLifetime,
            ),
            (
                Policy {
                    idle_timeout: 0,
                    ..policy()
                },
                Err::InvalidIdleTimeout,
            ),
            (
                Policy {
                    epsilon_per_query: 0,
                    ..policy()
                },
                Err::InvalidEpsilon,
            ),
            (
                Policy {
                    epsilon_per_query: bounds.max_epsilon_per_query + 1,
                    ..policy()
                },
                Err::InvalidEpsilon,
            ),
            (
                Policy {
                    account_epsilon_budget: bounds.max_account_budget + 1,
                    ..policy()
                },
                Err::InvalidBudget,
            ),
            // Cannot pay for a single query.
            (
                Policy {
                    account_epsilon_budget: PRIVACY_SCALE / 4,
                    ..policy()
                },
                Err::InvalidBudget,
            ),
            (
                Policy {
                    accounting: Accounting::Zcdp { delta_exponent: 0 },
                    ..policy()
                },
                Err::InvalidDelta,
            ),
            (
                Policy {
                    accounting: Accounting::Zcdp { delta_exponent: 31 },
                    ..policy()
                },
                Err::InvalidDelta,
            ),
        ];
        for (p, e) in cases {
            assert_noop!(
                SecureInference::register_model(
                    RuntimeOrigin::signed(OWNER),
                    workers(&[WORKER]),
                    h(1),
                    h(2),
                    p.clone(),
                    new_lineage(),
                    PrivacyMode::PerQuery
                ),
                e
            );
        }
    });
}

#[test]
fn register_model_rejects_duplicate_workers_and_unsigned() {
    test(|| {
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER, BOB, WORKER]),
                h(1),
                h(2),
                policy(),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::DuplicateWorker
        );
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::none(),
                workers(&[WORKER]),
                h(1),
                h(2),
                policy(),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn register_model_id_overflow_is_an_error() {
    test(|| {
        NextModelId::<Test>::put(ModelId::MAX);
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                policy(),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::Overflow
        );
    });
}

// ---------------------------------------------------------------- update_policy

#[test]
fn tightening_policy_applies_now_and_can_exhaust() {
    test(|| {
        let id = register();
        request(ALICE, id);
        request(BOB, id);
        let tighter = Policy {
            max_queries_per_epoch: 2,
            ..policy()
        };
        assert_ok!(SecureInference::update_policy(
            RuntimeOrigin::signed(OWNER),
            id,
            tighter.clone()
        ));
        let m = model(id);
        assert_eq!(m.policy, tighter);
        assert_eq!(m.state, ModelState::Exhausted);
        let ev = events();
        assert!(ev.contains(&Event::QueryLimitReached {
            model_id: id,
            epoch: 0,
            queries: 2
        }));
        assert_eq!(
            ev.last(),
            Some(&Event::PolicyUpdated {
                model_id: id,
                policy: tighter,
                applies: PolicyApplication::Now
            })
        );
    });
}

#[test]
fn loosening_policy_waits_for_next_epoch() {
    test(|| {
        let id = register();
        let looser = Policy {
            max_queries_per_epoch: 50,
            ..policy()
        };
        assert_ok!(SecureInference::update_policy(
            RuntimeOrigin::signed(OWNER),
            id,
            looser.clone()
        ));
        assert_eq!(model(id).policy, policy());
        assert_eq!(
            model(id).next_policy,
            Some((looser.clone(), PolicyApplication::NextEpoch))
        );
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_eq!(model(id).policy, looser);
        assert_eq!(model(id).next_policy, None);
        assert!(matches!(
            events().last(),
            Some(Event::ModelReset {
                policy_changed: true,
                epoch: 1,
                ..
            })
        ));
    });
}

#[test]
fn lower_budget_or_new_accounting_waits_for_retrain() {
    test(|| {
        let id = register();
        let lower = Policy {
            account_epsilon_budget: PRIVACY_SCALE,
            ..policy()
        };
        assert_ok!(SecureInference::update_policy(
            RuntimeOrigin::signed(OWNER),
            id,
            lower.clone()
        ));
        assert_eq!(
            model(id).next_policy,
            Some((lower.clone(), PolicyApplication::NextLineage))
        );
        // A reset, and a retrain on the same rows, keep the lineage, so the old budget stays.
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_eq!(model(id).policy, policy());
        assert_ok!(retrain(id, 5, 6, LineageChoice::Continue));
        assert_eq!(model(id).policy, policy());
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(OWNER),
            id,
            h(3),
            h(4),
            new_lineage(),
            PrivacyMode::PerQuery
        ));
        assert_eq!(model(id).policy, lower);
        assert_eq!(model(id).account_budget, PRIVACY_SCALE);

        let zcdp = Policy {
            accounting: Accounting::Zcdp { delta_exponent: 6 },
            account_epsilon_budget: 10 * PRIVACY_SCALE,
            ..lower
        };
        assert_ok!(SecureInference::update_policy(
            RuntimeOrigin::signed(OWNER),
            id,
            zcdp
        ));
        assert_eq!(
            model(id).next_policy.map(|p| p.1),
            Some(PolicyApplication::NextLineage)
        );
    });
}

#[test]
fn update_policy_errors() {
    test(|| {
        let id = register();
        assert_noop!(
            SecureInference::update_policy(RuntimeOrigin::signed(OWNER), 9, policy()),
            Err::ModelNotFound
        );
        assert_noop!(
            SecureInference::update_policy(RuntimeOrigin::signed(ALICE), id, policy()),
            Err::NotOwner
        );
        assert_noop!(
            SecureInference::update_policy(
                RuntimeOrigin::signed(OWNER),
                id,
                Policy {
                    max_queries_per_epoch: 0,
                    ..policy()
                }
            ),
            Err::InvalidQueryLimit
        );
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::update_policy(RuntimeOrigin::signed(OWNER), id, policy()),
            Err::ModelRetired
        );
    });
}

// ---------------------------------------------------------------- set_workers / retire

#[test]
fn set_workers_replaces_workers() {
    test(|| {
        let id = register();
        assert_ok!(SecureInference::set_workers(
            RuntimeOrigin::signed(OWNER),
            id,
            workers(&[EVE, BOB])
        ));
        assert_eq!(model(id).workers.to_vec(), vec![EVE, BOB]);
        assert_eq!(
            last_event(),
            Event::WorkersSet {
                model_id: id,
                workers: vec![EVE, BOB]
            }
            .into()
        );
        // The old worker lost its rights.
        let r = request(ALICE, id);
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(WORKER), r, h(9)),
            Err::NotWorker
        );
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(EVE),
            r,
            h(9)
        ));
    });
}

#[test]
fn set_workers_errors() {
    test(|| {
        let id = register();
        assert_noop!(
            SecureInference::set_workers(RuntimeOrigin::signed(OWNER), 5, workers(&[EVE])),
            Err::ModelNotFound
        );
        assert_noop!(
            SecureInference::set_workers(RuntimeOrigin::signed(EVE), id, workers(&[EVE])),
            Err::NotOwner
        );
        assert_noop!(
            SecureInference::set_workers(RuntimeOrigin::signed(OWNER), id, workers(&[EVE, EVE])),
            Err::DuplicateWorker
        );
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::set_workers(RuntimeOrigin::signed(OWNER), id, workers(&[EVE])),
            Err::ModelRetired
        );
    });
}

#[test]
fn retire_model_blocks_new_requests_but_not_pending_results() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        assert_noop!(
            SecureInference::retire_model(RuntimeOrigin::signed(ALICE), id),
            Err::NotOwner
        );
        assert_noop!(
            SecureInference::retire_model(RuntimeOrigin::signed(OWNER), 7),
            Err::ModelNotFound
        );
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_eq!(last_event(), Event::ModelRetired { model_id: id }.into());
        assert_eq!(model(id).state, ModelState::Retired);
        assert_noop!(
            SecureInference::retire_model(RuntimeOrigin::signed(OWNER), id),
            Err::ModelRetired
        );
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::ModelRetired
        );
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(OWNER), id),
            Err::ModelRetired
        );
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            r,
            h(9)
        ));
    });
}

// ---------------------------------------------------------------- register_eval_key

#[test]
fn eval_key_registration_is_recorded_in_requests() {
    test(|| {
        let id = register();
        assert_ok!(SecureInference::register_eval_key(
            RuntimeOrigin::signed(ALICE),
            id,
            h(42)
        ));
        assert_eq!(EvalKeys::<Test>::get(ALICE, id).unwrap().commitment, h(42));
        assert_eq!(
            last_event(),
            Event::EvalKeyRegistered {
                who: ALICE,
                model_id: id,
                commitment: h(42)
            }
            .into()
        );
        let r = request(ALICE, id);
        assert_eq!(
            Requests::<Test>::get(r).unwrap().eval_key_commitment,
            Some(h(42))
        );
        let r = request(BOB, id);
        assert_eq!(Requests::<Test>::get(r).unwrap().eval_key_commitment, None);
        // Re-registration replaces.
        assert_ok!(SecureInference::register_eval_key(
            RuntimeOrigin::signed(ALICE),
            id,
            h(43)
        ));
        assert_eq!(EvalKeys::<Test>::get(ALICE, id).unwrap().commitment, h(43));
    });
}

#[test]
fn eval_key_errors() {
    test(|| {
        assert_noop!(
            SecureInference::register_eval_key(RuntimeOrigin::signed(ALICE), 0, h(1)),
            Err::ModelNotFound
        );
        let id = register();
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::register_eval_key(RuntimeOrigin::signed(ALICE), id, h(1)),
            Err::ModelRetired
        );
    });
}

// ---------------------------------------------------------------- request_inference

#[test]
fn request_counts_charges_and_holds_fee() {
    test(|| {
        let id = register();
        run_to_block(3);
        let r = request(ALICE, id);
        let req = Requests::<Test>::get(r).unwrap();
        assert_eq!(req.requester, ALICE);
        assert_eq!(req.status, RequestStatus::Pending);
        assert_eq!(req.deadline, 3 + Bounds::<Test>::get().request_timeout);
        assert_eq!(held(ALICE), 10);
        assert_eq!(
            Balances::free_balance(ALICE),
            INITIAL_BALANCE - 10 - USAGE_DEPOSIT
        );
        let u = usage(id, ALICE);
        assert_eq!(
            (u.queries, u.spent, u.remaining),
            (1, PRIVACY_SCALE / 2, 3 * PRIVACY_SCALE / 2)
        );
        assert_eq!(u.queries_left_by_budget, 3);
        let m = model(id);
        assert_eq!((m.queries, m.pending, m.last_used), (1, 1, 3));
        assert_eq!(
            last_event(),
            Event::InferenceRequested {
                request_id: r,
                model_id: id,
                epoch: 0,
                requester: ALICE,
                worker: WORKER,
                input_commitment: h(7),
                eval_key_commitment: None,
                account_queries: 1,
                epoch_queries: 1,
                privacy_charged: PRIVACY_SCALE / 2,
                privacy_spent: PRIVACY_SCALE / 2,
                lineage_spent: PRIVACY_SCALE / 2,
                fee: 10,
                deadline: req.deadline,
            }
            .into()
        );
        request(BOB, id);
        assert_eq!(model(id).queries, 2);
        assert_eq!(usage(id, BOB).queries, 1);
    });
}

#[test]
fn query_limit_locks_the_model() {
    test(|| {
        let id = register_with(Policy {
            account_epsilon_budget: 10 * PRIVACY_SCALE,
            ..policy()
        });
        for _ in 0..4 {
            request(ALICE, id);
        }
        assert_eq!(model(id).state, ModelState::Active);
        request(BOB, id);
        assert_eq!(model(id).state, ModelState::Exhausted);
        assert_eq!(
            last_event(),
            Event::QueryLimitReached {
                model_id: id,
                epoch: 0,
                queries: 5
            }
            .into()
        );
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(EVE), id, h(7)),
            Err::ModelExhausted
        );
    });
}

#[test]
fn budget_exhaustion_refuses_further_requests() {
    test(|| {
        // Budget 2.0 at 0.5 per query: 4 queries, K high enough not to interfere.
        let id = register_with(Policy {
            max_queries_per_epoch: 100,
            ..policy()
        });
        for _ in 0..4 {
            request(ALICE, id);
        }
        assert_eq!(usage(id, ALICE).remaining, 0);
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::BudgetExhausted
        );
        // Another account has its own budget.
        request(BOB, id);
    });
}

#[test]
fn budget_survives_reset_but_restarts_after_retrain() {
    test(|| {
        let id = register_with(Policy {
            max_queries_per_epoch: 100,
            ..policy()
        });
        for _ in 0..4 {
            request(ALICE, id);
        }
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_eq!(
            usage(id, ALICE).queries,
            0,
            "n_i resets lazily with the epoch"
        );
        assert_eq!(
            usage(id, ALICE).spent,
            2 * PRIVACY_SCALE,
            "same data: budget kept"
        );
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::BudgetExhausted
        );
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(OWNER),
            id,
            h(5),
            h(6),
            new_lineage(),
            PrivacyMode::PerQuery
        ));
        assert_eq!(usage(id, ALICE).spent, 0);
        request(ALICE, id);
        assert_eq!(usage(id, ALICE).spent, PRIVACY_SCALE / 2);
    });
}

#[test]
fn lifetime_and_idle_timeout_refuse_requests() {
    test(|| {
        let id = register(); // registered at block 1: T = 100, idle = 20 → last usable block 20
        run_to_block(20);
        request(BOB, id);
        run_to_block(40); // last use at 20 → last usable block 39
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::IdleTimeoutExpired
        );
        let id2 = register_with(Policy {
            idle_timeout: 1_000,
            ..policy()
        });
        run_to_block(139);
        request(ALICE, id2);
        run_to_block(140); // started at 40, lifetime 100 → last usable block 139
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id2, h(7)),
            Err::EpochLifetimeExpired
        );
    });
}

#[test]
fn requests_keep_an_epoch_alive_against_idle_timeout() {
    test(|| {
        let id = register_with(Policy {
            max_queries_per_epoch: 100,
            account_epsilon_budget: 100 * PRIVACY_SCALE,
            ..policy()
        });
        for b in [10, 29, 48] {
            run_to_block(b);
            request(ALICE, id);
        }
        let s = SecureInference::model_status(id).unwrap();
        assert_eq!(
            (s.state, s.idle_expires_at),
            (ModelState::Active, 48 + 20 - 1)
        );
        run_to_block(68);
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::IdleTimeoutExpired
        );
    });
}

#[test]
fn request_fee_errors() {
    test(|| {
        let id = register_with(Policy {
            fee_per_query: 2_000,
            ..policy()
        });
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::CannotPayFee
        );
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), 9, h(7)),
            Err::ModelNotFound
        );
    });
}

#[test]
fn too_many_requests_in_one_block() {
    test(|| {
        let id = register_with(Policy {
            max_queries_per_epoch: 100,
            account_epsilon_budget: 100 * PRIVACY_SCALE,
            fee_per_query: 0,
            ..policy()
        });
        for _ in 0..MAX_REQUESTS_PER_BLOCK {
            request(ALICE, id);
        }
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::TooManyRequestsInBlock
        );
        run_to_block(2);
        request(ALICE, id);
    });
}

#[test]
fn request_id_overflow_is_an_error() {
    test(|| {
        let id = register();
        NextRequestId::<Test>::put(RequestId::MAX);
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::Overflow
        );
    });
}

// ---------------------------------------------------------------- submit_result

#[test]
fn submit_result_completes_and_pays_owner() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        let owner_before = Balances::free_balance(OWNER);
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            r,
            h(8)
        ));
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::Completed {
                output_commitment: h(8)
            }
        );
        assert_eq!(held(ALICE), 0);
        assert_eq!(
            Balances::free_balance(ALICE),
            INITIAL_BALANCE - 10 - USAGE_DEPOSIT
        );
        assert_eq!(Balances::free_balance(OWNER), owner_before + 10);
        assert_eq!(model(id).pending, 0);
        assert_eq!(model(id).queries, 1, "a delivered result still counts");
        assert_eq!(
            last_event(),
            Event::ResultSubmitted {
                request_id: r,
                model_id: id,
                epoch: 0,
                worker: WORKER,
                requester: ALICE,
                output_commitment: h(8),
            }
            .into()
        );
    });
}

#[test]
fn submit_result_errors() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(WORKER), 77, h(8)),
            Err::RequestNotFound
        );
        // Neither the requester nor the owner is a worker.
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(ALICE), r, h(8)),
            Err::NotWorker
        );
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(OWNER), r, h(8)),
            Err::NotWorker
        );
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            r,
            h(8)
        ));
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(WORKER), r, h(8)),
            Err::RequestNotPending
        );
    });
}

#[test]
fn submit_result_for_an_old_epoch_is_stale() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(WORKER), r, h(8)),
            Err::StaleEpoch
        );
        // It can still be rejected, which refunds the budget and fee but not the new
        // epoch's counters.
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            r,
            RejectReason::EpochEnded
        ));
        assert_eq!(usage(id, ALICE).spent, 0);
        assert_eq!(held(ALICE), 0);
        assert_eq!(model(id).queries, 0);
    });
}

#[test]
fn fee_transfer_to_an_empty_owner_below_existential_deposit_fails() {
    test(|| {
        // Without deposits (as at genesis): the pauper could not pay them.
        let id = SecureInference::do_register(
            PAUPER,
            workers(&[WORKER]),
            h(1),
            h(2),
            Policy {
                fee_per_query: 2,
                ..policy()
            },
            new_lineage(),
            PrivacyMode::PerQuery,
            false,
        )
        .unwrap();
        let r = request(ALICE, id);
        assert_noop!(
            SecureInference::submit_result(RuntimeOrigin::signed(WORKER), r, h(8)),
            Err::FeeTransferFailed
        );
    });
}

// ---------------------------------------------------------------- reject / timeout

#[test]
fn reject_refunds_budget_counters_and_fee() {
    test(|| {
        let id = register_with(Policy {
            max_queries_per_epoch: 2,
            ..policy()
        });
        request(BOB, id);
        let r = request(ALICE, id);
        assert_eq!(model(id).state, ModelState::Exhausted);
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            r,
            RejectReason::CommitmentMismatch
        ));
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::Rejected {
                reason: RejectReason::CommitmentMismatch
            }
        );
        let u = usage(id, ALICE);
        assert_eq!((u.queries, u.spent), (0, 0));
        assert_eq!(held(ALICE), 0);
        assert_eq!(
            Balances::free_balance(ALICE),
            INITIAL_BALANCE - USAGE_DEPOSIT,
            "the fee is back; the usage record's deposit stays with it"
        );
        assert_eq!(model(id).queries, 1);
        assert_eq!(
            model(id).state,
            ModelState::Active,
            "the refunded slot reopens the model"
        );
        assert_eq!(
            last_event(),
            Event::RequestRejected {
                request_id: r,
                model_id: id,
                worker: WORKER,
                requester: ALICE,
                reason: RejectReason::CommitmentMismatch,
            }
            .into()
        );
    });
}

#[test]
fn reject_errors() {
    test(|| {
        let id = register();
        let r = request(ALICE, id);
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(WORKER),
                5,
                RejectReason::InputMissing
            ),
            Err::RequestNotFound
        );
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(EVE),
                r,
                RejectReason::InputMissing
            ),
            Err::NotWorker
        );
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            r,
            RejectReason::MalformedInput
        ));
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(WORKER),
                r,
                RejectReason::InputMissing
            ),
            Err::RequestNotPending
        );
    });
}

#[test]
fn pending_requests_time_out_and_are_refunded() {
    test(|| {
        let id = register_with(Policy {
            idle_timeout: 1_000,
            ..policy()
        });
        let r = request(ALICE, id);
        let done = request(BOB, id);
        assert_ok!(SecureInference::submit_result(
            RuntimeOrigin::signed(WORKER),
            done,
            h(8)
        ));
        let deadline = Requests::<Test>::get(r).unwrap().deadline;
        run_to_block(deadline - 1);
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::Pending
        );
        run_to_block(deadline);
        assert_eq!(
            Requests::<Test>::get(r).unwrap().status,
            RequestStatus::TimedOut
        );
        assert_eq!(held(ALICE), 0);
        assert_eq!(usage(id, ALICE).spent, 0);
        assert_eq!(
            model(id).queries,
            1,
            "only the completed request still counts"
        );
        assert!(events().contains(&Event::RequestTimedOut {
            request_id: r,
            model_id: id,
            requester: ALICE
        }));
        assert!(!events().iter().any(
            |e| matches!(e, Event::RequestTimedOut { request_id, .. } if *request_id == done)
        ));
        assert!(RequestDeadlines::<Test>::get(deadline).is_empty());
    });
}

// ---------------------------------------------------------------- reset / retrain / expire

#[test]
fn lifecycle_active_exhausted_reset_active() {
    test(|| {
        let id = register_with(Policy {
            account_epsilon_budget: 10 * PRIVACY_SCALE,
            ..policy()
        });
        for _ in 0..5 {
            let r = request(ALICE, id);
            assert_ok!(SecureInference::submit_result(
                RuntimeOrigin::signed(WORKER),
                r,
                h(8)
            ));
        }
        assert_eq!(model(id).state, ModelState::Exhausted);
        run_to_block(4);
        attest(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
        let m = model(id);
        assert_eq!(
            (m.state, m.epoch, m.queries, m.epoch_start, m.last_used),
            (ModelState::Active, 1, 0, 4, 4)
        );
        assert_eq!(
            last_event(),
            Event::ModelReset {
                model_id: id,
                previous_epoch: 0,
                epoch: 1,
                by: WORKER,
                policy_changed: false
            }
            .into()
        );
        assert_eq!(usage(id, ALICE).queries, 0);
        assert_eq!(usage(id, ALICE).spent, 5 * PRIVACY_SCALE / 2);
        request(ALICE, id);
        assert_eq!(usage(id, ALICE).queries, 1);
    });
}

#[test]
fn worker_may_only_reset_a_locked_model() {
    test(|| {
        let id = register();
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER), id),
            Err::ResetNotAllowed
        );
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                h(3),
                h(4),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::ResetNotAllowed
        );
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(EVE), id),
            Err::NotOwnerOrWorker
        );
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER), 3),
            Err::ModelNotFound
        );
        // Once expired by time (even before anyone records it) the worker may.
        run_to_block(21);
        attest(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
    });
}

#[test]
fn retrain_changes_commitments_and_generation() {
    test(|| {
        let id = register();
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(OWNER),
                id,
                h(1),
                h(9),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::CommitmentUnchanged
        );
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(OWNER),
                id,
                h(9),
                h(2),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::CommitmentUnchanged
        );
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(EVE),
                id,
                h(8),
                h(9),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::NotOwnerOrWorker
        );
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(OWNER),
            id,
            h(8),
            h(9),
            new_lineage(),
            PrivacyMode::PerQuery
        ));
        let m = model(id);
        assert_eq!(
            (
                m.epoch,
                m.generation,
                m.weights_commitment,
                m.dataset_commitment
            ),
            (1, 1, h(8), h(9))
        );
        assert_eq!(
            last_event(),
            Event::ModelRetrained {
                model_id: id,
                previous_epoch: 0,
                epoch: 1,
                generation: 1,
                weights_commitment: h(8),
                dataset_commitment: h(9),
                lineage_id: 1,
                privacy: PrivacyMode::PerQuery,
                by: OWNER,
                policy_changed: false,
            }
            .into()
        );
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(OWNER),
                id,
                h(10),
                h(11),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::ModelRetired
        );
    });
}

#[test]
fn expire_model_records_lifetime_and_idle_expiry() {
    test(|| {
        let idle = register(); // idle 20 from block 1
        let life = register_with(Policy {
            idle_timeout: 1_000,
            ..policy()
        });
        assert_noop!(
            SecureInference::expire_model(RuntimeOrigin::signed(EVE), idle),
            Err::ModelNotExpired
        );
        assert_noop!(
            SecureInference::expire_model(RuntimeOrigin::signed(EVE), 9),
            Err::ModelNotFound
        );
        run_to_block(21);
        assert_ok!(SecureInference::expire_model(
            RuntimeOrigin::signed(EVE),
            idle
        ));
        assert_eq!(model(idle).state, ModelState::Expired);
        assert_eq!(
            last_event(),
            Event::ModelExpired {
                model_id: idle,
                epoch: 0,
                reason: ExpiryReason::Idle
            }
            .into()
        );
        assert_noop!(
            SecureInference::expire_model(RuntimeOrigin::signed(EVE), idle),
            Err::ModelNotExpired
        );
        assert_noop!(
            SecureInference::expire_model(RuntimeOrigin::signed(EVE), life),
            Err::ModelNotExpired
        );
        run_to_block(101);
        assert_ok!(SecureInference::expire_model(
            RuntimeOrigin::signed(EVE),
            life
        ));
        assert_eq!(
            last_event(),
            Event::ModelExpired {
                model_id: life,
                epoch: 0,
                reason: ExpiryReason::Lifetime
            }
            .into()
        );
        // Expired → reset → Active.
        attest(life);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            life
        ));
        assert_eq!(model(life).state, ModelState::Active);
        request(ALICE, life);
    });
}

// ---------------------------------------------------------------- set_bounds

#[test]
fn set_bounds_is_root_only_and_validated() {
    test(|| {
        let mut b = Bounds::<Test>::get();
        b.max_queries_per_epoch = 3;
        b.request_timeout = 7;
        assert_noop!(
            SecureInference::set_bounds(RuntimeOrigin::signed(OWNER), b.clone()),
            DispatchError::BadOrigin
        );
        assert_noop!(
            SecureInference::set_bounds(
                RuntimeOrigin::root(),
                GlobalBounds {
                    request_timeout: 0,
                    ..b.clone()
                }
            ),
            Err::InvalidBounds
        );
        assert_ok!(SecureInference::set_bounds(
            RuntimeOrigin::root(),
            b.clone()
        ));
        assert_eq!(
            last_event(),
            Event::BoundsUpdated { bounds: b.clone() }.into()
        );
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                policy(),
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::InvalidQueryLimit
        );
        let id = register_with(Policy {
            max_queries_per_epoch: 3,
            ..policy()
        });
        let r = request(ALICE, id);
        assert_eq!(Requests::<Test>::get(r).unwrap().deadline, 1 + 7);
    });
}

// ---------------------------------------------------------------- zCDP and runtime API

#[test]
fn zcdp_accounting_charges_rho_and_reports_epsilon_delta() {
    test(|| {
        // ε = 0.5 per query → ρ = 0.125; budget ε = 2.0 at δ = 1e-5 → ρ ≈ 0.0791...
        // Too small for one query: rejected. ε budget 10 → ρ budget ≈ 1.29 → 10 queries.
        let p = Policy {
            max_queries_per_epoch: 100,
            account_epsilon_budget: 10 * PRIVACY_SCALE,
            accounting: Accounting::Zcdp { delta_exponent: 5 },
            ..policy()
        };
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                Policy {
                    account_epsilon_budget: 2 * PRIVACY_SCALE,
                    ..p.clone()
                },
                new_lineage(),
                PrivacyMode::PerQuery
            ),
            Err::InvalidBudget
        );
        let id = register_with(p);
        let m = model(id);
        assert_eq!(m.cost_per_query, 125_000);
        let per_budget = m.account_budget / m.cost_per_query;
        assert!(
            per_budget >= 5,
            "zCDP must allow more queries than pure composition (4)"
        );
        for i in 0..per_budget {
            // Stay under MaxRequestsPerBlock.
            if i % 4 == 3 {
                run_to_block(System::block_number() + 1);
            }
            request(ALICE, id);
        }
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::BudgetExhausted
        );
        let u = usage(id, ALICE);
        assert_eq!(u.spent, per_budget * 125_000);
        assert!(
            u.spent_epsilon <= 10 * PRIVACY_SCALE + 2,
            "{}",
            u.spent_epsilon
        );
        assert!(u.spent_epsilon > 5 * PRIVACY_SCALE);
        assert_eq!(u.accounting, Accounting::Zcdp { delta_exponent: 5 });
    });
}

#[test]
fn model_status_applies_time_limits() {
    test(|| {
        let id = register();
        let s = SecureInference::model_status(id).unwrap();
        assert_eq!(
            (
                s.state,
                s.expiry,
                s.max_queries,
                s.epoch_ends_at,
                s.idle_expires_at
            ),
            (ModelState::Active, None, 5, 100, 20)
        );
        run_to_block(21);
        let s = SecureInference::model_status(id).unwrap();
        assert_eq!(
            (s.state, s.expiry),
            (ModelState::Expired, Some(ExpiryReason::Idle))
        );
        assert_eq!(SecureInference::model_status(5), None);
        assert_eq!(SecureInference::account_status(5, &ALICE), None);
    });
}

// ---------------------------------------------------------------- genesis and hooks

#[test]
fn genesis_registers_models_and_bounds() {
    let mut t = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    crate::GenesisConfig::<Test> {
        bounds: Some(GlobalBounds {
            max_queries_per_epoch: 50,
            max_epoch_lifetime: 1_000,
            max_epsilon_per_query: PRIVACY_SCALE,
            max_account_budget: 20 * PRIVACY_SCALE,
            max_lineage_budget: 50 * PRIVACY_SCALE,
            request_timeout: 12,
        }),
        models: vec![GenesisModel {
            owner: OWNER,
            workers: vec![WORKER],
            weights_commitment: h(1),
            dataset_commitment: h(2),
            max_queries_per_epoch: 10,
            epoch_lifetime: 500,
            idle_timeout: 50,
            epsilon_per_query: PRIVACY_SCALE / 10,
            account_epsilon_budget: PRIVACY_SCALE,
            lineage_epsilon_budget: 5 * PRIVACY_SCALE,
            zcdp_delta_exponent: Some(6),
            fee_per_query: 3,
        }],
    }
    .assimilate_storage(&mut t)
    .unwrap();
    sp_io::TestExternalities::new(t).execute_with(|| {
        assert_eq!(Bounds::<Test>::get().request_timeout, 12);
        let m = Models::<Test>::get(0).unwrap();
        assert_eq!(m.policy.accounting, Accounting::Zcdp { delta_exponent: 6 });
        assert_eq!(m.policy.fee_per_query, 3);
        assert_eq!(m.workers.to_vec(), vec![WORKER]);
        let l = Lineages::<Test>::get(m.lineage).unwrap();
        assert_eq!((l.owner, l.epsilon_budget), (OWNER, 5 * PRIVACY_SCALE));
        assert_eq!(l.budget, privacy::rho_budget(5 * PRIVACY_SCALE, 6).unwrap());
        SecureInference::do_try_state(0).unwrap();
    });
}

#[test]
fn integrity_test_passes() {
    test(SecureInference::integrity_test);
}

#[test]
fn try_state_detects_a_broken_counter() {
    new_test_ext().execute_with(|| {
        let id = register();
        request(ALICE, id);
        SecureInference::do_try_state(1).unwrap();
        Models::<Test>::mutate(id, |m| m.as_mut().unwrap().queries = 3);
        assert!(SecureInference::do_try_state(1).is_err());
    });
}
