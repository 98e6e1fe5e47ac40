//! Weights for `pallet_secure_inference`.
//!
//! PROVISIONAL: these figures are estimates from the storage accesses of each call (reads and
//! writes counted from the code, plus a compute allowance), until they are regenerated with
//! `smidl-node benchmark pallet --pallet pallet_secure_inference --extrinsic '*'` (see
//! docs/benchmarks.md). The benchmarks in `benchmarking.rs` cover every call.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
    traits::Get,
    weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed for `pallet_secure_inference`.
pub trait WeightInfo {
    fn register_model(w: u32) -> Weight;
    fn update_policy() -> Weight;
    fn set_workers(w: u32) -> Weight;
    fn retire_model() -> Weight;
    fn register_eval_key() -> Weight;
    fn request_inference() -> Weight;
    fn submit_result() -> Weight;
    fn reject_request() -> Weight;
    fn reset_model() -> Weight;
    fn retrain_model() -> Weight;
    fn set_bounds() -> Weight;
    fn expire_model() -> Weight;
    fn on_initialize(n: u32) -> Weight;
}

/// Weights for `pallet_secure_inference` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn register_model(w: u32) -> Weight {
        Weight::from_parts(30_000_000, 3_700)
            .saturating_add(Weight::from_parts(400_000, 0).saturating_mul(w.into()))
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(2))
    }
    fn update_policy() -> Weight {
        Weight::from_parts(25_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn set_workers(w: u32) -> Weight {
        Weight::from_parts(20_000_000, 3_700)
            .saturating_add(Weight::from_parts(400_000, 0).saturating_mul(w.into()))
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn retire_model() -> Weight {
        Weight::from_parts(18_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn register_eval_key() -> Weight {
        Weight::from_parts(20_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn request_inference() -> Weight {
        Weight::from_parts(70_000_000, 6_000)
            .saturating_add(T::DbWeight::get().reads(8))
            .saturating_add(T::DbWeight::get().writes(7))
    }
    fn submit_result() -> Weight {
        Weight::from_parts(60_000_000, 6_000)
            .saturating_add(T::DbWeight::get().reads(5))
            .saturating_add(T::DbWeight::get().writes(5))
    }
    fn reject_request() -> Weight {
        Weight::from_parts(60_000_000, 6_000)
            .saturating_add(T::DbWeight::get().reads(5))
            .saturating_add(T::DbWeight::get().writes(5))
    }
    fn reset_model() -> Weight {
        Weight::from_parts(22_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn retrain_model() -> Weight {
        Weight::from_parts(24_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn set_bounds() -> Weight {
        Weight::from_parts(12_000_000, 0).saturating_add(T::DbWeight::get().writes(1))
    }
    fn expire_model() -> Weight {
        Weight::from_parts(20_000_000, 3_700)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn on_initialize(n: u32) -> Weight {
        Weight::from_parts(3_000_000, 1_500)
            .saturating_add(T::DbWeight::get().reads_writes(1, 1))
            .saturating_add(Weight::from_parts(60_000_000, 6_000).saturating_mul(n.into()))
            .saturating_add(
                T::DbWeight::get()
                    .reads_writes(5, 5)
                    .saturating_mul(n.into()),
            )
    }
}

// For backwards compatibility and tests.
impl WeightInfo for () {
    fn register_model(w: u32) -> Weight {
        SubstrateWeight::<()>::rocks(30_000_000, 2, 2)
            .saturating_add(Weight::from_parts(400_000, 0).saturating_mul(w.into()))
    }
    fn update_policy() -> Weight {
        SubstrateWeight::<()>::rocks(25_000_000, 2, 1)
    }
    fn set_workers(w: u32) -> Weight {
        SubstrateWeight::<()>::rocks(20_000_000, 1, 1)
            .saturating_add(Weight::from_parts(400_000, 0).saturating_mul(w.into()))
    }
    fn retire_model() -> Weight {
        SubstrateWeight::<()>::rocks(18_000_000, 1, 1)
    }
    fn register_eval_key() -> Weight {
        SubstrateWeight::<()>::rocks(20_000_000, 1, 1)
    }
    fn request_inference() -> Weight {
        SubstrateWeight::<()>::rocks(70_000_000, 8, 7)
    }
    fn submit_result() -> Weight {
        SubstrateWeight::<()>::rocks(60_000_000, 5, 5)
    }
    fn reject_request() -> Weight {
        SubstrateWeight::<()>::rocks(60_000_000, 5, 5)
    }
    fn reset_model() -> Weight {
        SubstrateWeight::<()>::rocks(22_000_000, 2, 1)
    }
    fn retrain_model() -> Weight {
        SubstrateWeight::<()>::rocks(24_000_000, 2, 1)
    }
    fn set_bounds() -> Weight {
        SubstrateWeight::<()>::rocks(12_000_000, 0, 1)
    }
    fn expire_model() -> Weight {
        SubstrateWeight::<()>::rocks(20_000_000, 1, 1)
    }
    fn on_initialize(n: u32) -> Weight {
        SubstrateWeight::<()>::rocks(3_000_000, 1, 1)
            .saturating_add(SubstrateWeight::<()>::rocks(60_000_000, 5, 5).saturating_mul(n.into()))
    }
}

impl SubstrateWeight<()> {
    fn rocks(ref_time: u64, reads: u64, writes: u64) -> Weight {
        Weight::from_parts(ref_time, 3_700)
            .saturating_add(RocksDbWeight::get().reads(reads))
            .saturating_add(RocksDbWeight::get().writes(writes))
    }
}
