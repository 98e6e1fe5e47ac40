//! `make bench-kanon`: Mondrian k-anonymity with l = 2 on the Pima data (768 rows; QIs age,
//! pregnant, mass) at k ∈ {5, 10, 25}, and on a 1M-row table generated from it, printing
//! `RESULT kanon rows=… k=… l=… ms=… ncp=…`. Target: 1M rows at k = 10 in ≤ 10 s (2 cores).
//!
//! The 1M rows are Pima rows drawn with replacement, their quasi-identifiers jittered (age
//! ±2 years, pregnancies ±1, BMI ±1.0 in steps of 0.1), so the QI distribution keeps Pima's
//! shape with ~10⁵ distinct combinations. The generator is a seeded xorshift: benchmark data,
//! not a secret.

use std::time::Instant;

use smidl_anon::{anonymise, metrics::ncp, AnonConfig, Table};

const PIMA: &str = include_str!("../../../fhe/data/pima_diabetes.csv");

fn qi() -> Vec<String> {
    ["age", "pregnant", "mass"].map(String::from).to_vec()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn scaled(t: &Table, rows: usize) -> Table {
    let (age, preg, mass) = (
        t.column("age").unwrap(),
        t.column("pregnant").unwrap(),
        t.column("mass").unwrap(),
    );
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut out = Table {
        rows: Vec::with_capacity(rows),
        labels: Vec::with_capacity(rows),
        ..t.clone()
    };
    for _ in 0..rows {
        let i = rng.below(t.len() as u64) as usize;
        let mut r = t.rows[i].clone();
        r[age] = (r[age] + rng.below(5) as f64 - 2.0).max(21.0);
        r[preg] = (r[preg] + rng.below(3) as f64 - 1.0).max(0.0);
        r[mass] = ((r[mass] * 10.0 + rng.below(21) as f64 - 10.0).max(0.0)).round() / 10.0;
        out.rows.push(r);
        out.labels.push(t.labels[i]);
    }
    out
}

fn run(data: &str, t: &Table, k: usize, l: usize) {
    let cfg = AnonConfig {
        k,
        l,
        quasi_identifiers: qi(),
    };
    let start = Instant::now();
    let r = anonymise(t, &cfg).expect("anonymise");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let v = r.verify(k, l, &qi()).expect("the release meets its claim");
    let n = ncp(t, &r).expect("ncp");
    println!(
        "RESULT kanon data={data} rows={} k={k} l={l} ms={ms:.1} ncp={n:.4} classes={} \
         min_class={} max_label_share_permille={}",
        t.len(),
        v.classes,
        v.min_class_size,
        v.max_label_share_permille
    );
}

fn main() {
    let pima = Table::from_csv(PIMA, None).expect("embedded Pima parses");
    for k in [5, 10, 25] {
        run("pima", &pima, k, 2);
    }
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let big = scaled(&pima, rows);
    for k in [10, 25] {
        run("pima-scaled", &big, k, 2);
    }
}
