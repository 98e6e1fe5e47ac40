//! The anonymised release: what the aggregator hands the provider and commits to on chain.
//!
//! CSV layout: the table's columns, then the label; a quasi-identifier cell is a range
//! `lo~hi` (`~` because values may be negative), every other cell a number. The verifier
//! groups rows by their quasi-identifier ranges (the equivalence classes an adversary sees)
//! and checks k and l on that grouping, so it needs nothing but the file and the chain's
//! record (k, l, the quasi-identifier list, the row count, the commitment).

use std::collections::HashMap;

use crate::mondrian::resolve;
use crate::table::{check_names, parse_label, parse_number, split_csv, Table, MAX_LABELS};
use crate::{AnonError, Result};

/// One released cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    Value(f64),
    /// A generalised quasi-identifier: the class's [min, max].
    Range(f64, f64),
}

/// A release: rows of cells (quasi-identifier columns generalised), with labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    pub columns: Vec<String>,
    pub label_name: String,
    pub quasi_identifiers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub labels: Vec<u32>,
}

/// What the verifier found; `verify` fails unless it meets the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub rows: usize,
    pub classes: usize,
    pub min_class_size: usize,
    pub min_distinct_labels: usize,
    /// Largest share of one label inside a class, in per mille (what a homogeneity attack
    /// can infer at best: distinct l-diversity bounds this only below 1000).
    pub max_label_share_permille: u32,
}

/// Domain tag of a release commitment.
const COMMIT_TAG: &[u8] = b"smidl/release/v1";

/// Salted commitment of a release file: BLAKE2-256(tag ‖ salt ‖ BLAKE2-256(csv)). Hiding, so
/// the chain's record lets nobody test a guess of the released rows; with the salt anyone
/// holding the file recomputes it.
pub fn commitment(salt: &[u8; 32], csv: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(COMMIT_TAG.len() + 64);
    m.extend_from_slice(COMMIT_TAG);
    m.extend_from_slice(salt);
    m.extend_from_slice(&blake2_256(csv));
    blake2_256(&m)
}

pub(crate) fn blake2_256(data: &[u8]) -> [u8; 32] {
    use blake2::digest::{consts::U32, Digest};
    let mut h = blake2::Blake2b::<U32>::new();
    h.update(data);
    h.finalize().into()
}

impl Release {
    /// The "naive" release of the anonymisation literature: identifiers stripped, every other
    /// value kept exactly (each quasi-identifier a one-point range). What k-anonymity is
    /// measured against: the linkage test re-identifies most records in it.
    pub fn naive(table: &Table, quasi_identifiers: &[String]) -> Result<Self> {
        let qi = resolve(&table.columns, quasi_identifiers, 2, 1)?;
        Ok(Release {
            columns: table.columns.clone(),
            label_name: table.label_name.clone(),
            quasi_identifiers: quasi_identifiers.to_vec(),
            rows: table
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(j, &v)| {
                            if qi.contains(&j) {
                                Cell::Range(v, v)
                            } else {
                                Cell::Value(v)
                            }
                        })
                        .collect()
                })
                .collect(),
            labels: table.labels.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn qi_index(&self) -> Result<Vec<usize>> {
        self.quasi_identifiers
            .iter()
            .map(|q| {
                self.columns
                    .iter()
                    .position(|c| c == q)
                    .ok_or_else(|| AnonError::UnknownColumn(q.clone(), self.columns.join(",")))
            })
            .collect()
    }

    /// Rows in a fresh uniformly random order (Fisher–Yates on OS randomness).
    pub fn shuffle(&mut self) -> Result<()> {
        let n = self.rows.len();
        for i in (1..n).rev() {
            let j = uniform_below(i as u64 + 1)? as usize;
            self.rows.swap(i, j);
            self.labels.swap(i, j);
        }
        Ok(())
    }

