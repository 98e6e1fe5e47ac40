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
pub mod listener;
pub mod metrics;
pub mod pipeline;
pub mod store;
pub mod submitter;
pub mod worker;

use std::sync::Arc;

pub use worker::{Settings, Worker, WorkerError};

/// Runs the worker until `shutdown` resolves, then drains: the API stops accepting and
/// finishes the requests it is serving, the executor takes no new job and waits (up to
/// `settings.drain_timeout`) for the evaluations and submissions in flight, and only then does
/// the follower stop. Chain outages do not end it (the follower reconnects).
pub async fn serve(
    worker: Arc<Worker>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(), WorkerError> {
    let listen = worker.settings.listen;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| WorkerError::Join(format!("cannot listen on {listen}: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = listener::ApiListener::new(tcp, worker.settings.max_connections, tls)
        .map_err(|e| WorkerError::Join(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!(
        "worker {} listening on {scheme}://{listen}",
        worker.account_ss58()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = api::router(worker.clone()).into_make_service_with_connect_info::<api::Peer>();
    let mut http_stop = stopped.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let executor = tokio::spawn(pipeline::run_executor(worker.clone(), stopped));
    let mut follower = tokio::spawn(follower::run(worker.clone()));
    let result = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down: finishing in-flight work");
            Ok(())
        }
        r = &mut follower => match r {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Ok(()),
            Err(e) => Err(WorkerError::Join(e.to_string())),
        },
    };
    let _ = stop.send(true);
    let grace = worker.settings.drain_timeout + std::time::Duration::from_secs(5);
    if tokio::time::timeout(grace, executor).await.is_err() {
        tracing::warn!("in-flight work did not finish within {} s", grace.as_secs());
    }
    match tokio::time::timeout(grace, http).await {
        Ok(Ok(Err(e))) => tracing::warn!("HTTP server: {e}"),
        Err(_) => tracing::warn!(
            "open API requests did not finish within {} s",
            grace.as_secs()
        ),
        _ => {}
    }
    follower.abort();
    result
}
