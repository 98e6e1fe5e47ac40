//! Clinical data contributions and k-anonymous releases, attacker first: the provider (the
//! model's owner and its workers) tries to train on raw records, to become or to bypass the
//! aggregator, to reuse a release; the aggregator tries to publish what it may not.

use super::*;
use frame_support::traits::ConstU32;

type QiNames =
    BoundedVec<BoundedVec<u8, ConstU32<MAX_QI_NAME_LEN>>, ConstU32<MAX_QUASI_IDENTIFIERS>>;

fn fund(accounts: &[u64]) {
    for a in accounts {
        Balances::set_balance(a, INITIAL_BALANCE);
    }
}

/// A model of OWNER served by WORKER, with AGGREGATOR as its aggregator (clinics and both
/// aggregators funded).
fn aggregated() -> ModelId {
    fund(&[AGGREGATOR, AGGREGATOR2, CLINIC, CLINIC2]);
    for (aggregator, key) in [(AGGREGATOR, 0xA1), (AGGREGATOR2, 0xA2)] {
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(aggregator),
            Some([key; 32])
        ));
    }
    let id = register();
    assert_ok!(SecureInference::set_aggregator(
        RuntimeOrigin::signed(OWNER),
        id,
        Some(AGGREGATOR)
    ));
    id
}

/// The commitment of contribution `id`'s sealed batch in these tests.
fn batch(id: ContributionId) -> H256 {
    H256::from_low_u64_be(1_000 + id)
}

fn contribute(who: u64, model: ModelId, rows: u32) -> ContributionId {
    let id = NextContributionId::<Test>::get();
    assert_ok!(SecureInference::contribute_data(
        RuntimeOrigin::signed(who),
        model,
        batch(id),
        rows
    ));
    id
}

fn names(list: &[&str]) -> QiNames {
    list.iter()
        .map(|n| n.as_bytes().to_vec().try_into().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap()
}

/// The arguments of `publish_dataset`, valid unless a test changes one.
#[derive(Clone)]
struct Publish {
    by: u64,
    model: ModelId,
    commitment: H256,
    k: u32,
    l: u32,
    quasi_identifiers: Vec<&'static str>,
    rows: u32,
    contributions: Vec<ContributionId>,
}

impl Publish {
    /// AGGREGATOR releases `contributions` as `commitment` with k = MIN_ANONYMITY_K, l = 2
    /// and k rows.
    fn of(model: ModelId, commitment: H256, contributions: &[ContributionId]) -> Self {
        Publish {
            by: AGGREGATOR,
            model,
            commitment,
            k: MIN_ANONYMITY_K,
            l: 2,
            quasi_identifiers: vec!["age", "zip"],
            rows: MIN_ANONYMITY_K,
            contributions: contributions.to_vec(),
        }
    }

    fn call(&self) -> DispatchResult {
        SecureInference::publish_dataset(
            RuntimeOrigin::signed(self.by),
            self.model,
            self.commitment,
            self.k,
            self.l,
            names(&self.quasi_identifiers),
            self.rows,
            self.contributions.clone().try_into().unwrap(),
        )
    }

    /// Publish it; returns the release id.
    fn ok(&self) -> ReleaseId {
        let id = NextReleaseId::<Test>::get();
        assert_ok!(self.call());
        id
    }
}

/// A published release of one fresh contribution of CLINIC, as `commitment`.
fn released(model: ModelId, commitment: H256) -> ReleaseId {
    let c = contribute(CLINIC, model, 10);
    Publish::of(model, commitment, &[c]).ok()
}

fn check() {
    SecureInference::do_try_state(System::block_number()).expect("try_state");
}

fn data_held(who: u64) -> u64 {
    held_for(HoldReason::DataDeposit, who)
}

// ---------------------------------------------------------------- the retrain rule

#[test]
fn provider_cannot_train_on_raw_records() {
    test(|| {
        let id = aggregated();
        // A clinic's sealed batch is on chain; its commitment is the most tempting raw name.
        let c = contribute(CLINIC, id, 10);
        for dataset in [h(9), batch(c), model(id).dataset_commitment] {
            assert_noop!(
                SecureInference::retrain_model(
                    RuntimeOrigin::signed(OWNER),
                    id,
                    h(8),
                    dataset,
                    LineageChoice::Continue,
                    PrivacyMode::PerQuery,
                ),
                Err::DatasetNotReleased
            );
            assert_noop!(
                SecureInference::retrain_model(
                    RuntimeOrigin::signed(OWNER),
                    id,
                    h(8),
                    dataset,
                    new_lineage(),
                    PrivacyMode::PerQuery,
                ),
                Err::DatasetNotReleased
            );
        }
        // Nor can the owner authorise its workers to do it.
        assert_noop!(
            SecureInference::authorise_retrain(
                RuntimeOrigin::signed(OWNER),
                id,
                RetrainAuthorisation {
                    weights_commitment: h(8),
                    dataset_commitment: h(9),
                    lineage: LineageChoice::Continue,
                    privacy: PrivacyMode::PerQuery,
                }
            ),
            Err::DatasetNotReleased
        );
        assert_eq!(model(id).generation, 0);
        check();

        // The unprotected path: the identical call on the same kind of model without an
        // aggregator succeeds, so the refusal above is the aggregator rule and nothing else.
        let open = register();
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(OWNER),
            open,
            h(8),
            h(9),
            LineageChoice::Continue,
            PrivacyMode::PerQuery,
        ));
        assert_eq!(model(open).generation, 1);
        check();
    });
}

