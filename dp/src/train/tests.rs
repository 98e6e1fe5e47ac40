use super::*;
use smidl_fhe::dataset::{breast_cancer, pima_diabetes};

const EPS1: TrainingBudget = TrainingBudget::PureEpsilon {
    epsilon_micro: MICRO,
};

fn cfg(budget: TrainingBudget) -> PrivateLrConfig {
    PrivateLrConfig::with_defaults(budget)
}

/// θ_q of the non-private model the private training starts from (deterministic).
fn exact_theta_q(ds: &Dataset, c: &PrivateLrConfig) -> Vec<i64> {
    let m = train_logistic_regression(
        ds,
        &LrConfig {
            l2_lambda: c.l2_lambda,
            clip_norm: c.clip_norm,
        },
    )
    .unwrap();
    round_to_grid(&m, GRID_LOG2).unwrap()
}

fn released_theta_grid(p: &PrivateLr) -> Vec<f64> {
    let per_unit = grid_units_per_theta(p.report.grid_log2);
    let l = &p.model.layers[0];
    l.weights[0]
        .iter()
        .chain(&l.bias)
        .map(|t| t * per_unit)
        .collect()
}

#[test]
fn training_is_refused_without_clip_norm_or_lambda_or_budget() {
    let ds = pima_diabetes();
    let no_clip = PrivateLrConfig {
        clip_norm: None,
        ..cfg(EPS1)
    };
    let e = train_private_lr(&ds, &no_clip).unwrap_err();
    assert!(matches!(e, TrainError::MissingClipNorm), "{e}");
    assert!(e.to_string().contains("clip norm"), "{e}");

    for lambda in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let bad = PrivateLrConfig {
            l2_lambda: lambda,
            ..cfg(EPS1)
        };
        let e = train_private_lr(&ds, &bad).unwrap_err();
        assert!(matches!(e, TrainError::BadLambda(_)), "{e}");
        assert!(e.to_string().contains("l2_lambda"), "{e}");
    }
    for r in [0.0, -2.0, f64::NAN] {
        let bad = PrivateLrConfig {
            clip_norm: Some(r),
            ..cfg(EPS1)
        };
        assert!(matches!(
            train_private_lr(&ds, &bad).unwrap_err(),
            TrainError::BadClipNorm(_)
        ));
    }
    for budget in [
        TrainingBudget::PureEpsilon { epsilon_micro: 0 },
        TrainingBudget::Zcdp { rho_micro: 0 },
    ] {
        let e = train_private_lr(&ds, &cfg(budget)).unwrap_err();
        assert!(matches!(e, TrainError::ZeroBudget(_)), "{e}");
        assert!(e.to_string().contains("budget is zero"), "{e}");
    }
}

