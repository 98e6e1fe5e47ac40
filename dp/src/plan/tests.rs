use super::*;
use crate::noise::{Mechanism, MICRO};
use crate::train::{private_quant_config, TrainingBudget};
use opendp::traits::samplers::sample_uniform_uint_below;
use smidl_fhe::dataset::{breast_cancer, pima_diabetes};
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::quant::QuantConfig;

/// The model as `smidl model register` deploys it with the CLI's defaults (λ = 0.1, R = 4,
/// default quantiser, input proofs).
fn deployed(ds: &Dataset) -> ServerModel {
    let m = train_logistic_regression(
        ds,
        &LrConfig {
            l2_lambda: 0.1,
            clip_norm: Some(4.0),
        },
    )
    .unwrap();
    ServerModel::compile(&m, ds, &QuantConfig::default())
        .unwrap()
        .with_input_proofs()
        .unwrap()
}

/// The flood as the test understands it, written independently of `flood_draw`.
fn direct_flood(spec: &ClientSpec) -> i64 {
    let f = smidl_fhe::sanitise::flood_output_units(spec);
    sample_uniform_uint_below::<u64, 8>(2 * f as u64 + 1).unwrap() as i64 - f
}

/// Class 1 iff the logit is positive (sigmoid > ½; a logit of exactly 0 is class 0).
fn direct_class(spec: &ClientSpec, raw: i64) -> usize {
    let logit = raw as f64 * spec.output_scale()[0];
    usize::from(logit > 0.0)
}

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// |plan − direct| within 4 standard errors of the difference (and a floor for the case where
/// both are exactly constant).
fn agree(what: &str, row: &PlanRow, direct: &[f64]) {
    let (dm, dsd) = stats(direct);
    let d = direct.len() as f64;
    let se = (row.accuracy_sd.powi(2) / row.draws as f64 + dsd * dsd / d).sqrt();
    eprintln!(
        "{what}: plan {:.4} ± {:.4} ({} draws), direct {dm:.4} ± {dsd:.4} ({} draws)",
        row.accuracy_mean, row.accuracy_sd, row.draws, d
    );
    assert!(
        (row.accuracy_mean - dm).abs() <= 4.0 * se + 1e-9,
        "{what}: plan {} vs direct {dm} (se {se})",
        row.accuracy_mean
    );
}

#[test]
fn the_plans_numbers_match_a_direct_simulation() {
    let ds = breast_cancer();
    let server = deployed(&ds);
    let draws = 30;
    let cfg = PlanConfig {
        epsilons_micro: vec![MICRO],
        draws,
        ..PlanConfig::standard()
    };
    let rows = plan(&ds, Some(&server), &cfg).unwrap();
    assert_eq!(rows.len(), 2);
    let (pq, pm) = (&rows[0], &rows[1]);
    assert_eq!(
        (pq.mode, pm.mode),
        (PlanMode::PerQuery, PlanMode::PrivateModel)
    );

    // Per-query, directly: the worker's plan for one output (Δ = the proven-box sensitivity,
    // discrete Laplace at ε = 1), one fresh draw per test row, decoded by the sign of the logit.
    let spec = server.client_spec();
    assert!(spec.input_proof.is_some());
    let delta = server.output_sensitivity().grid_units[0];
    let noise = NoisePlan::new(Mechanism::DiscreteLaplace, delta, MICRO).unwrap();
    let direct: Vec<f64> = (0..draws)
        .map(|_| {
            let ok = ds
                .test_x
                .iter()
                .zip(&ds.test_y)
                .filter(|(x, &y)| {
                    let raw = server.eval_clear(x).unwrap()[0]
                        + noise.sample(1).unwrap()[0]
                        + direct_flood(spec);
                    direct_class(spec, raw) == y as usize
                })
                .count();
            ok as f64 / ds.test_x.len() as f64
        })
        .collect();
    agree("per-query ε=1", pq, &direct);
    assert!((pq.noise_scale - delta as f64 * spec.output_scale()[0]).abs() < 1e-9);
    assert!(pq.fits_headroom);
    // Budgets: 24 / 1 and 8 / 1.
    assert_eq!(pq.answers_allowed, Some(24));
    assert_eq!(pq.answers_per_account, Some(8));
    assert_eq!(pq.generations_allowed, None);
    assert_eq!(pq.cost_micro, MICRO);

    // Private model, directly: train with DP at ε = 1, compile with the fixed quantiser, answer.
    let train_cfg = PrivateLrConfig::with_defaults(TrainingBudget::PureEpsilon {
        epsilon_micro: MICRO,
    });
    let direct: Vec<f64> = (0..draws)
        .map(|_| {
            let p = train_private_lr(&ds, &train_cfg).unwrap();
            let s = ServerModel::compile(&p.model, &ds, &private_quant_config(2.0)).unwrap();
            let spec = s.client_spec();
            let ok = ds
                .test_x
                .iter()
                .zip(&ds.test_y)
                .filter(|(x, &y)| {
                    let raw = s.eval_clear(x).unwrap()[0] + direct_flood(spec);
                    direct_class(spec, raw) == y as usize
                })
                .count();
            ok as f64 / ds.test_x.len() as f64
        })
        .collect();
    agree("private-model ε=1", pm, &direct);
    assert_eq!(pm.answers_allowed, None);
    assert_eq!(pm.answers_allowed_cell(), "unlimited");
    assert_eq!(pm.generations_allowed, Some(24));
    assert_eq!(pm.cost_micro, MICRO);
    // The private model is the better answer at ε = 1 here (measured: ≈ 0.92 against ≈ 0.79).
    assert!(pm.accuracy_mean > pq.accuracy_mean);
}

