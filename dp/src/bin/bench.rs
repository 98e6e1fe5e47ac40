//! smidl-dp-bench: the accuracy/ε trade-off of per-query noise and of a privately trained model,
//! on the embedded breast-cancer and Pima diabetes data sets (test splits).
//!
//! Usage: smidl-dp-bench [--draws N] [--no-zcdp] [--sweep | --kanon]
//!
//! Prints one `RESULT dp ...` line per (data set, mode, ε, accounting):
//! * per-query: the model as `smidl model register` deploys it with the CLI's defaults
//!   (λ = 0.1, R = 4, default quantiser, input proofs), the worker's noise at ε per query;
//!   `answers_allowed` is what a lineage budget of `lineage_budget` ε allows, all accounts
//!   together;
//! * private-model: trained with DP at ε (`smidl_dp::train`, defaults λ = 3, R = 2), answers
//!   unlimited by the budget.
//!
//! `--sweep` instead prints the private model's accuracy at ε = 1 (pure; `SWEEP_EPS_MICRO`
//! overrides it) over a grid of λ and R (`SWEEP_LAMBDAS`, `SWEEP_CLIPS`: comma-separated): the
//! mean over the draws on the train and the test split, the float model's, and the noiseless
//! (non-private) model's test accuracy with the same λ, R and quantiser: the measurement
//! behind the defaults.
//!
//! `--kanon` instead trains on Pima's train rows as an aggregator would release them (Mondrian,
//! QIs age, pregnant, mass; l = 2) at k ∈ {5, 10, 25} and prints, per k, the test accuracy of
//! the per-query model (CLI defaults) and of the private model at ε = 1 (mean over the draws)
//! on raw and on released training rows: `RESULT kanon_accuracy …`.

use std::time::Instant;

use smidl_dp::accounting::Accounting;
use smidl_dp::plan::{plan, PlanConfig, PlanMode};
use smidl_dp::train::{
    compile_private_lr_unproven, train_private_lr, PrivateLrConfig, TrainingBudget,
};
use smidl_fhe::dataset::{breast_cancer, pima_diabetes, Dataset};
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::ServerModel;