#[test]
fn a_release_of_another_model_does_not_count() {
    test(|| {
        let id = aggregated();
        let other = register();
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            other,
            Some(AGGREGATOR)
        ));
        released(other, h(50));
        assert_noop!(
            retrain(id, 8, 50, LineageChoice::Continue),
            Err::DatasetNotReleased
        );
        check();
    });
}

#[test]
fn an_authorisation_given_before_the_aggregator_does_not_bypass_it() {
    test(|| {
        fund(&[AGGREGATOR]);
        let id = register();
        // Authorised on raw rows while the model had no aggregator ...
        let raw = RetrainAuthorisation {
            weights_commitment: h(8),
            dataset_commitment: h(9),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            raw.clone()
        ));
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            id,
            Some(AGGREGATOR)
        ));
        // ... is checked again when the worker uses it.
        run_to_block(30);
        attest(id);
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                raw.weights_commitment,
                raw.dataset_commitment,
                raw.lineage,
                raw.privacy,
            ),
            Err::DatasetNotReleased
        );
        check();
    });
}

#[test]
fn a_release_trains_one_generation_only() {
    test(|| {
        let id = aggregated();
        let r = released(id, h(50));
        // The lineage choice is independent of the release: here the rows are new.
        assert_ok!(retrain(id, 8, 50, new_lineage()));
        assert_eq!(model(id).dataset_commitment, h(50));
        assert_eq!(
            Releases::<Test>::get(r).unwrap().used_by_generation,
            Some(1)
        );
        assert_eq!(
            last_event(),
            Event::ReleaseUsed {
                release_id: r,
                model_id: id,
                generation: 1
            }
            .into()
        );
        check();
        // Once used, never again: neither by the owner nor through an authorisation.
        assert_noop!(
            retrain(id, 9, 50, LineageChoice::Continue),
            Err::ReleaseAlreadyUsed
        );
        let again = RetrainAuthorisation {
            weights_commitment: h(9),
            dataset_commitment: h(50),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        assert_noop!(
            SecureInference::authorise_retrain(RuntimeOrigin::signed(OWNER), id, again),
            Err::ReleaseAlreadyUsed
        );

        // The worker path: authorised on a fresh release, used once by the worker.
        let r2 = released(id, h(51));
        let to = RetrainAuthorisation {
            weights_commitment: h(10),
            dataset_commitment: h(51),
            lineage: LineageChoice::Continue,
            privacy: PrivacyMode::PerQuery,
        };
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            to.clone()
        ));
        run_to_block(30);
        attest(id);
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(WORKER),
            id,
            to.weights_commitment,
            to.dataset_commitment,
            to.lineage,
            to.privacy,
        ));
        assert_eq!(
            Releases::<Test>::get(r2).unwrap().used_by_generation,
            Some(2)
        );
        let to_again = RetrainAuthorisation {
            weights_commitment: h(11),
            ..to
        };
        assert_noop!(
            SecureInference::authorise_retrain(RuntimeOrigin::signed(OWNER), id, to_again),
            Err::ReleaseAlreadyUsed
        );
        assert_noop!(
            retrain(id, 11, 51, LineageChoice::Continue),
            Err::ReleaseAlreadyUsed
        );
        check();
    });
}

