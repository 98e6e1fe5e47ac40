//! Training on an anonymised release (`smidl_anon`): the provider never holds raw contributed
//! records, only the k-anonymous, l-diverse release. The trainers take a [`Dataset`]; a
//! release becomes one by replacing each generalised quasi-identifier with its range's
//! midpoint (the other columns are released as they are). The held-out rows, used only to
//! report accuracy, are the provider's own (never contributed).

use smidl_anon::Release;
use smidl_fhe::dataset::Dataset;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseDatasetError {
    #[error("the release has columns {release:?}, the held-out rows {holdout:?}")]
    Columns {
        release: Vec<String>,
        holdout: Vec<String>,
    },
    #[error("label {0} is not 0/1: smidl's models are binary classifiers")]
    Label(u32),
    #[error("the release has no rows")]
    Empty,
}

/// The training set of a release (midpoints) with `holdout` as the test split.
pub fn release_dataset(release: &Release, holdout: &Dataset) -> Result<Dataset, ReleaseDatasetError> {
    if release.columns != holdout.feature_names {
        return Err(ReleaseDatasetError::Columns {
            release: release.columns.clone(),
            holdout: holdout.feature_names.clone(),
        });
    }
    if release.is_empty() {
        return Err(ReleaseDatasetError::Empty);
    }
    let t = release.midpoint_table();
    let train_y = t
        .labels
        .iter()
        .map(|&l| u8::try_from(l).ok().filter(|&v| v <= 1).ok_or(ReleaseDatasetError::Label(l)))
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(Dataset {
        feature_names: t.columns,
        train_x: t.rows,
        train_y,
        test_x: holdout.test_x.clone(),
        test_y: holdout.test_y.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smidl_anon::{anonymise, AnonConfig, Table};

    #[test]
    fn a_release_trains_like_a_dataset_and_keeps_the_holdout() {
        let ds = smidl_fhe::dataset::pima_diabetes();
        let t = Table::from_csv(smidl_fhe::dataset::PIMA_DIABETES_CSV, Some("train")).unwrap();
        let r = anonymise(
            &t,
            &AnonConfig {
                k: 10,
                l: 2,
                quasi_identifiers: vec!["age".into(), "pregnant".into(), "mass".into()],
            },
        )
        .unwrap();
        let d = release_dataset(&r, &ds).unwrap();
        assert_eq!(d.train_x.len(), ds.train_x.len());
        assert_eq!(d.test_x, ds.test_x);
        // Quasi-identifiers are generalised: the raw (age, pregnant, mass) tuples mostly do not
        // appear among the training rows; the other columns are untouched (same multiset of
        // glucose values).
        let age = ds.feature_names.iter().position(|c| c == "age").unwrap();
        let raw: std::collections::HashSet<u64> =
            ds.train_x.iter().map(|x| x[age].to_bits()).collect();
        let mid: std::collections::HashSet<u64> =
            d.train_x.iter().map(|x| x[age].to_bits()).collect();
        assert!(mid.len() < raw.len(), "{} distinct ages vs {}", mid.len(), raw.len());
        let g = ds.feature_names.iter().position(|c| c == "glucose").unwrap();
        let mut a: Vec<u64> = ds.train_x.iter().map(|x| x[g].to_bits()).collect();
        let mut b: Vec<u64> = d.train_x.iter().map(|x| x[g].to_bits()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}