#[test]
fn calibration_matches_the_formula_with_the_rounding_term() {
    let (n, f) = (455usize, 30usize);
    let (lambda, r) = (DEFAULT_L2_LAMBDA, DEFAULT_CLIP_NORM);
    let c = calibrate(n, f, lambda, Some(r), EPS1).unwrap();
    let s = 2.0 * (r * r + 1.0).sqrt() / (n as f64 * lambda);
    assert!((c.sensitivity_l2 - s).abs() <= 1e-15);
    assert!((c.optimisation_slack - 2.0 * OPTIMALITY_TOLERANCE / lambda).abs() < 1e-20);
    assert_eq!(c.coordinates, 31);
    let g = 2f64.powi(GRID_LOG2 as i32);
    let s_grid = (s + c.optimisation_slack) * g;
    // L2: ⌈s/g⌉ + ⌈√31⌉ = ⌈s/g⌉ + 6; L1: ⌈√31·s/g⌉ + 31 (each within one unit of the real
    // bound, never below it).
    let l2 = s_grid + 31f64.sqrt();
    let l1 = 31f64.sqrt() * s_grid + 31.0;
    assert!(c.sensitivity_l2_grid as f64 >= l2 && (c.sensitivity_l2_grid as f64) < l2 + 2.0);
    assert!(c.sensitivity_l1_grid as f64 >= l1 && (c.sensitivity_l1_grid as f64) < l1 + 1.0);
    assert_eq!(c.sensitivity_grid, c.sensitivity_l1_grid);
    assert_eq!(c.mechanism, Mechanism::DiscreteLaplace);
    // Laplace: t = Δ₁/ε exactly (ε = 1 here; ε = 0.3 gives Δ₁·10/3).
    assert_eq!(c.noise_scale, RBig::from(c.sensitivity_l1_grid));
    let c3 = calibrate(
        n,
        f,
        lambda,
        Some(r),
        TrainingBudget::PureEpsilon {
            epsilon_micro: 300_000,
        },
    )
    .unwrap();
    assert_eq!(
        c3.noise_scale,
        RBig::from_parts(
            IBig::from(c3.sensitivity_l1_grid) * IBig::from(10u8),
            UBig::from(3u8)
        )
    );
    eprintln!(
        "n={n} d={f} λ={lambda} R={r}: s = {s:.6}, Δ₂ = {} grid units, Δ₁ = {} grid units, \
         Laplace t at ε=1: {:.5} per parameter",
        c.sensitivity_l2_grid,
        c.sensitivity_l1_grid,
        c.noise_scale_theta()
    );

    // Gaussian: σ rounded up, ρ never overstated: Δ₂²/(2σ²) ≤ ρ, exactly in rationals, and
    // σ within 2^-16 of the real Δ₂/√(2ρ).
    for rho_micro in [1u64, 17_468, 500_000, 3 * MICRO] {
        let budget = TrainingBudget::Zcdp { rho_micro };
        let c = calibrate(n, f, lambda, Some(r), budget).unwrap();
        assert_eq!(c.mechanism, Mechanism::DiscreteGaussian);
        assert_eq!(c.sensitivity_grid, c.sensitivity_l2_grid);
        let d = RBig::from(c.sensitivity_l2_grid);
        let rho = RBig::from_parts(IBig::from(rho_micro), UBig::from(MICRO));
        let spent = &d * &d / (RBig::from(2u8) * &c.noise_scale * &c.noise_scale);
        assert!(spent <= rho, "ρ = {rho_micro}: spent {spent}");
        let ideal = c.sensitivity_l2_grid as f64 / (2.0 * rho_micro as f64 / MICRO as f64).sqrt();
        let sigma = c.noise_scale_f64();
        assert!(sigma >= ideal * (1.0 - 1e-12) && sigma - ideal < 2f64.powi(-15) + ideal * 1e-12);
    }
}

#[test]
fn rounding_to_the_grid_adds_at_most_the_stated_term() {
    // For any θ, θ' (in grid units): ‖round θ − round θ'‖₂ ≤ ‖θ − θ'‖₂ + √k and
    // ‖·‖₁ ≤ √k·‖θ − θ'‖₂ + k. Deterministic pseudo-random vectors, including half-unit ties.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for k in [1usize, 9, 31] {
        for _ in 0..2000 {
            let a: Vec<f64> = (0..k).map(|_| (next() - 0.5) * 1e3).collect();
            let b: Vec<f64> = a
                .iter()
                .map(|x| {
                    let u = next();
                    // Mostly sub-unit moves, where rounding matters most; some exact ties.
                    if u < 0.1 {
                        x.floor() + 0.5
                    } else {
                        x + (u - 0.5) * 3.0
                    }
                })
                .collect();
            let d2 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let ra: Vec<f64> = a.iter().map(|x| x.round()).collect();
            let rb: Vec<f64> = b.iter().map(|x| x.round()).collect();
            let r2 = ra
                .iter()
                .zip(&rb)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let r1 = ra.iter().zip(&rb).map(|(x, y)| (x - y).abs()).sum::<f64>();
            let kf = k as f64;
            assert!(r2 <= d2 + kf.sqrt() + 1e-9, "{r2} {d2}");
            assert!(r1 <= kf.sqrt() * d2 + kf + 1e-9, "{r1} {d2}");
        }
    }
}

