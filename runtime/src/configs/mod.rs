//! Configuration of every pallet in the runtime.

use super::{
    AccountId, Aura, Balance, Balances, Block, BlockNumber, Hash, Nonce, PalletInfo, Runtime,
    RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason, RuntimeOrigin, RuntimeTask,
    System, EXISTENTIAL_DEPOSIT, SLOT_DURATION, VERSION,
};
use frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstBool, ConstU128, ConstU32, ConstU64, ConstU8, VariantCountOf},
    weights::{
        constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        IdentityFee, Weight,
    },
};
use frame_system::limits::{BlockLength, BlockWeights};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_runtime::{traits::One, Perbill};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
    pub const BlockHashCount: BlockNumber = super::BLOCK_HASH_COUNT;
    pub const Version: sp_version::RuntimeVersion = VERSION;

    /// Two seconds of compute per 3-second block, 75 % of it for normal transactions.
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
        Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    /// 5 MiB blocks, 75 % of it for normal transactions.
    pub RuntimeBlockLength: BlockLength = BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
        .build();
    /// Generic Substrate prefix, so that polkadot.js shows the usual dev addresses.
    pub const SS58Prefix: u8 = 42;
}

/// The default types come from `SolochainDefaultConfig`; only what differs is set here.
#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = BlockHashCount;
    // The node opens ParityDB only (service.rs), so reads and writes are priced for it.
    type DbWeight = ParityDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_aura::Config for Runtime {
    type AuthorityId = AuraId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<32>;
    type AllowMultipleBlocksPerSlot = ConstBool<false>;
    type SlotDuration = pallet_aura::MinimumPeriodTimesTwo<Runtime>;
}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ();
    type ReserveIdentifier = [u8; 8];
    type Balance = Balance;
    type RuntimeEvent = RuntimeEvent;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type DoneSlashHandler = ();
}

parameter_types! {
    pub FeeMultiplier: Multiplier = Multiplier::one();
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
    type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// A storage deposit: 0.1 UNIT per item plus 1 MILLI_UNIT per byte, so that growing state
/// costs in proportion to what it occupies.
const fn deposit(items: u32, bytes: u32) -> Balance {
    items as Balance * 100 * super::MILLI_UNIT + bytes as Balance * super::MILLI_UNIT
}

parameter_types! {
    /// Model record: ~770 bytes at most (MaxEncodedLen of `ModelInfo` with 16 workers).
    pub const ModelDeposit: Balance = deposit(1, 800);
    /// Lineage record: ~140 bytes; kept forever.
    pub const LineageDeposit: Balance = deposit(1, 160);
    /// Evaluation-key record: ~120 bytes with its key.
    pub const EvalKeyDeposit: Balance = deposit(1, 160);
    /// Usage record: ~110 bytes with its keys.
    pub const UsageDeposit: Balance = deposit(1, 160);
    /// Finished requests stay readable for a day, then only events remain.
    pub const RequestRetention: BlockNumber = super::DAYS;
    /// Contribution record: ~155 bytes with its key.
    pub const ContributionDeposit: Balance = deposit(1, 160);
    pub const SealingKeyDeposit: Balance = deposit(1, 90);
    /// Release record (~905 bytes at most with 8 quasi-identifiers of 32 bytes and 64
    /// contributions) plus its commitment-index entry (~72 bytes); kept forever.
    pub const ReleaseDeposit: Balance = deposit(2, 1_000);
}

impl pallet_secure_inference::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MaxWorkers = ConstU32<16>;
    // From the release weights (docs/benchmarks.md): 1 969 request_inference fit the normal
    // class of a block; the binding limit is on_initialize, which at 1 000 time-outs (each on
    // its own model) plus 1 000 prunes weighs 493 ms of the 500 ms the normal class leaves free.
    // runtime/src/capacity.rs and the pallet's integrity_test check both.
    type MaxRequestsPerBlock = ConstU32<1000>;
    type ModelDeposit = ModelDeposit;
    type LineageDeposit = LineageDeposit;
    type EvalKeyDeposit = EvalKeyDeposit;
    type UsageDeposit = UsageDeposit;
    type RequestRetention = RequestRetention;
    type ContributionDeposit = ContributionDeposit;
    type SealingKeyDeposit = SealingKeyDeposit;
    type ReleaseDeposit = ReleaseDeposit;
    type MaxQuasiIdentifiers = ConstU32<8>;
    type MaxQiNameLen = ConstU32<32>;
    type MaxContributionsPerRelease = ConstU32<64>;
    type MaxContributionRows = ConstU32<1_000_000>;
    type MinAnonymityK = ConstU32<2>;
    type WeightInfo = pallet_secure_inference::weights::SubstrateWeight<Runtime>;
}
