//! Command-line interface.

use sc_cli::RunCmd;

/// smidl-node's arguments.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// Maintenance subcommands; none runs the node.
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    /// Arguments of a running node (`--dev`, `--chain`, `--alice`, `--rpc-port`, …).
    #[clap(flatten)]
    pub run: RunCmd,
}

/// Maintenance subcommands, as in every Substrate node.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
    /// Key management (`key insert`, `key generate`, `key inspect`, …).
    #[command(subcommand)]
    Key(sc_cli::KeySubcommand),

    /// Build a chain specification.
    #[deprecated(note = "build-spec is deprecated upstream; export-chain-spec is its successor")]
    BuildSpec(sc_cli::BuildSpecCmd),

    /// Export the chain specification.
    ExportChainSpec(sc_cli::ExportChainSpecCmd),

    /// Validate blocks.
    CheckBlock(sc_cli::CheckBlockCmd),

    /// Export blocks.
    ExportBlocks(sc_cli::ExportBlocksCmd),

    /// Export the state of a given block into a chain spec.
    ExportState(sc_cli::ExportStateCmd),

    /// Import blocks.
    ImportBlocks(sc_cli::ImportBlocksCmd),

    /// Remove the whole chain.
    PurgeChain(sc_cli::PurgeChainCmd),

    /// Revert the chain to a previous state.
    Revert(sc_cli::RevertCmd),

    /// Runtime benchmarks (only in a build with `--features runtime-benchmarks`).
    #[cfg(feature = "runtime-benchmarks")]
    #[command(subcommand)]
    Benchmark(frame_benchmarking_cli::BenchmarkCmd),

    /// Database meta columns information.
    ChainInfo(sc_cli::ChainInfoCmd),
}