#[test]
fn removing_the_aggregator_is_public_and_restores_the_old_rules() {
    test(|| {
        let id = aggregated();
        let c = contribute(CLINIC, id, 10);
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            id,
            None
        ));
        assert_eq!(
            last_event(),
            Event::AggregatorSet {
                model_id: id,
                aggregator: None
            }
            .into()
        );
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), id, None),
            Err::NoAggregator
        );
        // Nobody may release the sealed batch now, and nobody new may contribute ...
        assert_noop!(Publish::of(id, h(50), &[c]).call(), Err::NotAggregator);
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC2), id, h(3), 10),
            Err::NoAggregator
        );
        // ... the clinic still gets its deposit back, and the model retrains as before.
        assert_ok!(SecureInference::withdraw_contribution(
            RuntimeOrigin::signed(CLINIC),
            c
        ));
        assert_ok!(retrain(id, 8, 9, LineageChoice::Continue));
        check();
    });
}

// ---------------------------------------------------------------- independence

#[test]
fn the_provider_cannot_be_the_aggregator() {
    test(|| {
        fund(&[AGGREGATOR]);
        let id = register();
        for insider in [OWNER, WORKER] {
            assert_noop!(
                SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), id, Some(insider)),
                Err::AggregatorNotIndependent
            );
        }
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(EVE), id, Some(AGGREGATOR)),
            Err::NotOwner
        );
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), 7, Some(AGGREGATOR)),
            Err::ModelNotFound
        );
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), id, None),
            Err::NoAggregator
        );
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            id,
            Some(AGGREGATOR)
        ));
        assert_eq!(
            last_event(),
            Event::AggregatorSet {
                model_id: id,
                aggregator: Some(AGGREGATOR)
            }
            .into()
        );
        assert_eq!(Aggregators::<Test>::get(id), Some(AGGREGATOR));
        // Nor can the aggregator be made a worker afterwards.
        assert_noop!(
            SecureInference::set_workers(
                RuntimeOrigin::signed(OWNER),
                id,
                workers(&[WORKER, AGGREGATOR])
            ),
            Err::AggregatorNotIndependent
        );
        assert_ok!(SecureInference::set_workers(
            RuntimeOrigin::signed(OWNER),
            id,
            workers(&[WORKER, WORKER2])
        ));
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), id, Some(WORKER2)),
            Err::AggregatorNotIndependent
        );
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::set_aggregator(RuntimeOrigin::signed(OWNER), id, Some(EVE)),
            Err::ModelRetired
        );
        check();
    });
}

#[test]
fn the_provider_cannot_contribute() {
    test(|| {
        let id = aggregated();
        for insider in [OWNER, WORKER] {
            assert_noop!(
                SecureInference::contribute_data(RuntimeOrigin::signed(insider), id, h(3), 10),
                Err::ContributorNotIndependent
            );
        }
        let open = register();
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), open, h(3), 10),
            Err::NoAggregator
        );
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), 9, h(3), 10),
            Err::ModelNotFound
        );
        for rows in [0, MAX_CONTRIBUTION_ROWS + 1] {
            assert_noop!(
                SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), id, h(3), rows),
                Err::InvalidRowCount
            );
        }
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(PAUPER), id, h(3), 10),
            Err::CannotPayDeposit
        );
        assert_ok!(SecureInference::contribute_data(
            RuntimeOrigin::signed(CLINIC),
            id,
            h(3),
            MAX_CONTRIBUTION_ROWS
        ));
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), id, h(3), 10),
            Err::ModelRetired
        );
        check();
    });
}

