
//! Weights for `pallet_secure_inference`.
//!
//! PROVISIONAL: the debug-node figures of 2026-11-24 for the calls that existed then, plus
//! hand-counted reads and writes (and rough times) for lineages, assignment, deposits and
//! pruning. Regenerate with `PROFILE=release scripts/bench-weights.sh`.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed for `pallet_secure_inference`.
pub trait WeightInfo {
	fn register_model(w: u32, ) -> Weight;
	fn update_policy() -> Weight;
	fn set_workers(w: u32, ) -> Weight;
	fn retire_model() -> Weight;
	fn register_eval_key() -> Weight;
	fn request_inference() -> Weight;
	fn submit_result() -> Weight;
	fn reject_request() -> Weight;
	fn reset_model() -> Weight;
	fn retrain_model() -> Weight;
	fn set_bounds() -> Weight;
	fn expire_model() -> Weight;
	fn authorise_retrain() -> Weight;
	fn revoke_retrain() -> Weight;
	fn remove_eval_key() -> Weight;
	fn clear_usage() -> Weight;
	fn on_initialize(t: u32, p: u32, ) -> Weight;
}

/// Weights measured on the reference machine, with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_model(w: u32, ) -> Weight {
		Weight::from_parts(545_457_681, 5527)
			.saturating_add(Weight::from_parts(665_106, 0).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads(6))
			.saturating_add(T::DbWeight::get().writes(6))
	}
	fn update_policy() -> Weight {
		Weight::from_parts(354_720_000, 4229)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn set_workers(w: u32, ) -> Weight {
		Weight::from_parts(314_101_156, 4229)
			.saturating_add(Weight::from_parts(272_225, 0).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn retire_model() -> Weight {
		Weight::from_parts(301_007_000, 4229)
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(2))
	}
	fn register_eval_key() -> Weight {
		Weight::from_parts(669_506_000, 4229)
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().writes(3))
	}
	fn request_inference() -> Weight {
		Weight::from_parts(2_154_081_000, 5527)
			.saturating_add(T::DbWeight::get().reads(9))
			.saturating_add(T::DbWeight::get().writes(8))
	}
	fn submit_result() -> Weight {
		Weight::from_parts(1_421_678_000, 6196)
			.saturating_add(T::DbWeight::get().reads(5))
			.saturating_add(T::DbWeight::get().writes(5))
	}
	fn reject_request() -> Weight {
		Weight::from_parts(1_661_422_000, 4229)
			.saturating_add(T::DbWeight::get().reads(6))
			.saturating_add(T::DbWeight::get().writes(6))
	}
	fn reset_model() -> Weight {
		Weight::from_parts(347_847_000, 4229)
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn retrain_model() -> Weight {
		Weight::from_parts(1_257_637_000, 5527)
			.saturating_add(T::DbWeight::get().reads(7))
			.saturating_add(T::DbWeight::get().writes(7))
	}
	fn set_bounds() -> Weight {
		Weight::from_parts(114_293_000, 0)
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn expire_model() -> Weight {
		Weight::from_parts(329_611_000, 4229)
			.saturating_add(T::DbWeight::get().reads(1))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn authorise_retrain() -> Weight {
		Weight::from_parts(400_000_000, 4229)
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn revoke_retrain() -> Weight {
		Weight::from_parts(300_000_000, 4229)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(1))
	}
	fn remove_eval_key() -> Weight {
		Weight::from_parts(900_000_000, 4229)
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().writes(3))
	}
	fn clear_usage() -> Weight {
		Weight::from_parts(900_000_000, 4229)
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().writes(3))
	}
	fn on_initialize(t: u32, p: u32, ) -> Weight {
		Weight::from_parts(112_705_000, 5527)
			.saturating_add(Weight::from_parts(1_412_235_125, 0).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(300_000_000, 0).saturating_mul(p.into()))
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().reads((5_u64).saturating_mul(t.into())))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(p.into())))
			.saturating_add(T::DbWeight::get().writes(3))
			.saturating_add(T::DbWeight::get().writes((5_u64).saturating_mul(t.into())))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(p.into())))
			.saturating_add(Weight::from_parts(0, 2673).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(0, 2673).saturating_mul(p.into()))
	}
}

/// The same figures with RocksDB database weights, for tests and mocks.
impl WeightInfo for () {
	fn register_model(w: u32, ) -> Weight {
		Weight::from_parts(545_457_681, 5527)
			.saturating_add(Weight::from_parts(665_106, 0).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads(6))
			.saturating_add(RocksDbWeight::get().writes(6))
	}
	fn update_policy() -> Weight {
		Weight::from_parts(354_720_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(2))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn set_workers(w: u32, ) -> Weight {
		Weight::from_parts(314_101_156, 4229)
			.saturating_add(Weight::from_parts(272_225, 0).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn retire_model() -> Weight {
		Weight::from_parts(301_007_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(2))
	}
	fn register_eval_key() -> Weight {
		Weight::from_parts(669_506_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().writes(3))
	}
	fn request_inference() -> Weight {
		Weight::from_parts(2_154_081_000, 5527)
			.saturating_add(RocksDbWeight::get().reads(9))
			.saturating_add(RocksDbWeight::get().writes(8))
	}
	fn submit_result() -> Weight {
		Weight::from_parts(1_421_678_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(5))
			.saturating_add(RocksDbWeight::get().writes(5))
	}
	fn reject_request() -> Weight {
		Weight::from_parts(1_661_422_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(6))
			.saturating_add(RocksDbWeight::get().writes(6))
	}
	fn reset_model() -> Weight {
		Weight::from_parts(347_847_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn retrain_model() -> Weight {
		Weight::from_parts(1_257_637_000, 5527)
			.saturating_add(RocksDbWeight::get().reads(7))
			.saturating_add(RocksDbWeight::get().writes(7))
	}
	fn set_bounds() -> Weight {
		Weight::from_parts(114_293_000, 0)
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn expire_model() -> Weight {
		Weight::from_parts(329_611_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(1))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn authorise_retrain() -> Weight {
		Weight::from_parts(400_000_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn revoke_retrain() -> Weight {
		Weight::from_parts(300_000_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(2))
			.saturating_add(RocksDbWeight::get().writes(1))
	}
	fn remove_eval_key() -> Weight {
		Weight::from_parts(900_000_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().writes(3))
	}
	fn clear_usage() -> Weight {
		Weight::from_parts(900_000_000, 4229)
			.saturating_add(RocksDbWeight::get().reads(4))
			.saturating_add(RocksDbWeight::get().writes(3))
	}
	fn on_initialize(t: u32, p: u32, ) -> Weight {
		Weight::from_parts(112_705_000, 5527)
			.saturating_add(Weight::from_parts(1_412_235_125, 0).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(300_000_000, 0).saturating_mul(p.into()))
			.saturating_add(RocksDbWeight::get().reads(3))
			.saturating_add(RocksDbWeight::get().reads((5_u64).saturating_mul(t.into())))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(p.into())))
			.saturating_add(RocksDbWeight::get().writes(3))
			.saturating_add(RocksDbWeight::get().writes((5_u64).saturating_mul(t.into())))
			.saturating_add(RocksDbWeight::get().writes((1_u64).saturating_mul(p.into())))
			.saturating_add(Weight::from_parts(0, 2673).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(0, 2673).saturating_mul(p.into()))
	}
}
