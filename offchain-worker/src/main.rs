//! `smidl-worker`: the model provider's off-chain worker service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use smidl_worker::{chain, store::Store, Settings, Worker};

/// Answers smidl inference requests with FHE and DP noise; ends epochs with controlled deletion
/// and a signed reset or retrain.
#[derive(Parser, Debug)]
#[command(name = "smidl-worker", version)]
struct Args {
    /// Node RPC endpoint (ws:// only on loopback; wss:// otherwise).
    #[arg(long, env = "SMIDL_RPC", default_value = "ws://127.0.0.1:9944")]
    rpc: String,
    /// Address of the HTTP API.
    #[arg(long, env = "SMIDL_WORKER_LISTEN", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Data directory: the database and the client-data ORAM (untrusted storage; holds no key).
    #[arg(long, env = "SMIDL_WORKER_DATA", default_value = "./smidl-worker-data")]
    data_dir: PathBuf,
    /// Key directory: the data key and the vaults' keys, apart from the data directory
    /// (default: `<data-dir>.keys`). Put it on separate, non-backed-up storage or a secret mount.
    #[arg(long, env = "SMIDL_WORKER_KEYS")]
    key_dir: Option<PathBuf>,
    /// Development chain: sign as the dev account //Alice.
    #[arg(long, conflicts_with = "key_file")]
    dev: bool,
    /// File holding the worker account's secret URI or mnemonic (mode 0600).
    #[arg(long, env = "SMIDL_WORKER_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Requests evaluated concurrently.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Finalized blocks an ended epoch's results stay available before deletion.
    #[arg(long, default_value_t = 5)]
    result_retention_blocks: u32,
    /// Open API connections at most (further clients wait in the listen backlog).
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Serve the API over TLS with this PEM certificate chain (with --tls-key). Without TLS,
    /// models can be installed from this machine only.
    #[arg(long, env = "SMIDL_WORKER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SMIDL_WORKER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for in-flight requests to finish.
    #[arg(long, default_value_t = 60)]
    drain_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "smidl_worker=info".into()),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (what a service manager sends) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let signer = match (&args.key_file, args.dev) {
        (Some(path), _) => chain::keypair_from_file(path)?,
        (None, true) => chain::keypair_from_uri("//Alice")?,
        (None, false) => return Err("give --key-file, or --dev for a development chain".into()),
    };
    let key_dir = args
        .key_dir
        .clone()
        .unwrap_or_else(|| smidl_worker::store::default_key_dir(&args.data_dir));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(smidl_worker::listener::tls_acceptor(cert, key)?),
        _ => None,
    };
    let store = Store::open(&args.data_dir, &key_dir)?;
    let client = chain::connect_patiently(&args.rpc, Duration::from_secs(60)).await?;
    let mut settings = Settings::new(args.rpc.clone(), args.listen, args.data_dir.clone());
    settings.concurrency = args.concurrency;
    settings.result_retention_blocks = args.result_retention_blocks;
    settings.max_connections = args.max_connections;
    settings.tls = tls.is_some();
    settings.drain_timeout = Duration::from_secs(args.drain_seconds);
    let worker = Arc::new(Worker::new(settings, store, client, signer));
    smidl_worker::serve(worker, shutdown_signal(), tls).await?;
    Ok(())
}
