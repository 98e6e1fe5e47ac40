//! The two privacy modes: a per-query model charges every request, a private model charges its
//! training once and its answers never; the answer limits that bound model extraction hold
//! against many accounts, resets and refunds.

use super::*;

/// Training ε of the private models below.
const TRAIN_EPS: u64 = 3 * PRIVACY_SCALE;

fn private(per_account: u32, per_generation: u32) -> PrivacyMode {
    PrivacyMode::PrivateModel {
        training_epsilon: TRAIN_EPS,
        answers_per_account: per_account,
        answers_per_generation: per_generation,
    }
}

fn retrain_as(id: ModelId, w: u8, lineage: LineageChoice, mode: PrivacyMode) -> DispatchResult {
    SecureInference::retrain_model(RuntimeOrigin::signed(OWNER), id, h(w), h(2), lineage, mode)
}

fn answer(request: RequestId) {
    assert_ok!(SecureInference::submit_result(
        RuntimeOrigin::signed(WORKER),
        request,
        h(9)
    ));
}

#[test]
fn a_private_model_is_charged_once_and_never_per_query() {
    test(|| {
        let id = register_mode(roomy(), new_lineage(), private(50, 500));
        assert_eq!(lineage(id).spent, TRAIN_EPS);
        assert_eq!(model(id).training_cost, TRAIN_EPS);
        assert!(events().contains(&Event::TrainingCharged {
            model_id: id,
            lineage_id: 0,
            cost: TRAIN_EPS,
            lineage_spent: TRAIN_EPS,
        }));
        // Far more answers than any per-query budget would allow (ε 2 per account at ε 0.5
        // per query is 4 answers; the lineage's ε 10 is 20), and nothing more is charged.
        let mut answered = 0;
        for (i, who) in [ALICE, BOB, EVE].into_iter().enumerate() {
            for j in 0..12 {
                run_to_block(System::block_number() + u64::from((i * 12 + j) % 2 == 0));
                let r = request(who, id);
                assert_eq!(Requests::<Test>::get(r).unwrap().privacy_charged, 0);
                answer(r);
                answered += 1;
            }
            assert_eq!(usage(id, who).spent, 0);
        }
        assert!(answered > LINEAGE_EPSILON / (PRIVACY_SCALE / 2));
        assert_eq!(lineage(id).spent, TRAIN_EPS);
        assert_eq!(model(id).answers, answered as u32);
    });
}

#[test]
fn a_per_query_model_still_charges_every_request() {
    test(|| {
        // Same lineage, one model of each mode: only the per-query model's requests spend.
        let private_id = register_mode(roomy(), new_lineage(), private(50, 500));
        let per_query = register_mode(roomy(), LineageChoice::Join(0), PrivacyMode::PerQuery);
        let cost = model(per_query).cost_per_query;
        assert_eq!(model(per_query).training_cost, 0);
        for n in 1..=3u64 {
            let r = request(ALICE, per_query);
            assert_eq!(Requests::<Test>::get(r).unwrap().privacy_charged, cost);
            answer(r);
            assert_eq!(lineage(per_query).spent, TRAIN_EPS + n * cost);
            assert_eq!(usage(per_query, ALICE).spent, n * cost);
        }
        let r = request(ALICE, private_id);
        answer(r);
        assert_eq!(lineage(private_id).spent, TRAIN_EPS + 3 * cost);
    });
}

