//! `make bench-load`: the worker at scale against a real dev node.
//!
//! 1. **Engine throughput** (in process, no chain): the worker's per-request work for a score
//!    LR — noise plan, exact DP draw, homomorphic evaluation, offset and sanitisation — on
//!    `--threads` threads over `--evals` requests, with inputs whose proofs were checked
//!    (at upload, as the worker does).
//! 2. **Load**: a dev node and one worker; `--per-block` funded accounts each send one
//!    `request_inference` per block for `--blocks` blocks (inputs proven, uploaded and
//!    verified by the worker beforehand, as clients do before requesting). Every result's
//!    inclusion block is compared with its request's.
//!
//! Prints `RESULT load requests_per_block=… blocks=… result_lag_blocks_p50=… p99=…
//! worker_evals_per_s=…` plus the details. Targets on a 2-core machine: 200 requests per block
//! for 20 blocks with p99 ≤ 2 and ≥ 500 evaluations per second. Proving the inputs is the
//! clients' cost (≈ 1.3 s each here) and dominates the wall time: 4 000 inputs take about
//! 45 minutes on two cores before the load starts; `--distinct-inputs N` proves only N and lets
//! each account ask again about its own inputs (the worker's work per request is the same: it
//! reads the input, evaluates and stores a fresh result). `make bench-load` runs it and the worker
//! optimised, against the debug node (`SMIDL_BIN_DIR` names where both binaries are).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use futures::StreamExt as _;
use smidl_cli::ctx::Context;
use smidl_cli::devnet::Devnet;
use smidl_cli::keys;
use smidl_cli::model::{self, LineageArg, PolicyArgs, RegisterOptions, Source};
use smidl_worker::chain::{self, smidl, Wait};
use smidl_worker::dp::Mechanism;
use smidl_worker::wire::LimitAction;
use smidl_worker::worker::LoadedModel;
use subxt_signer::sr25519::{dev, Keypair};

use smidl::secure_inference::events as ev;

struct Args {
    per_block: usize,
    blocks: usize,
    evals: usize,
    threads: usize,
    /// Distinct proven inputs; requests cycle through them (0: one per request).
    distinct_inputs: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        per_block: 200,
        blocks: 20,
        evals: 4_000,
        threads: 2,
        distinct_inputs: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<usize> {
            it.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--per-block" => a.per_block = value()?,
            "--blocks" => a.blocks = value()?,
            "--evals" => a.evals = value()?,
            "--threads" => a.threads = value()?,
            "--distinct-inputs" => a.distinct_inputs = value()?,
            other => bail!(
                "unknown option {other} (--per-block N --blocks N --evals N --threads N \
                 --distinct-inputs N)"
            ),
        }
    }
    ensure!(a.per_block > 0 && a.blocks > 0, "nothing to send");
    let total = a.per_block * a.blocks;
    if a.distinct_inputs == 0 || a.distinct_inputs > total {
        a.distinct_inputs = total;
    }
    // Each account cycles through its own inputs, so every account needs at least one.
    ensure!(
        a.distinct_inputs >= a.per_block,
        "--distinct-inputs must be at least --per-block ({})",
        a.per_block
    );
    Ok(a)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Phase 1: what the pipeline does per request after the input check, on `threads` threads.
