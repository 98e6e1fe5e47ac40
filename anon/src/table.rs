//! Numeric records in the CSV layout smidl trains on: feature columns, then a 0/1 (or small
//! integer) label column, optionally a `split` column.

use crate::{AnonError, Result};

/// Largest CSV accepted (a 1M-row Pima table is ~40 MB).
pub const MAX_CSV_BYTES: usize = 256 << 20;
/// Most columns accepted.
pub const MAX_COLUMNS: usize = 4096;
/// Most distinct labels (l-diversity counts them in a small array).
pub const MAX_LABELS: u32 = 256;

/// A table of records: `rows[i][j]` is column `columns[j]` of record i, `labels[i]` its label
/// (the sensitive attribute l-diversity protects).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub label_name: String,
    pub rows: Vec<Vec<f64>>,
    pub labels: Vec<u32>,
}

impl Table {
    /// Parse `features..., label[, split]`. With a `split` column, `keep` selects the rows
    /// whose split equals it (`None` keeps every row); the column itself is dropped.
    pub fn from_csv(text: &str, keep: Option<&str>) -> Result<Self> {
        let (header, lines) = split_csv(text)?;
        let has_split = header.last() == Some(&"split");
        let width = header.len() - usize::from(has_split);
        if width < 2 {
            return Err(AnonError::Csv(
                "expected columns: features..., label[, split]".into(),
            ));
        }
        if keep.is_some() && !has_split {
            return Err(AnonError::Csv("no split column to select rows by".into()));
        }
        let nfeat = width - 1;
        let columns: Vec<String> = header[..nfeat].iter().map(|s| s.to_string()).collect();
        check_names(&columns)?;
        let mut t = Table {
            columns,
            label_name: header[nfeat].to_string(),
            rows: Vec::new(),
            labels: Vec::new(),
        };
        for (i, cells) in lines.into_iter().enumerate() {
            if let (Some(want), true) = (keep, has_split) {
                if cells[width] != want {
                    continue;
                }
            }
            let row = cells[..nfeat]
                .iter()
                .enumerate()
                .map(|(j, c)| parse_number(c).map_err(|e| cell_error(i, j, &e)))
                .collect::<Result<Vec<f64>>>()?;
            let label = parse_label(cells[nfeat]).map_err(|e| cell_error(i, nfeat, &e))?;
            t.rows.push(row);
            t.labels.push(label);
        }
        Ok(t)
    }

    /// `features..., label` (no split column), numbers in Rust's shortest round-trip form.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(self.rows.len() * (self.columns.len() * 8 + 4));
        out.push_str(&self.columns.join(","));
        out.push(',');
        out.push_str(&self.label_name);
        out.push('\n');
        for (row, label) in self.rows.iter().zip(&self.labels) {
            for v in row {
                out.push_str(&v.to_string());
                out.push(',');
            }
            out.push_str(&label.to_string());
            out.push('\n');
        }
        out
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| AnonError::UnknownColumn(name.to_string(), self.columns.join(",")))
    }

    /// The union of several tables with the same layout (the aggregator's view of all
    /// contributions), in the given order.
    pub fn concat(tables: &[Table]) -> Result<Table> {
        let first = tables
            .first()
            .ok_or_else(|| AnonError::LayoutMismatch("no tables".into()))?;
        let mut out = Table {
            columns: first.columns.clone(),
            label_name: first.label_name.clone(),
            rows: Vec::new(),
            labels: Vec::new(),
        };
        for (i, t) in tables.iter().enumerate() {
            if t.columns != first.columns || t.label_name != first.label_name {
                return Err(AnonError::LayoutMismatch(format!(
                    "table {i} has columns {:?}, the first has {:?}",
                    t.columns, first.columns
                )));
            }
            out.rows.extend(t.rows.iter().cloned());
            out.labels.extend(&t.labels);
        }
        Ok(out)
    }

    /// Distinct labels present.
    pub fn distinct_labels(&self) -> usize {
        let mut seen = vec![false; MAX_LABELS as usize];
        let mut n = 0;
        for &l in &self.labels {
            if !seen[l as usize] {
                seen[l as usize] = true;
                n += 1;
            }
        }
        n
    }
}

