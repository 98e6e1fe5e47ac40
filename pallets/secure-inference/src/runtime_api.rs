//! Runtime API of the pallet, so that clients need not re-implement its rules.

use crate::types::{AccountStatus, LineageId, LineageStatus, ModelId, ModelStatus};
use codec::Codec;

sp_api::decl_runtime_apis! {
    /// Read-only views of models, accounts and lineages, with time limits applied at the queried block.
    pub trait SecureInferenceApi<AccountId, BlockNumber>
    where
        AccountId: Codec,
        BlockNumber: Codec,
    {
        /// State of a model (time limits applied), its counters and deadlines.
        fn model_status(model_id: ModelId) -> Option<ModelStatus<BlockNumber>>;
        /// An account's n_i, privacy spent and remaining budget for a model.
        fn account_status(model_id: ModelId, account: AccountId) -> Option<AccountStatus>;
        /// A lineage's budget and what all accounts together spent on it.
        fn lineage_status(lineage_id: LineageId) -> Option<LineageStatus>;
    }
}
