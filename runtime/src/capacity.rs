//! How many of the ledger's hot calls fit in one block: the pallet's benchmarked weights
//! (`weights.rs`, release node, ParityDB database weights) against the block's normal class.
//! `MaxRequestsPerBlock` must not exceed what fits, or a full deadline slot could never be
//! filled, and the busiest `on_initialize` must fit beside it (the pallet's `integrity_test`).

use frame_support::{dispatch::DispatchClass, traits::Get, weights::Weight};
use pallet_secure_inference::WeightInfo;

use crate::{configs::RuntimeBlockWeights, Runtime};

type Weights = pallet_secure_inference::weights::SubstrateWeight<Runtime>;

/// How many extrinsics of weight `call` the normal class of one block holds (each also pays
/// the base extrinsic weight).
pub fn per_block(call: Weight) -> u64 {
    let blocks = RuntimeBlockWeights::get();
    let normal = blocks.get(DispatchClass::Normal);
    let room = normal.max_total.unwrap_or(blocks.max_block);
    let each = call.saturating_add(normal.base_extrinsic);
    room.ref_time() / each.ref_time().max(1)
}

/// (request_inference, submit_result) per block.
pub fn ledger_capacity() -> (u64, u64) {
    (
        per_block(Weights::request_inference()),
        per_block(Weights::submit_result()),
    )
}

/// The configured most requests per block (one deadline slot).
pub fn max_requests_per_block() -> u32 {
    <Runtime as pallet_secure_inference::Config>::MaxRequestsPerBlock::get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_max_requests_per_block_requests() {
        let (requests, results) = ledger_capacity();
        let max = max_requests_per_block() as u64;
        println!(
            "RESULT capacity request_inference_per_block={requests} \
             submit_result_per_block={results} max_requests_per_block={max}"
        );
        assert!(
            max >= 1_000,
            "the ledger should take at least 1 000 requests a block"
        );
        assert!(
            requests >= max,
            "{requests} request_inference fit a block, fewer than MaxRequestsPerBlock = {max}"
        );
    }
}
