//! Strict multidimensional Mondrian (LeFevre, DeWitt, Ramakrishnan, "Mondrian
//! Multidimensional K-Anonymity", ICDE 2006) with distinct l-diversity as part of the
//! allowable-cut test (Machanavajjhala, Kifer, Gehrke, Venkitasubramaniam, "l-Diversity:
//! Privacy Beyond k-Anonymity", TKDD 2007).
//!
//! Start with one partition holding every record. Repeatedly take a partition and try its
//! quasi-identifiers in order of normalised width (range in the partition / range in the
//! table, widest first); cut at the median value, with the records equal to the median all on
//! one side (strict: the two halves' regions do not overlap). A cut is *allowable* only if both
//! halves keep ≥ k records and ≥ l distinct labels. A partition with no allowable cut is an
//! equivalence class: its quasi-identifiers are released as the class's [min, max] ranges.
//!
//! Every class therefore has ≥ k records and ≥ l labels by construction, provided the whole
//! table has (checked first). Cost: O(n·q) per level, O(log(n/k)) levels.

use crate::release::{Cell, Release};
use crate::table::{Table, MAX_LABELS};
use crate::{AnonError, Result};

/// What to anonymise for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnonConfig {
    /// Every equivalence class has at least k records (k ≥ 2).
    pub k: usize,
    /// Every class has at least l distinct labels (1 ≤ l ≤ k; l = 1 is k-anonymity alone).
    pub l: usize,
    /// The quasi-identifier columns: what an adversary can know from outside (age, number of
    /// pregnancies, BMI). The other columns are released as they are.
    pub quasi_identifiers: Vec<String>,
}

/// Check a configuration against a table's columns; the indices of the quasi-identifiers.
pub(crate) fn resolve(
    columns: &[String],
    quasi_identifiers: &[String],
    k: usize,
    l: usize,
) -> Result<Vec<usize>> {
    if k < 2 || l == 0 || l > k {
        return Err(AnonError::BadParameters { k, l });
    }
    if quasi_identifiers.is_empty() {
        return Err(AnonError::BadQuasiIdentifiers("no quasi-identifier".into()));
    }
    let mut idx = Vec::with_capacity(quasi_identifiers.len());
    for q in quasi_identifiers {
        let i = columns
            .iter()
            .position(|c| c == q)
            .ok_or_else(|| AnonError::UnknownColumn(q.clone(), columns.join(",")))?;
        if idx.contains(&i) {
            return Err(AnonError::BadQuasiIdentifiers(format!(
                "{q:?} appears twice"
            )));
        }
        idx.push(i);
    }
    Ok(idx)
}

/// Anonymise `table`: a release in which every class is k-anonymous and l-diverse, rows in a
/// fresh random order (from the OS CSPRNG, so the order says nothing about the contributions).
pub fn anonymise(table: &Table, cfg: &AnonConfig) -> Result<Release> {
    let qi = resolve(&table.columns, &cfg.quasi_identifiers, cfg.k, cfg.l)?;
    let labels = table.distinct_labels();
    if table.len() < cfg.k || labels < cfg.l {
        return Err(AnonError::Infeasible {
            k: cfg.k,
            l: cfg.l,
            rows: table.len(),
            labels,
        });
    }
    let classes = partition(table, &qi, cfg.k, cfg.l);
    let mut rows = Vec::with_capacity(table.len());
    let mut out_labels = Vec::with_capacity(table.len());
    for class in &classes {
        let ranges: Vec<(f64, f64)> = qi
            .iter()
            .map(|&j| {
                class
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                        let v = table.rows[i as usize][j];
                        (lo.min(v), hi.max(v))
                    })
            })
            .collect();
        for &i in class {
            let src = &table.rows[i as usize];
            let row: Vec<Cell> = src
                .iter()
                .enumerate()
                .map(|(j, &v)| match qi.iter().position(|&q| q == j) {
                    Some(p) => Cell::Range(ranges[p].0, ranges[p].1),
                    None => Cell::Value(v),
                })
                .collect();
            rows.push(row);
            out_labels.push(table.labels[i as usize]);
        }
    }
    let mut release = Release {
        columns: table.columns.clone(),
        label_name: table.label_name.clone(),
        quasi_identifiers: cfg.quasi_identifiers.clone(),
        rows,
        labels: out_labels,
    };
    release.shuffle()?;
    Ok(release)
}

