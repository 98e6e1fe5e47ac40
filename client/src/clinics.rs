//! `smidl demo --clinics`: data aggregation end to end on a temporary dev chain.
//!
//! Alice (the provider) registers a diabetes model trained on her own pilot rows and names
//! Dave as the model's aggregator. Three clinics (Charlie, Eve, Ferdie) seal their patients'
//! records to Dave's on-chain key and record the contributions. Alice's attempt to retrain on
//! raw records is refused by the chain. Dave opens the batches, publishes a k-anonymous,
//! l-diverse release (commitment, k, l, QIs, rows on chain); Bob verifies it; Alice retrains
//! on it (generation 1, a new lineage: new rows) and Bob gets an encrypted prediction from the
//! new generation.

use std::time::Instant;

use anyhow::{ensure, Context as _, Result};
use smidl_anon::{AnonConfig, Table};
use smidl_protocol::chain::{self, read, smidl, Wait};
use smidl_protocol::wire::LimitAction;
use subxt_signer::sr25519::dev;

use crate::ctx::Context;
use crate::devnet::Devnet;
use crate::infer::{self, Answer};
use crate::model::{self, LineageArg, PolicyArgs, RegisterOptions, Source};
use crate::retrain::{self, ReleaseInput, RetrainLineage, RetrainOptions};

/// The release's parameters: Pima's quasi-identifiers, k = 10, l = 2.
pub const K: usize = 10;
pub const L: usize = 2;
pub const QUASI_IDENTIFIERS: [&str; 3] = ["age", "pregnant", "mass"];
/// Alice's own pilot rows (the first training rows); the rest is split among three clinics.
const PILOT_ROWS: usize = 104;

/// What the scenario established (the end-to-end test checks it).
pub struct ClinicsReport {
    pub model_id: u32,
    pub contributions: Vec<u64>,
    pub release_id: u32,
    pub release_rows: u32,
    pub raw_retrain_refused: String,
    pub generation: u32,
    pub test_accuracy_pilot: f64,
    pub test_accuracy_release: f64,
    /// The decrypted class and the clear (noiseless, quantised) model's class for the row.
    pub encrypted_class: usize,
    pub clear_class: usize,
}

fn step(i: usize, what: &str) {
    println!("\n[{i}/7] {what}");
}

pub async fn run(interactive: bool) -> Result<()> {
    let t0 = Instant::now();
    println!("smidl demo --clinics: three clinics, one k-anonymous release, an encrypted diabetes prediction");
    let net = Devnet::start().await?;
    println!("      node {} and worker {} up", net.rpc, net.worker_url);
    let home = net.dir.join("client-home");
    let alice =
        Context::connect(&net.rpc, &net.worker_url, dev::alice(), home, interactive).await?;
    let r = run_on(&alice).await?;
    println!(
        "\ndone in {:.0} s: model {}, release #{} ({} rows, k = {K}, l = {L}), generation {}",
        t0.elapsed().as_secs_f64(),
        r.model_id,
        r.release_id,
        r.release_rows,
        r.generation
    );
    Ok(())
}