    /// The CSV form (what is committed to and handed over).
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(self.rows.len() * (self.columns.len() * 10 + 4));
        out.push_str(&self.columns.join(","));
        out.push(',');
        out.push_str(&self.label_name);
        out.push('\n');
        for (row, label) in self.rows.iter().zip(&self.labels) {
            for c in row {
                match c {
                    Cell::Value(v) => out.push_str(&v.to_string()),
                    Cell::Range(lo, hi) => {
                        out.push_str(&lo.to_string());
                        out.push('~');
                        out.push_str(&hi.to_string());
                    }
                }
                out.push(',');
            }
            out.push_str(&label.to_string());
            out.push('\n');
        }
        out
    }

    /// Parse a release, given the quasi-identifiers the chain records for it. Every
    /// quasi-identifier cell must be a range `lo~hi` with lo ≤ hi; every other cell a number.
    pub fn from_csv(text: &str, quasi_identifiers: &[String]) -> Result<Self> {
        let (header, lines) = split_csv(text)?;
        if header.len() < 2 {
            return Err(AnonError::Csv(
                "expected columns: features..., label".into(),
            ));
        }
        let nfeat = header.len() - 1;
        let columns: Vec<String> = header[..nfeat].iter().map(|s| s.to_string()).collect();
        check_names(&columns)?;
        let qi = resolve(&columns, quasi_identifiers, 2, 1)?;
        let mut r = Release {
            columns,
            label_name: header[nfeat].to_string(),
            quasi_identifiers: quasi_identifiers.to_vec(),
            rows: Vec::new(),
            labels: Vec::new(),
        };
        for (i, cells) in lines.into_iter().enumerate() {
            let here = |j: usize, e: String| {
                AnonError::Csv(format!("row {}, column {}: {e}", i + 2, j + 1))
            };
            let row = cells[..nfeat]
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    if qi.contains(&j) {
                        parse_range(c).map_err(|e| here(j, e))
                    } else {
                        parse_number(c).map(Cell::Value).map_err(|e| here(j, e))
                    }
                })
                .collect::<Result<Vec<Cell>>>()?;
            r.labels
                .push(parse_label(cells[nfeat]).map_err(|e| here(nfeat, e))?);
            r.rows.push(row);
        }
        Ok(r)
    }

    /// The equivalence classes as an adversary sees them: rows grouped by their
    /// quasi-identifier cells.
    fn classes(&self) -> Result<HashMap<Vec<u64>, Vec<usize>>> {
        let qi = self.qi_index()?;
        let mut classes: HashMap<Vec<u64>, Vec<usize>> = HashMap::new();
        for (i, row) in self.rows.iter().enumerate() {
            let mut key = Vec::with_capacity(qi.len() * 2);
            for &j in &qi {
                match row[j] {
                    Cell::Range(lo, hi) => {
                        key.push(lo.to_bits());
                        key.push(hi.to_bits());
                    }
                    Cell::Value(_) => {
                        return Err(AnonError::Violation(format!(
                            "row {i}: quasi-identifier {:?} is not generalised",
                            self.columns[j]
                        )))
                    }
                }
            }
            classes.entry(key).or_default().push(i);
        }
        Ok(classes)
    }

    /// Check the claim the chain records: the quasi-identifiers are exactly `qi`, every class
    /// has ≥ k rows and ≥ l distinct labels. Fails with the first violation found.
    pub fn verify(&self, k: usize, l: usize, qi: &[String]) -> Result<Verified> {
        resolve(&self.columns, qi, k, l)?;
        if self.quasi_identifiers != qi {
            return Err(AnonError::Violation(format!(
                "the release generalises {:?}, the claim names {qi:?}",
                self.quasi_identifiers
            )));
        }
        let classes = self.classes()?;
        let mut v = Verified {
            rows: self.rows.len(),
            classes: classes.len(),
            min_class_size: usize::MAX,
            min_distinct_labels: usize::MAX,
            max_label_share_permille: 0,
        };
        for members in classes.values() {
            let mut counts = [0u32; MAX_LABELS as usize];
            for &i in members {
                counts[self.labels[i] as usize] += 1;
            }
            let distinct = counts.iter().filter(|&&c| c > 0).count();
            let top = counts.iter().copied().max().unwrap_or(0);
            v.min_class_size = v.min_class_size.min(members.len());
            v.min_distinct_labels = v.min_distinct_labels.min(distinct);
            v.max_label_share_permille = v
                .max_label_share_permille
                .max((u64::from(top) * 1000 / members.len() as u64) as u32);
            if members.len() < k {
                return Err(AnonError::Violation(format!(
                    "a class of {} rows (rows {:?}…) is below k = {k}",
                    members.len(),
                    &members[..members.len().min(3)]
                )));
            }
            if distinct < l {
                return Err(AnonError::Violation(format!(
                    "a class of {} rows has {distinct} distinct labels, below l = {l}",
                    members.len()
                )));
            }
        }
        if classes.is_empty() {
            v.min_class_size = 0;
            v.min_distinct_labels = 0;
        }
        Ok(v)
    }

    /// The adversary's linkage: the rows whose quasi-identifier ranges all contain the known
    /// values `qi_values` (in the order of `quasi_identifiers`).
    pub fn match_set(&self, qi_values: &[f64]) -> Result<Vec<usize>> {
        let qi = self.qi_index()?;
        if qi_values.len() != qi.len() {
            return Err(AnonError::BadQuasiIdentifiers(format!(
                "{} values for {} quasi-identifiers",
                qi_values.len(),
                qi.len()
            )));
        }
        Ok(self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, row)| {
                qi.iter().zip(qi_values).all(|(&j, &v)| match row[j] {
                    Cell::Range(lo, hi) => lo <= v && v <= hi,
                    Cell::Value(x) => x == v,
                })
            })
            .map(|(i, _)| i)
            .collect())
    }

    /// What training sees: each range replaced by its midpoint, every other value kept.
    pub fn midpoint_table(&self) -> Table {
        Table {
            columns: self.columns.clone(),
            label_name: self.label_name.clone(),
            rows: self
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| match *c {
                            Cell::Value(v) => v,
                            Cell::Range(lo, hi) => lo + (hi - lo) / 2.0,
                        })
                        .collect()
                })
                .collect(),
            labels: self.labels.clone(),
        }
    }
}