#[test]
fn zcdp_budgets_follow_the_chain() {
    // δ = 10^-6: lineage ε 24 → ρ 5.917095, account ε 8 → ρ 0.909703; per query ρ = ε²/2 =
    // 0.5; training at ε = 1 → ρ 0.017468 (the pallet's `training_cost`).
    let ds = pima_diabetes();
    let server = deployed(&ds);
    let accounting = Accounting::Zcdp { delta_exponent: 6 };
    let cfg = PlanConfig {
        epsilons_micro: vec![MICRO],
        draws: 2,
        accounting,
        ..PlanConfig::standard()
    };
    let rows = plan(&ds, Some(&server), &cfg).unwrap();
    let (pq, pm) = (&rows[0], &rows[1]);
    let lineage = crate::rho_micro_for_epsilon(24 * MICRO, 6);
    let account = crate::rho_micro_for_epsilon(8 * MICRO, 6);
    assert_eq!((lineage, account), (5_917_095, 909_703));
    assert_eq!(pq.cost_micro, 500_000);
    assert_eq!(pq.answers_allowed, Some(lineage / 500_000));
    assert_eq!(pq.answers_per_account, Some(account / 500_000));
    assert_eq!(pm.cost_micro, 17_468);
    assert_eq!(pm.generations_allowed, Some(lineage / 17_468));
    assert_eq!(pm.answers_allowed, None);
    // The per-query noise is the worker's Gaussian (σ = Δ/ε).
    let p = per_query_noise_plan(&server, accounting, MICRO).unwrap();
    assert_eq!(p.mechanism, Mechanism::DiscreteGaussian);
    assert_eq!(
        p.sensitivity_grid,
        server.output_sensitivity().grid_units[0]
    );
}

#[test]
fn bad_plans_are_refused() {
    let ds = pima_diabetes();
    let private_only = PlanConfig {
        modes: vec![PlanMode::PrivateModel],
        ..PlanConfig::standard()
    };
    for (cfg, want) in [
        (
            PlanConfig {
                draws: 1,
                ..private_only.clone()
            },
            "draws",
        ),
        (
            PlanConfig {
                epsilons_micro: vec![0],
                ..private_only.clone()
            },
            "ε = 0",
        ),
        (
            PlanConfig {
                accounting: Accounting::Zcdp { delta_exponent: 31 },
                ..private_only.clone()
            },
            "δ exponent",
        ),
    ] {
        let e = plan(&ds, None, &cfg).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    // Per-query without a deployed model.
    let e = plan(&ds, None, &PlanConfig::standard()).unwrap_err();
    assert!(matches!(e, PlanError::NotLogistic), "{e}");
    // Private-model rows only need the data: quick, 2 draws.
    let rows = plan(
        &ds,
        None,
        &PlanConfig {
            epsilons_micro: vec![MICRO],
            draws: 2,
            ..private_only
        },
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].accuracy_mean > 0.5);
}

#[test]
fn mean_and_sample_sd() {
    let (m, sd) = mean_sd(&[0.5, 0.7, 0.9]);
    assert!((m - 0.7).abs() < 1e-12 && (sd - 0.2).abs() < 1e-12);
    assert_eq!(mean_sd(&[0.25]), (0.25, 0.0));
}