/// The equivalence classes (record indices) of strict Mondrian with the l-diverse cut test.
pub(crate) fn partition(table: &Table, qi: &[usize], k: usize, l: usize) -> Vec<Vec<u32>> {
    let n = table.len();
    let q = qi.len();
    // Row-major copy of the quasi-identifiers: the hot loops touch only these.
    let mut values = Vec::with_capacity(n * q);
    for row in &table.rows {
        values.extend(qi.iter().map(|&j| row[j]));
    }
    let labels: Vec<u8> = table.labels.iter().map(|&l| l as u8).collect();
    let global = bounds(&values, q, (0..n as u32).collect::<Vec<_>>().as_slice());
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut stack = vec![(0usize, n)];
    let mut classes = Vec::new();
    let ctx = Ctx {
        values: &values,
        labels: &labels,
        q,
        k,
        l,
    };
    while let Some((lo, hi)) = stack.pop() {
        let part = &mut idx[lo..hi];
        match ctx.best_cut(part, &global) {
            Some(cut) => {
                stack.push((lo, lo + cut));
                stack.push((lo + cut, hi));
            }
            None => classes.push(part.to_vec()),
        }
    }
    classes
}

struct Ctx<'a> {
    values: &'a [f64],
    labels: &'a [u8],
    q: usize,
    k: usize,
    l: usize,
}

impl Ctx<'_> {
    fn v(&self, i: u32, d: usize) -> f64 {
        self.values[i as usize * self.q + d]
    }

    /// Try the dimensions widest first; the first allowable cut reorders `part` so that the
    /// left half is `part[..cut]`.
    fn best_cut(&self, part: &mut [u32], global: &[(f64, f64)]) -> Option<usize> {
        if part.len() < 2 * self.k {
            return None;
        }
        let local = bounds(self.values, self.q, part);
        let mut dims: Vec<(usize, f64)> = (0..self.q)
            .filter_map(|d| {
                let span = global[d].1 - global[d].0;
                let width = local[d].1 - local[d].0;
                (width > 0.0 && span > 0.0).then_some((d, width / span))
            })
            .collect();
        dims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut totals = [0u32; MAX_LABELS as usize];
        for &i in part.iter() {
            totals[self.labels[i as usize] as usize] += 1;
        }
        dims.into_iter()
            .find_map(|(d, _)| self.cut_on(part, d, &totals))
    }

    /// The median cut of `part` on dimension `d`, if allowable.
    fn cut_on(&self, part: &mut [u32], d: usize, totals: &[u32]) -> Option<usize> {
        let len = part.len();
        let mid = len / 2;
        part.select_nth_unstable_by(mid, |&a, &b| self.v(a, d).total_cmp(&self.v(b, d)));
        let m = self.v(part[mid], d);
        // Three-way order: < m, then == m, then > m.
        let less = partition_in_place(part, |i| self.v(i, d) < m);
        let equal = partition_in_place(&mut part[less..], |i| self.v(i, d) == m);
        // Records equal to the median all go to one side: left = (< m) or left = (≤ m).
        let mut candidates = [less, less + equal];
        candidates.sort_by_key(|&c| c.abs_diff(mid));
        candidates
            .into_iter()
            .find(|&cut| self.allowable(part, cut, totals))
    }

    /// Both halves keep ≥ k records and ≥ l distinct labels.
    fn allowable(&self, part: &[u32], cut: usize, totals: &[u32]) -> bool {
        if cut < self.k || part.len() - cut < self.k {
            return false;
        }
        let mut left = [0u32; MAX_LABELS as usize];
        for &i in &part[..cut] {
            left[self.labels[i as usize] as usize] += 1;
        }
        let distinct_left = left.iter().filter(|&&c| c > 0).count();
        let distinct_right = totals.iter().zip(&left).filter(|(&t, &c)| t > c).count();
        distinct_left >= self.l && distinct_right >= self.l
    }
}

/// Per dimension (min, max) over the records in `part`.
fn bounds(values: &[f64], q: usize, part: &[u32]) -> Vec<(f64, f64)> {
    let mut b = vec![(f64::INFINITY, f64::NEG_INFINITY); q];
    for &i in part {
        let row = &values[i as usize * q..i as usize * q + q];
        for (bd, &v) in b.iter_mut().zip(row) {
            bd.0 = bd.0.min(v);
            bd.1 = bd.1.max(v);
        }
    }
    b
}

