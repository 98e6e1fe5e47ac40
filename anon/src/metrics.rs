//! Information loss of a release: the normalised certainty penalty (NCP) of Xu, Wang, Pei,
//! Wang, Shi, Fu ("Utility-based anonymization using local recoding", KDD 2006), as used to
//! compare Mondrian implementations: for a numeric quasi-identifier A generalised to [lo, hi],
//! NCP_A = (hi − lo) / (max_A − min_A) over the original table; a release's NCP is the mean
//! over rows and quasi-identifiers, in [0, 1] (0: nothing generalised, 1: every value replaced
//! by the whole domain).

use crate::release::{Cell, Release};
use crate::table::Table;
use crate::Result;

/// NCP of `release` relative to the domain of `original` (the table it was made from).
pub fn ncp(original: &Table, release: &Release) -> Result<f64> {
    let qi: Vec<usize> = release
        .quasi_identifiers
        .iter()
        .map(|q| original.column(q))
        .collect::<Result<_>>()?;
    let spans: Vec<f64> = qi
        .iter()
        .map(|&j| {
            let (lo, hi) = original
                .rows
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(r[j]), hi.max(r[j]))
                });
            hi - lo
        })
        .collect();
    if release.rows.is_empty() || qi.is_empty() {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for row in &release.rows {
        for (&j, &span) in qi.iter().zip(&spans) {
            if let Cell::Range(lo, hi) = row[j] {
                if span > 0.0 {
                    total += (hi - lo) / span;
                }
            }
        }
    }
    Ok(total / (release.rows.len() * qi.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncp_is_zero_for_points_and_one_for_the_whole_domain() {
        let t = Table {
            columns: vec!["a".into()],
            label_name: "y".into(),
            rows: vec![vec![0.0], vec![10.0]],
            labels: vec![0, 1],
        };
        let qi = vec!["a".to_string()];
        let naive = Release::naive(&t, &qi).unwrap();
        assert_eq!(ncp(&t, &naive).unwrap(), 0.0);
        let mut whole = naive.clone();
        for r in &mut whole.rows {
            r[0] = Cell::Range(0.0, 10.0);
        }
        assert_eq!(ncp(&t, &whole).unwrap(), 1.0);
        whole.rows[1][0] = Cell::Range(5.0, 10.0);
        assert_eq!(ncp(&t, &whole).unwrap(), 0.75);
    }
}