/// The scenario on a running chain and worker (Alice signs as owner and worker).
pub async fn run_on(alice: &Context) -> Result<ClinicsReport> {
    let dir = alice.home.join("clinics");
    std::fs::create_dir_all(&dir)?;
    let pima = smidl_fhe::dataset::PIMA_DIABETES_CSV;
    let train = Table::from_csv(pima, Some("train"))?;
    let test = Table::from_csv(pima, Some("test"))?;

    step(
        1,
        "Alice registers the diabetes model on her own pilot rows",
    );
    let mut pilot = Table {
        rows: train.rows[..PILOT_ROWS].to_vec(),
        labels: train.labels[..PILOT_ROWS].to_vec(),
        ..train.clone()
    };
    let provider_csv = dir.join("provider.csv");
    std::fs::write(&provider_csv, with_split(&mut pilot, &test))?;
    let reg = model::register(
        alice,
        RegisterOptions {
            source: Source::Logistic {
                l2_lambda: 0.1,
                clip_norm: 4.0,
            },
            csv: Some(provider_csv.clone()),
            workers: vec![chain::account_of(&dev::alice())],
            policy: PolicyArgs {
                max_queries: 50,
                lifetime_blocks: 2_000,
                idle_blocks: 1_000,
                epsilon_per_query: 1.0,
                account_budget: 20.0,
                zcdp_delta_exponent: None,
                fee: 0,
            },
            lineage: LineageArg::New { epsilon: 50.0 },
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
        },
    )
    .await
    .context("registering the diabetes model")?;
    let test_accuracy_pilot = clear_accuracy(&reg.server, &reg.dataset);
    println!(
        "      model {} on {} pilot rows; test accuracy {:.3} ({} held-out patients)",
        reg.model_id,
        PILOT_ROWS,
        test_accuracy_pilot,
        reg.dataset.test_x.len()
    );

    step(
        2,
        "Alice names Dave the aggregator; Dave publishes his sealing key",
    );
    let dave = alice.as_account(dev::dave());
    crate::data::set_aggregator(alice, reg.model_id, dave.account()).await?;
    let key_path = dave.home.join(format!("aggregator-{}.key", reg.model_id));
    let public = crate::data::keygen(&dave, &key_path).await?;
    println!(
        "      aggregator {} with X25519 key 0x{}…",
        dave.account(),
        hex::encode(&public[..8])
    );

    step(
        3,
        "three clinics seal their records to Dave and record the contributions",
    );
    let rest = train.len() - PILOT_ROWS;
    let per = rest / 3;
    let mut batches = Vec::new();
    let mut contributions = Vec::new();
    for (i, (name, key)) in [
        ("Charlie", dev::charlie()),
        ("Eve", dev::eve()),
        ("Ferdie", dev::ferdie()),
    ]
    .into_iter()
    .enumerate()
    {
        let clinic = alice.as_account(key);
        let lo = PILOT_ROWS + i * per;
        let hi = if i == 2 { train.len() } else { lo + per };
        let t = Table {
            rows: train.rows[lo..hi].to_vec(),
            labels: train.labels[lo..hi].to_vec(),
            ..train.clone()
        };
        let sealed_path = dir.join(format!("clinic-{}.sealed", name.to_lowercase()));
        let c = crate::data::contribute(&clinic, reg.model_id, t.to_csv().as_bytes(), &sealed_path)
            .await?;
        println!(
            "      clinic {name}: contribution #{} — {} rows sealed, commitment 0x{}…",
            c.contribution_id,
            c.rows,
            hex::encode(&c.commitment[..8])
        );
        contributions.push(c.contribution_id);
        batches.push((c.contribution_id, std::fs::read(&sealed_path)?));
    }

    step(
        4,
        "Alice tries to retrain on raw records: the chain refuses",
    );
    let raw = smidl_protocol::commit::dataset(
        &smidl_protocol::commit::fresh_salt()?,
        pima.as_bytes(),
        0..train.len(),
    );
    let call = smidl::transactions().secure_inference().retrain_model(
        reg.model_id,
        [7u8; 32].into(),
        raw.into(),
        chain::LineageChoice::New {
            epsilon_budget: 50_000_000,
        },
        smidl::runtime_types::pallet_secure_inference::types::PrivacyMode::PerQuery,
    );
    let raw_retrain_refused =
        match chain::submit(&alice.client, &call, &alice.key, Wait::InBlock).await {
            Ok(_) => anyhow::bail!("the chain accepted a retrain on raw records"),
            Err(e) => e.to_string(),
        };
    ensure!(
        raw_retrain_refused.contains("DatasetNotReleased"),
        "refused for another reason: {raw_retrain_refused}"
    );
    println!("      refused: {raw_retrain_refused}");

    step(
        5,
        "Dave anonymises the union (Mondrian, k-anonymous, l-diverse) and publishes it",
    );
    let dave_key = crate::data::read_sealing_key(&key_path)?;
    let cfg = AnonConfig {
        k: K,
        l: L,
        quasi_identifiers: QUASI_IDENTIFIERS.map(String::from).to_vec(),
    };
    let release_path = dir.join("release.csv");
    let p = crate::data::anonymize(
        &dave,
        reg.model_id,
        &dave_key,
        &batches,
        &cfg,
        &release_path,
    )
    .await?;
    println!(
        "      release #{}: {} rows, {} classes (smallest {}), NCP {:.3}; on chain: commitment 0x{}…, k = {K}, l = {L}, QIs {}",
        p.release_id,
        p.verified.rows,
        p.verified.classes,
        p.verified.min_class_size,
        p.ncp,
        hex::encode(&p.commitment[..8]),
        QUASI_IDENTIFIERS.join(",")
    );

    step(
        6,
        "Bob verifies the release against the chain; Alice retrains on it",
    );
    let bob = alice.as_account(dev::bob());
    let release_csv = std::fs::read(&release_path)?;
    let opening = crate::data::ReleaseOpening::read(&p.opening)?;
    let checked = crate::data::verify(&bob, &release_csv, &opening).await?;
    println!(
        "      verified: commitment matches, every class ≥ {} rows and ≥ {} labels",
        checked.verified.min_class_size, checked.verified.min_distinct_labels
    );
    let next = retrain::retrain(
        alice,
        RetrainOptions {
            model_id: reg.model_id,
            source: Source::Logistic {
                l2_lambda: 0.1,
                clip_norm: 4.0,
            },
            csv: Some(provider_csv),
            release: Some(ReleaseInput {
                csv: release_csv,
                opening,
            }),
            lineage: RetrainLineage::New { epsilon: 50.0 },
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
            now: true,
        },
    )
    .await
    .context("retraining on the release")?;
    let at = alice.at_finalized().await?;
    let info = read::model(&at, reg.model_id)
        .await?
        .context("model vanished")?;
    let test_accuracy_release = clear_accuracy(&next.server, &next.dataset);
    println!(
        "      generation {} in block #{}, trained on {} released rows; test accuracy {:.3} (pilot model: {:.3})",
        info.generation,
        next.retrained_at.unwrap_or_default(),
        next.dataset.train_x.len(),
        test_accuracy_release,
        test_accuracy_pilot
    );

    step(
        7,
        "Bob's encrypted diabetes prediction from the new generation",
    );
    crate::keys::wait_until_served(&bob, reg.model_id, std::time::Duration::from_secs(60)).await?;
    let session = crate::keys::session(&bob, reg.model_id).await?;
    let x = &next.dataset.test_x[0];
    let clear = next.server.eval_clear(x)?[0];
    let out = match infer::infer(&bob, &session, x).await? {
        Answer::Result(o) => *o,
        Answer::Rejected { request_id, reason } => {
            anyhow::bail!("request #{request_id} was rejected: {reason}")
        }
    };
    let clear_class = usize::from(clear > 0);
    println!(
        "      patient 0 of the held-out rows: encrypted+DP prediction class {} (p = {:.3}), clear model class {clear_class}, truth {}; request #{} answered in block #{}",
        out.prediction.class,
        out.prediction.probabilities.get(1).copied().unwrap_or(f64::NAN),
        next.dataset.test_y[0],
        out.request_id,
        out.result_block
    );
    if out.prediction.class != clear_class {
        println!(
            "      (the per-query DP noise flipped this answer: the row is near the boundary)"
        );
    }
    Ok(ClinicsReport {
        model_id: reg.model_id,
        contributions,
        release_id: p.release_id,
        release_rows: p.verified.rows as u32,
        raw_retrain_refused,
        generation: info.generation,
        test_accuracy_pilot,
        test_accuracy_release,
        encrypted_class: out.prediction.class,
        clear_class,
    })
}

fn clear_accuracy(server: &smidl_fhe::ServerModel, ds: &smidl_fhe::dataset::Dataset) -> f64 {
    let ok = ds
        .test_x
        .iter()
        .zip(&ds.test_y)
        .filter(|(x, &y)| {
            server
                .eval_clear(x)
                .map(|q| (q[0] > 0) as u8 == y)
                .unwrap_or(false)
        })
        .count();
    ok as f64 / ds.test_x.len() as f64
}

/// `features…, label, split` with `train` rows then the held-out `test` rows.
fn with_split(train: &mut Table, test: &Table) -> String {
    let mut out = train.columns.join(",");
    out.push(',');
    out.push_str(&train.label_name);
    out.push_str(",split\n");
    for (t, split) in [(&*train, "train"), (test, "test")] {
        for (row, label) in t.rows.iter().zip(&t.labels) {
            for v in row {
                out.push_str(&v.to_string());
                out.push(',');
            }
            out.push_str(&format!("{label},{split}\n"));
        }
    }
    out
}
