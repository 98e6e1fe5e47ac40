//! `smidl demo`: the whole system in one command, on a temporary dev chain.
//!
//! Starts `smidl-node --dev` and a worker, trains the breast-cancer logistic regression,
//! registers it with a small K, runs encrypted inferences for two dev accounts on test rows
//! (each prediction next to the clear model's, with latencies), shows the ledger's counters
//! and budgets, drives the model to K, shows the refusal, waits for the worker's controlled
//! deletion and signed reset, queries again in the new epoch until the budget refuses, and
//! finally answers one of the first rows again from a model trained with DP on the same rows
//! (the other privacy mode: one training charge, no per-answer charge).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use smidl_dp::{Mechanism, NoisePlan};
use smidl_protocol::chain::{self, read, smidl, ModelState, Wait};
use smidl_protocol::wire::LimitAction;
use subxt_signer::sr25519::dev;

use crate::ctx::Context;
use crate::devnet::Devnet;
use crate::infer::{self, Answer, Outcome};
use crate::model::{self, PolicyArgs, RegisterOptions, Source};
use crate::status;
use crate::ui;

/// The demo's policy and model, chosen so a run takes a couple of minutes.
pub struct DemoConfig {
    pub queries_per_account: usize,
    pub epsilon_per_query: f64,
    pub account_budget: f64,
    /// Total ε of the model's lineage (all accounts, all epochs).
    pub lineage_budget: f64,
    pub l2_lambda: f64,
    pub clip_norm: f64,
    pub lifetime_blocks: u32,
    pub idle_blocks: u32,
    pub on_limit: LimitAction,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            queries_per_account: 3,
            epsilon_per_query: 2.0,
            account_budget: 8.0,
            lineage_budget: 24.0,
            l2_lambda: 0.1,
            clip_norm: 4.0,
            lifetime_blocks: 400,
            idle_blocks: 200,
            on_limit: LimitAction::Reset,
        }
    }
}

/// The demo's numbered steps.
const STEPS: usize = 7;

impl DemoConfig {
    /// The chain policy of the demo's models: K = two accounts' queries, pure ε.
    fn policy(&self) -> PolicyArgs {
        PolicyArgs {
            max_queries: (2 * self.queries_per_account) as u32,
            lifetime_blocks: self.lifetime_blocks,
            idle_blocks: self.idle_blocks,
            epsilon_per_query: self.epsilon_per_query,
            account_budget: self.account_budget,
            zcdp_delta_exponent: None,
            fee: 0,
        }
    }
}

fn step(i: usize, n: usize, what: &str) {
    println!("\n[{i}/{n}] {what}");
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// FHE evaluation time as the worker measured it: (sum, count) of its histogram.
async fn worker_eval_seconds(url: &str) -> Option<(f64, f64)> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let grab = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((
        grab("smidl_worker_eval_seconds_sum")?,
        grab("smidl_worker_eval_seconds_count")?,
    ))
}