// ---------------------------------------------------------------- sealing keys

/// A clinic must never be able to seal to a key the aggregator did not publish itself: without
/// one on chain, contributing is refused (the client would otherwise take a key from whoever
/// hands it one, e.g. the provider).
#[test]
fn no_contribution_before_the_aggregator_publishes_a_key() {
    test(|| {
        fund(&[AGGREGATOR, CLINIC]);
        let id = register();
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            id,
            Some(AGGREGATOR)
        ));
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), id, batch(0), 10),
            Err::NoSealingKey
        );
        // The provider publishing a key of its own changes nothing: the aggregator's is read.
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(OWNER),
            Some([0x0E; 32])
        ));
        assert_noop!(
            SecureInference::contribute_data(RuntimeOrigin::signed(CLINIC), id, batch(0), 10),
            Err::NoSealingKey
        );
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(AGGREGATOR),
            Some([0xA1; 32])
        ));
        let c = contribute(CLINIC, id, 10);
        assert_eq!(
            Contributions::<Test>::get(c).unwrap().sealing_key,
            [0xA1; 32]
        );
        check();
    });
}

#[test]
fn sealing_keys_hold_one_deposit_and_only_their_owner_removes_them() {
    test(|| {
        fund(&[AGGREGATOR, CLINIC]);
        assert_noop!(
            SecureInference::set_sealing_key(RuntimeOrigin::signed(AGGREGATOR), Some([0; 32])),
            Err::InvalidSealingKey
        );
        assert_noop!(
            SecureInference::set_sealing_key(RuntimeOrigin::signed(AGGREGATOR), None),
            Err::NoSealingKey
        );
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(AGGREGATOR),
            Some([1; 32])
        ));
        assert_eq!(
            last_event(),
            Event::SealingKeySet {
                who: AGGREGATOR,
                key: Some([1; 32])
            }
            .into()
        );
        // Rotating keeps the one deposit.
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(AGGREGATOR),
            Some([2; 32])
        ));
        assert_eq!(data_held(AGGREGATOR), SEALING_KEY_DEPOSIT);
        assert_eq!(SealingKeys::<Test>::get(AGGREGATOR).unwrap().key, [2; 32]);
        check();
        // Nobody removes another's key: a call only ever touches the caller's own record.
        assert_noop!(
            SecureInference::set_sealing_key(RuntimeOrigin::signed(CLINIC), None),
            Err::NoSealingKey
        );
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(AGGREGATOR),
            None
        ));
        assert_eq!(data_held(AGGREGATOR), 0);
        assert!(!SealingKeys::<Test>::contains_key(AGGREGATOR));
        check();
    });
}

/// Contributions name the key they were sealed to, so rotating the aggregator's key leaves a
/// record of which secret opens which batch.
#[test]
fn contributions_record_the_key_in_force() {
    test(|| {
        let id = aggregated();
        let a = contribute(CLINIC, id, 10);
        assert_ok!(SecureInference::set_sealing_key(
            RuntimeOrigin::signed(AGGREGATOR),
            Some([0xB1; 32])
        ));
        let b = contribute(CLINIC2, id, 10);
        assert_eq!(
            Contributions::<Test>::get(a).unwrap().sealing_key,
            [0xA1; 32]
        );
        assert_eq!(
            Contributions::<Test>::get(b).unwrap().sealing_key,
            [0xB1; 32]
        );
        check();
    });
}

// ---------------------------------------------------------------- contributions

