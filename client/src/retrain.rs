//! `smidl model retrain`: the owner trains the next version of a model, authorises exactly its
//! salted commitments and lineage choice on chain, and stages it on the worker. The worker
//! carries the retrain out at the model's next limit (`--on-limit retrain`); with `now` the
//! owner signs `retrain_model` itself at once.

use anyhow::{bail, Context as _, Result};
use smidl_protocol::chain::{self, read, smidl, LineageChoice, Wait};
use smidl_protocol::commit::{self, Opening};
use smidl_protocol::wire::{LimitAction, ModelInstall};

use crate::ctx::Context;
use crate::model::{self, Source};
use crate::ui;

use smidl::runtime_types::pallet_secure_inference::types::RetrainAuthorisation;

/// Which rows the next version was trained on.
#[derive(Clone, Copy, Debug)]
pub enum RetrainLineage {
    /// The same or overlapping rows: the model keeps spending its lineage.
    Continue,
    /// Rows of another lineage of the owner's.
    Join(u32),
    /// Genuinely new rows, with a budget of their own (ε).
    New { epsilon: f64 },
}

pub struct RetrainOptions {
    pub model_id: u32,
    pub source: Source,
    /// Training data; with `release`, only its test rows are used (as the held-out rows).
    pub csv: Option<std::path::PathBuf>,
    /// Train on this k-anonymous release (checked against its on-chain record first) instead
    /// of the CSV's training rows: required for a model with an aggregator.
    pub release: Option<ReleaseInput>,
    pub lineage: RetrainLineage,
    /// Privacy mode of the next version (a private model's training is charged once, when the
    /// retrain happens).
    pub privacy: model::PrivacyArg,
    /// Compile the next version to answer with labels only.
    pub label_answers: bool,
    pub on_limit: LimitAction,
    pub delete_eval_keys: bool,
    /// Sign `retrain_model` now instead of leaving it to the worker at the next limit.
    pub now: bool,
}

/// A published release and its opening, as the aggregator hands them over.
pub struct ReleaseInput {
    pub csv: Vec<u8>,
    pub opening: crate::data::ReleaseOpening,
}

pub struct Retrained {
    pub weights_commitment: [u8; 32],
    pub dataset_commitment: [u8; 32],
    pub opening: std::path::PathBuf,
    /// Block of the owner's own `retrain_model`, with `now`.
    pub retrained_at: Option<u64>,
    /// The next version as compiled, and the rows it was trained and tested on.
    pub server: smidl_fhe::ServerModel,
    pub dataset: smidl_fhe::dataset::Dataset,
}

pub async fn retrain(ctx: &Context, opts: RetrainOptions) -> Result<Retrained> {
    let at = ctx.at_finalized().await?;
    let info = read::model(&at, opts.model_id)
        .await?
        .with_context(|| format!("model {} is not on chain", opts.model_id))?;
    if info.owner != ctx.account() {
        bail!("only the model's owner ({}) may retrain it", info.owner);
    }
    let (csv, dataset) = model::read_csv(opts.csv.as_deref())?;
    let checked = match &opts.release {
        Some(r) => {
            if r.opening.model_id != opts.model_id {
                bail!(
                    "release {} is for model {}",
                    r.opening.release_id,
                    r.opening.model_id
                );
            }
            let c = crate::data::verify(ctx, &r.csv, &r.opening).await?;
            if let Some(g) = c.used_by_generation {
                bail!(
                    "release {} already trained generation {g}",
                    r.opening.release_id
                );
            }
            Some(c)
        }
        None => None,
    };
    let dataset = match &checked {
        Some(c) => smidl_dp::release::release_dataset(&c.release, &dataset)?,
        None => dataset,
    };
    // A private model is calibrated to what the chain charges under the model's accounting.
    let accounting = match &info.next_policy {
        Some((p, _)) if !matches!(opts.lineage, RetrainLineage::Continue) => p.accounting.clone(),
        _ => info.policy.accounting.clone(),
    };
    let source = model::source_for(&opts.source, opts.privacy, &accounting)?;
    let (_, server) = model::train_and_compile(ctx, &source, &dataset, opts.label_answers).await?;
    let privacy = opts.privacy.to_chain()?;
    let weights_salt = commit::fresh_salt().context("drawing the weights salt")?;
    let canonical = server.canonical_bytes();
    let weights_commitment = commit::weights(&weights_salt, &canonical);
    let rows = dataset.train_x.len();
    // On a release the dataset commitment is the release's (what the chain requires); its
    // salt is the aggregator's, and `smidl data verify` audits it.
    let (dataset_salt, dataset_commitment) = match (&opts.release, &checked) {
        (Some(r), Some(c)) => (r.opening.salt()?, c.commitment),
        _ => {
            let salt = commit::fresh_salt().context("drawing the dataset salt")?;
            (salt, commit::dataset(&salt, &csv, 0..rows))
        }
    };
    let opening = model::write_opening(
        ctx,
        &format!(
            "model-{}-{}",
            opts.model_id,
            hex::encode(&weights_commitment[..8])
        ),
        &Opening::new(&weights_salt, &dataset_salt, rows),
    )?;
    let lineage = match opts.lineage {
        RetrainLineage::Continue => LineageChoice::Continue,
        RetrainLineage::Join(id) => LineageChoice::Join(id),
        RetrainLineage::New { epsilon } => LineageChoice::New {
            epsilon_budget: ui::to_micro_down(epsilon)?,
        },
    };
    let authorisation = RetrainAuthorisation {
        weights_commitment: weights_commitment.into(),
        dataset_commitment: dataset_commitment.into(),
        lineage: lineage.clone(),
        privacy: privacy.clone(),
    };
    let pb = ui::spinner(ctx.interactive, "authorising the retrain on chain");
    let call = smidl::transactions()
        .secure_inference()
        .authorise_retrain(opts.model_id, authorisation);
    chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    pb.set_message("staging the next version on the worker");
    let install = ModelInstall {
        server_model: canonical,
        weights_salt,
        on_limit: opts.on_limit,
        delete_eval_keys: opts.delete_eval_keys,
        stage: true,
    };
    model::install_when_seen(ctx, opts.model_id, &install, "retrain_not_authorised")
        .await
        .context("staging the model on the worker")?;
    let retrained_at = if opts.now {
        pb.set_message("retraining on chain");
        let call = smidl::transactions().secure_inference().retrain_model(
            opts.model_id,
            weights_commitment.into(),
            dataset_commitment.into(),
            lineage,
            privacy,
        );
        let inc = chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
        Some(inc.block_number)
    } else {
        None
    };
    pb.finish_and_clear();
    Ok(Retrained {
        weights_commitment,
        dataset_commitment,
        opening,
        retrained_at,
        server,
        dataset,
    })
}