fn engine_throughput(
    model: Arc<LoadedModel>,
    inputs: Arc<Vec<smidl_fhe::EncryptedInput>>,
    epsilon_micro: u64,
    evals: usize,
    threads: usize,
) -> Result<f64> {
    let started = Instant::now();
    let per_thread = evals.div_ceil(threads.max(1));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let (model, inputs) = (model.clone(), inputs.clone());
            std::thread::spawn(move || -> Result<usize> {
                for i in 0..per_thread {
                    let input = &inputs[(t * per_thread + i) % inputs.len()];
                    let plans =
                        model.fitting_noise_plans(Mechanism::DiscreteLaplace, epsilon_micro)?;
                    let mut offsets = Vec::with_capacity(plans.len());
                    for plan in &plans {
                        offsets.extend(plan.sample(1)?);
                    }
                    let verified = smidl_fhe::VerifiedInput::assume_verified(input);
                    let out = model.server.answer(&verified, None, &offsets)?;
                    std::hint::black_box(out);
                }
                Ok(per_thread)
            })
        })
        .collect();
    let mut done = 0;
    for h in handles {
        done += h
            .join()
            .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Funds `keys` from Alice in one burst (local nonces, all waited for together).
async fn fund(alice: &Context, keys: &[Keypair]) -> Result<()> {
    let mut nonce = alice.client.next_nonce(&alice.account()).await?;
    let at = alice.client.finalized().await?;
    let mut sent = Vec::new();
    for k in keys {
        let call = smidl::transactions().balances().transfer_keep_alive(
            subxt::utils::MultiAddress::Id(chain::account_of(k)),
            1_000_000_000_000_000,
        );
        sent.push(chain::send(&at, &call, &alice.key, nonce).await?);
        nonce += 1;
    }
    for r in futures::future::join_all(
        sent.into_iter()
            .map(|p| chain::watch(&alice.client, p, Wait::Finalized)),
    )
    .await
    {
        r?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let total = a.per_block * a.blocks;
    eprintln!(
        "load bench: {} requests per block × {} blocks = {total}; engine: {} evaluations on {} threads",
        a.per_block, a.blocks, a.evals, a.threads
    );
    let net = Devnet::start().await?;
    let home = net.dir.join("client-home");
    let alice = Context::connect(&net.rpc, &net.worker_url, dev::alice(), home, false).await?;
    // ε = 1 per query, or less when the whole run would overspend the chain's largest lineage
    // budget (1 000 ε): a load run is not a privacy plan.
    let epsilon = (900.0 / (total as f64 + 10.0)).min(1.0);
    let reg = model::register(
        &alice,
        RegisterOptions {
            source: Source::Logistic {
                l2_lambda: 0.1,
                clip_norm: 4.0,
            },
            csv: None,
            workers: vec![chain::account_of(&dev::alice())],
            policy: PolicyArgs {
                max_queries: 1_000_000,
                lifetime_blocks: 100_000,
                idle_blocks: 50_000,
                epsilon_per_query: epsilon,
                account_budget: (a.blocks as f64 + 1.0) * epsilon,
                zcdp_delta_exponent: None,
                fee: 0,
            },
            lineage: LineageArg::New {
                epsilon: (total as f64 + 10.0) * epsilon,
            },
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
        },
    )
    .await
    .context("registering the bench model")?;
    let session = Arc::new(keys::session(&alice, reg.model_id).await?);

    // Clients' work: one proven ciphertext per request (all under one client key: the bench's
    // accounts are one simulated client population).
    let started = Instant::now();
    let rows = Arc::new(reg.dataset.test_x.clone());
    let distinct = a.distinct_inputs;
    let mut inputs = Vec::with_capacity(distinct);
    let chunk = distinct.div_ceil(a.threads.max(1));
    let workers: Vec<_> = (0..a.threads.max(1))
        .map(|t| {
            let (s, rows) = (session.clone(), rows.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<smidl_fhe::EncryptedInput>> {
                (t * chunk..((t + 1) * chunk).min(distinct))
                    .map(|i| s.encrypt(&rows[i % rows.len()]))
                    .collect()
            })
        })
        .collect();
    for w in workers {
        inputs.extend(w.await??);
    }
    let prove_s = started.elapsed().as_secs_f64();
    eprintln!("  {distinct} inputs proven in {prove_s:.0} s ({total} requests)");

    // Phase 1, from the same model and inputs.
    let loaded = Arc::new(LoadedModel::new(
        reg.model_id,
        smidl_fhe::ServerModel::from_canonical_bytes(&reg.install.server_model)?,
        reg.weights_commitment,
    ));
    let sample: Arc<Vec<_>> = Arc::new(inputs.iter().take(64).cloned().collect());
    let (model, threads, evals) = (loaded.clone(), a.threads, a.evals);
    let micro = (epsilon * 1e6) as u64;
    let evals_per_s = tokio::task::spawn_blocking(move || {
        engine_throughput(model, sample, micro, evals, threads)
    })
    .await??;
    eprintln!("  engine: {evals_per_s:.0} evaluations + noise + sanitisation per second");

    // Accounts, funded; each uploads its inputs (the worker verifies every proof now).
    let accounts: Vec<Keypair> = (0..a.per_block)
        .map(|i| chain::keypair_from_uri(&format!("//smidl-load/{i}")))
        .collect::<Result<_, _>>()?;
    fund(&alice, &accounts).await.context("funding accounts")?;
    let started = Instant::now();
    let mut by_account: Vec<Vec<[u8; 32]>> = vec![Vec::new(); a.per_block];
    let uploads = futures::stream::iter(inputs.into_iter().enumerate().map(|(i, input)| {
        let account = i % a.per_block;
        let (key, api) = (accounts[account].clone(), alice.worker.clone());
        let id = reg.model_id;
        async move {
            let bytes = input.to_bytes();
            let c = chain::blake2_256(&bytes);
            api.put_input(&key, id, &c, bytes)
                .await
                .map(|_| (account, c))
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    for u in uploads {
        let (account, c) = u.context("uploading an input")?;
        by_account[account].push(c);
    }
    let upload_s = started.elapsed().as_secs_f64();
    eprintln!("  {distinct} inputs uploaded and verified by the worker in {upload_s:.0} s");

    // The load: at each new best block, every account sends its next request.
    let mut best = alice.client.stream_best_blocks().await?;
    let mut watches = Vec::new();
    let mut first_block = None;
    // An account asks again about an input it already asked about once its own run out (the
    // worker keeps inputs for the epoch): what the worker does per request is the same.
    let mut queues: Vec<_> = by_account
        .into_iter()
        .map(|v| v.into_iter().cycle())
        .collect();
    for round in 0..a.blocks {
        let b = best.next().await.context("best blocks ended")??;
        first_block.get_or_insert(b.number());
        let next: Vec<[u8; 32]> = queues
            .iter_mut()
            .map(Iterator::next)
            .collect::<Option<_>>()
            .context("an account ran out of inputs")?;
        let at = alice.client.finalized().await?;
        let sends = accounts.iter().zip(next).map(|(key, c)| {
            let at = &at;
            let call = smidl::transactions()
                .secure_inference()
                .request_inference(reg.model_id, c.into());
            let key = key.clone();
            async move { chain::send(at, &call, &key, round as u64).await }
        });
        for p in futures::future::join_all(sends).await {
            // Watched from now on, so each subscription ends at inclusion: the node allows
            // a bounded number per connection (1 024 by default), far below blocks × per-block.
            let (client, p) = (alice.client.clone(), p.context("sending a request")?);
            watches.push(tokio::spawn(async move {
                chain::watch(&client, p, Wait::InBlock).await
            }));
        }
    }
    let mut requested: HashMap<u64, u64> = HashMap::new();
    for r in futures::future::join_all(watches).await {
        let r = r.context("a watch task failed")?;
        let inc = r.context("a request was not included")?;
        let e = inc
            .events
            .find_first::<ev::InferenceRequested>()
            .context("no InferenceRequested")??;
        requested.insert(e.request_id, inc.block_number);
    }
    let last_request = requested.values().copied().max().unwrap_or(0);

    // Results, read from the finalized chain.
    let mut answered: HashMap<u64, u64> = HashMap::new();
    let from = first_block.unwrap_or(1);
    let mut n = from;
    let give_up = Instant::now() + Duration::from_secs(600);
    while answered.len() < requested.len() && Instant::now() < give_up {
        let head = alice.at_finalized().await?.block_number();
        while n <= head {
            let events = alice.client.at_block(n).await?.events().fetch().await?;
            for e in events.find::<ev::ResultSubmitted>() {
                let e = e?;
                if requested.contains_key(&e.request_id) {
                    answered.entry(e.request_id).or_insert(n);
                }
            }
            n += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The worker's own figure: mean time per evaluation (reading the input from its vault,
    // checking, evaluating, noising, sanitising), from its Prometheus histogram.
    let metrics = reqwest::get(format!("{}/metrics", net.worker_url))
        .await?
        .text()
        .await?;
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let eval_ms = 1e3 * metric("smidl_worker_eval_seconds_sum")
        / metric("smidl_worker_eval_seconds_count").max(1.0);
    // Every vault access since the worker started (uploads, evaluations, releases) per request.
    let accesses_per_request =
        metric("smidl_worker_vault_accesses") / requested.len().max(1) as f64;
    let cache_hits = metric("smidl_worker_vault_cache_hits");
    let mut per_block: BTreeMap<u64, usize> = BTreeMap::new();
    for b in requested.values() {
        *per_block.entry(*b).or_default() += 1;
    }
    let mut lags: Vec<u64> = requested
        .iter()
        .filter_map(|(id, b)| answered.get(id).map(|r| r.saturating_sub(*b)))
        .collect();
    lags.sort_unstable();
    let missing = requested.len() - lags.len();
    let max_per_block = per_block.values().copied().max().unwrap_or(0);
    let mean_per_block = requested.len() as f64 / per_block.len().max(1) as f64;
    eprintln!(
        "  requests in {} blocks (#{}..#{last_request}): max {max_per_block}, mean \
         {mean_per_block:.1} per block; {} answered, {missing} missing",
        per_block.len(),
        per_block.keys().next().copied().unwrap_or(0),
        lags.len()
    );
    println!(
        "RESULT load requests_per_block={mean_per_block:.1} blocks={} result_lag_blocks_p50={} \
         p99={} max={} missing={missing} worker_evals_per_s={evals_per_s:.0} \
         max_requests_per_block={max_per_block} worker_eval_ms_mean={eval_ms:.1} \
         distinct_inputs={distinct} inputs_prove_s={prove_s:.0} \
         inputs_upload_verify_s={upload_s:.0} vault_accesses_per_request={accesses_per_request:.1} vault_cache_hits={cache_hits:.0}",
        per_block.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0),
    );
    drop(net);
    Ok(())
}
