//! Mock runtime for the pallet's unit tests.

use crate as pallet_secure_inference;
use crate::{privacy::PRIVACY_SCALE, Accounting, Policy};
use frame_support::{
    derive_impl,
    traits::{ConstU32, ConstU64, Hooks},
};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        SecureInference: pallet_secure_inference,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    // Above 1 so that paying a small fee to an empty account can fail (FeeTransferFailed).
    type ExistentialDeposit = ConstU64<5>;
}

pub const MAX_WORKERS: u32 = 4;
pub const MAX_REQUESTS_PER_BLOCK: u32 = 8;
pub const MODEL_DEPOSIT: u64 = 20;
pub const LINEAGE_DEPOSIT: u64 = 15;
pub const EVAL_KEY_DEPOSIT: u64 = 3;
pub const USAGE_DEPOSIT: u64 = 2;
pub const RETENTION: u64 = 10;
pub const CONTRIBUTION_DEPOSIT: u64 = 4;
pub const SEALING_KEY_DEPOSIT: u64 = 5;
pub const RELEASE_DEPOSIT: u64 = 6;
pub const MAX_QUASI_IDENTIFIERS: u32 = 3;
pub const MAX_QI_NAME_LEN: u32 = 8;
pub const MAX_CONTRIBUTIONS_PER_RELEASE: u32 = 4;
pub const MAX_CONTRIBUTION_ROWS: u32 = 1_000;
/// Above the runtime's 2, so that a k between 2 and the minimum can be tried.
pub const MIN_ANONYMITY_K: u32 = 3;

impl pallet_secure_inference::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MaxWorkers = ConstU32<MAX_WORKERS>;
    type MaxRequestsPerBlock = ConstU32<MAX_REQUESTS_PER_BLOCK>;
    type ModelDeposit = ConstU64<MODEL_DEPOSIT>;
    type LineageDeposit = ConstU64<LINEAGE_DEPOSIT>;
    type EvalKeyDeposit = ConstU64<EVAL_KEY_DEPOSIT>;
    type UsageDeposit = ConstU64<USAGE_DEPOSIT>;
    type RequestRetention = ConstU64<RETENTION>;
    type ContributionDeposit = ConstU64<CONTRIBUTION_DEPOSIT>;
    type SealingKeyDeposit = ConstU64<SEALING_KEY_DEPOSIT>;
    type ReleaseDeposit = ConstU64<RELEASE_DEPOSIT>;
    type MaxQuasiIdentifiers = ConstU32<MAX_QUASI_IDENTIFIERS>;
    type MaxQiNameLen = ConstU32<MAX_QI_NAME_LEN>;
    type MaxContributionsPerRelease = ConstU32<MAX_CONTRIBUTIONS_PER_RELEASE>;
    type MaxContributionRows = ConstU32<MAX_CONTRIBUTION_ROWS>;
    type MinAnonymityK = ConstU32<MIN_ANONYMITY_K>;
    type WeightInfo = ();
}

pub const OWNER: u64 = 1;
pub const WORKER: u64 = 2;
/// A second worker, added by tests of the assignment rule.
pub const WORKER2: u64 = 3;
pub const ALICE: u64 = 10;
pub const BOB: u64 = 11;
pub const EVE: u64 = 12;
/// Has no funds at all.
pub const PAUPER: u64 = 99;
/// Independent aggregators and clinics of the data tests (funded by those tests).
pub const AGGREGATOR: u64 = 20;
pub const AGGREGATOR2: u64 = 21;
pub const CLINIC: u64 = 30;
pub const CLINIC2: u64 = 31;
pub const INITIAL_BALANCE: u64 = 1_000;

/// A valid default policy: K = 5, T = 100 blocks, idle 20 blocks, ε 0.5/query, budget ε 2.0
/// per account (the default lineage budget, [`LINEAGE_EPSILON`], is larger).
pub fn policy() -> Policy<u64, u64> {
    Policy {
        max_queries_per_epoch: 5,
        epoch_lifetime: 100,
        idle_timeout: 20,
        epsilon_per_query: PRIVACY_SCALE / 2,
        account_epsilon_budget: 2 * PRIVACY_SCALE,
        accounting: Accounting::PureEpsilon,
        fee_per_query: 10,
    }
}

/// Lineage budget of the models the tests register: ε 10.0, five accounts' worth.
pub const LINEAGE_EPSILON: u64 = 10 * PRIVACY_SCALE;

pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut t = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: [OWNER, WORKER, WORKER2, ALICE, BOB, EVE]
            .into_iter()
            .map(|a| (a, INITIAL_BALANCE))
            .collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut t)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(t);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

/// Run a test and then check the pallet's invariants (`try_state`) on the final state.
pub fn test(f: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        f();
        SecureInference::do_try_state(System::block_number()).expect("try_state after test");
    });
}

/// Advance to block `n`, running the pallet's `on_initialize` for every block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        SecureInference::on_initialize(next);
    }
}