#[test]
fn contributions_hold_deposits_until_withdrawn() {
    test(|| {
        let id = aggregated();
        let a = contribute(CLINIC, id, 10);
        assert_eq!(
            last_event(),
            Event::DataContributed {
                contribution_id: a,
                model_id: id,
                contributor: CLINIC,
                aggregator: AGGREGATOR,
                sealing_key: [0xA1; 32],
                commitment: batch(a),
                rows: 10,
            }
            .into()
        );
        let b = contribute(CLINIC, id, 20);
        assert_eq!(data_held(CLINIC), 2 * CONTRIBUTION_DEPOSIT);
        assert_eq!(
            Contributions::<Test>::get(b).unwrap(),
            Contribution {
                model_id: id,
                contributor: CLINIC,
                aggregator: AGGREGATOR,
                sealing_key: [0xA1; 32],
                commitment: batch(b),
                rows: 20,
                submitted: 1,
                deposit: CONTRIBUTION_DEPOSIT,
                release: None,
            }
        );
        check();
        assert_noop!(
            SecureInference::withdraw_contribution(RuntimeOrigin::signed(CLINIC2), a),
            Err::NotContributor
        );
        assert_noop!(
            SecureInference::withdraw_contribution(RuntimeOrigin::signed(AGGREGATOR), a),
            Err::NotContributor
        );
        assert_noop!(
            SecureInference::withdraw_contribution(RuntimeOrigin::signed(CLINIC), 77),
            Err::ContributionNotFound
        );
        assert_ok!(SecureInference::withdraw_contribution(
            RuntimeOrigin::signed(CLINIC),
            a
        ));
        assert_eq!(
            last_event(),
            Event::ContributionWithdrawn {
                contribution_id: a,
                model_id: id,
                contributor: CLINIC,
            }
            .into()
        );
        assert_eq!(data_held(CLINIC), CONTRIBUTION_DEPOSIT);
        assert!(Contributions::<Test>::get(a).is_none());
        // A withdrawn contribution cannot be released.
        assert_noop!(
            Publish::of(id, h(50), &[a]).call(),
            Err::ContributionNotFound
        );
        check();
    });
}

#[test]
fn a_released_contribution_stays_on_record() {
    test(|| {
        let id = aggregated();
        let c = contribute(CLINIC, id, 10);
        let r = Publish::of(id, h(50), &[c]).ok();
        assert_eq!(Contributions::<Test>::get(c).unwrap().release, Some(r));
        assert_noop!(
            SecureInference::withdraw_contribution(RuntimeOrigin::signed(CLINIC), c),
            Err::ContributionReleased
        );
        // Kept with its deposit, like the release with the aggregator's.
        assert_eq!(data_held(CLINIC), CONTRIBUTION_DEPOSIT);
        assert_eq!(data_held(AGGREGATOR), SEALING_KEY_DEPOSIT + RELEASE_DEPOSIT);
        // Even after the release trained a generation.
        assert_ok!(retrain(id, 8, 50, LineageChoice::Continue));
        assert_noop!(
            SecureInference::withdraw_contribution(RuntimeOrigin::signed(CLINIC), c),
            Err::ContributionReleased
        );
        check();
    });
}

// ---------------------------------------------------------------- publish_dataset

#[test]
fn only_the_current_aggregator_publishes() {
    test(|| {
        let id = aggregated();
        let c = contribute(CLINIC, id, 10);
        for intruder in [OWNER, WORKER, CLINIC, AGGREGATOR2, EVE] {
            let p = Publish {
                by: intruder,
                ..Publish::of(id, h(50), &[c])
            };
            assert_noop!(p.call(), Err::NotAggregator);
        }
        assert_noop!(Publish::of(9, h(50), &[c]).call(), Err::ModelNotFound);
        // A model without aggregator has nobody to publish.
        let open = register();
        assert_noop!(Publish::of(open, h(50), &[c]).call(), Err::NotAggregator);
        check();
    });
}

