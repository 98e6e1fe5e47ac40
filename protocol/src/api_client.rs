//! A typed client of the worker's HTTP API (used by the `smidl` CLI and the tests).

use reqwest::{Method, StatusCode};
use subxt_signer::sr25519::Keypair;

use crate::auth;
use crate::wire::{self, ApiError, Health, ModelInstall, Stored};

#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    #[error("cannot reach the worker at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The worker refused: its stable code and message.
    #[error("the worker refused ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the worker: {0}")]
    Protocol(String),
}

impl ApiClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct WorkerApi {
    base: String,
    http: reqwest::Client,
}

/// A result and the commitment the worker says it has.
pub struct FetchedResult {
    pub bytes: Vec<u8>,
    pub output_commitment: String,
}

/// Environment variable naming a PEM file of extra CA certificates to trust for `https://`
/// workers (a hospital's private CA); the bundled web roots are trusted as well.
pub const CA_ENV: &str = "SMIDL_WORKER_CA";

impl WorkerApi {
    /// A client for the worker at `base`. An unreadable or invalid `SMIDL_WORKER_CA` is
    /// reported and ignored: connections to a worker using that CA then fail verification,
    /// they are never downgraded.
    pub fn new(base: &str) -> Self {
        let mut builder =
            reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
        if let Some(path) = std::env::var_os(CA_ENV) {
            let certs = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                });
            match certs {
                Ok(certs) => {
                    for c in certs {
                        builder = builder.add_root_certificate(c);
                    }
                }
                Err(e) => eprintln!("{CA_ENV}={}: {e}", std::path::Path::new(&path).display()),
            }
        }
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: builder.build().unwrap_or_default(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&Keypair>,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ApiClientError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(key) = key {
            let h = auth::sign(key, method.as_str(), path, &body);
            req = req
                .header(auth::HEADER_ACCOUNT, h.account)
                .header(auth::HEADER_TIMESTAMP, h.timestamp)
                .header(auth::HEADER_NONCE, h.nonce)
                .header(auth::HEADER_SIGNATURE, h.signature)
                .header(auth::HEADER_BODY_HASH, h.body_hash);
        }
        if !body.is_empty() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
        }
        let res = req.send().await.map_err(|e| ApiClientError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        check(res).await
    }

    /// Sends a request with explicitly given auth headers (replay tests).
    pub async fn send_signed(
        &self,
        method: Method,
        path: &str,
        headers: &auth::SignedHeaders,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ApiClientError> {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(auth::HEADER_ACCOUNT, &headers.account)
            .header(auth::HEADER_TIMESTAMP, &headers.timestamp)
            .header(auth::HEADER_NONCE, &headers.nonce)
            .header(auth::HEADER_SIGNATURE, &headers.signature)
            .header(auth::HEADER_BODY_HASH, &headers.body_hash)
            .body(body)
            .send()
            .await
            .map_err(|e| ApiClientError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        check(res).await
    }

    pub async fn health(&self) -> Result<Health, ApiClientError> {
        let res = self.send(Method::GET, "/health", None, vec![]).await?;
        res.json()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))
    }

    /// The model's public client spec, and the weights commitment the worker reports.
    pub async fn spec(&self, model_id: u32) -> Result<(Vec<u8>, String), ApiClientError> {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/models/{model_id}/spec"),
                None,
                vec![],
            )
            .await?;
        let commitment = header(&res, wire::HEADER_MODEL_COMMITMENT)?;
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))?;
        Ok((bytes.to_vec(), commitment))
    }

    /// A linear model's input-proof CRS (public; the client checks it against the spec).
    pub async fn crs(&self, model_id: u32) -> Result<Vec<u8>, ApiClientError> {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/models/{model_id}/crs"),
                None,
                vec![],
            )
            .await?;
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))?;
        Ok(bytes.to_vec())
    }

    pub async fn install(
        &self,
        owner: &Keypair,
        model_id: u32,
        install: &ModelInstall,
    ) -> Result<(), ApiClientError> {
        let body = zeroize::Zeroizing::new(
            bincode::serialize(install).map_err(|e| ApiClientError::Protocol(e.to_string()))?,
        );
        self.send(
            Method::PUT,
            &format!("/v1/models/{model_id}"),
            Some(owner),
            body.to_vec(),
        )
        .await?;
        Ok(())
    }

    pub async fn put_eval_key(
        &self,
        key: &Keypair,
        model_id: u32,
        bytes: Vec<u8>,
    ) -> Result<Stored, ApiClientError> {
        let res = self
            .send(
                Method::PUT,
                &format!("/v1/models/{model_id}/eval-key"),
                Some(key),
                bytes,
            )
            .await?;
        res.json()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))
    }

    /// Uploads an input ciphertext filed under `commitment` (normally its BLAKE2-256).
    pub async fn put_input(
        &self,
        key: &Keypair,
        model_id: u32,
        commitment: &[u8; 32],
        bytes: Vec<u8>,
    ) -> Result<Stored, ApiClientError> {
        let path = format!("/v1/models/{model_id}/inputs/0x{}", hex::encode(commitment));
        let res = self.send(Method::PUT, &path, Some(key), bytes).await?;
        res.json()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))
    }

    pub async fn result(
        &self,
        key: &Keypair,
        request_id: u64,
    ) -> Result<FetchedResult, ApiClientError> {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/results/{request_id}"),
                Some(key),
                vec![],
            )
            .await?;
        let output_commitment = header(&res, wire::HEADER_OUTPUT_COMMITMENT)?;
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ApiClientError::Protocol(e.to_string()))?;
        Ok(FetchedResult {
            bytes: bytes.to_vec(),
            output_commitment,
        })
    }
}

fn header(res: &reqwest::Response, name: &str) -> Result<String, ApiClientError> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiClientError::Protocol(format!("missing header {name}")))
}

async fn check(res: reqwest::Response) -> Result<reqwest::Response, ApiClientError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let text = res.text().await.unwrap_or_default();
    match serde_json::from_str::<ApiError>(&text) {
        Ok(e) => Err(ApiClientError::Refused {
            status: status.as_u16(),
            code: e.code,
            message: e.message,
        }),
        Err(_) => Err(ApiClientError::Refused {
            status: status.as_u16(),
            code: if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large".into()
            } else {
                "http_error".into()
            },
            message: format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        }),
    }
}