fn parse_range(c: &str) -> std::result::Result<Cell, String> {
    let (lo, hi) = c
        .split_once('~')
        .ok_or_else(|| format!("{c:?} is not a range lo~hi"))?;
    let (lo, hi) = (parse_number(lo)?, parse_number(hi)?);
    if lo > hi {
        return Err(format!("range {c:?} has lo > hi"));
    }
    Ok(Cell::Range(lo, hi))
}

/// Uniform in [0, n) by rejection (no modulo bias).
fn uniform_below(n: u64) -> Result<u64> {
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let mut b = [0u8; 8];
        crate::os_random(&mut b)?;
        let v = u64::from_le_bytes(b);
        if v < zone {
            return Ok(v % n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mondrian::{anonymise, AnonConfig};

    fn qi() -> Vec<String> {
        vec!["age".into()]
    }

    fn sample() -> Table {
        Table {
            columns: vec!["age".into(), "glucose".into()],
            label_name: "y".into(),
            rows: (0..60)
                .map(|i| vec![20.0 + i as f64, 100.0 + i as f64])
                .collect(),
            labels: (0..60).map(|i| i % 2).collect(),
        }
    }

    #[test]
    fn a_release_round_trips_and_verifies() {
        let r = anonymise(
            &sample(),
            &AnonConfig {
                k: 5,
                l: 2,
                quasi_identifiers: qi(),
            },
        )
        .unwrap();
        let csv = r.to_csv();
        let back = Release::from_csv(&csv, &qi()).unwrap();
        assert_eq!(back, r);
        let v = back.verify(5, 2, &qi()).unwrap();
        assert_eq!(v.rows, 60);
        assert!(v.min_class_size >= 5);
        // Claims the release does not meet fail.
        assert!(back.verify(v.min_class_size + 1, 2, &qi()).is_err());
        assert!(back.verify(5, 2, &["glucose".to_string()]).is_err());
    }

    #[test]
    fn a_forged_release_fails_verification() {
        let naive = Release::naive(&sample(), &qi()).unwrap();
        let e = naive.verify(2, 1, &qi()).unwrap_err().to_string();
        assert!(e.contains("below k"), "{e}");
        // A quasi-identifier left as a plain number is refused at parsing.
        let bad = "age,glucose,y\n30,100,1\n";
        assert!(Release::from_csv(bad, &qi()).is_err());
        assert!(Release::from_csv("age,glucose,y\n31~30,100,1\n", &qi()).is_err());
    }

    #[test]
    fn the_commitment_binds_salt_and_content() {
        let csv = sample().to_csv();
        let (s1, s2) = ([1u8; 32], [2u8; 32]);
        let c = commitment(&s1, csv.as_bytes());
        assert_eq!(c, commitment(&s1, csv.as_bytes()));
        assert_ne!(c, commitment(&s2, csv.as_bytes()));
        let mut other = csv.clone();
        other.push_str("1,1,1\n");
        assert_ne!(c, commitment(&s1, other.as_bytes()));
    }

    #[test]
    fn midpoints_are_what_training_sees() {
        let r = Release::from_csv("age,glucose,y\n20~30,100,1\n20~30,90,0\n", &qi()).unwrap();
        let t = r.midpoint_table();
        assert_eq!(t.rows, vec![vec![25.0, 100.0], vec![25.0, 90.0]]);
        assert_eq!(t.labels, vec![1, 0]);
    }
}
