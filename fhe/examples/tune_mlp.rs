//! Explore MLP training/quantisation settings (float vs clear-quantised accuracy, bootstraps).
use smidl_fhe::dataset::breast_cancer;
use smidl_fhe::model::train::{train_mlp, MlpConfig};
use smidl_fhe::quant::{quantise, QuantConfig};

fn main() {
    let ds = breast_cancer();
    for &l2 in &[1e-3, 3e-3, 1e-2, 3e-2] {
        for &epochs in &[500usize, 1500] {
            for &seed in &[7u64, 1, 2] {
                let cfg = MlpConfig {
                    l2_lambda: l2,
                    epochs,
                    seed,
                    ..MlpConfig::default()
                };
                let m = train_mlp(&ds, &cfg).unwrap();
                let q = quantise(&m, &ds, &QuantConfig::default()).unwrap();
                println!(
                    "l2={l2:<6} epochs={epochs:<5} seed={seed} float train={:.4} test={:.4} | quant train={:.4} test={:.4} bits={} range={} pbs={}",
                    m.accuracy(&ds.train_x, &ds.train_y),
                    m.accuracy(&ds.test_x, &ds.test_y),
                    q.accuracy(&ds.train_x, &ds.train_y).unwrap(),
                    q.accuracy(&ds.test_x, &ds.test_y).unwrap(),
                    q.input.qmax, q.input.scale * q.input.qmax as f64,
                    q.body.bootstrap_count()
                );
            }
        }
    }
}