#[test]
fn new_weights_are_charged_again_and_resets_are_free() {
    test(|| {
        let mut p = roomy();
        p.max_queries_per_epoch = 2;
        let id = register_mode(p, new_lineage(), private(10, 100));
        request(ALICE, id);
        request(BOB, id);
        // A reset keeps the weights: nothing to charge.
        attest(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
        assert_eq!(lineage(id).spent, TRAIN_EPS);
        // New weights on the same rows cost their training again; the lineage's ε 10 pays for
        // three trainings of ε 3 and refuses the fourth.
        assert_ok!(retrain_as(id, 5, LineageChoice::Continue, private(10, 100)));
        assert_eq!(lineage(id).spent, 2 * TRAIN_EPS);
        assert_eq!(model(id).answers, 0, "new weights, new answer count");
        assert_ok!(retrain_as(id, 6, LineageChoice::Continue, private(10, 100)));
        assert_noop!(
            retrain_as(id, 7, LineageChoice::Continue, private(10, 100)),
            Err::LineageBudgetExhausted
        );
        // The owner cannot pre-authorise it either.
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(OWNER),
                id,
                RetrainAuthorisation {
                    weights_commitment: h(7),
                    dataset_commitment: h(2),
                    lineage: LineageChoice::Continue,
                    privacy: private(10, 100),
                }
            ),
            Err::LineageBudgetExhausted
        );
        // Going back to per-query answers on the same rows is allowed (they spend the rest).
        assert_ok!(retrain_as(
            id,
            7,
            LineageChoice::Continue,
            PrivacyMode::PerQuery
        ));
        assert_eq!(lineage(id).spent, 3 * TRAIN_EPS);
    });
}

#[test]
fn training_beyond_the_lineage_budget_is_refused() {
    test(|| {
        let too_much = PrivacyMode::PrivateModel {
            training_epsilon: LINEAGE_EPSILON + 1,
            answers_per_account: 1,
            answers_per_generation: 1,
        };
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                roomy(),
                new_lineage(),
                too_much
            ),
            Err::LineageBudgetExhausted
        );
    });
}

#[test]
fn invalid_private_modes_are_refused() {
    test(|| {
        for (eps, per_account, per_generation) in [
            (0, 1, 1),
            (TRAIN_EPS, 0, 1),
            (TRAIN_EPS, 5, 4),
            (MaxLineageOverBound::get(), 1, 1),
        ] {
            let mode = PrivacyMode::PrivateModel {
                training_epsilon: eps,
                answers_per_account: per_account,
                answers_per_generation: per_generation,
            };
            assert_noop!(
                SecureInference::register_model(
                    RuntimeOrigin::signed(OWNER),
                    workers(&[WORKER]),
                    h(1),
                    h(2),
                    roomy(),
                    new_lineage(),
                    mode
                ),
                Err::InvalidPrivacyMode
            );
        }
        // zCDP: an ε so small that its ρ rounds to 0 micro-ρ would train with no noise scale.
        let mut p = roomy();
        p.accounting = Accounting::Zcdp { delta_exponent: 5 };
        p.account_epsilon_budget = 5 * PRIVACY_SCALE;
        let tiny = PrivacyMode::PrivateModel {
            training_epsilon: 1,
            answers_per_account: 1,
            answers_per_generation: 1,
        };
        assert_noop!(
            SecureInference::register_model(
                RuntimeOrigin::signed(OWNER),
                workers(&[WORKER]),
                h(1),
                h(2),
                p,
                new_lineage(),
                tiny
            ),
            Err::InvalidPrivacyMode
        );
    });
}

/// One past the chain's lineage bound.
struct MaxLineageOverBound;
impl MaxLineageOverBound {
    fn get() -> u64 {
        Bounds::<Test>::get().max_lineage_budget + 1
    }
}

#[test]
fn zcdp_training_is_charged_in_rho() {
    test(|| {
        let mut p = roomy();
        p.accounting = Accounting::Zcdp { delta_exponent: 5 };
        p.account_epsilon_budget = 5 * PRIVACY_SCALE;
        let id = register_mode(p, new_lineage(), private(5, 50));
        let rho = privacy::rho_budget(TRAIN_EPS, 5).unwrap();
        assert_eq!(model(id).training_cost, rho);
        assert_eq!(lineage(id).spent, rho);
        // The trainer calibrates to exactly this ρ, whose (ε, δ) conversion stays within the
        // declared ε (and within 0.01 % of it: the micro-ρ grid).
        let eps = SecureInference::lineage_status(0).unwrap().spent_epsilon;
        assert!(
            eps <= TRAIN_EPS + 2 && eps * 10_000 >= TRAIN_EPS * 9_999,
            "{eps}"
        );
    });
}

