//! `smidl status`: the ledger's view of a model and of the acting account.

use anyhow::{Context as _, Result};
use smidl_protocol::chain::{read, ModelState};
use subxt::utils::AccountId32;

use crate::ctx::Context;
use crate::ui;

pub struct Snapshot {
    pub block: u64,
    pub model: read::ModelStatus,
    pub info: read::ModelInfo,
    pub account: Option<read::AccountStatus>,
    /// The workers' erasure attestations of the latest attested epoch.
    pub erasure: Option<read::EpochErasure>,
}

pub async fn snapshot(ctx: &Context, model_id: u32, who: &AccountId32) -> Result<Snapshot> {
    let at = ctx.at_finalized().await?;
    let model = read::model_status(&at, model_id)
        .await?
        .with_context(|| format!("model {model_id} is not registered"))?;
    let info = read::model(&at, model_id)
        .await?
        .with_context(|| format!("model {model_id} is not registered"))?;
    let account = read::account_status(&at, model_id, who).await?;
    let erasure = read::erasure(&at, model_id).await?;
    Ok(Snapshot {
        block: at.block_number(),
        model,
        info,
        account,
        erasure,
    })
}

pub fn state_name(s: &ModelState) -> &'static str {
    match s {
        ModelState::Active => "Active",
        ModelState::Exhausted => "Exhausted (N = K)",
        ModelState::Expired => "Expired",
        ModelState::Retired => "Retired",
    }
}

pub fn print(model_id: u32, who: &AccountId32, s: &Snapshot) {
    let m = &s.model;
    let p = &s.info.policy;
    println!("model {model_id} at finalized block #{}", s.block);
    println!("  state           {}", state_name(&m.state));
    println!("  epoch           {} (retrain {})", m.epoch, m.generation);
    println!(
        "  lineage         {} ({} left for all accounts together, in accounting units)",
        m.lineage,
        ui::micro(m.lineage_remaining)
    );
    println!(
        "  queries N/K     {}/{} ({} pending)",
        m.queries, p.max_queries_per_epoch, m.pending
    );
    println!(
        "  time left       {} blocks of lifetime, {} blocks before idle expiry",
        (m.epoch_ends_at as u64).saturating_sub(s.block),
        (m.idle_expires_at as u64).saturating_sub(s.block)
    );
    println!(
        "  ε per query     {}   budget per account {}",
        ui::micro(p.epsilon_per_query),
        ui::micro(p.account_epsilon_budget)
    );
    match &s.erasure {
        Some(e) => {
            println!(
                "  shredded epoch  {} (the workers' erasure attestations)",
                e.epoch
            );
            for a in &e.attestations.0 {
                let root = a
                    .final_root
                    .map(|r| format!("final root 0x{}", hex::encode(r.0)))
                    .unwrap_or_else(|| "nothing stored".into());
                println!(
                    "    {} at #{}: {root}, {} accesses",
                    a.worker, a.at, a.accesses
                );
            }
        }
        None => println!("  shredded epoch  none attested yet"),
    }
    match &s.account {
        Some(a) => {
            println!("account {who}");
            println!("  n_i this epoch  {}", a.queries);
            println!(
                "  privacy spent   ε {} (in accounting units {} of {}; {} remaining, {} more queries within the lineage)",
                ui::micro(a.spent_epsilon),
                ui::micro(a.spent),
                ui::micro(a.budget),
                ui::micro(a.remaining),
                a.queries_left_by_budget
            );
        }
        None => println!("account {who}: no usage recorded"),
    }
}

pub async fn run(ctx: &Context, model_id: u32) -> Result<()> {
    let who = ctx.account();
    let s = snapshot(ctx, model_id, &who).await?;
    print(model_id, &who, &s);
    Ok(())
}
