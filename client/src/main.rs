//! `smidl`: encrypted inference on a model governed by the smidl chain.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use smidl_cli::ctx::{default_home, load_key, Context};
use smidl_cli::infer::Answer;
use smidl_cli::model::{LineageArg, PolicyArgs, PrivacyArg, RegisterOptions, Source};
use smidl_cli::plan::PlanOptions;
use smidl_cli::{demo, infer, keys, model, status, ui};
use smidl_protocol::wire::LimitAction;

#[derive(Parser)]
#[command(
    name = "smidl",
    version,
    about = "Privacy-preserving ML inference governed by an open ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Conn {
    /// Node RPC endpoint.
    #[arg(long, env = "SMIDL_RPC", default_value = "ws://127.0.0.1:9944")]
    rpc: String,
    /// The model provider's worker API.
    #[arg(long, env = "SMIDL_WORKER", default_value = "http://127.0.0.1:8088")]
    worker: String,
    /// Acting account as a secret URI, e.g. //Bob on a dev chain.
    #[arg(long, env = "SMIDL_ACCOUNT")]
    account: Option<String>,
    /// File holding the acting account's secret URI or mnemonic (mode 0600).
    #[arg(long, env = "SMIDL_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Where client keys are kept.
    #[arg(long, env = "SMIDL_HOME")]
    home: Option<PathBuf>,
}

impl Conn {
    async fn context(&self) -> Result<Context> {
        let key = load_key(self.account.as_deref(), self.key_file.as_deref())?;
        let home = self.home.clone().unwrap_or_else(default_home);
        Context::connect(&self.rpc, &self.worker, key, home, console::user_attended()).await
    }
}