#[test]
fn neighbouring_models_differ_by_less_than_the_sensitivity() {
    // End to end, as `smidl_fhe::sensitivity`'s test: retrain on neighbouring data sets
    // (removing, replacing and adding one row; the normaliser is refitted each time, which the
    // bound itself does not cover, see docs/privacy.md) and compare the rounded parameters.
    let ds = breast_cancer();
    let c = cfg(EPS1);
    let base = exact_theta_q(&ds, &c);
    let n = ds.train_x.len();
    let mut neighbours = vec![];
    for k in [0usize, 17, 200] {
        let mut removed = ds.clone();
        removed.train_x.remove(k);
        removed.train_y.remove(k);
        neighbours.push(("remove", removed));
        let mut replaced = ds.clone();
        let other = ds.train_y.iter().position(|&y| y != ds.train_y[k]).unwrap();
        replaced.train_x[k] = ds.train_x[other].clone();
        replaced.train_y[k] = ds.train_y[other];
        neighbours.push(("replace", replaced));
        let mut flipped = ds.clone();
        flipped.train_y[k] = 1 - flipped.train_y[k];
        neighbours.push(("flip", flipped));
    }
    let mut added = ds.clone();
    added.train_x.push(ds.test_x[0].clone());
    added.train_y.push(1 - ds.test_y[0]);
    neighbours.push(("add", added));
    let mut worst: f64 = 0.0;
    for (what, nb) in &neighbours {
        // The larger of the two sets fixes n.
        let big = n.max(nb.train_x.len());
        let cal = calibrate(big, ds.feature_count(), c.l2_lambda, c.clip_norm, EPS1).unwrap();
        let other = exact_theta_q(nb, &c);
        let l2 = base
            .iter()
            .zip(&other)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let l1: f64 = base
            .iter()
            .zip(&other)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum();
        assert!(l2 <= cal.sensitivity_l2_grid as f64, "{what}: {l2}");
        assert!(l1 <= cal.sensitivity_l1_grid as f64, "{what}: {l1}");
        worst = worst.max(l2 / cal.sensitivity_l2_grid as f64);
    }
    eprintln!("largest neighbour distance: {:.1}% of Δ₂", 100.0 * worst);
}

/// Mean, variance and P(|X| ≤ m) of the noise the private training added, over `trainings`
/// trainings, against the exact law at the report's scale.
fn check_training_noise(ds: &Dataset, budget: TrainingBudget, trainings: usize) {
    let c = cfg(budget);
    let theta_q = exact_theta_q(ds, &c);
    let mut xs = vec![];
    let mut report = None;
    for _ in 0..trainings {
        let p = train_private_lr(ds, &c).unwrap();
        for (released, exact) in released_theta_grid(&p).iter().zip(&theta_q) {
            // The released parameters sit exactly on the grid: θ_q + an integer.
            assert_eq!(released.fract(), 0.0, "{released}");
            xs.push(*released as i64 - exact);
        }
        report = Some(p.report);
    }
    let report = report.unwrap();
    assert_eq!(xs.len(), trainings * report.coordinates);
    let scale = report.noise_scale_f64();
    let n = xs.len() as f64;
    // Exact moments of the discrete law (scale ≫ 1: sums over a window of ±60 scales, in
    // closed form for Laplace).
    let (var, m4, p_inner, m) = match report.mechanism {
        Mechanism::DiscreteLaplace => {
            let p = (-1.0 / scale).exp();
            let var = 2.0 * p / (1.0 - p).powi(2);
            // E[X⁴] of the discrete Laplace ≈ 24 t⁴ at large t (relative error O(1/t²)).
            let m4 = 24.0 * scale.powi(4);
            // P(|X| ≤ m) = 1 − 2p^(m+1)/(1+p) for the median-like m = ⌊t·ln2⌋.
            let m = (scale * std::f64::consts::LN_2).floor();
            (var, m4, 1.0 - 2.0 * p.powf(m + 1.0) / (1.0 + p), m)
        }
        Mechanism::DiscreteGaussian => {
            // σ ≫ 1: the discrete Gaussian's moments equal the continuous one's to within
            // e^(−2π²σ²); P(|X| ≤ m) is the lattice sum, ≈ erf((m + ½)/(σ√2)).
            let var = scale * scale;
            let m = (0.674_489_75 * scale).floor();
            let z = (m + 0.5) / (scale * std::f64::consts::SQRT_2);
            (var, 3.0 * var * var, erf(z), m)
        }
    };
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    let v = xs.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n;
    let inner = xs.iter().filter(|x| x.unsigned_abs() as f64 <= m).count() as f64 / n;
    eprintln!(
        "{} scale {scale:.1}: {} draws, mean {mean:.1}, variance/expected {:.4}, P(|X| ≤ {m}) \
         {inner:.4} vs {p_inner:.4}",
        report.mechanism,
        xs.len(),
        v / var
    );
    // 4.4 standard errors: p ≈ 1e-5 per check.
    assert!(mean.abs() < 4.4 * (var / n).sqrt(), "mean {mean}");
    assert!(
        (v - var).abs() < 4.4 * ((m4 - var * var) / n).sqrt(),
        "variance {v} vs {var}"
    );
    assert!(
        (inner - p_inner).abs() < 4.4 * (p_inner * (1.0 - p_inner) / n).sqrt(),
        "P(|X| ≤ m) {inner} vs {p_inner}"
    );
}