/// The CLI's per-query defaults (`smidl model register`: --l2-lambda 0.1 --clip-norm 4).
const CLI_L2_LAMBDA: f64 = 0.1;
const CLI_CLIP_NORM: f64 = 4.0;
/// zCDP lines: δ = 10^-6.
const ZCDP_DELTA_EXPONENT: u8 = 6;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Args {
    draws: usize,
    zcdp: bool,
    sweep: bool,
    kanon: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        draws: 50,
        zcdp: true,
        sweep: false,
        kanon: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--draws" => {
                a.draws = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--draws needs a number")?
            }
            "--no-zcdp" => a.zcdp = false,
            "--sweep" => a.sweep = true,
            "--kanon" => a.kanon = true,
            "-h" | "--help" => {
                println!("usage: smidl-dp-bench [--draws N] [--no-zcdp] [--sweep | --kanon]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn datasets() -> [(&'static str, Dataset); 2] {
    [
        ("breast-cancer", breast_cancer()),
        ("pima", pima_diabetes()),
    ]
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    if a.sweep {
        return sweep(a.draws);
    }
    if a.kanon {
        return kanon(a.draws);
    }
    for (name, ds) in datasets() {
        let started = Instant::now();
        let float = train_logistic_regression(
            &ds,
            &LrConfig {
                l2_lambda: CLI_L2_LAMBDA,
                clip_norm: Some(CLI_CLIP_NORM),
            },
        )?;
        let deployed =
            ServerModel::compile(&float, &ds, &QuantConfig::default())?.with_input_proofs()?;
        let clear = deployed_accuracy(&deployed, &ds)?;
        let sens = deployed.output_sensitivity().grid_units[0];
        println!(
            "# {name}: {} train / {} test rows, {} features; per-query model: λ = {CLI_L2_LAMBDA}, \
             R = {CLI_CLIP_NORM}, noiseless clear accuracy {clear:.4}, Δ = {sens} grid units = \
             {:.3} logits (compiled in {:.1} s)",
            ds.train_x.len(),
            ds.test_x.len(),
            ds.feature_count(),
            sens as f64 * deployed.output_scale()[0],
            started.elapsed().as_secs_f64()
        );
        let mut accountings = vec![Accounting::PureEpsilon];
        if a.zcdp {
            accountings.push(Accounting::Zcdp {
                delta_exponent: ZCDP_DELTA_EXPONENT,
            });
        }
        for accounting in accountings {
            let cfg = PlanConfig {
                accounting,
                draws: a.draws,
                ..PlanConfig::standard()
            };
            let started = Instant::now();
            let rows = plan(&ds, Some(&deployed), &cfg)?;
            for r in rows {
                let extra = match r.mode {
                    PlanMode::PerQuery => format!(
                        " answers_per_account={} lineage_budget={} account_budget={} \
                         noise_scale_logits={:.3} fits_headroom={}",
                        r.answers_per_account.unwrap_or(0),
                        smidl_dp::noise::format_micro(cfg.lineage_budget_micro),
                        smidl_dp::noise::format_micro(cfg.account_budget_micro),
                        r.noise_scale,
                        r.fits_headroom
                    ),
                    PlanMode::PrivateModel => format!(
                        " generations_allowed={} lineage_budget={} noise_scale_theta={:.4}",
                        r.generations_allowed.unwrap_or(0),
                        smidl_dp::noise::format_micro(cfg.lineage_budget_micro),
                        r.noise_scale
                    ),
                };
                let delta = match accounting {
                    Accounting::Zcdp { delta_exponent } => format!(" delta=1e-{delta_exponent}"),
                    Accounting::PureEpsilon => String::new(),
                };
                println!(
                    "RESULT dp data={name} mode={} eps={} accounting={}{delta} accuracy_mean={:.3} \
                     accuracy_sd={:.3} answers_allowed={} cost_micro={} draws={}{extra}",
                    r.mode,
                    r.epsilon(),
                    accounting.name(),
                    r.accuracy_mean,
                    r.accuracy_sd,
                    r.answers_allowed_cell(),
                    r.cost_micro,
                    r.draws,
                );
            }
            eprintln!(
                "# {name} {}: plan in {:.1} s",
                accounting.name(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn deployed_accuracy(
    server: &ServerModel,
    ds: &Dataset,
) -> Result<f64, Box<dyn std::error::Error>> {
    let spec = server.client_spec();
    let mut ok = 0usize;
    for (x, &y) in ds.test_x.iter().zip(&ds.test_y) {
        let q = server.eval_clear(x)?[0];
        ok += usize::from(smidl_dp::plan::decoded_class(spec, q) == y as usize);
    }
    Ok(ok as f64 / ds.test_x.len() as f64)
}

/// Private model at ε = 1 (pure) over λ × R: mean accuracy on the train and the test split.
fn sweep(draws: usize) -> Result<(), Box<dyn std::error::Error>> {
    let lambdas = sweep_list(
        "SWEEP_LAMBDAS",
        &[0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0],
    );
    let clips = sweep_list("SWEEP_CLIPS", &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0]);
    for (name, ds) in datasets() {
        for &l2_lambda in &lambdas {
            for &r in &clips {
                let cfg = PrivateLrConfig {
                    l2_lambda,
                    clip_norm: Some(r),
                    budget: TrainingBudget::PureEpsilon {
                        epsilon_micro: sweep_eps(),
                    },
                };
                let (mut train, mut test, mut float_test) = (vec![], vec![], vec![]);
                for _ in 0..draws {
                    let p = train_private_lr(&ds, &cfg)?;
                    let s = compile_private_lr_unproven(&p, &ds)?;
                    train.push(split_accuracy(&s, &ds.train_x, &ds.train_y)?);
                    test.push(split_accuracy(&s, &ds.test_x, &ds.test_y)?);
                    float_test.push(p.model.accuracy(&ds.test_x, &ds.test_y));
                }
                let float = train_logistic_regression(
                    &ds,
                    &LrConfig {
                        l2_lambda,
                        clip_norm: Some(r),
                    },
                )?;
                let exact =
                    ServerModel::compile(&float, &ds, &smidl_dp::train::private_quant_config(r))?;
                let noiseless = split_accuracy(&exact, &ds.test_x, &ds.test_y)?;
                let (tr, trsd) = smidl_dp::plan::mean_sd(&train);
                let (te, tesd) = smidl_dp::plan::mean_sd(&test);
                let (fte, _) = smidl_dp::plan::mean_sd(&float_test);
                println!(
                    "SWEEP dp data={name} eps=1 lambda={l2_lambda} clip={r} train_mean={tr:.3} \
                     train_sd={trsd:.3} test_mean={te:.3} test_sd={tesd:.3} noiseless_test={noiseless:.3} float_test_mean={fte:.3} draws={draws}"
                );
            }
        }
    }
    Ok(())
}

fn split_accuracy(
    server: &ServerModel,
    xs: &[Vec<f64>],
    ys: &[u8],
) -> Result<f64, Box<dyn std::error::Error>> {
    let spec = server.client_spec();
    let mut ok = 0usize;
    for (x, &y) in xs.iter().zip(ys) {
        let q = server.eval_clear(x)?[0];
        ok += usize::from(smidl_dp::plan::decoded_class(spec, q) == y as usize);
    }
    Ok(ok as f64 / xs.len() as f64)
}

fn sweep_eps() -> u64 {
    std::env::var("SWEEP_EPS_MICRO")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn sweep_list(var: &str, default: &[f64]) -> Vec<f64> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// Accuracy on raw vs k-anonymous released training rows (Pima; see the module docs).
fn kanon(draws: usize) -> Result<(), Box<dyn std::error::Error>> {
    use smidl_anon::{anonymise, AnonConfig, Table};
    let ds = pima_diabetes();
    let train = Table::from_csv(smidl_fhe::dataset::PIMA_DIABETES_CSV, Some("train"))?;
    let qi: Vec<String> = ["age", "pregnant", "mass"].map(String::from).to_vec();
    let accuracy = |d: &Dataset| -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
        let float = train_logistic_regression(
            d,
            &LrConfig {
                l2_lambda: CLI_L2_LAMBDA,
                clip_norm: Some(CLI_CLIP_NORM),
            },
        )?;
        let per_query = deployed_accuracy(&ServerModel::compile(&float, d, &QuantConfig::default())?, d)?;
        let cfg = PrivateLrConfig::with_defaults(TrainingBudget::PureEpsilon {
            epsilon_micro: 1_000_000,
        });
        let mut private = Vec::with_capacity(draws);
        for _ in 0..draws {
            let p = train_private_lr(d, &cfg)?;
            private.push(split_accuracy(&compile_private_lr_unproven(&p, d)?, &d.test_x, &d.test_y)?);
        }
        let (m, sd) = smidl_dp::plan::mean_sd(&private);
        Ok((per_query, m, sd))
    };
    let (raw_pq, raw_pm, raw_sd) = accuracy(&ds)?;
    println!(
        "RESULT kanon_accuracy data=pima k=raw l=- ncp=0 accuracy_noiseless={raw_pq:.4} \
         accuracy_private_eps1_mean={raw_pm:.4} accuracy_private_eps1_sd={raw_sd:.4} draws={draws}"
    );
    for k in [5, 10, 25] {
        let release = anonymise(
            &train,
            &AnonConfig {
                k,
                l: 2,
                quasi_identifiers: qi.clone(),
            },
        )?;
        let ncp = smidl_anon::metrics::ncp(&train, &release)?;
        let d = smidl_dp::release::release_dataset(&release, &ds)?;
        let (pq, pm, sd) = accuracy(&d)?;
        println!(
            "RESULT kanon_accuracy data=pima k={k} l=2 ncp={ncp:.4} accuracy_noiseless={pq:.4} \
             accuracy_private_eps1_mean={pm:.4} accuracy_private_eps1_sd={sd:.4} draws={draws}"
        );
    }
    Ok(())
}