/// Extraction by many accounts (Sybils are free) and by waiting for resets: the per-account
/// limit alone would have let the coalition through; the generation limit stops it, and
/// neither resets nor refunds after an answer give anything back.
#[test]
fn answer_limits_bound_a_coalition_across_resets() {
    test(|| {
        let mut p = roomy();
        p.max_queries_per_epoch = 4;
        // d + 1 = 31 score answers extract a 30-feature LR: 5 per account, 12 in all.
        let id = register_mode(p, new_lineage(), private(5, 12));
        let accounts = sybils(8);
        let per_account_total: u32 = 5 * accounts.len() as u32;
        assert!(per_account_total >= 31, "the attack needs the coalition");
        let mut answered = 0u32;
        let mut refusals = Vec::new();
        'outer: for &a in &accounts {
            loop {
                match SecureInference::request_inference(RuntimeOrigin::signed(a), id, h(7)) {
                    Ok(()) => {
                        answer(NextRequestId::<Test>::get() - 1);
                        answered += 1;
                    }
                    // K reached: the worker resets the epoch (same weights) and the
                    // coalition carries on.
                    Err(e) if e == Err::TooManyRequestsInBlock.into() => {
                        run_to_block(System::block_number() + 1)
                    }
                    Err(e) if e == Err::ModelExhausted.into() => {
                        attest(id);
                        assert_ok!(SecureInference::reset_model(
                            RuntimeOrigin::signed(WORKER),
                            id
                        ));
                    }
                    Err(e) => {
                        refusals.push(e);
                        if e == Err::GenerationAnswerLimitReached.into() {
                            break 'outer;
                        }
                        break;
                    }
                }
            }
        }
        assert_eq!(answered, 12);
        assert!(answered < 31);
        assert!(refusals.contains(&Err::AccountAnswerLimitReached.into()));
        assert_eq!(
            refusals.last(),
            Some(&Err::GenerationAnswerLimitReached.into())
        );
        assert_eq!(model(id).answers, 12);
        assert_eq!(usage(id, accounts[0]).queries_left_by_budget, 0);
    });
}

#[test]
fn an_unanswered_request_returns_its_answer_allowance() {
    test(|| {
        let id = register_mode(roomy(), new_lineage(), private(2, 10));
        let r1 = request(ALICE, id);
        let r2 = request(ALICE, id);
        assert_noop!(
            SecureInference::request_inference(RuntimeOrigin::signed(ALICE), id, h(7)),
            Err::AccountAnswerLimitReached
        );
        answer(r1);
        // Refused by the worker: no answer was given, so the allowance comes back.
        assert_ok!(SecureInference::reject_request(
            RuntimeOrigin::signed(WORKER),
            r2,
            RejectReason::InputMissing
        ));
        assert_eq!(usage(id, ALICE).queries_left_by_budget, 1);
        answer(request(ALICE, id));
        // An answered one never does.
        assert_noop!(
            SecureInference::reject_request(
                RuntimeOrigin::signed(WORKER),
                r1,
                RejectReason::InputMissing
            ),
            Err::RequestNotPending
        );
        assert_eq!(usage(id, ALICE).queries_left_by_budget, 0);
        assert_eq!(model(id).answers, 2);
    });
}

/// A compromised worker key holding an authorisation for per-query weights cannot install
/// them as a private model (which would stop per-query charging), nor the reverse.
#[test]
fn a_worker_cannot_change_the_privacy_mode() {
    test(|| {
        let mut p = roomy();
        p.max_queries_per_epoch = 1;
        let id = register_mode(p, new_lineage(), PrivacyMode::PerQuery);
        request(ALICE, id);
        let auth = RetrainAuthorisation {
            weights_commitment: h(5),
            dataset_commitment: h(2),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            auth.clone()
        ));
        attest(id);
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                h(5),
                h(2),
                LineageChoice::Continue,
                private(1_000, 1_000)
            ),
            Err::RetrainNotAuthorised
        );
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(WORKER),
            id,
            h(5),
            h(2),
            LineageChoice::Continue,
            PrivacyMode::PerQuery
        ));
        assert_eq!(model(id).privacy, PrivacyMode::PerQuery);
    });
}