/// The header's cells and every non-empty row's cells (trimmed), after the size limits and the
/// one-width check every layout shares.
pub(crate) fn split_csv(text: &str) -> Result<(Vec<&str>, Vec<Vec<&str>>)> {
    if text.len() > MAX_CSV_BYTES {
        return Err(AnonError::TooLarge(text.len(), MAX_CSV_BYTES));
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| AnonError::Csv("empty file".into()))?
        .split(',')
        .map(str::trim)
        .collect();
    if header.len() > MAX_COLUMNS {
        return Err(AnonError::Csv(format!(
            "{} columns is too many",
            header.len()
        )));
    }
    let rows = lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() == header.len() {
                Ok(cells)
            } else {
                Err(AnonError::Csv(format!(
                    "row {}: {} cells, expected {}",
                    i + 2,
                    cells.len(),
                    header.len()
                )))
            }
        })
        .collect::<Result<_>>()?;
    Ok((header, rows))
}

pub(crate) fn check_names(columns: &[String]) -> Result<()> {
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(AnonError::Csv(format!("column {i} has no name")));
        }
        if columns[..i].contains(c) {
            return Err(AnonError::Csv(format!("column {c:?} appears twice")));
        }
    }
    Ok(())
}

fn cell_error(row: usize, col: usize, e: &str) -> AnonError {
    AnonError::Csv(format!("row {}, column {}: {e}", row + 2, col + 1))
}

pub(crate) fn parse_number(c: &str) -> std::result::Result<f64, String> {
    match c.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{c:?} is not a finite number")),
    }
}

pub(crate) fn parse_label(c: &str) -> std::result::Result<u32, String> {
    match c.parse::<u32>() {
        Ok(v) if v < MAX_LABELS => Ok(v),
        _ => Err(format!("label {c:?} is not an integer below {MAX_LABELS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selects_a_split_and_round_trips() {
        let csv = "a,b,y,split\n1,2.5,1,train\n3,4,0,test\n5,6,1,train\n";
        let all = Table::from_csv(csv, None).unwrap();
        assert_eq!(all.len(), 3);
        let train = Table::from_csv(csv, Some("train")).unwrap();
        assert_eq!(train.rows, vec![vec![1.0, 2.5], vec![5.0, 6.0]]);
        assert_eq!(train.labels, vec![1, 1]);
        let back = Table::from_csv(&train.to_csv(), None).unwrap();
        assert_eq!(back, train);
    }

    #[test]
    fn bad_input_is_refused_with_its_place() {
        for (csv, want) in [
            ("a,y\n1,2,3\n", "row 2: 3 cells"),
            ("a,y\nx,1\n", "row 2, column 1"),
            ("a,y\n1,7000\n", "label"),
            ("a,y\nNaN,1\n", "finite"),
            ("a,a,y\n1,1,1\n", "twice"),
            ("y\n1\n", "expected columns"),
        ] {
            let e = Table::from_csv(csv, None).unwrap_err().to_string();
            assert!(e.contains(want), "{csv:?}: {e}");
        }
        assert!(Table::from_csv("a,y\n1,1\n", Some("train")).is_err());
    }

    #[test]
    fn concat_needs_one_layout() {
        let a = Table::from_csv("a,y\n1,1\n", None).unwrap();
        let b = Table::from_csv("b,y\n1,1\n", None).unwrap();
        assert_eq!(Table::concat(&[a.clone(), a.clone()]).unwrap().len(), 2);
        assert!(matches!(
            Table::concat(&[a, b]),
            Err(AnonError::LayoutMismatch(_))
        ));
    }
}
