//! `smidl audit`: an auditor, given a model's opening (its commitments' salts) and what the
//! owner discloses (the compiled server model, the training CSV), recomputes the salted
//! commitments and compares them with the chain's.

use std::path::Path;

use anyhow::{Context as _, Result};
use smidl_protocol::chain::read;
use smidl_protocol::commit::{self, Opening};

use crate::ctx::Context;

/// One commitment's verdict: `None` when nothing was disclosed to check it.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub weights: Option<bool>,
    pub dataset: Option<bool>,
}

/// Recomputes the commitments from the opening and whatever was disclosed.
pub fn check(
    opening: &Opening,
    on_chain_weights: &[u8; 32],
    on_chain_dataset: &[u8; 32],
    server_model: Option<&[u8]>,
    csv: Option<&[u8]>,
) -> Result<Report> {
    let (ws, ds) = opening.salts().map_err(anyhow::Error::msg)?;
    Ok(Report {
        weights: server_model.map(|m| &commit::weights(&ws, m) == on_chain_weights),
        dataset: csv.map(|c| &commit::dataset(&ds, c, 0..opening.rows) == on_chain_dataset),
    })
}

pub async fn run(
    ctx: &Context,
    model_id: u32,
    opening: &Path,
    server_model: Option<&Path>,
    csv: Option<&Path>,
) -> Result<Report> {
    let read_file = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let opening: Opening = serde_json::from_slice(&read_file(opening)?)
        .context("the opening is not an smidl opening file")?;
    let model = server_model.map(read_file).transpose()?;
    let csv = csv.map(read_file).transpose()?;
    let at = ctx.at_finalized().await?;
    let info = read::model(&at, model_id)
        .await?
        .with_context(|| format!("model {model_id} is not on chain"))?;
    check(
        &opening,
        &info.weights_commitment.0,
        &info.dataset_commitment.0,
        model.as_deref(),
        csv.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_accepts_the_opening_and_refuses_anything_else() {
        let (ws, ds) = (commit::fresh_salt().unwrap(), commit::fresh_salt().unwrap());
        let csv = smidl_fhe::dataset::BREAST_CANCER_CSV.as_bytes();
        let model = b"canonical server model bytes".as_slice();
        let w = commit::weights(&ws, model);
        let d = commit::dataset(&ds, csv, 0..455);
        let opening = Opening::new(&ws, &ds, 455);
        let ok = check(&opening, &w, &d, Some(model), Some(csv)).unwrap();
        assert_eq!(
            ok,
            Report {
                weights: Some(true),
                dataset: Some(true)
            }
        );
        // Another salt, other rows or other weights do not pass.
        let wrong_salt = Opening::new(&ds, &ws, 455);
        assert_eq!(
            check(&wrong_salt, &w, &d, Some(model), Some(csv)).unwrap(),
            Report {
                weights: Some(false),
                dataset: Some(false)
            }
        );
        let fewer_rows = Opening::new(&ws, &ds, 454);
        assert_eq!(
            check(&fewer_rows, &w, &d, None, Some(csv)).unwrap().dataset,
            Some(false)
        );
        assert_eq!(
            check(&opening, &w, &d, Some(b"other weights"), None)
                .unwrap()
                .weights,
            Some(false)
        );
    }
}