/// Moves the elements satisfying `pred` to the front; returns how many there are.
fn partition_in_place(s: &mut [u32], pred: impl Fn(u32) -> bool) -> usize {
    let mut front = 0;
    for i in 0..s.len() {
        if pred(s[i]) {
            s.swap(front, i);
            front += 1;
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(f64, f64, u32)]) -> Table {
        Table {
            columns: vec!["age".into(), "bmi".into()],
            label_name: "y".into(),
            rows: rows.iter().map(|&(a, b, _)| vec![a, b]).collect(),
            labels: rows.iter().map(|&(_, _, y)| y).collect(),
        }
    }

    fn cfg(k: usize, l: usize) -> AnonConfig {
        AnonConfig {
            k,
            l,
            quasi_identifiers: vec!["age".into(), "bmi".into()],
        }
    }

    fn grid(n: usize) -> Table {
        table(
            &(0..n)
                .map(|i| {
                    (
                        (20 + i % 50) as f64,
                        (18 + (i * 7) % 23) as f64,
                        (i % 3 == 0) as u32,
                    )
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn every_class_has_k_rows_and_l_labels_and_the_rows_are_kept() {
        let t = grid(500);
        for (k, l) in [(2, 1), (5, 2), (10, 2), (50, 2)] {
            let r = anonymise(&t, &cfg(k, l)).unwrap();
            let v = r.verify(k, l, &cfg(k, l).quasi_identifiers).unwrap();
            assert!(v.min_class_size >= k && v.min_distinct_labels >= l, "{v:?}");
            assert_eq!(v.rows, 500);
            // Non-QI columns and labels are the same multiset (nothing lost or invented).
            let mut before = t.labels.clone();
            let mut after = r.labels.clone();
            before.sort();
            after.sort();
            assert_eq!(before, after);
            // Mondrian cuts until no cut is allowable: classes are small, not one big blob.
            assert!(
                v.classes >= 500 / (4 * k),
                "k={k}: only {} classes",
                v.classes
            );
        }
    }

    #[test]
    fn each_record_lies_inside_its_class_ranges() {
        let t = grid(300);
        let r = anonymise(&t, &cfg(7, 2)).unwrap();
        // Every original record is matched by exactly one class: classes do not overlap.
        for row in &t.rows {
            let m = r.match_set(row_qi(row)).unwrap();
            assert!(m.len() >= 7);
            let first = &r.rows[m[0]];
            assert!(m.iter().all(|&i| r.rows[i][..2] == first[..2]));
        }
    }

    fn row_qi(row: &[f64]) -> &[f64] {
        &row[..2]
    }

    #[test]
    fn infeasible_and_invalid_configurations_are_refused() {
        let t = table(&[(1.0, 1.0, 0), (2.0, 2.0, 0), (3.0, 3.0, 0)]);
        assert!(matches!(
            anonymise(&t, &cfg(2, 2)),
            Err(AnonError::Infeasible { labels: 1, .. })
        ));
        assert!(matches!(
            anonymise(&t, &cfg(4, 1)),
            Err(AnonError::Infeasible { rows: 3, .. })
        ));
        for (k, l) in [(1, 1), (3, 0), (3, 4)] {
            assert!(matches!(
                anonymise(&t, &cfg(k, l)),
                Err(AnonError::BadParameters { .. })
            ));
        }
        let mut c = cfg(2, 1);
        c.quasi_identifiers = vec!["age".into(), "age".into()];
        assert!(anonymise(&t, &c).is_err());
        c.quasi_identifiers = vec!["zip".into()];
        assert!(matches!(
            anonymise(&t, &c),
            Err(AnonError::UnknownColumn(..))
        ));
    }

    #[test]
    fn duplicate_medians_stay_on_one_side() {
        // 40 records share age 30: a strict cut must not split them across two classes whose
        // ranges would then both contain 30.
        let mut rows: Vec<(f64, f64, u32)> = (0..40).map(|i| (30.0, 20.0, i % 2)).collect();
        rows.extend((0..40).map(|i| (40.0 + i as f64, 20.0, i % 2)));
        let t = table(&rows);
        let r = anonymise(&t, &cfg(5, 2)).unwrap();
        let m = r.match_set(&[30.0, 20.0]).unwrap();
        let classes: std::collections::HashSet<String> = m
            .iter()
            .map(|&i| format!("{:?}", &r.rows[i][..2]))
            .collect();
        assert_eq!(classes.len(), 1, "{classes:?}");
        assert_eq!(m.len(), 40);
    }
}
