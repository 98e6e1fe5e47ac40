//! The CSV data sets models are trained and benchmarked on.

use crate::error::{FheError, Result};

/// Breast Cancer Wisconsin (Diagnostic), UCI, CC BY 4.0 (see `data/README.md`), with the fixed
/// 455/114 train/test split. Embedded so demos and the bench run without data files.
pub const BREAST_CANCER_CSV: &str = include_str!("../data/breast_cancer_wdbc.csv");

/// Pima Indians Diabetes (NIDDK; Smith et al. 1988; the mlbench export, see `data/README.md`):
/// 8 clinical features, label `diabetes`, with the fixed 614/154 train/test split. Embedded for
/// the DP utility benchmark.
pub const PIMA_DIABETES_CSV: &str = include_str!("../data/pima_diabetes.csv");

/// Largest CSV we parse (the embedded one is 125 KB).
pub const MAX_CSV_BYTES: usize = 16 << 20;
/// Largest feature count we accept anywhere (model import, client input).
pub const MAX_FEATURES: usize = 4096;

#[derive(Clone, Debug)]
pub struct Dataset {
    pub feature_names: Vec<String>,
    pub train_x: Vec<Vec<f64>>,
    pub train_y: Vec<u8>,
    pub test_x: Vec<Vec<f64>>,
    pub test_y: Vec<u8>,
}

impl Dataset {
    pub fn feature_count(&self) -> usize {
        self.feature_names.len()
    }

    /// Parse a CSV whose columns are the features, then a 0/1 label column (any name:
    /// `malignant`, `diabetes`, `label`, ...), then a `split` column with `train` or `test`.
    pub fn from_csv(text: &str) -> Result<Self> {
        if text.len() > MAX_CSV_BYTES {
            return Err(FheError::Csv(format!("{} bytes is too large", text.len())));
        }
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| FheError::Csv("empty file".into()))?
            .split(',')
            .map(str::trim)
            .collect();
        if header.len() < 3 || header[header.len() - 1] != "split" {
            return Err(FheError::Csv(
                "expected columns: features..., label, split".into(),
            ));
        }
        let nfeat = header.len() - 2;
        if nfeat > MAX_FEATURES {
            return Err(FheError::Csv(format!("{nfeat} features is too many")));
        }
        let mut ds = Dataset {
            feature_names: header[..nfeat].iter().map(|s| s.to_string()).collect(),
            train_x: vec![],
            train_y: vec![],
            test_x: vec![],
            test_y: vec![],
        };
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != header.len() {
                return Err(FheError::Csv(format!(
                    "row {}: {} cells, expected {}",
                    i + 2,
                    cells.len(),
                    header.len()
                )));
            }
            let x = parse_features(&cells[..nfeat], nfeat)
                .map_err(|e| FheError::Csv(format!("row {}: {e}", i + 2)))?;
            let y = match cells[nfeat] {
                "0" => 0u8,
                "1" => 1u8,
                other => {
                    return Err(FheError::Csv(format!("row {}: label {other:?}", i + 2)));
                }
            };
            match cells[nfeat + 1] {
                "train" => {
                    ds.train_x.push(x);
                    ds.train_y.push(y);
                }
                "test" => {
                    ds.test_x.push(x);
                    ds.test_y.push(y);
                }
                other => {
                    return Err(FheError::Csv(format!("row {}: split {other:?}", i + 2)));
                }
            }
        }
        if ds.train_x.is_empty() || ds.test_x.is_empty() {
            return Err(FheError::Csv("need both train and test rows".into()));
        }
        Ok(ds)
    }
}

/// The embedded breast-cancer data set.
pub fn breast_cancer() -> Dataset {
    // The embedded file is part of the crate and covered by tests: failing here is a build bug.
    Dataset::from_csv(BREAST_CANCER_CSV).expect("embedded data set parses")
}

/// The embedded Pima diabetes data set.
pub fn pima_diabetes() -> Dataset {
    // As for `breast_cancer`: the embedded file is covered by tests.
    Dataset::from_csv(PIMA_DIABETES_CSV).expect("embedded data set parses")
}

/// Parse one CSV row of features (what the client CLI encrypts). Extra label/split columns are
/// not accepted: the row must have exactly `expected` numbers.
pub fn parse_feature_row(line: &str, expected: usize) -> Result<Vec<f64>> {
    let cells: Vec<&str> = line.trim().split(',').map(str::trim).collect();
    parse_features(&cells, expected).map_err(FheError::Csv)
}

fn parse_features(cells: &[&str], expected: usize) -> std::result::Result<Vec<f64>, String> {
    if cells.len() != expected {
        return Err(format!("{} values, expected {expected}", cells.len()));
    }
    cells
        .iter()
        .enumerate()
        .map(|(j, c)| match c.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("column {j}: {c:?} is not a finite number")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_split_is_455_114() {
        let ds = breast_cancer();
        assert_eq!(ds.feature_count(), 30);
        assert_eq!(ds.train_x.len(), 455);
        assert_eq!(ds.test_x.len(), 114);
        assert!(ds.train_y.contains(&1) && ds.train_y.contains(&0));
    }

    #[test]
    fn embedded_pima_split_is_614_154() {
        let ds = pima_diabetes();
        assert_eq!(ds.feature_count(), 8);
        assert_eq!(ds.feature_names[0], "pregnant");
        assert_eq!(ds.feature_names[7], "age");
        assert_eq!(ds.train_x.len(), 614);
        assert_eq!(ds.test_x.len(), 154);
        // Stratified: 214 + 54 positives of 768.
        assert_eq!(ds.train_y.iter().filter(|&&y| y == 1).count(), 214);
        assert_eq!(ds.test_y.iter().filter(|&&y| y == 1).count(), 54);
        assert_eq!(
            ds.train_x[0],
            vec![6.0, 148.0, 72.0, 35.0, 0.0, 33.6, 0.627, 50.0]
        );
    }

    #[test]
    fn malformed_rows_are_typed_errors() {
        assert!(matches!(
            Dataset::from_csv("a,b,malignant,split\n1,2,1\n"),
            Err(FheError::Csv(_))
        ));
        assert!(matches!(
            Dataset::from_csv("a,b,malignant,split\n1,x,1,train\n"),
            Err(FheError::Csv(_))
        ));
        assert!(matches!(
            parse_feature_row("1,2,NaN", 3),
            Err(FheError::Csv(_))
        ));
        assert_eq!(
            parse_feature_row("1, 2.5,-3", 3).unwrap(),
            vec![1.0, 2.5, -3.0]
        );
    }
}
