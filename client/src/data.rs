//! `smidl data`: clinics contribute records for a model's next generation; an independent
//! aggregator anonymises them; anyone verifies the release against the chain.
//!
//! 1. `keygen` (aggregator): an X25519 sealing key in a 0600 file; its public half goes on
//!    chain with `set_sealing_key`, signed by the aggregator's account, so a clinic seals to
//!    the key the aggregator itself published (the provider cannot substitute its own).
//! 2. `contribute` (clinic): seals the CSV to the model's aggregator's on-chain key
//!    (`smidl_anon::seal`, bound to the model and the clinic's account), writes the sealed
//!    file, records its commitment and row count with `contribute_data`.
//! 3. `anonymize` (aggregator): opens each sealed batch (checked against its on-chain
//!    record), runs Mondrian with l-diversity on the union, writes the release and its
//!    opening (the commitment's salt, 0600), and records it with `publish_dataset`.
//!    Opened records stay in memory (zeroised buffers); only the release is written.
//! 4. `verify` (anyone with the release and its salt): recomputes the commitment and checks
//!    k, l, the quasi-identifiers and the row count against the chain's record.
//!
//! The provider then retrains on the release (`smidl model retrain --release …`); a model
//! with an aggregator can only be retrained on a published release.

use std::path::Path;

use anyhow::{bail, ensure, Context as _, Result};
use smidl_anon::seal::{self, Binding, SealingKey};
use smidl_anon::{anonymise, AnonConfig, Release, Table, Verified};
use smidl_protocol::chain::{self, smidl, AtBlock, Wait};
use subxt::utils::AccountId32;

use crate::ctx::Context;

use smidl::runtime_types::bounded_collections::bounded_vec::BoundedVec;

/// The secret half of a release commitment, handed by the aggregator to the provider (and to
/// any auditor) with the release file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseOpening {
    pub model_id: u32,
    pub release_id: u32,
    /// Hex of the 32-byte salt.
    pub salt: String,
}

impl ReleaseOpening {
    pub fn salt(&self) -> Result<[u8; 32]> {
        let b = hex::decode(self.salt.trim_start_matches("0x")).context("release salt")?;
        b.try_into()
            .map_err(|_| anyhow::anyhow!("a release salt is 32 bytes"))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Generate an aggregator sealing key into `path` (0600, refuses to overwrite) and publish
/// its public half on chain for the acting account. Returns the public key.
pub async fn keygen(ctx: &Context, path: &Path) -> Result<[u8; 32]> {
    let key = SealingKey::generate()?;
    crate::keys::write_secret(path, key.to_bytes().as_ref())?;
    let public = key.public();
    let call = smidl::transactions()
        .secure_inference()
        .set_sealing_key(Some(public));
    chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    Ok(public)
}

pub fn read_sealing_key(path: &Path) -> Result<SealingKey> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} is not a 32-byte sealing key", path.display()))?;
    Ok(SealingKey::from_bytes(arr))
}

/// Name `aggregator` as the model's aggregator (owner).
pub async fn set_aggregator(ctx: &Context, model_id: u32, aggregator: AccountId32) -> Result<()> {
    let call = smidl::transactions()
        .secure_inference()
        .set_aggregator(model_id, Some(aggregator));
    chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    Ok(())
}

async fn aggregator_of(at: &AtBlock, model_id: u32) -> Result<(AccountId32, [u8; 32])> {
    let agg = at
        .storage()
        .try_fetch(
            smidl::storage().secure_inference().aggregators(),
            (model_id,),
        )
        .await
        .context("reading Aggregators")?
        .with_context(|| format!("model {model_id} has no aggregator: nobody may receive records"))?
        .decode()
        .context("decoding Aggregators")?;
    let key = at
        .storage()
        .try_fetch(smidl::storage().secure_inference().sealing_keys(), (agg,))
        .await
        .context("reading SealingKeys")?
        .with_context(|| format!("the aggregator {agg} has published no sealing key"))?
        .decode()
        .context("decoding SealingKeys")?
        .key;
    Ok((agg, key))
}

pub struct Contributed {
    pub contribution_id: u64,
    pub rows: u32,
    pub commitment: [u8; 32],
    pub aggregator: AccountId32,
}

/// Seal `csv` (features..., label) to the model's aggregator, write it to `out`, and record
/// the contribution on chain.
pub async fn contribute(
    ctx: &Context,
    model_id: u32,
    csv: &[u8],
    out: &Path,
) -> Result<Contributed> {
    let text = std::str::from_utf8(csv).context("the records are not UTF-8")?;
    let table = Table::from_csv(text, None)?;
    ensure!(!table.is_empty(), "the CSV holds no records");
    let rows = u32::try_from(table.len()).context("too many rows")?;
    let at = ctx.at_finalized().await?;
    let (aggregator, key) = aggregator_of(&at, model_id).await?;
    let binding = Binding {
        model_id,
        contributor: ctx.account().0,
    };
    let sealed = seal::seal(&key, binding, csv)?;
    let commitment = seal::commitment(&sealed);
    std::fs::write(out, &sealed).with_context(|| format!("writing {}", out.display()))?;
    let call =
        smidl::transactions()
            .secure_inference()
            .contribute_data(model_id, commitment.into(), rows);
    let inc = chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    let ev = inc
        .events
        .find_first::<smidl::secure_inference::events::DataContributed>()
        .context("no DataContributed event")??;
    Ok(Contributed {
        contribution_id: ev.contribution_id,
        rows,
        commitment,
        aggregator,
    })
}

pub struct Published {
    pub release_id: u32,
    pub commitment: [u8; 32],
    pub verified: Verified,
    pub ncp: f64,
    pub opening: std::path::PathBuf,
    pub release: Release,
}