pub async fn run(cfg: DemoConfig, interactive: bool) -> Result<()> {
    let t0 = Instant::now();
    println!("smidl demo: encrypted breast-cancer diagnosis, governed by a local smidl chain");

    step(
        1,
        STEPS,
        "starting a temporary smidl-node --dev and the provider's worker",
    );
    let s = Instant::now();
    let pb = ui::spinner(
        interactive,
        "starting the dev chain (first finalized block)",
    );
    let net = Devnet::start().await?;
    pb.finish_and_clear();
    println!(
        "      node {} finalizing; worker {} signing as Alice; up in {}",
        net.rpc,
        net.worker_url,
        ui::ms(s.elapsed())
    );
    let home = net.dir.join("client-home");
    let alice =
        Context::connect(&net.rpc, &net.worker_url, dev::alice(), home, interactive).await?;

    step(
        2,
        STEPS,
        "training, registering and installing the model (provider: Alice)",
    );
    let policy = cfg.policy();
    let k = policy.max_queries;
    let reg = model::register(
        &alice,
        RegisterOptions {
            source: Source::Logistic {
                l2_lambda: cfg.l2_lambda,
                clip_norm: cfg.clip_norm,
            },
            csv: None,
            workers: vec![chain::account_of(&dev::alice())],
            policy,
            lineage: model::LineageArg::New {
                epsilon: cfg.lineage_budget,
            },
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: cfg.on_limit,
            delete_eval_keys: true,
        },
    )
    .await?;
    let ds = &reg.dataset;
    let float_acc = reg.float.accuracy(&ds.test_x, &ds.test_y);
    let q_ok = ds
        .test_x
        .iter()
        .zip(&ds.test_y)
        .filter(|(x, &y)| {
            reg.server
                .eval_clear(x)
                .map(|q| (q[0] > 0) as u8 == y)
                .unwrap_or(false)
        })
        .count();
    println!(
        "      logistic regression, λ = {}, features clipped to norm {} ; {} training rows",
        cfg.l2_lambda,
        cfg.clip_norm,
        ds.train_x.len()
    );
    println!(
        "      test accuracy ({} rows): float {:.4}, quantised {:.4}",
        ds.test_x.len(),
        float_acc,
        q_ok as f64 / ds.test_x.len() as f64
    );
    println!(
        "      model {} registered in block #{}: weights 0x{}…, dataset 0x{}…",
        reg.model_id,
        reg.block,
        hex::encode(&reg.weights_commitment[..8]),
        hex::encode(&reg.dataset_commitment[..8])
    );
    println!(
        "      policy: K = {k}, lifetime {} blocks, idle timeout {} blocks, ε {} per query, budget ε {} per account",
        cfg.lifetime_blocks, cfg.idle_blocks, cfg.epsilon_per_query, cfg.account_budget
    );
    let sens = reg.server.output_sensitivity();
    let scale = reg.server.output_scale()[0];
    let eps_micro = ui::to_micro_up(cfg.epsilon_per_query)?;
    let plan = NoisePlan::new(Mechanism::DiscreteLaplace, sens.grid_units[0], eps_micro)?;
    println!(
        "      DP: output sensitivity {} grid units ({:.3} in logit units); discrete Laplace, scale {:.3} logits at ε = {}",
        sens.grid_units[0],
        sens.grid_units[0] as f64 * scale,
        plan.scale_f64() * scale,
        cfg.epsilon_per_query
    );

    step(
        3,
        STEPS,
        "encrypted inferences for Bob and Charlie on test rows",
    );
    let bob = alice.as_account(dev::bob());
    let charlie = alice.as_account(dev::charlie());
    let eval_before = worker_eval_seconds(&net.worker_url).await;
    let mut outcomes: Vec<(String, usize, Outcome)> = Vec::new();
    if let Some(fb) = reg.server.flood_bound() {
        println!(
            "      each input carries a zero-knowledge proof that it encrypts values in the published \
             box (checked by the worker before evaluating; \"encrypt\" includes proving); each \
             answer is sanitised (rerandomised with the client's public key, flooded by ±2^{}), \
             statistical distance to a fresh encryption ≤ 2^{:.1} per answer",
            fb.log2_flood,
            fb.statistical_distance().log2()
        );
    }
    println!(
        "      {:<4} {:<8} {:>4} {:>5} {:>5} {:>7} {:>6} {:>8} {:>9} {:>10} {:>9} {:>9} {:>6}",
        "req",
        "account",
        "row",
        "truth",
        "clear",
        "clear-q",
        "FHE+DP",
        "p(malig)",
        "encrypt",
        "inclusion",
        "worker",
        "finality",
        "blocks"
    );
    let mut row = 0usize;
    let extra_row = 2 * cfg.queries_per_account;
    let mut beyond_k = None;
    for (name, ctx) in [("Bob", &bob), ("Charlie", &charlie)] {
        let session = crate::keys::session(ctx, reg.model_id).await?;
        for i in 0..cfg.queries_per_account {
            let x = &ds.test_x[row];
            // The K-th request: while it is answered, Bob asks once more, as soon as the chain
            // counts N = K. Asking after the answer would race the worker's reset.
            let answer = if name == "Charlie" && i + 1 == cfg.queries_per_account {
                let (answer, refusal) = tokio::join!(
                    infer::infer(ctx, &session, x),
                    ask_beyond_k(&bob, reg.model_id, k, &ds.test_x[extra_row])
                );
                beyond_k = Some(refusal?);
                answer?
            } else {
                infer::infer(ctx, &session, x).await?
            };
            let out = match answer {
                Answer::Result(o) => *o,
                Answer::Rejected { request_id, reason } => {
                    bail!("request #{request_id} was rejected by the worker: {reason}")
                }
            };
            let clear = reg.float.predict_class(x);
            let clear_q = reg.server.eval_clear(x).map(|q| (q[0] > 0) as usize)?;
            let p = out
                .prediction
                .probabilities
                .get(1)
                .copied()
                .unwrap_or(f64::NAN);
            println!(
                "      #{:<3} {:<8} {:>4} {:>5} {:>5} {:>7} {:>6} {:>8.3} {:>9} {:>10} {:>9} {:>9} {:>6}",
                out.request_id,
                name,
                row,
                ds.test_y[row],
                clear,
                clear_q,
                out.prediction.class,
                p,
                ui::ms(out.timings.encrypt),
                ui::ms(out.timings.inclusion),
                ui::ms(out.timings.worker),
                ui::ms(out.timings.finality),
                out.result_block - out.request_block
            );
            outcomes.push((name.to_string(), row, out));
            row += 1;
        }
    }
    let n = outcomes.len();
    let fhe_ok = outcomes
        .iter()
        .filter(|(_, r, o)| o.prediction.class as u8 == ds.test_y[*r])
        .count();
    let clear_ok = outcomes
        .iter()
        .filter(|(_, r, _)| reg.float.predict_class(&ds.test_x[*r]) as u8 == ds.test_y[*r])
        .count();
    let agree = outcomes
        .iter()
        .filter(|(_, r, o)| reg.float.predict_class(&ds.test_x[*r]) == o.prediction.class)
        .count();
    println!(
        "      accuracy on these {n} rows: encrypted+DP {fhe_ok}/{n}, clear model {clear_ok}/{n}; encrypted agrees with clear on {agree}/{n}"
    );
    let col = |f: fn(&Outcome) -> Duration| -> Vec<Duration> {
        outcomes.iter().map(|(_, _, o)| f(o)).collect()
    };
    let fhe = match (eval_before, worker_eval_seconds(&net.worker_url).await) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => {
            format!(
                "{:.3} ms mean over {} evaluations",
                (s1 - s0) / (c1 - c0) * 1e3,
                c1 - c0
            )
        }
        _ => "n/a".into(),
    };
    let mut blocks: Vec<u64> = outcomes
        .iter()
        .map(|(_, _, o)| o.result_block - o.request_block)
        .collect();
    blocks.sort();
    println!("      latency p50 (p90):");
    for (what, v) in [
        ("encrypt", col(|o| o.timings.encrypt)),
        ("upload", col(|o| o.timings.upload)),
        (
            "chain inclusion of the request",
            col(|o| o.timings.inclusion),
        ),
        (
            "request block → result in a block",
            col(|o| o.timings.worker),
        ),
        ("result block finalized", col(|o| o.timings.finality)),
        ("fetch + verify + decrypt", col(|o| o.timings.fetch_decrypt)),
        ("total", col(|o| o.timings.total)),
    ] {
        let mut v = v;
        let (p50, p90) = (percentile(&mut v, 0.5), percentile(&mut v, 0.9));
        println!("        {what:<36} {} ({})", ui::ms(p50), ui::ms(p90));
    }
    println!("        {:<36} {fhe}", "FHE evaluation + DP noise (worker)");
    println!(
        "        {:<36} {} (min {}, max {})",
        "blocks from request to result",
        blocks[blocks.len() / 2],
        blocks[0],
        blocks[blocks.len() - 1]
    );

    step(4, STEPS, "the ledger after these requests");
    for (name, ctx) in [("Bob", &bob), ("Charlie", &charlie)] {
        let snap = status::snapshot(ctx, reg.model_id, &ctx.account()).await?;
        if name == "Bob" {
            println!(
                "      model {}: {} — N = {}/{} in epoch {}",
                reg.model_id,
                status::state_name(&snap.model.state),
                snap.model.queries,
                k,
                snap.model.epoch
            );
        }
        if let Some(a) = snap.account {
            println!(
                "      {name:<8} n_i = {}, ε spent {} of {}",
                a.queries,
                ui::micro(a.spent_epsilon),
                ui::micro(a.budget)
            );
        }
    }

    step(5, STEPS, "the limit: N reached K");
    println!(
        "      Bob asked again once N reached K: {}",
        beyond_k.context("the request beyond K was never sent")?
    );
    row = row.max(extra_row + 1);
    let session = crate::keys::session(&bob, reg.model_id).await?;
    let pb = ui::spinner(
        interactive,
        "waiting for the worker to shred epoch 0's client data and reset",
    );
    let s = Instant::now();
    let (reset_block, by) =
        wait_for_new_epoch(&alice, reg.model_id, 0, Duration::from_secs(180)).await?;
    pb.finish_and_clear();
    let at = alice.at_finalized().await?;
    let erasure = read::erasure(&at, reg.model_id)
        .await?
        .filter(|e| e.epoch == 0)
        .context("the chain holds no erasure attestation of epoch 0")?;
    let root = erasure
        .attestations
        .0
        .first()
        .and_then(|a| a.final_root)
        .map(|r| format!("0x{}", hex::encode(r.0)))
        .unwrap_or_else(|| "none".into());
    println!(
        "      the worker shredded epoch 0's inputs, results and keys (vault key destroyed, \
         objects deleted), attested it on chain (final root {root}) and signed reset_model: \
         epoch 1 started in block #{reset_block} (signed by {by}), {} after the refusal",
        ui::ms(s.elapsed())
    );

    step(
        6,
        STEPS,
        "a new epoch: n_i and N restart, the budget does not",
    );
    let mut last: Option<Outcome> = None;
    loop {
        let x = &ds.test_x[row];
        match infer::infer(&bob, &session, x).await {
            Ok(Answer::Result(o)) => {
                println!(
                    "      Bob #{:<3} row {row}: FHE+DP class {} (clear {}), {} blocks",
                    o.request_id,
                    o.prediction.class,
                    reg.float.predict_class(x),
                    o.result_block - o.request_block
                );
                last = Some(*o);
                row += 1;
            }
            Ok(Answer::Rejected { request_id, reason }) => {
                bail!("request #{request_id} rejected: {reason}")
            }
            Err(e) => {
                let refused = e
                    .downcast_ref::<chain::ChainError>()
                    .and_then(|c| c.refusal())
                    .is_some();
                if !refused {
                    return Err(e);
                }
                println!("      Bob asks again: {e}");
                break;
            }
        }
        if row > ds.test_x.len() - 1 {
            bail!("the budget never refused");
        }
    }
    let snap = status::snapshot(&bob, reg.model_id, &bob.account()).await?;
    if let Some(a) = &snap.account {
        println!(
            "      ledger: epoch {}, N = {}, Bob n_i = {}, ε spent {} of {} (budgets carry over a reset; only a retrain on new data restarts them)",
            snap.model.epoch,
            snap.model.queries,
            a.queries,
            ui::micro(a.spent_epsilon),
            ui::micro(a.budget)
        );
    }
    if last.is_none() {
        bail!("no request succeeded in the new epoch");
    }

    // Last: registering the private model takes a while, and the worker ends a full epoch
    // meanwhile, so it runs after the steps that depend on the epoch's timing.
    two_modes(&alice, &bob, &reg, &outcomes, &cfg).await?;
    println!("\ndemo finished in {}", ui::ms(t0.elapsed()));
    Ok(())
}

