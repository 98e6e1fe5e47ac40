//! LR accuracy (float and clear-quantised) against the L2 strength and the norm clip R.
use smidl_fhe::dataset::breast_cancer;
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::quant::{quantise, QuantConfig};

fn main() {
    let ds = breast_cancer();
    for &l2 in &[0.003, 0.01, 0.03] {
        for clip in [None, Some(4.0), Some(6.0), Some(8.0), Some(12.0)] {
            let m = train_logistic_regression(
                &ds,
                &LrConfig {
                    l2_lambda: l2,
                    clip_norm: clip,
                },
            )
            .unwrap();
            let q = quantise(&m, &ds, &QuantConfig::default()).unwrap();
            println!(
                "l2={l2:<6} clip={clip:?}: float test={:.4} quant train={:.4} test={:.4}",
                m.accuracy(&ds.test_x, &ds.test_y),
                q.accuracy(&ds.train_x, &ds.train_y).unwrap(),
                q.accuracy(&ds.test_x, &ds.test_y).unwrap()
            );
        }
    }
}
