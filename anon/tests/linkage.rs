//! The linkage attack, run as an adversary would: it holds an external table of
//! quasi-identifiers (age, pregnancies, BMI) for some patients — a voter roll, a gym's
//! records — and looks each one up in the released data.
//!
//! Against the naive release (identifiers stripped, values kept) the attack re-identifies most
//! of them and reads off their diagnosis; it stays in the suite as the unprotected path, so the
//! test cannot pass vacuously. Against the Mondrian release every match set has ≥ k rows and
//! ≥ l distinct labels; with k-anonymity alone (l = 1) the homogeneity attack still learns
//! some diagnoses for certain, with l = 2 none.

use std::collections::HashMap;

use smidl_anon::{anonymise, AnonConfig, Release, Table};

const PIMA: &str = include_str!("../../fhe/data/pima_diabetes.csv");

fn qi() -> Vec<String> {
    ["age", "pregnant", "mass"].map(String::from).to_vec()
}

fn pima() -> Table {
    Table::from_csv(PIMA, None).unwrap()
}

/// The adversary's external table: every third patient's quasi-identifiers, with who they
/// are (the row index stands for the name) and, to score the attack, their true diagnosis.
fn external(t: &Table) -> Vec<(usize, Vec<f64>)> {
    let cols: Vec<usize> = qi().iter().map(|q| t.column(q).unwrap()).collect();
    (0..t.len())
        .step_by(3)
        .map(|i| (i, cols.iter().map(|&j| t.rows[i][j]).collect()))
        .collect()
}

#[test]
fn naive_anonymisation_fails_and_mondrian_holds() {
    let t = pima();
    assert_eq!(t.len(), 768);
    let targets = external(&t);

    // Independent count: patients whose QI combination is unique in the data.
    let cols: Vec<usize> = qi().iter().map(|q| t.column(q).unwrap()).collect();
    let mut freq: HashMap<Vec<u64>, usize> = HashMap::new();
    for r in &t.rows {
        *freq
            .entry(cols.iter().map(|&j| r[j].to_bits()).collect())
            .or_default() += 1;
    }
    let unique_targets = targets
        .iter()
        .filter(|(_, v)| freq[&v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()] == 1)
        .count();

    // 1. The naive release: a match set of one row re-identifies the patient, and the
    //    diagnosis read off that row is the patient's.
    let naive = Release::naive(&t, &qi()).unwrap();
    let mut reidentified = 0;
    for (who, v) in &targets {
        let m = naive.match_set(v).unwrap();
        assert!(!m.is_empty(), "every target is in the data");
        if m.len() == 1 {
            reidentified += 1;
            assert_eq!(naive.labels[m[0]], t.labels[*who], "diagnosis disclosed");
        }
    }
    let share = reidentified as f64 / targets.len() as f64;
    println!(
        "naive release: {reidentified} of {} targets re-identified ({:.1} %)",
        targets.len(),
        100.0 * share
    );
    assert_eq!(reidentified, unique_targets);
    assert!(share > 0.9, "naive release re-identified only {share}");

    // 2. Mondrian, k-anonymous and 2-diverse: no target is singled out, no diagnosis certain.
    for k in [5, 10, 25] {
        let cfg = AnonConfig {
            k,
            l: 2,
            quasi_identifiers: qi(),
        };
        let r = anonymise(&t, &cfg).unwrap();
        // What a third party checks from the file alone.
        let r = Release::from_csv(&r.to_csv(), &qi()).unwrap();
        let v = r.verify(k, 2, &qi()).unwrap();
        let mut smallest = usize::MAX;
        for (_, q) in &targets {
            let m = r.match_set(q).unwrap();
            smallest = smallest.min(m.len());
            assert!(m.len() >= k, "k={k}: a target matches {} rows", m.len());
            let ones = m.iter().filter(|&&i| r.labels[i] == 1).count();
            assert!(
                ones > 0 && ones < m.len(),
                "k={k}: a match set is homogeneous"
            );
        }
        println!(
            "k={k} l=2: smallest match set {smallest}, {} classes, largest label share {} ‰",
            v.classes, v.max_label_share_permille
        );
    }

    // 3. k-anonymity alone: the homogeneity attack. Some classes hold one diagnosis only, so
    //    the adversary learns it for certain although no one is singled out.
    let k_only = anonymise(
        &t,
        &AnonConfig {
            k: 5,
            l: 1,
            quasi_identifiers: qi(),
        },
    )
    .unwrap();
    let certain = targets
        .iter()
        .filter(|(who, q)| {
            let m = k_only.match_set(q).unwrap();
            assert!(m.len() >= 5);
            m.iter().all(|&i| k_only.labels[i] == t.labels[*who])
        })
        .count();
    println!(
        "k=5 l=1: diagnosis certain for {certain} of {} targets",
        targets.len()
    );
    assert!(
        certain > 0,
        "k-anonymity alone should leave homogeneous classes here"
    );
}

#[test]
fn contributions_from_three_clinics_anonymise_as_one_table() {
    // The aggregator's view: three clinics' batches with one layout, concatenated.
    let t = Table::from_csv(PIMA, Some("train")).unwrap();
    let third = t.len() / 3;
    let parts: Vec<Table> = (0..3)
        .map(|c| {
            let end = if c == 2 { t.len() } else { (c + 1) * third };
            Table {
                rows: t.rows[c * third..end].to_vec(),
                labels: t.labels[c * third..end].to_vec(),
                ..t.clone()
            }
        })
        .collect();
    let all = Table::concat(&parts).unwrap();
    assert_eq!(all, t);
    let r = anonymise(
        &all,
        &AnonConfig {
            k: 10,
            l: 2,
            quasi_identifiers: qi(),
        },
    )
    .unwrap();
    assert_eq!(r.verify(10, 2, &qi()).unwrap().rows, t.len());
}