/// Uploads one more input for Bob, waits until the finalized chain counts N = K for the model,
/// then requests: the chain must refuse. Returns the refusal.
async fn ask_beyond_k(bob: &Context, model_id: u32, k: u32, x: &[f64]) -> Result<String> {
    let session = crate::keys::session(bob, model_id).await?;
    let extra = session.encrypt(x)?.to_bytes();
    let commitment = chain::blake2_256(&extra);
    bob.worker
        .put_input(&bob.key, model_id, &commitment, extra)
        .await?;
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let snap = status::snapshot(bob, model_id, &bob.account()).await?;
        if snap.model.epoch != 0 {
            bail!("the model left epoch 0 before Bob's request beyond K was sent");
        }
        if snap.model.queries >= k {
            break;
        }
        if Instant::now() > give_up {
            bail!("the chain never counted N = K");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let call = smidl::transactions()
        .secure_inference()
        .request_inference(model_id, commitment.into());
    match chain::submit(&bob.client, &call, &bob.key, Wait::InBlock).await {
        Err(e) if e.refusal().is_some() => Ok(e.to_string()),
        Err(e) => Err(e.into()),
        Ok(_) => bail!("the chain accepted a request beyond K"),
    }
}

/// Waits until the model's epoch moves past `epoch` on the finalized chain; returns the block
/// and the account that signed the reset or retrain.
pub async fn wait_for_new_epoch(
    ctx: &Context,
    model_id: u32,
    epoch: u32,
    patience: Duration,
) -> Result<(u64, String)> {
    let give_up = Instant::now() + patience;
    let start = ctx.at_finalized().await?.block_number();
    let mut n = start;
    loop {
        let at = ctx.at_finalized().await?;
        while n <= at.block_number() {
            let b = ctx
                .client
                .at_block(n)
                .await
                .context("reading a finalized block")?;
            let events = b.events().fetch().await?;
            for e in events.find::<smidl::secure_inference::events::ModelReset>() {
                let e = e?;
                if e.model_id == model_id && e.previous_epoch == epoch {
                    return Ok((n, e.by.to_string()));
                }
            }
            for e in events.find::<smidl::secure_inference::events::ModelRetrained>() {
                let e = e?;
                if e.model_id == model_id && e.previous_epoch == epoch {
                    return Ok((n, e.by.to_string()));
                }
            }
            n += 1;
        }
        let m = read::model(&at, model_id)
            .await?
            .context("model vanished")?;
        if m.epoch > epoch && m.state == ModelState::Active && n > start + 1000 {
            return Ok((at.block_number(), "?".into()));
        }
        if Instant::now() > give_up {
            bail!(
                "the worker did not start a new epoch within {} s",
                patience.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// ε of the demo's privately trained model: the operating point of the DP table in
/// docs/benchmarks.md.
const PRIVATE_TRAIN_EPSILON: f64 = 1.0;
/// Answers an account may get from the private model's weights: a limit, not a budget, because
/// exact scores of fixed weights leak the weights (docs/privacy.md, "Model extraction").
const PRIVATE_ANSWERS_PER_ACCOUNT: u32 = 8;
const PRIVATE_ANSWERS_PER_GENERATION: u32 = 32;

/// Step 7: a row of step 3 answered again by a model trained on the same rows in the other
/// privacy mode, with what each answer cost on the ledger. Fails the demo if the ledger charged
/// the private model per answer or did not charge its training once.
async fn two_modes(
    alice: &Context,
    bob: &Context,
    per_query: &model::Registered,
    outcomes: &[(String, usize, Outcome)],
    cfg: &DemoConfig,
) -> Result<()> {
    step(
        STEPS,
        STEPS,
        "one row, two privacy modes: noise on every answer vs weights trained with DP once",
    );
    let (_, row, pq) = outcomes
        .iter()
        .find(|(name, _, _)| name == "Bob")
        .context("Bob has no answer from step 3")?;
    let before = status::snapshot(alice, per_query.model_id, &alice.account()).await?;
    let private = model::register(
        alice,
        RegisterOptions {
            source: Source::private_logistic_defaults(),
            csv: None,
            workers: vec![alice.account()],
            policy: cfg.policy(),
            lineage: model::LineageArg::Join(per_query.lineage_id),
            privacy: model::PrivacyArg::PrivateModel {
                epsilon: PRIVATE_TRAIN_EPSILON,
                answers_per_account: PRIVATE_ANSWERS_PER_ACCOUNT,
                answers_per_generation: PRIVATE_ANSWERS_PER_GENERATION,
            },
            label_answers: false,
            on_limit: cfg.on_limit,
            delete_eval_keys: true,
        },
    )
    .await?;
    let registered = status::snapshot(alice, per_query.model_id, &alice.account()).await?;
    let training_charge = before
        .model
        .lineage_remaining
        .checked_sub(registered.model.lineage_remaining)
        .context("the lineage's budget grew")?;
    let ds = &private.dataset;
    println!(
        "      model {} registered on the same {} rows (lineage {}): logistic regression trained \
         with DP at ε = {PRIVATE_TRAIN_EPSILON} (output perturbation, λ = {}, R = {}); test \
         accuracy of the released weights {:.4}; the lineage paid ε {} once (left: {} → {})",
        private.model_id,
        ds.train_x.len(),
        private.lineage_id,
        smidl_dp::train::DEFAULT_L2_LAMBDA,
        smidl_dp::train::DEFAULT_CLIP_NORM,
        private.float.accuracy(&ds.test_x, &ds.test_y),
        ui::micro(training_charge),
        ui::micro(before.model.lineage_remaining),
        ui::micro(registered.model.lineage_remaining),
    );
    // The demo's policy is pure ε: the training costs its ε, rounded up to the micro-ε.
    let expected = smidl_dp::Accounting::PureEpsilon
        .training_cost_micro(ui::to_micro_up(PRIVATE_TRAIN_EPSILON)?);
    if training_charge != expected {
        bail!(
            "registering the private model charged the lineage {training_charge} micro-ε, not \
             its training ε ({expected})"
        );
    }

    let session = crate::keys::session(bob, private.model_id).await?;
    let answer = match infer::infer(bob, &session, &ds.test_x[*row]).await? {
        Answer::Result(o) => *o,
        Answer::Rejected { request_id, reason } => {
            bail!("request #{request_id} on the private model was rejected: {reason}")
        }
    };
    let after = status::snapshot(bob, private.model_id, &bob.account()).await?;
    let bob_private = after
        .account
        .as_ref()
        .context("no usage recorded for Bob on the private model")?;
    let bob_per_query = status::snapshot(bob, per_query.model_id, &bob.account())
        .await?
        .account
        .context("no usage recorded for Bob on the per-query model")?;
    let p = |o: &Outcome| {
        o.prediction
            .probabilities
            .get(1)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "      Bob's test row {row} (truth {}), clear model without DP: class {}",
        ds.test_y[*row],
        per_query.float.predict_class(&ds.test_x[*row])
    );
    println!(
        "        per-query      model {}, request #{}: class {}, p(malig) {:.3} (noisy score); \
         charged ε {} to Bob and to the lineage; Bob has spent ε {} of {}",
        per_query.model_id,
        pq.request_id,
        pq.prediction.class,
        p(pq),
        cfg.epsilon_per_query,
        ui::micro(bob_per_query.spent_epsilon),
        ui::micro(bob_per_query.budget),
    );
    println!(
        "        private-model  model {}, request #{}: class {}, p(malig) {:.3} (exact score of \
         the DP weights); charged ε {} to Bob, lineage unchanged ({} left); {} more answers \
         for Bob from these weights",
        private.model_id,
        answer.request_id,
        answer.prediction.class,
        p(&answer),
        ui::micro(bob_private.spent_epsilon),
        ui::micro(after.model.lineage_remaining),
        bob_private.queries_left_by_budget,
    );
    if bob_per_query.remaining == 0 {
        println!(
            "      Bob's budget on the per-query model is spent, so it refuses him; the private \
             model still answers him, within its answer limit"
        );
    }
    if bob_private.spent_epsilon != 0 {
        bail!("the private model's answer was charged to Bob's budget");
    }
    if after.model.lineage_remaining != registered.model.lineage_remaining {
        bail!("the private model's answer was charged to the lineage");
    }
    Ok(())
}
