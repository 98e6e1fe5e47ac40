//! `smidl model register`: the provider trains (or imports) a model, registers its commitments
//! and policy on chain, and installs the server half on its worker.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use smidl_dp::train::{compile_private_lr, train_private_lr, PrivateLrConfig, TrainingBudget};
use smidl_fhe::dataset::Dataset;
use smidl_fhe::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::{FloatModel, ServerModel};
use smidl_protocol::chain::{self, smidl, LineageChoice, PrivacyMode, Wait};
use smidl_protocol::commit::{self, Opening};
use smidl_protocol::wire::{LimitAction, ModelInstall};
use subxt::utils::AccountId32;

use crate::ctx::Context;
use crate::ui;

use smidl::runtime_types::bounded_collections::bounded_vec::BoundedVec;
use smidl::runtime_types::pallet_secure_inference::types::{Accounting, Policy};

/// Where the model comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// L2-regularised logistic regression trained here on norm-clipped standardised features.
    Logistic { l2_lambda: f64, clip_norm: f64 },
    /// The same, trained with DP (output perturbation, exact samplers) at `budget`, and
    /// quantised with a data-independent input range (`smidl_dp::train`).
    PrivateLogistic {
        l2_lambda: f64,
        clip_norm: f64,
        budget: TrainingBudget,
    },
    /// The benchmark's 30-30-2 network (bootstrapped; clients upload an evaluation key).
    Mlp,
    /// A model exported to ONNX elsewhere (quantised on the CSV's training rows).
    Onnx(PathBuf),
}

/// The on-chain policy, in human units.
#[derive(Clone, Debug)]
pub struct PolicyArgs {
    pub max_queries: u32,
    pub lifetime_blocks: u32,
    pub idle_blocks: u32,
    pub epsilon_per_query: f64,
    pub account_budget: f64,
    /// zCDP accounting with δ = 10^-exp; pure ε when `None`.
    pub zcdp_delta_exponent: Option<u8>,
    pub fee: u128,
}

/// How the model's answers are kept private (recorded on chain with the weights).
#[derive(Clone, Copy, Debug)]
pub enum PrivacyArg {
    /// Noise on every answer, ε charged per request.
    PerQuery,
    /// Weights trained with DP at `epsilon`, charged once; answers are free of per-query
    /// charges and bounded by the answer limits.
    PrivateModel {
        epsilon: f64,
        answers_per_account: u32,
        answers_per_generation: u32,
    },
}

impl PrivacyArg {
    /// The chain's record. The training ε rounds up to the micro-ε: the charge never
    /// understates what the trainer is calibrated to (it uses exactly this value).
    pub fn to_chain(self) -> Result<PrivacyMode> {
        Ok(match self {
            PrivacyArg::PerQuery => PrivacyMode::PerQuery,
            PrivacyArg::PrivateModel {
                epsilon,
                answers_per_account,
                answers_per_generation,
            } => PrivacyMode::PrivateModel {
                training_epsilon: ui::to_micro_up(epsilon)?,
                answers_per_account,
                answers_per_generation,
            },
        })
    }

    /// What the trainer calibrates to under `accounting`: ε itself, or in zCDP mode the ρ the
    /// chain charges for it (the largest ρ whose (ε, δ) conversion stays within ε).
    pub fn training_budget(self, accounting: &Accounting) -> Result<Option<TrainingBudget>> {
        let PrivacyMode::PrivateModel {
            training_epsilon, ..
        } = self.to_chain()?
        else {
            return Ok(None);
        };
        Ok(Some(match accounting {
            Accounting::PureEpsilon => TrainingBudget::PureEpsilon {
                epsilon_micro: training_epsilon,
            },
            Accounting::Zcdp { delta_exponent } => TrainingBudget::Zcdp {
                rho_micro: smidl_dp::rho_micro_for_epsilon(training_epsilon, *delta_exponent),
            },
        }))
    }
}

/// Which privacy budget the model's training rows spend.
#[derive(Clone, Copy, Debug)]
pub enum LineageArg {
    /// New rows: a lineage of their own with this total ε (all accounts, all epochs).
    New { epsilon: f64 },
    /// Rows already under this lineage of the same owner.
    Join(u32),
}

impl LineageArg {
    pub fn to_chain(self) -> Result<LineageChoice> {
        Ok(match self {
            LineageArg::New { epsilon } => LineageChoice::New {
                epsilon_budget: ui::to_micro_down(epsilon)?,
            },
            LineageArg::Join(id) => LineageChoice::Join(id),
        })
    }
}

pub struct RegisterOptions {
    pub source: Source,
    /// Training data CSV (features…, label, split); the embedded breast-cancer set if `None`.
    pub csv: Option<PathBuf>,
    pub workers: Vec<AccountId32>,
    pub policy: PolicyArgs,
    pub lineage: LineageArg,
    pub privacy: PrivacyArg,
    /// Compile a linear model to answer with labels only (slows model extraction).
    pub label_answers: bool,
    pub on_limit: LimitAction,
    pub delete_eval_keys: bool,
}