#[test]
fn publish_refuses_contributions_it_may_not_release() {
    test(|| {
        let id = aggregated();
        let other = register();
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            other,
            Some(AGGREGATOR)
        ));
        let mine = contribute(CLINIC, id, 10);
        let foreign = contribute(CLINIC, other, 10);
        let p = |cs: &[ContributionId]| Publish::of(id, h(50), cs);
        assert_noop!(p(&[]).call(), Err::NoContributions);
        assert_noop!(p(&[mine, 99]).call(), Err::ContributionNotFound);
        assert_noop!(p(&[mine, mine]).call(), Err::DuplicateContribution);
        // Same aggregator, but for another model.
        assert_noop!(p(&[mine, foreign]).call(), Err::ContributionNotUsable);

        // Already released.
        let r = p(&[mine]).ok();
        let fresh = contribute(CLINIC2, id, 10);
        assert_noop!(
            Publish::of(id, h(51), &[fresh, mine]).call(),
            Err::ContributionReleased
        );
        assert_eq!(
            Releases::<Test>::get(r).unwrap().contributions.to_vec(),
            vec![mine]
        );

        // Sealed to another aggregator: the owner moves the model to AGGREGATOR2, which
        // cannot release what was sealed to AGGREGATOR (nor can AGGREGATOR any more).
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            id,
            Some(AGGREGATOR2)
        ));
        let new = contribute(CLINIC, id, 10);
        assert_eq!(
            Contributions::<Test>::get(new).unwrap().aggregator,
            AGGREGATOR2
        );
        let by2 = |cs: &[ContributionId]| Publish {
            by: AGGREGATOR2,
            ..Publish::of(id, h(52), cs)
        };
        assert_noop!(by2(&[new, fresh]).call(), Err::ContributionNotUsable);
        assert_noop!(Publish::of(id, h(52), &[fresh]).call(), Err::NotAggregator);
        by2(&[new]).ok();
        check();
    });
}

#[test]
fn publish_refuses_weak_anonymity_and_impossible_row_counts() {
    test(|| {
        let id = aggregated();
        let a = contribute(CLINIC, id, 10);
        let b = contribute(CLINIC2, id, 5);
        let valid = Publish::of(id, h(50), &[a, b]);
        let cases: Vec<(Publish, Err)> = vec![
            (
                Publish {
                    k: MIN_ANONYMITY_K - 1,
                    l: 1,
                    ..valid.clone()
                },
                Err::InvalidAnonymity,
            ),
            (
                Publish {
                    k: 0,
                    l: 0,
                    rows: 1,
                    ..valid.clone()
                },
                Err::InvalidAnonymity,
            ),
            (
                Publish {
                    l: 0,
                    ..valid.clone()
                },
                Err::InvalidAnonymity,
            ),
            (
                Publish {
                    l: MIN_ANONYMITY_K + 1,
                    ..valid.clone()
                },
                Err::InvalidAnonymity,
            ),
            // More rows than the clinics contributed: rows were invented.
            (
                Publish {
                    rows: 16,
                    ..valid.clone()
                },
                Err::InvalidRowCount,
            ),
            // Fewer than k rows cannot be k-anonymous.
            (
                Publish {
                    k: 5,
                    l: 2,
                    rows: 4,
                    ..valid.clone()
                },
                Err::InvalidRowCount,
            ),
            (
                Publish {
                    quasi_identifiers: vec![],
                    ..valid.clone()
                },
                Err::InvalidQuasiIdentifiers,
            ),
            (
                Publish {
                    quasi_identifiers: vec!["age", ""],
                    ..valid.clone()
                },
                Err::InvalidQuasiIdentifiers,
            ),
            (
                Publish {
                    quasi_identifiers: vec!["age", "zip", "age"],
                    ..valid.clone()
                },
                Err::InvalidQuasiIdentifiers,
            ),
        ];
        for (p, e) in cases {
            assert_noop!(p.call(), e);
        }
        // The bounds themselves are fine: all rows, l = k.
        let r = Publish {
            rows: 15,
            k: 5,
            l: 5,
            ..valid
        }
        .ok();
        assert_eq!(Releases::<Test>::get(r).unwrap().rows, 15);
        check();
    });
}

