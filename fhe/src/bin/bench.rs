//! smidl-fhe-bench: accuracy and latency of encrypted inference on the breast-cancer test split.
//!
//! Usage: smidl-fhe-bench [--model lr|lr-label|mlp|all] [--samples N]
//! Prints a human-readable table per model, then one machine-readable `RESULT` line per model.
//! `lr-label` is the same LR compiled with label answers (`ServerModel::with_label_answers`).

use std::time::Instant;

use smidl_fhe::client::{ClientKey, EncryptedInput, EncryptedOutput, EvaluationKey};
use smidl_fhe::dataset::breast_cancer;
use smidl_fhe::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
use smidl_fhe::model::FloatModel;
use smidl_fhe::quant::{quantise, QuantConfig};
use smidl_fhe::server::ServerModel;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

/// The clear integer model's class for its raw outputs.
fn clear_class(spec: &smidl_fhe::ClientSpec, raw: &[i64]) -> usize {
    let values: Vec<f64> = raw
        .iter()
        .zip(spec.output_scale())
        .map(|(&v, s)| v as f64 * s)
        .collect();
    smidl_fhe::client::decode_scores(spec.output.decode, &values).class
}

/// 2N of the parameter set's bootstrap (the modulus-switch resolution).
fn two_n(spec: &smidl_fhe::ClientSpec) -> f64 {
    2.0 * spec.params.params().polynomial_size.0 as f64
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn run(
    name: &str,
    model: &FloatModel,
    samples: usize,
    labels: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let ds = breast_cancer();
    let t = Instant::now();
    let q = quantise(model, &ds, &QuantConfig::default())?;
    let server = ServerModel::from_quantised(&q)?;
    let compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let server = server.with_input_proofs()?;
    let crs_s = t.elapsed().as_secs_f64();
    let server = if labels {
        server.with_label_answers()?
    } else {
        server
    };
    let crs_bytes = server.input_crs().map_or(0, |c| c.to_bytes().len());
    let spec = server.client_spec().clone();
    let float_acc = model.accuracy(&ds.test_x, &ds.test_y);
    let clear_acc = q.accuracy(&ds.test_x, &ds.test_y)?;

    let t = Instant::now();
    let ck = ClientKey::generate(&spec)?;
    let keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let ek = ck.evaluation_key();
    let evalkey_gen_ms = t.elapsed().as_secs_f64() * 1e3;
    let ek_bytes = ek.as_ref().map(EvaluationKey::to_bytes);
    let evalkey_bytes = ek_bytes.as_ref().map_or(0, Vec::len);
    let t = Instant::now();
    let skey = match &ek_bytes {
        Some(b) => Some(server.prepare_key(&EvaluationKey::from_bytes(b, &spec)?)?),
        None => None,
    };
    let prepare_ms = t.elapsed().as_secs_f64() * 1e3;

    let n = samples.min(ds.test_x.len());
    let (mut enc_ms, mut dec_ms, mut srv_ms, mut verify_ms) = (vec![], vec![], vec![], vec![]);
    let (mut in_bytes, mut out_bytes) = (0, 0);
    let (mut fhe_ok, mut mismatch) = (0usize, 0usize);
    let flood_units = smidl_fhe::sanitise::flood_output_units(&spec);
    let mut max_dev = 0i64;
    let pubkey_bytes = ck.public_key().size_bytes();
    for (x, &y) in ds.test_x.iter().zip(&ds.test_y).take(n) {
        // Linear models: encryption includes the proof of correct encryption.
        let t = Instant::now();
        let ct = match server.input_crs() {
            Some(crs) => ck.encrypt_proven(x, crs)?,
            None => ck.encrypt(x)?,
        };
        let wire_in = ct.to_bytes();
        enc_ms.push(t.elapsed().as_secs_f64() * 1e3);
        in_bytes = wire_in.len();

        let ct = EncryptedInput::from_bytes(&wire_in, &spec)?;
        let t = Instant::now();
        let ct = server.verify_input(&ct)?;
        verify_ms.push(t.elapsed().as_secs_f64() * 1e3);
        // What the worker returns: evaluation, a zero DP offset, and sanitisation (the
        // rerandomisation with the client's public key and the flood are timed with it).
        let zero = vec![0i64; spec.output.count()];
        let t = Instant::now();
        let out = match (&skey, spec.answers_are_labels()) {
            (Some(k), true) => server.answer_label(&ct, k, false)?,
            _ => server.answer(&ct, skey.as_ref(), &zero)?,
        };
        srv_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let wire_out = out.to_bytes(&spec);
        out_bytes = wire_out.len();

        let t = Instant::now();
        let out = EncryptedOutput::from_bytes(&wire_out, &spec)?;
        let pred = ck.decrypt_answer(&out)?;
        dec_ms.push(t.elapsed().as_secs_f64() * 1e3);

        // A mismatch is a decoding error: a label other than the clear model's, or a score
        // further from the clear model's than the sanitisation flood (plus one unit) allows.
        let clear = server.eval_clear(x)?;
        if spec.answers_are_labels() {
            if pred.class != clear_class(&spec, &clear) {
                mismatch += 1;
            }
        } else if pred
            .raw
            .iter()
            .zip(&clear)
            .any(|(a, b)| (a - b).abs() > flood_units + 1)
        {
            mismatch += 1;
        }
        if !spec.answers_are_labels() {
            max_dev = pred
                .raw
                .iter()
                .zip(&clear)
                .map(|(a, b)| (a - b).abs())
                .fold(max_dev, i64::max);
        }
        if pred.class == y as usize {
            fhe_ok += 1;
        }
    }
    for v in [&mut enc_ms, &mut dec_ms, &mut srv_ms, &mut verify_ms] {
        v.sort_by(f64::total_cmp);
    }
    let fhe_acc = fhe_ok as f64 / n as f64;
    let p50 = percentile(&srv_ms, 0.5);
    let p90 = percentile(&srv_ms, 0.9);
    let rss = peak_rss_mb();
    println!("== {name}: {:?}", server);
    println!(
        "  parameter set              {}",
        spec.params.params().source
    );
    println!("  samples                    {n} of {}", ds.test_x.len());
    println!("  float accuracy             {float_acc:.4}");
    println!("  clear-quantised accuracy   {clear_acc:.4}");
    println!(
        "  FHE accuracy               {fhe_acc:.4}  (decoding errors: {mismatch}; largest |FHE - clear| \
         {max_dev} units, flood bound {flood_units})"
    );
    println!("  public key                 {pubkey_bytes} B (travels with each input)");
    if spec.answers_are_labels() {
        let lb = smidl_fhe::sanitise::LabelBound::for_params(spec.params);
        println!(
            "  sanitisation               label answer: sign bootstrap + {} rounds (flood 2^{}), \
             statistical distance per answer <= 2^{:.1}",
            lb.rounds,
            smidl_fhe::sanitise::LABEL_LOG2_FLOOD,
            lb.statistical_distance().log2()
        );
    }
    if let Some(ll) = server.linear_label() {
        println!(
            "  label read (linear)        scale c = {}, read noise std {:.2} positions of 2N, \
             margin +-{} units ({:.3} score) for p_fail <= 2^-40",
            ll.scale,
            ll.read_std / 2f64.powi(64) * two_n(&spec),
            ll.margin_units,
            ll.margin_score(&spec)
        );
    }
    if let Some(fb) = server.flood_bound() {
        println!(
            "  sanitisation               flood 2^{} (hidden terms <= 2^{:.1}), statistical distance \
             per answer <= 2^{:.1} (any client whose proof verifies: <= 2^{:.1})",
            fb.log2_flood,
            (fb.hidden_bound as f64).log2(),
            fb.statistical_distance().log2(),
            fb.proven_statistical_distance().log2()
        );
    }
    println!("  quantise+compile           {compile_s:.2} s");
    if crs_bytes > 0 {
        println!("  input-proof CRS            {crs_s:.2} s to generate, {crs_bytes} B");
    }
    let keygen_total_ms = keygen_ms + evalkey_gen_ms;
    println!(
        "  client key generation      {keygen_total_ms:.1} ms (secret keys {keygen_ms:.1} ms, \
         evaluation key {evalkey_gen_ms:.1} ms)"
    );
    println!("  evaluation key             {evalkey_bytes} B");
    println!("  server key preparation     {prepare_ms:.1} ms (once per client)");
    println!("  input ciphertext           {in_bytes} B");
    println!("  output ciphertext          {out_bytes} B");
    println!(
        "  client encrypt p50         {:.3} ms, decrypt p50 {:.3} ms",
        percentile(&enc_ms, 0.5),
        percentile(&dec_ms, 0.5)
    );
    println!(
        "  server evaluation          p50 {p50:.3} ms, p90 {p90:.3} ms (evaluation, DP offset, \
         sanitisation)"
    );
    println!(
        "  input check (proof verify) p50 {:.3} ms (once per input, before evaluation)",
        percentile(&verify_ms, 0.5)
    );
    println!("  bootstraps per sample      {}", server.bootstrap_count());
    let md = server.metadata();
    if let Some(r) = md.clip_norm {
        println!(
            "  DP metadata                n={} lambda={} R={r} -> parameter sensitivity 2*sqrt(R^2+1)/(n*lambda) = {:.4}",
            md.train_rows,
            md.l2_lambda,
            2.0 * (r * r + 1.0).sqrt() / (md.train_rows as f64 * md.l2_lambda)
        );
        let s = server.output_sensitivity();
        println!(
            "  output sensitivity         {:?} grid units ({:?})",
            s.grid_units, s.derivation
        );
    }
    println!("  output scale (score/unit)  {:?}", server.output_scale());
    let pp = spec.params.params();
    if server.bootstrap_count() > 0 {
        let m = (2f64.powi(64) / spec.input_delta as f64 / 2.0).round() as u32;
        println!(
            "  PBS window M               {m} values, p_fail/PBS (no input noise) = 2^{:.1}, \
             PBS output std 2^{:.1}, output slots {}",
            pp.log2_p_fail_window(m, 0.0),
            (pp.pbs_output_variance().sqrt() * 2f64.powi(64)).log2(),
            spec.output.slots
        );
    } else {
        println!(
            "  encoding                   delta 2^{:.0}, output slots 2^{:.0}, noise bound exact (TUniform)",
            (spec.input_delta as f64).log2(),
            (spec.output.slots as f64).log2()
        );
    }
    println!("  peak RSS                   {rss:.0} MB");
    println!(
        "RESULT model={name} float_accuracy={float_acc:.4} clear_accuracy={clear_acc:.4} \
         accuracy={fhe_acc:.4} fhe_mismatch={mismatch} max_deviation_units={max_dev} samples={n} \
         keygen_ms={keygen_total_ms:.1} evalkey_bytes={evalkey_bytes} pubkey_bytes={pubkey_bytes} \
         input_bytes={in_bytes} output_bytes={out_bytes} sanitised=1 \
         verify_ms_p50={:.3} crs_bytes={crs_bytes} crs_gen_s={crs_s:.2} \
         encrypt_ms_p50={:.3} decrypt_ms_p50={:.3} server_ms_p50={p50:.3} server_ms_p90={p90:.3} \
         bootstraps={} peak_rss_mb={rss:.0}",
        percentile(&verify_ms, 0.5),
        percentile(&enc_ms, 0.5),
        percentile(&dec_ms, 0.5),
        server.bootstrap_count()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mut which = "all".to_string();
    let mut samples = usize::MAX;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--model" => {
                which = args.get(i + 1).cloned().unwrap_or_default();
                i += 1;
            }
            "--samples" => {
                samples = args
                    .get(i + 1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                i += 1;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
        i += 1;
    }
    println!("threads: {}", rayon::current_num_threads());
    let ds = breast_cancer();
    if which == "lr" || which == "all" {
        // R = 4 bounds the standardised feature norm (the worker's DP sensitivity of the parameters is 2√(R²+1)/(nλ)).
        let cfg = LrConfig {
            l2_lambda: 0.01,
            clip_norm: Some(4.0),
        };
        let lr = train_logistic_regression(&ds, &cfg)?;
        run("lr", &lr, samples, false)?;
    }
    if which == "lr-label" || which == "all" {
        let cfg = LrConfig {
            l2_lambda: 0.01,
            clip_norm: Some(4.0),
        };
        let lr = train_logistic_regression(&ds, &cfg)?;
        run("lr-label", &lr, samples, true)?;
    }
    if which == "mlp" || which == "all" {
        let mlp = train_mlp(&ds, &MlpConfig::default())?;
        run("mlp", &mlp, samples, false)?;
    }
    Ok(())
}