pub struct Registered {
    pub model_id: u32,
    pub lineage_id: u32,
    pub weights_commitment: [u8; 32],
    pub dataset_commitment: [u8; 32],
    /// Where the commitments' salts were written (0600), for an auditor.
    pub opening: PathBuf,
    /// What was installed on the worker (to install the same on further workers).
    pub install: ModelInstall,
    pub float: FloatModel,
    pub server: ServerModel,
    pub dataset: Dataset,
    pub block: u64,
}

pub async fn register(ctx: &Context, opts: RegisterOptions) -> Result<Registered> {
    let (csv, dataset) = read_csv(opts.csv.as_deref())?;
    let policy = chain_policy(&opts.policy)?;
    let source = source_for(&opts.source, opts.privacy, &policy.accounting)?;
    let (float, server) = train_and_compile(ctx, &source, &dataset, opts.label_answers).await?;
    // Salted, so that the public commitments reveal nothing about single rows or weights;
    // the salts go to the owner's opening file for an auditor (`smidl audit`).
    let weights_salt = commit::fresh_salt().context("drawing the weights salt")?;
    let dataset_salt = commit::fresh_salt().context("drawing the dataset salt")?;
    let canonical = server.canonical_bytes();
    let weights_commitment = commit::weights(&weights_salt, &canonical);
    let rows = dataset.train_x.len();
    let dataset_commitment = commit::dataset(&dataset_salt, &csv, 0..rows);
    let opening = Opening::new(&weights_salt, &dataset_salt, rows);
    let pending = write_opening(
        ctx,
        &format!("pending-{}", hex::encode(weights_commitment)),
        &opening,
    )?;

    let privacy = opts.privacy.to_chain()?;
    if matches!(privacy, PrivacyMode::PerQuery) {
        // Refuse before anything goes on chain: the worker would refuse the install anyway,
        // and noise is never clamped to make it fit.
        let mechanism = mechanism_for(&policy.accounting);
        smidl_dp::fit::check_noise_fits(&server, mechanism, policy.epsilon_per_query)
            .map_err(|e| anyhow::anyhow!("refusing to register: {e}"))?;
    }
    let pb = ui::spinner(ctx.interactive, "registering the model on chain");
    let call = smidl::transactions().secure_inference().register_model(
        BoundedVec(opts.workers.clone()),
        weights_commitment.into(),
        dataset_commitment.into(),
        policy,
        opts.lineage.to_chain()?,
        privacy,
    );
    // Finalized: every later step (keys, inference) reads the model at the finalized block.
    let included = chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    let registered = included
        .events
        .find_first::<smidl::secure_inference::events::ModelRegistered>()
        .context("no ModelRegistered event")??;
    let (model_id, lineage_id) = (registered.model_id, registered.lineage_id);
    let opening_path = opening_path(ctx, &format!("model-{model_id}"));
    std::fs::rename(&pending, &opening_path)
        .with_context(|| format!("keeping the opening at {}", opening_path.display()))?;
    pb.set_message("installing the server half on the worker");
    let install = ModelInstall {
        server_model: canonical,
        weights_salt,
        on_limit: opts.on_limit,
        delete_eval_keys: opts.delete_eval_keys,
        stage: false,
    };
    install_when_seen(ctx, model_id, &install, "model_not_on_chain")
        .await
        .context("installing the model on the worker")?;
    pb.finish_and_clear();
    Ok(Registered {
        model_id,
        lineage_id,
        opening: opening_path,
        install,
        weights_commitment,
        dataset_commitment,
        float,
        server,
        dataset,
        block: included.block_number,
    })
}

impl Source {
    /// Logistic regression at the private trainer's defaults (λ, R tuned for its noise); with
    /// `PrivacyArg::PrivateModel`, [`source_for`] trains it with DP.
    pub fn private_logistic_defaults() -> Self {
        Source::Logistic {
            l2_lambda: smidl_dp::train::DEFAULT_L2_LAMBDA,
            clip_norm: smidl_dp::train::DEFAULT_CLIP_NORM,
        }
    }
}

/// The model to train for a privacy mode: a private model is the logistic regression trained
/// with DP, calibrated to exactly what the chain will charge under `accounting`.
pub fn source_for(source: &Source, privacy: PrivacyArg, accounting: &Accounting) -> Result<Source> {
    let Some(budget) = privacy.training_budget(accounting)? else {
        return Ok(source.clone());
    };
    match source {
        Source::Logistic {
            l2_lambda,
            clip_norm,
        }
        | Source::PrivateLogistic {
            l2_lambda,
            clip_norm,
            ..
        } => Ok(Source::PrivateLogistic {
            l2_lambda: *l2_lambda,
            clip_norm: *clip_norm,
            budget,
        }),
        _ => anyhow::bail!(
            "private-model mode trains a logistic regression with DP (--kind lr); networks and \
             imported models have no private trainer here"
        ),
    }
}

