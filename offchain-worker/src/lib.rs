//! smidl's off-chain worker: the model provider's service that answers inference requests
//! recorded on the smidl chain with homomorphic evaluation, differential-privacy noise and
//! signed extrinsics, and ends epochs (controlled deletion, then a signed reset or retrain).
//!
//! Read top to bottom: [`follower`] (chain events → persisted jobs) → [`pipeline`] (job →
//! FHE → DP noise → signed answer) → [`limits`] (epoch end). [`api`] is the HTTP face for
//! clients, [`store`] the encrypted embedded database, [`chain`] the subxt interface shared
//! with the `smidl` CLI, [`auth`]/[`wire`]/[`api_client`] the client protocol.
//!
//! It is a separate service rather than the runtime's `offchain_worker` hook: see
//! `docs/architecture.md`.

pub mod api;
// Shared with clients (the CLI links these without the worker).
pub use smidl_protocol::{api_client, auth, chain, commit, wire};
pub mod dp;
pub mod follower;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod store;
pub mod worker;

use std::sync::Arc;

pub use worker::{Settings, Worker, WorkerError};

/// Runs the worker until the chain connection fails for good or `shutdown` resolves.
pub async fn serve(
    worker: Arc<Worker>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let listener = tokio::net::TcpListener::bind(worker.settings.listen)
        .await
        .map_err(|e| {
            WorkerError::Join(format!("cannot listen on {}: {e}", worker.settings.listen))
        })?;
    tracing::info!(
        "worker {} listening on http://{}",
        worker.account_ss58(),
        worker.settings.listen
    );
    let app = api::router(worker.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    let executor = tokio::spawn(pipeline::run_executor(worker.clone()));
    let follower = follower::run(worker.clone());
    let result = tokio::select! {
        r = follower => r,
        r = http => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WorkerError::Join(format!("HTTP server: {e}"))),
            Err(e) => Err(WorkerError::Join(e.to_string())),
        },
    };
    executor.abort();
    result
}
