// End-to-end check of the path a polkadot.js apps user takes: connect to a smidl dev node,
// read the pallet's metadata, register a model and request an inference as dev accounts,
// answer it as the model's worker, and read storage, events and errors back.
//
// Usage: node test.mjs [ws://127.0.0.1:9944]
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, blake2AsHex } from '@polkadot/util-crypto';

const endpoint = process.argv[2] || 'ws://127.0.0.1:9944';
let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

// Submit a signed extrinsic; resolve with its events once in a block, or reject with the
// decoded module error ("secureInference.ModelNotFound") if it failed.
function submit(api, tx, signer) {
  return new Promise((resolve, reject) => {
    let unsub = () => {};
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (!status.isInBlock && !status.isFinalized) return;
      unsub();
      if (dispatchError) {
        if (dispatchError.isModule) {
          const e = api.registry.findMetaError(dispatchError.asModule);
          reject(new Error(`${e.section}.${e.name}`));
        } else {
          reject(new Error(dispatchError.toString()));
        }
        return;
      }
      resolve(events.map(({ event }) => event));
    }).then((u) => { unsub = u; }, reject);
  });
}

function findEvent(events, method) {
  return events.find((e) => e.section === 'secureInference' && e.method === method);
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(endpoint), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  const alice = keyring.addFromUri('//Alice'); // model owner and its worker
  const bob = keyring.addFromUri('//Bob'); // a client (e.g. a clinic)

  // Metadata: the pallet, its storage items and their docs, as polkadot.js apps shows them.
  const pallet = api.runtimeMetadata.asLatest.pallets.find((p) => p.name.toString() === 'SecureInference');
  check(pallet !== undefined, 'metadata has the SecureInference pallet');
  const storage = pallet.storage.unwrap().items;
  for (const name of ['Models', 'Lineages', 'Usage', 'EvalKeys', 'Requests', 'Bounds', 'Erasures']) {
    const item = storage.find((s) => s.name.toString() === name);
    check(item && item.docs.length > 0, `storage item ${name} is documented`);
  }
  check(api.tx.secureInference.requestInference.meta.docs.length > 0, 'request_inference is documented');
  check(api.tx.secureInference.attestErasure.meta.docs.length > 0, 'attest_erasure is documented');

  // Register a model: K = 3, 0.5 ε per query, 2 ε per account, a fee of 1 milli-unit.
  const policy = {
    maxQueriesPerEpoch: 3,
    epochLifetime: 1000,
    idleTimeout: 500,
    epsilonPerQuery: 500000,
    accountEpsilonBudget: 2000000,
    accounting: 'PureEpsilon',
    feePerQuery: 1000000000,
  };
  const weights = blake2AsHex('weights of a test model');
  const dataset = blake2AsHex('test dataset generation 0');
  const regEvents = await submit(
    api,
    // New training rows: a lineage of their own with a total of 4 ε for all accounts.
    // Per-query privacy: every answer is noised and charged.
    api.tx.secureInference.registerModel(
      [alice.address],
      weights,
      dataset,
      policy,
      { New: { epsilonBudget: 4000000 } },
      'PerQuery',
    ),
    alice,
  );
  const registered = findEvent(regEvents, 'ModelRegistered');
  check(registered !== undefined, 'ModelRegistered emitted');
  const modelId = registered.data.modelId.toNumber();
  const model = (await api.query.secureInference.models(modelId)).unwrap();
  check(model.owner.toString() === alice.address, 'model owner is Alice');
  check(model.weightsCommitment.toHex() === weights, 'weights commitment stored');
  check(model.policy.maxQueriesPerEpoch.toNumber() === 3, 'policy K stored');
  const lineageId = registered.data.lineageId.toNumber();
  check(model.lineage.toNumber() === lineageId, 'model is on the lineage it opened');

  // Bob asks for an inference on the commitment of his (encrypted) input.
  const input = blake2AsHex('ciphertext bytes');
  const reqEvents = await submit(api, api.tx.secureInference.requestInference(modelId, input), bob);
  const requested = findEvent(reqEvents, 'InferenceRequested');
  check(requested !== undefined, 'InferenceRequested emitted');
  check(requested.data.requester.toString() === bob.address, 'requester is Bob');
  check(requested.data.accountQueries.toNumber() === 1, 'n_i = 1');
  check(requested.data.epochQueries.toNumber() === 1, 'N = 1');
  const requestId = requested.data.requestId.toNumber();
  const usage = (await api.query.secureInference.usage(modelId, bob.address)).unwrap();
  check(usage.queries.toNumber() === 1, 'Usage(model, Bob).queries = 1');
  check(usage.spent.toNumber() === 500000, 'Usage(model, Bob).spent = 0.5 ε');
  check(requested.data.worker.toString() === alice.address, 'the request is assigned to Alice');
  const lineage = (await api.query.secureInference.lineages(lineageId)).unwrap();
  check(lineage.spent.toNumber() === 500000, 'the lineage was charged 0.5 ε');
  check(lineage.budget.toNumber() === 4000000, 'the lineage budget is 4 ε');

  // Bob is not a worker: his result is refused with the pallet's error.
  try {
    await submit(api, api.tx.secureInference.submitResult(requestId, blake2AsHex('x')), bob);
    check(false, 'a non-worker cannot submit a result');
  } catch (e) {
    check(e.message === 'secureInference.NotWorker', `a non-worker is refused (${e.message})`);
  }

  // Alice, the authorised worker, answers.
  const output = blake2AsHex('encrypted output');
  const resEvents = await submit(api, api.tx.secureInference.submitResult(requestId, output), alice);
  check(findEvent(resEvents, 'ResultSubmitted') !== undefined, 'ResultSubmitted emitted');
  const request = (await api.query.secureInference.requests(requestId)).unwrap();
  check(request.status.isCompleted, 'request status is Completed');
  check(request.status.asCompleted.outputCommitment.toHex() === output, 'output commitment stored');

  // A privately trained model on the same rows: its training (1 ε) is charged to the lineage
  // once, at registration; its answers charge nothing and count against the answer limits.
  const privEvents = await submit(
    api,
    api.tx.secureInference.registerModel(
      [alice.address],
      blake2AsHex('weights of a privately trained model'),
      dataset,
      policy,
      { Join: lineageId },
      { PrivateModel: { trainingEpsilon: 1000000, answersPerAccount: 1, answersPerGeneration: 10 } },
    ),
    alice,
  );
  const charged = findEvent(privEvents, 'TrainingCharged');
  check(charged !== undefined && charged.data.cost.toNumber() === 1000000, 'TrainingCharged 1 ε');
  const privateId = findEvent(privEvents, 'ModelRegistered').data.modelId.toNumber();
  const privReq = findEvent(
    await submit(api, api.tx.secureInference.requestInference(privateId, input), bob),
    'InferenceRequested',
  );
  check(privReq.data.privacyCharged.toNumber() === 0, 'a private model answer charges nothing');
  const after = (await api.query.secureInference.lineages(lineageId)).unwrap();
  check(after.spent.toNumber() === 1500000, 'the lineage holds 0.5 ε of queries + 1 ε of training');
  try {
    await submit(api, api.tx.secureInference.requestInference(privateId, input), bob);
    check(false, 'a second answer beyond the per-account limit is refused');
  } catch (e) {
    check(
      e.message === 'secureInference.AccountAnswerLimitReached',
      `the answer limit holds (${e.message})`,
    );
  }

  // Unknown model: the refusal names the pallet's error.
  try {
    await submit(api, api.tx.secureInference.requestInference(99999, input), bob);
    check(false, 'an unknown model is refused');
  } catch (e) {
    check(e.message === 'secureInference.ModelNotFound', `an unknown model is refused (${e.message})`);
  }

  await api.disconnect();
  if (failures > 0) {
    console.log(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('polkadot.js test passed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