/// The on-chain policy from the human-unit arguments.
pub fn chain_policy(p: &PolicyArgs) -> Result<Policy<u128, u32>> {
    Ok(Policy {
        max_queries_per_epoch: p.max_queries,
        epoch_lifetime: p.lifetime_blocks,
        idle_timeout: p.idle_blocks,
        epsilon_per_query: ui::to_micro_up(p.epsilon_per_query)?,
        account_epsilon_budget: ui::to_micro_down(p.account_budget)?,
        accounting: accounting_of(p.zcdp_delta_exponent),
        fee_per_query: p.fee,
    })
}

/// The per-query noise the worker draws under a chain accounting mode (its
/// `dp::mechanism_for`).
pub fn mechanism_for(accounting: &Accounting) -> smidl_dp::Mechanism {
    match accounting {
        Accounting::PureEpsilon => smidl_dp::Mechanism::DiscreteLaplace,
        Accounting::Zcdp { .. } => smidl_dp::Mechanism::DiscreteGaussian,
    }
}

pub fn accounting_of(zcdp_delta_exponent: Option<u8>) -> Accounting {
    match zcdp_delta_exponent {
        None => Accounting::PureEpsilon,
        Some(delta_exponent) => Accounting::Zcdp { delta_exponent },
    }
}

/// Trains (or imports) the model and compiles its server half with input proofs (and label
/// answers if asked).
pub async fn train_and_compile(
    ctx: &Context,
    source: &Source,
    dataset: &Dataset,
    label_answers: bool,
) -> Result<(FloatModel, ServerModel)> {
    let pb = ui::spinner(ctx.interactive, "training and compiling the model");
    let (src, ds) = (source.clone(), dataset.clone());
    let out = tokio::task::spawn_blocking(move || -> Result<_> {
        let (float, server) = match &src {
            Source::PrivateLogistic {
                l2_lambda,
                clip_norm,
                budget,
            } => {
                let private = train_private_lr(
                    &ds,
                    &PrivateLrConfig {
                        l2_lambda: *l2_lambda,
                        clip_norm: Some(*clip_norm),
                        budget: *budget,
                    },
                )?;
                // Quantised on a data-independent grid: nothing but the DP weights (and the
                // normaliser, see docs/privacy.md) comes from the rows.
                let server = compile_private_lr(&private, &ds)?;
                (private.model, server)
            }
            other => {
                let float = match other {
                    Source::Logistic {
                        l2_lambda,
                        clip_norm,
                    } => train_logistic_regression(
                        &ds,
                        &LrConfig {
                            l2_lambda: *l2_lambda,
                            clip_norm: Some(*clip_norm),
                        },
                    )?,
                    Source::Onnx(path) => {
                        let bytes = std::fs::read(path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        smidl_fhe::model::onnx::import_onnx(&bytes)?
                    }
                    // Source::Mlp (a private LR took the outer arm).
                    _ => train_mlp(&ds, &MlpConfig::default())?,
                };
                let server = ServerModel::compile(&float, &ds, &QuantConfig::default())?
                    .with_input_proofs()?;
                (float, server)
            }
        };
        let server = if label_answers {
            server.with_label_answers()?
        } else {
            server
        };
        Ok((float, server))
    })
    .await??;
    pb.finish_and_clear();
    Ok(out)
}

/// The training CSV (the embedded breast-cancer set when `None`) and its parsed rows.
pub fn read_csv(path: Option<&std::path::Path>) -> Result<(Vec<u8>, Dataset)> {
    let csv = match path {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => smidl_fhe::dataset::BREAST_CANCER_CSV.as_bytes().to_vec(),
    };
    let text = std::str::from_utf8(&csv).context("the training CSV is not UTF-8")?;
    let dataset = Dataset::from_csv(text)?;
    Ok((csv, dataset))
}

/// Installs (or stages) on the worker, retrying briefly while the worker's view of the chain
/// lags ours (it answers `lag_code` until it sees what we just finalized).
pub(crate) async fn install_when_seen(
    ctx: &Context,
    model_id: u32,
    install: &ModelInstall,
    lag_code: &str,
) -> Result<(), smidl_protocol::api_client::ApiClientError> {
    let mut tries = 0;
    loop {
        match ctx.worker.install(&ctx.key, model_id, install).await {
            Err(e) if e.code() == Some(lag_code) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

pub(crate) fn opening_path(ctx: &Context, name: &str) -> PathBuf {
    ctx.home.join("openings").join(format!("{name}.json"))
}

/// Writes the salts (secret: they make the commitments hiding) readable by the owner only.
pub(crate) fn write_opening(ctx: &Context, name: &str, opening: &Opening) -> Result<PathBuf> {
    let path = opening_path(ctx, name);
    crate::keys::write_secret(&path, serde_json::to_string_pretty(opening)?.as_bytes())?;
    Ok(path)
}
