//! The HTTP API clients use (axum).
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /health` | anyone | chain position, installed models, backlog |
//! | `GET /metrics` | anyone | Prometheus text |
//! | `GET /v1/models/{id}/spec` | anyone | the public `ClientSpec` (no weights) |
//! | `GET /v1/models/{id}/crs` | anyone | a linear model's input-proof CRS (its hash is in the spec) |
//! | `PUT /v1/models/{id}` | the model's on-chain owner, from loopback (or over TLS) | install the server half |
//! | `PUT /v1/models/{id}/eval-key` | an account whose key commitment is on chain | upload that evaluation key |
//! | `PUT /v1/models/{id}/inputs/{commitment}` | an account on chain that may still request | upload an input ciphertext |
//! | `GET /v1/results/{request_id}` | the request's requester | the encrypted result |
//!
//! Authenticated routes need the headers of [`crate::auth`]; nonces are recorded in the store
//! (replays are refused across restarts). Every upload is refused **before its body is read**
//! unless its signature verifies, its declared length is within the route's limit and the
//! chain shows the account entitled to it (quotas below); the body is then read up to the
//! limit and must hash to the signed value. Every error is JSON `{code, message}` with a
//! stable code.
//!
//! Quotas, from the chain: an input only from an existing account with budget left for the
//! model, at most `n_i + queries_left + INPUT_SLACK` per account and epoch (more could never
//! be requested); an evaluation key only if its hash is the one the account registered on
//! chain (so the worker never stores 61 MB for a key nobody committed to).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};

use crate::auth::{self, AuthError, SignedHeaders};
use crate::chain::read;
use crate::store::StoredInput;
use crate::wire::{self, ApiError, Health, ModelInstall, Stored};
use crate::worker::{ModelRecord, Worker, WorkerError};

type Shared = Arc<Worker>;

/// The connecting peer's address (the install route is loopback-only without TLS).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

/// An error answer.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<WorkerError> for Failure {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::ModelNotInstalled(id) => Failure::new(
                StatusCode::NOT_FOUND,
                "model_not_installed",
                format!("model {id} is not served by this worker"),
            ),
            WorkerError::Chain(e) => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "chain_unavailable",
                e.to_string(),
            ),
            other => {
                // Internal details stay in the worker's log.
                tracing::error!("internal error: {other}");
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        WorkerError::from(e).into()
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Replayed => Failure::new(StatusCode::CONFLICT, "replayed", e.to_string()),
            AuthError::Stale { .. } => {
                Failure::new(StatusCode::UNAUTHORIZED, "stale_timestamp", e.to_string())
            }
            _ => Failure::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string()),
        }
    }
}

pub fn router(worker: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models/{id}/spec", get(spec))
        .route("/v1/models/{id}/crs", get(crs))
        // Bodies are read by the handlers themselves, after authentication and quotas, each
        // with its own limit (settings.max_*_bytes).
        .route("/v1/models/{id}", put(install))
        .route("/v1/models/{id}/eval-key", put(put_eval_key))
        .route("/v1/models/{id}/inputs/{commitment}", put(put_input))
        .route("/v1/results/{request_id}", get(result))
        .layer(axum::middleware::from_fn_with_state(worker.clone(), count))
        .with_state(worker)
}

/// Counts answers per route template (never per concrete path: ids are not labels).
async fn count(
    State(w): State<Shared>,
    matched: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = matched
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    w.metrics
        .api
        .get_or_create(&crate::metrics::Route {
            route,
            status: res.status().as_u16(),
        })
        .inc();
    res
}

/// Verifies the signature headers and records the nonce: from the headers alone, before
/// any body is read. The body must then pass [`read_body`].
async fn authenticate(
    w: &Worker,
    headers: &HeaderMap,
    method: Method,
    path: &str,
) -> Result<auth::Authenticated, Failure> {
    let get = |name: &'static str| -> Result<String, AuthError> {
        headers
            .get(name)
            .ok_or(AuthError::Missing(name))?
            .to_str()
            .map(str::to_string)
            .map_err(|_| AuthError::Malformed(name))
    };
    let signed = SignedHeaders {
        account: get(auth::HEADER_ACCOUNT)?,
        timestamp: get(auth::HEADER_TIMESTAMP)?,
        nonce: get(auth::HEADER_NONCE)?,
        signature: get(auth::HEADER_SIGNATURE)?,
        body_hash: get(auth::HEADER_BODY_HASH)?,
    };
    let now = auth::now_ms();
    let ok = auth::verify(&signed, method.as_str(), path, now)?;
    let fresh = w.store.record_nonce(
        &ok.account,
        &ok.nonce,
        ok.timestamp_ms.saturating_add(auth::MAX_SKEW_MS),
        now,
    )?;
    if !fresh {
        return Err(AuthError::Replayed.into());
    }
    Ok(ok)
}

/// Reads an authenticated request's body: refused unread if its declared length exceeds
/// `limit`, cut off at `limit` otherwise, and refused if it is not the signed body.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    auth: &auth::Authenticated,
) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds this route's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_large()
        } else {
            Failure::new(StatusCode::BAD_REQUEST, "body_unreadable", e.to_string())
        }
    })?;
    auth.check_body(&bytes)?;
    Ok(bytes)
}

/// Models (weights, training summaries) travel only over TLS or within this machine.
pub fn install_allowed(peer: &std::net::SocketAddr, tls: bool) -> bool {
    tls || peer.ip().is_loopback()
}

/// Extra inputs an account may upload beyond what it can still request (re-uploads after a
/// failed request, a retry with a fresh encryption).
const INPUT_SLACK: u64 = 4;

async fn health(State(w): State<Shared>) -> Result<Json<Health>, Failure> {
    let backlog = w.store.jobs_not_settled()?.len() as u64;
    let connected = w.connected();
    Ok(Json(Health {
        status: if connected { "ok" } else { "degraded" }.into(),
        chain_connected: connected,
        worker: w.account_ss58(),
        best_block: w.best_number(),
        finalized_block: w.finalized_number(),
        models: w.installed_models()?,
        backlog,
    }))
}

async fn metrics(State(w): State<Shared>) -> impl IntoResponse {
    w.metrics.set_vault(w.store.vault_stats());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        w.metrics.render(),
    )
}

fn model_id(raw: &str) -> Result<u32, Failure> {
    raw.parse().map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_model_id",
            "model id must be a u32",
        )
    })
}

async fn spec(State(w): State<Shared>, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = model_id(&id)?;
    let model = w.model(id)?;
    let mut res = model.server.client_spec().to_bytes().into_response();
    res.headers_mut().insert(
        wire::HEADER_MODEL_COMMITMENT,
        HeaderValue::from_str(&format!("0x{}", hex::encode(model.commitment)))
            .map_err(|_| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "header"))?,
    );
    Ok(res)
}

async fn crs(State(w): State<Shared>, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = model_id(&id)?;
    let model = w.model(id)?;
    let Some(crs) = model.server.input_crs() else {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "no_input_proofs",
            format!("model {id} takes no input proofs"),
        ));
    };
    Ok(crs.to_bytes().into_response())
}

async fn install(
    State(w): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Failure> {
    let id = model_id(&id)?;
    if !install_allowed(&peer.0, w.settings.tls) {
        // The body carries the weights (and a private model's training summary): never over
        // plain HTTP beyond this machine.
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "install_loopback_only",
            "models are installed from this machine only, unless the worker serves TLS",
        ));
    }
    let auth = authenticate(&w, &headers, method, &format!("/v1/models/{id}")).await?;
    let who = auth.account;
    let body = read_body(&headers, body, w.settings.max_model_bytes, &auth).await?;
    let install: ModelInstall = bincode::deserialize(&body).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "malformed_install",
            format!("cannot decode the install request: {e}"),
        )
    })?;
    let server =
        smidl_fhe::ServerModel::from_canonical_bytes(&install.server_model).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "malformed_model",
                format!("the server model does not load: {e}"),
            )
        })?;
    let at = w.at_best().await.map_err(WorkerError::from)?;
    let Some(info) = read::model(&at, id).await.map_err(WorkerError::from)? else {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "model_not_on_chain",
            format!("model {id} is not registered on chain"),
        ));
    };
    if info.owner.0 != who {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            "only the model's on-chain owner may install it",
        ));
    }
    if !info.workers.0.iter().any(|a| a.0 == w.account) {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "not_authorised_worker",
            format!(
                "this worker ({}) is not among the model's authorised workers on chain",
                w.account_ss58()
            ),
        ));
    }
    let commitment = crate::commit::weights(&install.weights_salt, &install.server_model);
    let expected = if install.stage {
        // A next version: exactly the weights the owner authorised on chain.
        let authorised = read::retrain_authorisation(&at, id)
            .await
            .map_err(WorkerError::from)?;
        match authorised {
            Some(a) => a.weights_commitment.0,
            None => {
                return Err(Failure::new(
                    StatusCode::CONFLICT,
                    "retrain_not_authorised",
                    "stage a model only after authorise_retrain names its commitment",
                ))
            }
        }
    } else {
        info.weights_commitment.0
    };
    if commitment != expected {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "commitment_mismatch",
            "the salted commitment of this model differs from the one on chain",
        ));
    }
    let spec = server.client_spec();
    if spec.is_linear() && spec.input_proof.is_none() {
        // It could answer nothing: every input would be refused for want of a proof.
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "input_proofs_missing",
            "a linear model must be compiled with input proofs (ServerModel::with_input_proofs)",
        ));
    }
    let mechanism = crate::dp::mechanism_for(&info.policy.accounting);
    let per_query = matches!(info.privacy, crate::chain::PrivacyMode::PerQuery);
    // A private model's answers carry no noise, so there is nothing to fit.
    if let Err(e) = per_query
        .then(|| crate::worker::check_noise_fits(&server, mechanism, info.policy.epsilon_per_query))
        .transpose()
    {
        // Noise is never clamped: a policy whose noise does not fit is refused here, with the
        // smallest ε that would fit.
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "noise_does_not_fit",
            e.to_string(),
        ));
    }
    let stage = install.stage;
    let record = match (stage, w.record(id)?) {
        (true, Some(mut current)) => {
            current.staged = Some(install);
            current
        }
        (true, None) => {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                "model_not_installed",
                "install the current model before staging its next version",
            ))
        }
        (false, _) => ModelRecord {
            install,
            staged: None,
        },
    };
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.put_record(id, &record))
        .await
        .map_err(|e| WorkerError::Join(e.to_string()))??;
    tracing::info!(
        model = id,
        "model {}",
        if stage {
            "staged for retrain"
        } else {
            "installed"
        }
    );
    w.wake.notify_one();
    Ok(StatusCode::CREATED)
}

async fn put_eval_key(
    State(w): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Stored>, Failure> {
    let id = model_id(&id)?;
    let auth = authenticate(&w, &headers, method, &format!("/v1/models/{id}/eval-key")).await?;
    let who = auth.account;
    let model = w.model(id)?;
    if !model.server.client_spec().needs_evaluation_key() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "no_eval_key_needed",
            "this model needs no evaluation key",
        ));
    }
    // Quota: only the key the account committed to on chain (its hash is the signed body
    // hash), checked before 61 MB are read.
    let registered = registered_eval_key(&w, id, who).await?;
    if registered != Some(auth.body_hash) {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "eval_key_not_registered",
            "register the evaluation key's hash on chain (register_eval_key) before uploading it",
        ));
    }
    let body = read_body(&headers, body, w.settings.max_eval_key_bytes, &auth).await?;
    // Parse once so a wrong or corrupt key is refused now, not at request time.
    smidl_fhe::EvaluationKey::from_bytes(&body, model.server.client_spec()).map_err(|e| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed_eval_key",
            e.to_string(),
        )
    })?;
    let (w2, len) = (w.clone(), body.len() as u64);
    let commitment = tokio::task::spawn_blocking(move || w2.store.put_eval_key(&who, id, &body))
        .await
        .map_err(|e| WorkerError::Join(e.to_string()))??;
    Ok(Json(Stored {
        commitment: format!("0x{}", hex::encode(commitment)),
        bytes: len,
    }))
}

/// The account's evaluation-key commitment on chain, waiting up to two blocks for a
/// registration the client just saw included (the worker's best block may trail its node's).
async fn registered_eval_key(
    w: &Worker,
    model_id: u32,
    who: [u8; 32],
) -> Result<Option<[u8; 32]>, Failure> {
    let account = subxt::utils::AccountId32(who);
    let mut best = w.best.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(7);
    loop {
        let at = w.client().best().await.map_err(WorkerError::from)?;
        let found = read::eval_key(&at, &account, model_id)
            .await
            .map_err(WorkerError::from)?;
        if found.is_some() {
            return Ok(found.map(|h| h.0));
        }
        if tokio::time::timeout_at(deadline, best.changed())
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
}

async fn put_input(
    State(w): State<Shared>,
    Path((id, commitment)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Stored>), Failure> {
    let id = model_id(&id)?;
    let raw = commitment.trim_start_matches("0x");
    let c: [u8; 32] = hex::decode(raw)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_commitment",
                "commitment must be 32 bytes of hex",
            )
        })?;
    let path = format!("/v1/models/{id}/inputs/{commitment}");
    let auth = authenticate(&w, &headers, method, &path).await?;
    let who = auth.account;
    if auth.body_hash != c {
        // The signed body hash is the ciphertext's commitment: a mismatch is known unread.
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "commitment_mismatch",
            "the body's hash is not the commitment it is filed under",
        ));
    }
    if !w.installed_models()?.contains(&id) {
        tracing::warn!(model = id, "input refused: model not installed here");
        return Err(WorkerError::ModelNotInstalled(id).into());
    }
    let epoch = input_quota(&w, id, who).await?;
    if w.store.input(id, &c)?.is_some() {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "input_exists",
            "an input is already filed under this commitment",
        ));
    }
    let body = read_body(&headers, body, w.settings.max_input_bytes, &auth).await?;
    // Verified now, once: an unproven or out-of-box ciphertext is refused at the door, and
    // the ≈ 165 ms proof check is off the request's critical path.
    let model = w.model(id)?;
    let verified_for = {
        let _permit = w
            .verify_slots
            .acquire()
            .await
            .map_err(|e| WorkerError::Join(e.to_string()))?;
        let (m, bytes) = (model.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            let spec = m.server.client_spec();
            let input = smidl_fhe::EncryptedInput::from_bytes(&bytes, spec)?;
            m.server.verify_input(&input).map(|_| ())
        })
        .await
        .map_err(|e| WorkerError::Join(e.to_string()))?
        .map_err(|e| {
            Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "malformed_input",
                format!("the ciphertext or its input proof does not verify: {e}"),
            )
        })?;
        model.commitment
    };
    let input = StoredInput {
        owner: who,
        bytes: body.to_vec(),
        uploaded_at_ms: auth::now_ms(),
        verified_for: Some(verified_for),
    };
    w.store.put_input(id, &c, &input)?;
    w.count_upload(id, epoch, who);
    Ok((
        StatusCode::CREATED,
        Json(Stored {
            commitment: format!("0x{}", hex::encode(c)),
            bytes: input.bytes.len() as u64,
        }),
    ))
}

/// The chain-tied input quota: the account exists (it can pay) and its uploads this epoch
/// stay below what it can still request. Returns the model's current epoch.
async fn input_quota(w: &Worker, model_id: u32, who: [u8; 32]) -> Result<u32, Failure> {
    let account = subxt::utils::AccountId32(who);
    // The node's own best block: the follower's view can trail it (e.g. while it replays
    // finalized blocks after a restart), and a client acts on what its node just showed it.
    let at = w.client().best().await.map_err(WorkerError::from)?;
    if !read::account_exists(&at, &account)
        .await
        .map_err(WorkerError::from)?
    {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "no_account",
            "this account does not exist on chain (it holds no funds to request with)",
        ));
    }
    let Some(status) = read::model_status(&at, model_id)
        .await
        .map_err(WorkerError::from)?
    else {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "model_not_on_chain",
            format!(
                "model {model_id} is not registered on chain (at block #{})",
                at.block_number()
            ),
        ));
    };
    let usage = read::account_status(&at, model_id, &account)
        .await
        .map_err(WorkerError::from)?;
    let allowed = usage.map_or(0, |u| {
        u64::from(u.queries)
            .saturating_add(u.queries_left_by_budget)
            .saturating_add(INPUT_SLACK)
    });
    let used = w.uploads(model_id, status.epoch, who);
    if used >= allowed {
        return Err(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "input_quota",
            format!(
                "{used} inputs uploaded this epoch; the chain allows this account {allowed} \
                 (its requests so far and those its budget still allows, plus {INPUT_SLACK})"
            ),
        ));
    }
    Ok(status.epoch)
}

async fn result(
    State(w): State<Shared>,
    Path(request_id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let request_id: u64 = request_id.parse().map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request_id",
            "request id must be a u64",
        )
    })?;
    let who = authenticate(&w, &headers, method, &format!("/v1/results/{request_id}"))
        .await?
        .account;
    let Some(job) = w.store.job(request_id)? else {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_request",
            "this worker has no such request",
        ));
    };
    // Same answer for "not yours" and "does not exist" would hide existence; the request
    // ids and requesters are public on chain anyway, so say what happened.
    if job.requester != who {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "not_requester",
            "only the requester may fetch this result",
        ));
    }
    let Some(stored) = w.store.result(request_id)? else {
        return Err(match job.state {
            crate::store::JobState::Submitted {
                rejected: Some(why),
                ..
            } => Failure::new(
                StatusCode::GONE,
                "rejected",
                format!("the request was rejected: {why}"),
            ),
            crate::store::JobState::Settled => Failure::new(
                StatusCode::GONE,
                "result_deleted",
                "no result is kept (rejected, timed out, or deleted at the epoch's end)",
            ),
            _ => Failure::new(
                StatusCode::NOT_FOUND,
                "result_not_ready",
                "the result is not ready yet",
            ),
        });
    };
    if !stored.released {
        // Served only once the charge is final: before that a timeout or rejection could
        // still refund a request whose answer was already read.
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "result_not_final",
            "the result is computed but its completion is not final on chain yet",
        ));
    }
    let mut res = stored.output.into_response();
    res.headers_mut().insert(
        wire::HEADER_OUTPUT_COMMITMENT,
        HeaderValue::from_str(&format!("0x{}", hex::encode(stored.output_commitment)))
            .map_err(|_| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "header"))?,
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attack: someone on the hospital LAN reads the weights off the wire while the
    /// owner installs them over plain HTTP. Plain HTTP installs are loopback-only.
    #[test]
    fn installs_over_plain_http_only_from_loopback() {
        let lan: std::net::SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let local6: std::net::SocketAddr = "[::1]:40000".parse().unwrap();
        assert!(!install_allowed(&lan, false));
        assert!(install_allowed(&lan, true));
        assert!(install_allowed(&local, false));
        assert!(install_allowed(&local6, false));
    }
}
