//! Erasure attestations: a worker ends an epoch only on the record of having shredded it.

use super::*;

/// Lock `id` by spending K = 5 requests of distinct accounts (in a block of their own: a
/// block takes at most `MAX_REQUESTS_PER_BLOCK`).
fn exhaust(id: ModelId) {
    run_to_block(System::block_number() + 1);
    for who in sybils(5) {
        request(who, id);
    }
    assert_eq!(model(id).state, ModelState::Exhausted);
}

/// The workers whose attestation of `id`'s recorded epoch is on chain, in order.
fn attesters(id: ModelId) -> Vec<u64> {
    Erasures::<Test>::get(id)
        .map(|r| r.attestations.iter().map(|a| a.worker).collect())
        .unwrap_or_default()
}

fn attest_erasure(who: u64, id: ModelId, epoch: EpochIndex) -> DispatchResult {
    SecureInference::attest_erasure(RuntimeOrigin::signed(who), id, epoch, Some(h(0xee)), 3)
}

#[test]
fn worker_cannot_end_an_epoch_it_did_not_attest_shredding() {
    // The attack: a provider restarts the epoch's counters (and so its access limit) while
    // keeping the epoch's client data. The chain cannot see the data, but it refuses to let
    // a worker restart without a signed record of the erasure, which then names the worker.
    test(|| {
        let id = register();
        exhaust(id);
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER), id),
            Err::ErasureNotAttested
        );
        assert_ok!(SecureInference::authorise_retrain(
            RuntimeOrigin::signed(OWNER),
            id,
            RetrainAuthorisation {
                weights_commitment: h(8),
                dataset_commitment: h(2),
                lineage: LineageChoice::Continue,
                privacy: PrivacyMode::PerQuery,
            }
        ));
        assert_noop!(
            SecureInference::retrain_model(
                RuntimeOrigin::signed(WORKER),
                id,
                h(8),
                h(2),
                LineageChoice::Continue,
                PrivacyMode::PerQuery
            ),
            Err::ErasureNotAttested
        );
        attest(id);
        assert_ok!(SecureInference::retrain_model(
            RuntimeOrigin::signed(WORKER),
            id,
            h(8),
            h(2),
            LineageChoice::Continue,
            PrivacyMode::PerQuery
        ));
        assert_eq!(model(id).epoch, 1);
    });
}

#[test]
fn an_old_epochs_attestation_does_not_end_a_new_one() {
    // Replay: the attestation of epoch 0 must not let the worker end epoch 1 as well.
    test(|| {
        let id = register();
        exhaust(id);
        attest(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
        exhaust(id);
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER), id),
            Err::ErasureNotAttested
        );
        // Nor can the worker re-file epoch 0's.
        assert_noop!(attest_erasure(WORKER, id, 0), Err::WrongEpoch);
        attest(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
        assert_eq!(model(id).epoch, 2);
    });
}

#[test]
fn attestation_is_recorded_and_announced() {
    test(|| {
        let id = register();
        run_to_block(30); // idle past 20 blocks: expired, though nobody recorded it
        assert_ok!(SecureInference::attest_erasure(
            RuntimeOrigin::signed(WORKER),
            id,
            0,
            None,
            0
        ));
        let record = Erasures::<Test>::get(id).unwrap();
        assert_eq!(record.epoch, 0);
        assert_eq!(
            record.attestations.to_vec(),
            vec![ErasureAttestation {
                worker: WORKER,
                final_root: None,
                accesses: 0,
                at: 30,
            }]
        );
        assert_eq!(
            last_event(),
            Event::EpochErased {
                model_id: id,
                epoch: 0,
                final_root: None,
                accesses: 0,
                by: WORKER,
            }
            .into()
        );
        // Never replaced, so what an auditor read stays what the worker signed.
        assert_noop!(attest_erasure(WORKER, id, 0), Err::ErasureAlreadyAttested);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER),
            id
        ));
        // The record of epoch 0 stays until the next epoch's replaces it.
        assert_eq!(Erasures::<Test>::get(id).map(|e| e.epoch), Some(0));
    });
}

#[test]
fn attestation_refusals() {
    test(|| {
        let id = register();
        assert_noop!(attest_erasure(WORKER, id + 1, 0), Err::ModelNotFound);
        // A live epoch is not shredded: the worker would go on serving from it.
        assert_noop!(attest_erasure(WORKER, id, 0), Err::ResetNotAllowed);
        exhaust(id);
        assert_noop!(attest_erasure(EVE, id, 0), Err::NotWorker);
        // The owner does not hold the data; it resets without an attestation.
        assert_noop!(attest_erasure(OWNER, id, 0), Err::NotWorker);
        assert_noop!(attest_erasure(WORKER, id, 1), Err::WrongEpoch);
        assert_ok!(SecureInference::retire_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_noop!(attest_erasure(WORKER, id, 0), Err::ModelRetired);
    });
}

#[test]
fn the_owner_resets_without_an_attestation() {
    test(|| {
        let id = register();
        exhaust(id);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(OWNER),
            id
        ));
        assert_eq!(Erasures::<Test>::get(id), None);
    });
}

#[test]
fn every_worker_must_attest_before_one_ends_the_epoch() {
    // The attack: one worker shreds (or claims to) and resets while another still holds the
    // epoch's data for the requests assigned to it.
    test(|| {
        let id = NextModelId::<Test>::get();
        assert_ok!(SecureInference::register_model(
            RuntimeOrigin::signed(OWNER),
            workers(&[WORKER, WORKER2]),
            h(1),
            h(2),
            policy(),
            new_lineage(),
            PrivacyMode::PerQuery
        ));
        exhaust(id);
        attest_by(WORKER, id);
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER), id),
            Err::ErasureNotAttested
        );
        assert_noop!(attest_erasure(WORKER, id, 0), Err::ErasureAlreadyAttested);
        attest_by(WORKER2, id);
        assert_eq!(attesters(id), vec![WORKER, WORKER2]);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER2),
            id
        ));
        // Epoch 1: the first attestation replaces epoch 0's record.
        exhaust(id);
        attest_by(WORKER2, id);
        let record = Erasures::<Test>::get(id).unwrap();
        assert_eq!(record.epoch, 1);
        assert_eq!(record.attestations.len(), 1);
    });
}

#[test]
fn a_replaced_workers_attestation_does_not_count() {
    test(|| {
        let id = register();
        exhaust(id);
        attest(id);
        // The owner swaps the worker: the new one holds the requests it was given and must
        // attest itself; the old one's record is dropped at the next attestation.
        assert_ok!(SecureInference::set_workers(
            RuntimeOrigin::signed(OWNER),
            id,
            workers(&[WORKER2])
        ));
        assert_noop!(
            SecureInference::reset_model(RuntimeOrigin::signed(WORKER2), id),
            Err::ErasureNotAttested
        );
        attest_by(WORKER2, id);
        assert_eq!(attesters(id), vec![WORKER2]);
        assert_ok!(SecureInference::reset_model(
            RuntimeOrigin::signed(WORKER2),
            id
        ));
    });
}