#[test]
fn publish_refuses_a_commitment_twice_and_an_unpaid_deposit() {
    test(|| {
        let id = aggregated();
        released(id, h(50));
        let c = contribute(CLINIC2, id, 10);
        assert_noop!(Publish::of(id, h(50), &[c]).call(), Err::ReleaseExists);
        // Even once the first one trained a generation.
        assert_ok!(retrain(id, 8, 50, LineageChoice::Continue));
        assert_noop!(Publish::of(id, h(50), &[c]).call(), Err::ReleaseExists);
        // The same commitment on another model is another release; an aggregator that cannot
        // pay the deposit publishes nothing.
        let other = register();
        assert_ok!(SecureInference::set_aggregator(
            RuntimeOrigin::signed(OWNER),
            other,
            Some(PAUPER)
        ));
        // A key published while it could still pay (deposit already spent elsewhere).
        SealingKeys::<Test>::insert(
            PAUPER,
            SealingKeyRecord {
                key: [0xCC; 32],
                deposit: 0,
            },
        );
        let d = contribute(CLINIC, other, 10);
        let by_pauper = Publish {
            by: PAUPER,
            ..Publish::of(other, h(50), &[d])
        };
        assert_noop!(by_pauper.call(), Err::CannotPayDeposit);
        Balances::set_balance(&PAUPER, INITIAL_BALANCE);
        by_pauper.ok();
        check();
    });
}

#[test]
fn publish_on_a_retired_model_is_refused() {
    test(|| {
        let id = aggregated();
        let c = contribute(CLINIC, id, 10);
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(Publish::of(id, h(50), &[c]).call(), Err::ModelRetired);
        // The clinic takes its records back.
        assert_ok!(SecureInference::withdraw_contribution(
            RuntimeOrigin::signed(CLINIC),
            c
        ));
        check();
    });
}

#[test]
fn a_release_records_its_fields_and_event() {
    test(|| {
        let id = aggregated();
        let a = contribute(CLINIC, id, 10);
        let b = contribute(CLINIC2, id, 7);
        System::set_block_number(4);
        let p = Publish {
            k: 4,
            l: 3,
            quasi_identifiers: vec!["age", "zip", "sex"],
            rows: 16,
            ..Publish::of(id, h(50), &[b, a])
        };
        let r = p.ok();
        assert_eq!(
            last_event(),
            Event::DatasetPublished {
                release_id: r,
                model_id: id,
                aggregator: AGGREGATOR,
                commitment: h(50),
                k: 4,
                l: 3,
                quasi_identifiers: vec![b"age".to_vec(), b"zip".to_vec(), b"sex".to_vec()],
                rows: 16,
                contributions: vec![b, a],
            }
            .into()
        );
        assert_eq!(
            Releases::<Test>::get(r).unwrap(),
            DatasetRelease::<Test> {
                model_id: id,
                aggregator: AGGREGATOR,
                commitment: h(50),
                k: 4,
                l: 3,
                quasi_identifiers: names(&["age", "zip", "sex"]),
                rows: 16,
                contributions: vec![b, a].try_into().unwrap(),
                published: 4,
                deposit: RELEASE_DEPOSIT,
                used_by_generation: None,
            }
        );
        assert_eq!(ReleaseByCommitment::<Test>::get(id, h(50)), Some(r));
        assert_eq!(NextReleaseId::<Test>::get(), r + 1);
        for c in [a, b] {
            assert_eq!(Contributions::<Test>::get(c).unwrap().release, Some(r));
        }
        assert_eq!(data_held(AGGREGATOR), SEALING_KEY_DEPOSIT + RELEASE_DEPOSIT);
        check();
    });
}

#[test]
fn try_state_detects_broken_release_links() {
    new_test_ext().execute_with(|| {
        let id = aggregated();
        let r = released(id, h(50));
        check();
        let c = Releases::<Test>::get(r).unwrap().contributions[0];
        Contributions::<Test>::mutate(c, |x| x.as_mut().unwrap().release = None);
        assert!(SecureInference::do_try_state(1).is_err());
        Contributions::<Test>::mutate(c, |x| x.as_mut().unwrap().release = Some(r));
        check();
        ReleaseByCommitment::<Test>::remove(id, h(50));
        assert!(SecureInference::do_try_state(1).is_err());
        ReleaseByCommitment::<Test>::insert(id, h(50), r);
        Aggregators::<Test>::insert(id, WORKER);
        assert!(SecureInference::do_try_state(1).is_err());
    });
}