/// erf by Abramowitz–Stegun 7.1.26: absolute error ≤ 1.5e-7, far below the tolerance (≥ 3e-3).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

#[test]
fn training_noise_is_discrete_laplace_at_the_calibrated_scale() {
    // 31 parameters per training: 4 650 draws.
    check_training_noise(&breast_cancer(), EPS1, 150);
}

#[test]
fn training_noise_is_discrete_gaussian_at_the_calibrated_scale() {
    // ρ of ε = 1 at δ = 10^-6, as the chain charges it; 9 parameters per training.
    let rho_micro = crate::rho_micro_for_epsilon(MICRO, 6);
    check_training_noise(&pima_diabetes(), TrainingBudget::Zcdp { rho_micro }, 500);
}

#[test]
fn draw_noise_is_integer_and_centred_at_small_scales() {
    // The sampler path on its own at a small exact scale (t = 3/2), many draws.
    let mut report = calibrate(455, 30, 1.0, Some(1.0), EPS1).unwrap();
    report.noise_scale = RBig::from_parts(IBig::from(3u8), UBig::from(2u8));
    let xs: Vec<i64> = (0..300)
        .flat_map(|_| draw_noise(&report).unwrap())
        .collect();
    assert_eq!(xs.len(), 300 * 31);
    let n = xs.len() as f64;
    let p = (-2.0f64 / 3.0).exp();
    let var = 2.0 * p / (1.0 - p).powi(2);
    let mean = xs.iter().sum::<i64>() as f64 / n;
    let v = xs.iter().map(|&x| (x * x) as f64).sum::<f64>() / n;
    assert!(mean.abs() < 4.4 * (var / n).sqrt(), "{mean}");
    // Zero has probability (1−p)/(1+p).
    let zeros = xs.iter().filter(|&&x| x == 0).count() as f64 / n;
    let p0 = (1.0 - p) / (1.0 + p);
    assert!(
        (zeros - p0).abs() < 4.4 * (p0 * (1.0 - p0) / n).sqrt(),
        "{zeros} vs {p0}"
    );
    assert!((v - var).abs() < 0.15 * var, "{v} vs {var}");
}

#[test]
fn private_model_is_compiled_without_data_dependent_choices() {
    let ds = pima_diabetes();
    let c = cfg(EPS1);
    let p = train_private_lr(&ds, &c).unwrap();
    assert_eq!(p.model.train_rows, ds.train_x.len());
    assert_eq!(p.model.clip_norm, Some(DEFAULT_CLIP_NORM));
    assert_eq!(p.model.l2_lambda, DEFAULT_L2_LAMBDA);
    let server = compile_private_lr_unproven(&p, &ds).unwrap();
    let spec = server.client_spec();
    // The input range is R standard deviations: no search by training accuracy.
    assert_eq!(spec.input.qmax, 127);
    assert!((spec.input.scale - DEFAULT_CLIP_NORM / 127.0).abs() < 1e-15);
    assert_eq!(spec.metadata.clip_norm, Some(DEFAULT_CLIP_NORM));
    // Compiling the same θ̂ again gives the same model (a function of θ̂ alone).
    let again = compile_private_lr_unproven(&p, &ds).unwrap();
    assert_eq!(server.canonical_bytes(), again.canonical_bytes());
    // Two trainings draw different noise.
    let q = train_private_lr(&ds, &c).unwrap();
    assert_ne!(p.model.layers[0].weights, q.model.layers[0].weights);
    // The report depends on the configuration, n and d only.
    assert_eq!(p.report, q.report);
}