/// Open the sealed batches (`(contribution id, file bytes)`), anonymise their union, write the
/// release CSV to `out` and publish it (aggregator).
pub async fn anonymize(
    ctx: &Context,
    model_id: u32,
    key: &SealingKey,
    batches: &[(u64, Vec<u8>)],
    cfg: &AnonConfig,
    out: &Path,
) -> Result<Published> {
    ensure!(!batches.is_empty(), "no contributions to anonymise");
    let at = ctx.at_finalized().await?;
    let mut tables = Vec::with_capacity(batches.len());
    for (id, sealed) in batches {
        let c = at
            .storage()
            .try_fetch(smidl::storage().secure_inference().contributions(), (*id,))
            .await
            .context("reading Contributions")?
            .with_context(|| format!("contribution {id} is not on chain"))?
            .decode()
            .context("decoding Contributions")?;
        ensure!(
            c.model_id == model_id,
            "contribution {id} is for model {}",
            c.model_id
        );
        ensure!(
            c.commitment.0 == seal::commitment(sealed),
            "the file given for contribution {id} is not the one its contributor recorded"
        );
        let plain = seal::open(
            key,
            Binding {
                model_id,
                contributor: c.contributor.0,
            },
            sealed,
        )
        .with_context(|| format!("opening contribution {id}"))?;
        let text = std::str::from_utf8(&plain).context("records are not UTF-8")?;
        let t = Table::from_csv(text, None).with_context(|| format!("contribution {id}"))?;
        ensure!(
            t.len() == c.rows as usize,
            "contribution {id} holds {} rows, its record says {}",
            t.len(),
            c.rows
        );
        tables.push(t);
    }
    let all = Table::concat(&tables)?;
    let release = anonymise(&all, cfg)?;
    let verified = release.verify(cfg.k, cfg.l, &cfg.quasi_identifiers)?;
    let ncp = smidl_anon::metrics::ncp(&all, &release)?;
    drop(all);
    drop(tables);
    let csv = release.to_csv();
    let salt = smidl_protocol::commit::fresh_salt().context("drawing the release salt")?;
    let commitment = smidl_anon::release::commitment(&salt, csv.as_bytes());
    std::fs::write(out, csv.as_bytes()).with_context(|| format!("writing {}", out.display()))?;
    let qis = BoundedVec(
        cfg.quasi_identifiers
            .iter()
            .map(|q| BoundedVec(q.as_bytes().to_vec()))
            .collect(),
    );
    let call = smidl::transactions().secure_inference().publish_dataset(
        model_id,
        commitment.into(),
        cfg.k as u32,
        cfg.l as u32,
        qis,
        release.len() as u32,
        BoundedVec(batches.iter().map(|(id, _)| *id).collect()),
    );
    let inc = chain::submit(&ctx.client, &call, &ctx.key, Wait::Finalized).await?;
    let ev = inc
        .events
        .find_first::<smidl::secure_inference::events::DatasetPublished>()
        .context("no DatasetPublished event")??;
    let opening = ReleaseOpening {
        model_id,
        release_id: ev.release_id,
        salt: hex::encode(salt),
    };
    let path = ctx
        .home
        .join("openings")
        .join(format!("release-{}.json", ev.release_id));
    crate::keys::write_secret(&path, serde_json::to_string_pretty(&opening)?.as_bytes())?;
    Ok(Published {
        release_id: ev.release_id,
        commitment,
        verified,
        ncp,
        opening: path,
        release,
    })
}

/// What the chain records for a release, checked against the file.
pub struct Checked {
    pub release: Release,
    pub verified: Verified,
    pub k: u32,
    pub l: u32,
    pub quasi_identifiers: Vec<String>,
    pub commitment: [u8; 32],
    pub used_by_generation: Option<u32>,
}

/// Check a release file against release `release_id` on chain: the salted commitment, the
/// quasi-identifier list, k, l and the row count. Anyone can run it.
pub async fn verify(ctx: &Context, csv: &[u8], opening: &ReleaseOpening) -> Result<Checked> {
    let at = ctx.at_finalized().await?;
    let r = at
        .storage()
        .try_fetch(
            smidl::storage().secure_inference().releases(),
            (opening.release_id,),
        )
        .await
        .context("reading Releases")?
        .with_context(|| format!("release {} is not on chain", opening.release_id))?
        .decode()
        .context("decoding Releases")?;
    ensure!(
        r.model_id == opening.model_id,
        "release {} is for model {}, the opening says {}",
        opening.release_id,
        r.model_id,
        opening.model_id
    );
    let commitment = smidl_anon::release::commitment(&opening.salt()?, csv);
    if commitment != r.commitment.0 {
        bail!(
            "the file does not match release {}'s commitment on chain (0x{}…)",
            opening.release_id,
            hex::encode(&r.commitment.0[..8])
        );
    }
    let qi: Vec<String> = r
        .quasi_identifiers
        .0
        .iter()
        .map(|q| String::from_utf8(q.0.clone()).context("a quasi-identifier name is not UTF-8"))
        .collect::<Result<_>>()?;
    let text = std::str::from_utf8(csv).context("the release is not UTF-8")?;
    let release = Release::from_csv(text, &qi)?;
    let verified = release.verify(r.k as usize, r.l as usize, &qi)?;
    ensure!(
        verified.rows == r.rows as usize,
        "the file has {} rows, the chain records {}",
        verified.rows,
        r.rows
    );
    Ok(Checked {
        release,
        verified,
        k: r.k,
        l: r.l,
        quasi_identifiers: qi,
        commitment,
        used_by_generation: r.used_by_generation,
    })
}