#[derive(Subcommand)]
enum Command {
    /// Client keys and chain accounts.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Model provider commands.
    Model {
        #[command(subcommand)]
        command: Box<ModelCommand>,
    },
    /// Encrypt a feature row, ask the chain for an inference, decrypt the answer.
    Infer {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        /// CSV with one feature row per line (a header and label/split columns are ignored).
        #[arg(long)]
        input: PathBuf,
        /// Which data row of the file (0-based); all rows when omitted.
        #[arg(long)]
        row: Option<usize>,
    },
    /// Model state, N/K, epoch, time left, and this account's n_i and budget.
    Status {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
    },
    /// Recompute a model's salted commitments from its opening and compare with the chain.
    Audit {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        /// The opening file written at registration (the commitments' salts).
        #[arg(long)]
        opening: PathBuf,
        /// The compiled server model the owner discloses (see `model register
        /// --keep-server-model`).
        #[arg(long)]
        server_model: Option<PathBuf>,
        /// The training CSV the owner discloses.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Clinical data contributions and their k-anonymous, l-diverse release.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// The whole system on a temporary dev chain, in one command.
    Demo {
        /// Instead: three clinics contribute diabetes records, an aggregator publishes a
        /// k-anonymous release, the provider retrains on it, Bob gets an encrypted prediction.
        #[arg(long)]
        clinics: bool,
        /// What the worker does at the end of an epoch.
        #[arg(long, default_value = "reset")]
        on_limit: LimitAction,
        /// Queries per client account (K is twice this).
        #[arg(long, default_value_t = 3)]
        queries: usize,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Aggregator: generate an X25519 sealing key (0600 file) and publish its public half
    /// on chain for this account.
    Keygen {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        out: PathBuf,
    },
    /// Owner: name the independent aggregator of a model (neither you nor a worker). From then
    /// on the model is retrained only on its published releases.
    SetAggregator {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        /// The aggregator's account (SS58).
        #[arg(long)]
        aggregator: String,
    },
    /// Clinic: seal records (CSV: features…, label) to the model's aggregator, write the
    /// sealed file, record its commitment and row count on chain.
    Contribute {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        #[arg(long)]
        csv: PathBuf,
        /// Where the sealed batch goes (hand it to the aggregator).
        #[arg(long)]
        out: PathBuf,
    },
    /// Aggregator: open the sealed batches, anonymise their union (Mondrian, k-anonymous,
    /// l-diverse), write the release and publish its record on chain.
    Anonymize {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        /// The sealing key from `smidl data keygen`.
        #[arg(long)]
        key: PathBuf,
        /// A contribution as ID=FILE (repeat).
        #[arg(long = "contribution", required = true)]
        contributions: Vec<String>,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 2)]
        l: usize,
        /// Quasi-identifier columns.
        #[arg(long, value_delimiter = ',', required = true)]
        qi: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Anyone: check a release file against its on-chain record (commitment, k, l,
    /// quasi-identifiers, rows).
    Verify {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        release: PathBuf,
        /// The release's opening (salt), from the aggregator.
        #[arg(long)]
        opening: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate this account's TFHE keys for a model (uploads the evaluation key if needed).
    Generate {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
    },
    /// Create a new sr25519 chain account; the secret phrase goes to a 0600 file.
    Account {
        #[arg(long)]
        out: PathBuf,
    },
}

/// How a model's answers are kept private (recorded on chain with its weights).
#[derive(Args, Clone)]
struct PrivacyOpts {
    /// per-query: noise on every answer, ε charged per request. private-model: weights
    /// trained with DP at --train-epsilon, charged once to the lineage; answers carry no noise
    /// and no charge, bounded by K and the answer limits.
    #[arg(long, default_value = "per-query", value_parser = ["per-query", "private-model"])]
    privacy: String,
    /// ε of the DP training (private-model).
    #[arg(long, default_value_t = 1.0)]
    train_epsilon: f64,
    /// Answers one account may get from these weights, all epochs together (private-model).
    #[arg(long, default_value_t = 100)]
    answers_per_account: u32,
    /// Answers all accounts together may get from these weights (private-model).
    #[arg(long, default_value_t = 10_000)]
    answers_per_generation: u32,
    /// Answer with the class label only, never the score (logistic regression; networks
    /// always do). Clients then upload an evaluation key.
    #[arg(long)]
    label_answers: bool,
    /// L2 regularisation λ (default 0.1 per-query, 3.0 private-model).
    #[arg(long)]
    l2_lambda: Option<f64>,
    /// Clip norm R of the standardised features (default 4 per-query, 2 private-model).
    #[arg(long)]
    clip_norm: Option<f64>,
}

/// λ and R of the exactly trained (per-query) model, when not given.
const PER_QUERY_LAMBDA: f64 = 0.1;
const PER_QUERY_CLIP: f64 = 4.0;

impl PrivacyOpts {
    fn private(&self) -> bool {
        self.privacy == "private-model"
    }

    fn to_arg(&self) -> PrivacyArg {
        if self.private() {
            PrivacyArg::PrivateModel {
                epsilon: self.train_epsilon,
                answers_per_account: self.answers_per_account,
                answers_per_generation: self.answers_per_generation,
            }
        } else {
            PrivacyArg::PerQuery
        }
    }

    /// λ and R for the chosen mode: the private trainer's defaults are tuned for its noise.
    fn lambda_clip(&self) -> (f64, f64) {
        let (l, r) = if self.private() {
            (
                smidl_dp::train::DEFAULT_L2_LAMBDA,
                smidl_dp::train::DEFAULT_CLIP_NORM,
            )
        } else {
            (PER_QUERY_LAMBDA, PER_QUERY_CLIP)
        };
        (self.l2_lambda.unwrap_or(l), self.clip_norm.unwrap_or(r))
    }

    fn lr_source(&self) -> Source {
        let (l2_lambda, clip_norm) = self.lambda_clip();
        Source::Logistic {
            l2_lambda,
            clip_norm,
        }
    }
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Dry run: the expected accuracy of a logistic regression under both privacy modes and
    /// candidate ε values, simulated on the CSV's held-out (test) rows, and how many answers the
    /// budgets allow. Nothing goes on chain.
    Plan {
        /// Training data (features…, label, split); the embedded breast-cancer set by default.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Candidate ε values (per answer, or of the training).
        #[arg(long, value_delimiter = ',', default_values_t = [0.5, 1.0, 2.0, 4.0])]
        epsilons: Vec<f64>,
        /// Noise draws per candidate.
        #[arg(long, default_value_t = 50)]
        draws: usize,
        #[arg(long, default_value_t = 10.0)]
        budget: f64,
        #[arg(long, default_value_t = 100.0)]
        lineage_budget: f64,
        #[arg(long)]
        zcdp_delta_exp: Option<u8>,
        /// λ and R of the per-query model, then of the private model.
        #[arg(long, default_value_t = PER_QUERY_LAMBDA)]
        l2_lambda: f64,
        #[arg(long, default_value_t = PER_QUERY_CLIP)]
        clip_norm: f64,
        #[arg(long, default_value_t = smidl_dp::train::DEFAULT_L2_LAMBDA)]
        private_l2_lambda: f64,
        #[arg(long, default_value_t = smidl_dp::train::DEFAULT_CLIP_NORM)]
        private_clip_norm: f64,
    },
    /// Train the next version of your model, authorise exactly its commitments on chain and
    /// stage it on the worker (which retrains at the next limit with --on-limit retrain).
    Retrain {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        model: u32,
        /// Training data; the embedded breast-cancer set by default. With --release only
        /// its test rows are used (held out, for the accuracy shown).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Train on this k-anonymous release (from `smidl data anonymize`), checked against
        /// its on-chain record; needs --release-opening. Required for a model with an
        /// aggregator.
        #[arg(long, requires = "release_opening")]
        release: Option<PathBuf>,
        /// The release's opening (its commitment's salt), from the aggregator.
        #[arg(long)]
        release_opening: Option<PathBuf>,
        #[command(flatten)]
        privacy: PrivacyOpts,
        /// The rows are genuinely new: open a lineage with this total ε. Without it (and
        /// without --join-lineage) the retrain continues the model's lineage.
        #[arg(long, conflicts_with = "join_lineage")]
        new_lineage_budget: Option<f64>,
        /// The rows are under this other lineage of yours.
        #[arg(long)]
        join_lineage: Option<u32>,
        /// What the worker does at the limits after this version is in.
        #[arg(long, default_value = "retrain")]
        on_limit: LimitAction,
        #[arg(long)]
        delete_eval_keys: bool,
        /// Retrain on chain now (as the owner) instead of at the next limit.
        #[arg(long)]
        now: bool,
    },
    /// Train (or import) a model, register it on chain and install it on the worker.
    Register {
        #[command(flatten)]
        conn: Conn,
        /// lr (logistic regression), mlp, or onnx (with --onnx).
        #[arg(long, default_value = "lr")]
        kind: String,
        #[arg(long)]
        onnx: Option<PathBuf>,
        /// Training data (features…, label, split); the embedded breast-cancer set by default.
        #[arg(long)]
        csv: Option<PathBuf>,
        #[command(flatten)]
        privacy: PrivacyOpts,
        /// Skip the accuracy/ε table printed before registering (`smidl model plan`).
        #[arg(long)]
        no_plan: bool,
        /// Authorised workers (SS58); the acting account when omitted.
        #[arg(long, value_delimiter = ',')]
        workers: Vec<String>,
        /// K: queries per epoch.
        #[arg(long, default_value_t = 100)]
        max_queries: u32,
        /// T: epoch lifetime in blocks.
        #[arg(long, default_value_t = 28_800)]
        lifetime: u32,
        /// Idle timeout in blocks.
        #[arg(long, default_value_t = 14_400)]
        idle: u32,
        /// ε charged per query.
        #[arg(long, default_value_t = 1.0)]
        epsilon: f64,
        /// ε budget per account (its share of the lineage).
        #[arg(long, default_value_t = 10.0)]
        budget: f64,
        /// Total ε of a new lineage for these training rows: every query by every account,
        /// over all epochs and retrains on these rows, spends it.
        #[arg(long, default_value_t = 100.0)]
        lineage_budget: f64,
        /// The rows are already under this lineage of yours: spend it instead of a new one.
        #[arg(long)]
        join_lineage: Option<u32>,
        /// Also write the compiled server model (plaintext weights, 0600, a new file) here, to
        /// disclose to an auditor with the opening.
        #[arg(long)]
        keep_server_model: Option<PathBuf>,
        /// Use zCDP accounting with δ = 10^-N.
        #[arg(long)]
        zcdp_delta_exp: Option<u8>,
        /// Fee per query, in the chain's smallest unit.
        #[arg(long, default_value_t = 0)]
        fee: u128,
        #[arg(long, default_value = "reset")]
        on_limit: LimitAction,
        /// Also delete clients' evaluation keys at each epoch end.
        #[arg(long)]
        delete_eval_keys: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keys { command } => match command {
            KeysCommand::Generate { conn, model } => {
                keys::generate(&conn.context().await?, model).await
            }
            KeysCommand::Account { out } => keys::new_account(&out),
        },
        Command::Model { command } => match *command {
            ModelCommand::Retrain {
                conn,
                model,
                csv,
                release,
                release_opening,
                privacy,
                new_lineage_budget,
                join_lineage,
                on_limit,
                delete_eval_keys,
                now,
            } => {
                use smidl_cli::retrain::{self, RetrainLineage, RetrainOptions};
                let ctx = conn.context().await?;
                let lineage = match (new_lineage_budget, join_lineage) {
                    (Some(epsilon), _) => RetrainLineage::New { epsilon },
                    (None, Some(id)) => RetrainLineage::Join(id),
                    (None, None) => RetrainLineage::Continue,
                };
                let r = retrain::retrain(
                    &ctx,
                    RetrainOptions {
                        model_id: model,
                        source: privacy.lr_source(),
                        csv,
                        release: match (release, release_opening) {
                            (Some(r), Some(o)) => Some(retrain::ReleaseInput {
                                csv: std::fs::read(&r)
                                    .with_context(|| format!("reading {}", r.display()))?,
                                opening: smidl_cli::data::ReleaseOpening::read(&o)?,
                            }),
                            _ => None,
                        },
                        lineage,
                        privacy: privacy.to_arg(),
                        label_answers: privacy.label_answers,
                        on_limit,
                        delete_eval_keys,
                        now,
                    },
                )
                .await?;
                println!(
                    "next version of model {model} authorised and staged\n  weights commitment 0x{}\n  dataset commitment 0x{}\n  opening (salts, keep secret) {}\n  {}",
                    hex::encode(r.weights_commitment),
                    hex::encode(r.dataset_commitment),
                    r.opening.display(),
                    match r.retrained_at {
                        Some(b) => format!("retrained on chain in block #{b}"),
                        None => "the worker retrains at the next limit (--on-limit retrain)".into(),
                    }
                );
                Ok(())
            }
            ModelCommand::Plan {
                csv,
                epsilons,
                draws,
                budget,
                lineage_budget,
                zcdp_delta_exp,
                l2_lambda,
                clip_norm,
                private_l2_lambda,
                private_clip_norm,
            } => {
                let (_, dataset) = model::read_csv(csv.as_deref())?;
                let opts = PlanOptions {
                    l2_lambda,
                    clip_norm,
                    private_l2_lambda,
                    private_clip_norm,
                    epsilons,
                    draws,
                    zcdp_delta_exponent: zcdp_delta_exp,
                    lineage_budget,
                    account_budget: budget,
                };
                let rows = smidl_cli::plan::run(&dataset, &opts)?;
                print!("{}", smidl_cli::plan::render(&rows));
                Ok(())
            }
            ModelCommand::Register {
                conn,
                kind,
                onnx,
                csv,
                privacy,
                no_plan,
                workers,
                max_queries,
                lifetime,
                idle,
                epsilon,
                budget,
                lineage_budget,
                join_lineage,
                keep_server_model,
                zcdp_delta_exp,
                fee,
                on_limit,
                delete_eval_keys,
            } => {
                if !no_plan && kind == "lr" && onnx.is_none() {
                    // The trade-off in front of the provider before anything goes on chain.
                    let (_, dataset) = model::read_csv(csv.as_deref())?;
                    let (l, r) = (PER_QUERY_LAMBDA, PER_QUERY_CLIP);
                    let (pl, pr) = (
                        smidl_dp::train::DEFAULT_L2_LAMBDA,
                        smidl_dp::train::DEFAULT_CLIP_NORM,
                    );
                    let (ol, or) = (privacy.l2_lambda, privacy.clip_norm);
                    let opts = PlanOptions {
                        l2_lambda: if privacy.private() {
                            l
                        } else {
                            ol.unwrap_or(l)
                        },
                        clip_norm: if privacy.private() {
                            r
                        } else {
                            or.unwrap_or(r)
                        },
                        private_l2_lambda: if privacy.private() {
                            ol.unwrap_or(pl)
                        } else {
                            pl
                        },
                        private_clip_norm: if privacy.private() {
                            or.unwrap_or(pr)
                        } else {
                            pr
                        },
                        epsilons: PlanOptions::candidates(&[if privacy.private() {
                            privacy.train_epsilon
                        } else {
                            epsilon
                        }]),
                        draws: 30,
                        zcdp_delta_exponent: zcdp_delta_exp,
                        lineage_budget,
                        account_budget: budget,
                    };
                    let rows =
                        tokio::task::spawn_blocking(move || smidl_cli::plan::run(&dataset, &opts))
                            .await??;
                    print!("{}", smidl_cli::plan::render(&rows));
                }
                let ctx = conn.context().await?;
                let source = match (kind.as_str(), onnx) {
                    ("lr", None) => privacy.lr_source(),
                    ("mlp", None) => Source::Mlp,
                    (_, Some(path)) => Source::Onnx(path),
                    (other, None) => {
                        anyhow::bail!("unknown --kind {other}: lr, mlp, or --onnx <file>")
                    }
                };
                let workers = if workers.is_empty() {
                    vec![ctx.account()]
                } else {
                    workers
                        .iter()
                        .map(|w| {
                            w.parse()
                                .with_context(|| format!("{w} is not an SS58 account"))
                        })
                        .collect::<Result<_>>()?
                };
                let reg = model::register(
                    &ctx,
                    RegisterOptions {
                        source,
                        csv,
                        workers,
                        policy: PolicyArgs {
                            max_queries,
                            lifetime_blocks: lifetime,
                            idle_blocks: idle,
                            epsilon_per_query: epsilon,
                            account_budget: budget,
                            zcdp_delta_exponent: zcdp_delta_exp,
                            fee,
                        },
                        lineage: match join_lineage {
                            Some(id) => LineageArg::Join(id),
                            None => LineageArg::New {
                                epsilon: lineage_budget,
                            },
                        },
                        privacy: privacy.to_arg(),
                        label_answers: privacy.label_answers,
                        on_limit,
                        delete_eval_keys,
                    },
                )
                .await?;
                if let Some(path) = keep_server_model {
                    smidl_cli::keys::write_secret(&path, &reg.server.canonical_bytes())?;
                }
                println!(
                    "model {} registered in block #{} on lineage {} and installed on the worker\n  weights commitment 0x{}\n  dataset commitment 0x{}\n  opening (salts, keep secret) {}",
                    reg.model_id,
                    reg.block,
                    reg.lineage_id,
                    hex::encode(reg.weights_commitment),
                    hex::encode(reg.dataset_commitment),
                    reg.opening.display()
                );
                Ok(())
            }
        },
        Command::Infer {
            conn,
            model,
            input,
            row,
        } => {
            let ctx = conn.context().await?;
            let session = keys::session(&ctx, model).await?;
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let rows = infer::read_rows(&text, session.spec.feature_count())?;
            let picked: Vec<(usize, &Vec<f64>)> = match row {
                Some(r) => vec![(
                    r,
                    rows.get(r).with_context(|| {
                        format!("row {r} is not in the file ({} rows)", rows.len())
                    })?,
                )],
                None => rows.iter().enumerate().collect(),
            };
            for (i, x) in picked {
                match infer::infer(&ctx, &session, x).await? {
                    Answer::Result(o) => {
                        let p = o
                            .prediction
                            .probabilities
                            .get(1)
                            .copied()
                            .unwrap_or(f64::NAN);
                        println!(
                            "row {i}: class {} (p = {p:.3}) — request #{} in block #{}, result in #{} ({} blocks); encrypt {}, inclusion {}, worker {}, finality {}",
                            o.prediction.class,
                            o.request_id,
                            o.request_block,
                            o.result_block,
                            o.result_block - o.request_block,
                            ui::ms(o.timings.encrypt),
                            ui::ms(o.timings.inclusion),
                            ui::ms(o.timings.worker),
                            ui::ms(o.timings.finality)
                        );
                    }
                    Answer::Rejected { request_id, reason } => {
                        println!("row {i}: request #{request_id} rejected by the worker ({reason}); budget, counters and fee refunded");
                    }
                }
            }
            Ok(())
        }
        Command::Status { conn, model } => status::run(&conn.context().await?, model).await,
        Command::Audit {
            conn,
            model,
            opening,
            server_model,
            csv,
        } => {
            let report = smidl_cli::audit::run(
                &conn.context().await?,
                model,
                &opening,
                server_model.as_deref(),
                csv.as_deref(),
            )
            .await?;
            let say = |v: Option<bool>| match v {
                Some(true) => "matches the chain",
                Some(false) => "DOES NOT match the chain",
                None => "not checked (nothing disclosed)",
            };
            println!("weights commitment: {}", say(report.weights));
            println!("dataset commitment: {}", say(report.dataset));
            if report.weights == Some(false) || report.dataset == Some(false) {
                anyhow::bail!("audit failed");
            }
            Ok(())
        }
        Command::Data { command } => data_command(command).await,
        Command::Demo { clinics: true, .. } => {
            smidl_cli::clinics::run(console::user_attended()).await
        }
        Command::Demo {
            on_limit, queries, ..
        } => {
            let cfg = demo::DemoConfig {
                on_limit,
                queries_per_account: queries.max(1),
                ..Default::default()
            };
            demo::run(cfg, console::user_attended()).await
        }
    }
}

async fn data_command(command: DataCommand) -> Result<()> {
    use smidl_cli::data;
    match command {
        DataCommand::Keygen { conn, out } => {
            let public = data::keygen(&conn.context().await?, &out).await?;
            println!(
                "sealing key written to {} (keep it secret); public key 0x{} published on chain",
                out.display(),
                hex::encode(public)
            );
            Ok(())
        }
        DataCommand::SetAggregator {
            conn,
            model,
            aggregator,
        } => {
            let who: subxt::utils::AccountId32 = aggregator
                .parse()
                .map_err(|e| anyhow::anyhow!("{aggregator}: not an SS58 account ({e:?})"))?;
            data::set_aggregator(&conn.context().await?, model, who).await?;
            println!(
                "model {model}: aggregator {aggregator}; retrains now need a published release"
            );
            Ok(())
        }
        DataCommand::Contribute {
            conn,
            model,
            csv,
            out,
        } => {
            let bytes =
                std::fs::read(&csv).with_context(|| format!("reading {}", csv.display()))?;
            let c = data::contribute(&conn.context().await?, model, &bytes, &out).await?;
            println!(
                "contribution #{}: {} rows sealed to {} in {}; commitment 0x{} on chain",
                c.contribution_id,
                c.rows,
                c.aggregator,
                out.display(),
                hex::encode(c.commitment)
            );
            Ok(())
        }
        DataCommand::Anonymize {
            conn,
            model,
            key,
            contributions,
            k,
            l,
            qi,
            out,
        } => {
            let key = data::read_sealing_key(&key)?;
            let batches = contributions
                .iter()
                .map(|c| {
                    let (id, file) = c
                        .split_once('=')
                        .with_context(|| format!("{c:?}: expected ID=FILE"))?;
                    let id: u64 = id.parse().with_context(|| format!("{id:?} is not an id"))?;
                    Ok((
                        id,
                        std::fs::read(file).with_context(|| format!("reading {file}"))?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let cfg = smidl_anon::AnonConfig {
                k,
                l,
                quasi_identifiers: qi,
            };
            let p =
                data::anonymize(&conn.context().await?, model, &key, &batches, &cfg, &out).await?;
            println!(
                "release #{} of model {model}: {} rows in {} classes (smallest {}, ≥ {} labels each), NCP {:.3}\n  written to {}; commitment 0x{} on chain\n  opening (salt; give it to the provider with the file) {}",
                p.release_id,
                p.verified.rows,
                p.verified.classes,
                p.verified.min_class_size,
                p.verified.min_distinct_labels,
                p.ncp,
                out.display(),
                hex::encode(p.commitment),
                p.opening.display()
            );
            Ok(())
        }
        DataCommand::Verify {
            conn,
            release,
            opening,
        } => {
            let csv = std::fs::read(&release)
                .with_context(|| format!("reading {}", release.display()))?;
            let opening = data::ReleaseOpening::read(&opening)?;
            let c = data::verify(&conn.context().await?, &csv, &opening).await?;
            println!(
                "release #{} matches its on-chain commitment; claim k = {}, l = {}, QIs {}: holds ({} rows, {} classes, smallest {}, fewest labels {}, largest label share {:.1} %){}",
                opening.release_id,
                c.k,
                c.l,
                c.quasi_identifiers.join(","),
                c.verified.rows,
                c.verified.classes,
                c.verified.min_class_size,
                c.verified.min_distinct_labels,
                c.verified.max_label_share_permille as f64 / 10.0,
                match c.used_by_generation {
                    Some(g) => format!("; trained generation {g}"),
                    None => String::new(),
                }
            );
            Ok(())
        }
    }
}
