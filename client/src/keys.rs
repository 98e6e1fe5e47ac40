//! The client's TFHE keys, one set per (account, model, client spec), kept in the home dir
//! with mode 0600. The secret key never leaves this machine; only the evaluation key (for
//! models that bootstrap) goes to the worker, and its hash goes on chain.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use smidl_fhe::proof::InputCrs;
use smidl_fhe::{ClientKey, ClientSpec, EncryptedInput};
use smidl_protocol::chain::{self, read, smidl, Wait};

use crate::ctx::Context;
use crate::ui;

/// Everything needed to encrypt for a model and read its answers.
pub struct Session {
    pub model_id: u32,
    pub spec: ClientSpec,
    pub key: ClientKey,
    pub weights_commitment: [u8; 32],
    /// Time spent generating keys now (zero when loaded from disk).
    pub keygen: std::time::Duration,
    /// Linear models: the CRS inputs are proven with (checked against the spec's hash).
    pub crs: Option<InputCrs>,
}

impl Session {
    /// Encrypt one raw feature vector the way the worker accepts it: with a proof of correct
    /// encryption when the model takes proven inputs.
    pub fn encrypt(&self, features: &[f64]) -> Result<EncryptedInput> {
        Ok(match &self.crs {
            Some(crs) => self.key.encrypt_proven(features, crs)?,
            None => self.key.encrypt(features)?,
        })
    }
}

fn key_path(home: &Path, account: &str, model_id: u32, spec: &ClientSpec) -> PathBuf {
    home.join("keys")
        .join(account)
        .join(format!("model-{model_id}-{}.key", hex::encode(spec.id())))
}

/// Waits (up to `patience`) until the worker serves the weights the chain commits to for
/// `model_id`. After a retrain the worker swaps the new version in when it processes the
/// finalized `ModelRetrained`, a moment after the owner's call returns; until then
/// [`session`] rightly refuses the old weights.
pub async fn wait_until_served(
    ctx: &Context,
    model_id: u32,
    patience: std::time::Duration,
) -> Result<()> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let at = ctx.at_finalized().await?;
        let info = read::model(&at, model_id)
            .await?
            .with_context(|| format!("model {model_id} is not registered on chain"))?;
        let on_chain = format!("0x{}", hex::encode(info.weights_commitment.0));
        let served = match ctx.worker.spec(model_id).await {
            Ok((_, served)) => Some(served),
            Err(_) => None,
        };
        if served.as_deref() == Some(on_chain.as_str()) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "after {} s the worker still serves model {model_id} with weights {}, not the \
                 chain's {on_chain}",
                patience.as_secs(),
                served.as_deref().unwrap_or("(none)")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Fetches the model's public spec from the worker, checks the worker serves the weights the
/// chain commits to, and loads or generates this account's keys for it. Uploads and registers
/// the evaluation key when the model needs one and the chain does not have this key's hash.
pub async fn session(ctx: &Context, model_id: u32) -> Result<Session> {
    let at = ctx.at_finalized().await?;
    let info = read::model(&at, model_id)
        .await?
        .with_context(|| format!("model {model_id} is not registered on chain"))?;
    let (spec_bytes, served) = ctx
        .worker
        .spec(model_id)
        .await
        .with_context(|| format!("fetching model {model_id}'s client spec from the worker"))?;
    let on_chain = format!("0x{}", hex::encode(info.weights_commitment.0));
    if served != on_chain {
        bail!(
            "the worker serves model {model_id} with weights {served}, but the chain commits to \
             {on_chain}; refusing to use it"
        );
    }
    let spec =
        ClientSpec::from_bytes(&spec_bytes).context("the worker's client spec is invalid")?;
    let account = ctx.account().to_string();
    let path = key_path(&ctx.home, &account, model_id, &spec);
    let started = std::time::Instant::now();
    let (key, fresh) = if path.exists() {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        );
        let key = ClientKey::from_bytes(&bytes)
            .with_context(|| format!("{} is not a client key", path.display()))?;
        (key, false)
    } else {
        let pb = ui::spinner(ctx.interactive, "generating TFHE client keys");
        let s = spec.clone();
        let key = tokio::task::spawn_blocking(move || ClientKey::generate(&s)).await??;
        pb.finish_and_clear();
        write_secret(&path, &key.to_bytes())?;
        (key, true)
    };
    let keygen = if fresh {
        started.elapsed()
    } else {
        Default::default()
    };
    if spec.needs_evaluation_key() {
        ensure_eval_key(ctx, model_id, &key, &path).await?;
    }
    let crs = match &spec.input_proof {
        Some(p) => {
            let bytes = ctx
                .worker
                .crs(model_id)
                .await
                .with_context(|| format!("fetching model {model_id}'s input-proof CRS"))?;
            let crs = tokio::task::spawn_blocking({
                let hash = p.crs_hash;
                move || InputCrs::from_bytes(&bytes, &hash)
            })
            .await?
            .context("the worker's input-proof CRS is not the one the spec commits to")?;
            Some(crs)
        }
        None => None,
    };
    Ok(Session {
        model_id,
        spec,
        key,
        weights_commitment: info.weights_commitment.0,
        keygen,
        crs,
    })
}

async fn ensure_eval_key(
    ctx: &Context,
    model_id: u32,
    key: &ClientKey,
    key_path: &Path,
) -> Result<()> {
    let marker = key_path.with_extension("evalkey");
    let at = ctx.at_finalized().await?;
    let registered = read::eval_key(&at, &ctx.account(), model_id).await?;
    if let (Some(r), Ok(mine)) = (registered, std::fs::read_to_string(&marker)) {
        if mine.trim() == format!("0x{}", hex::encode(r.0)) {
            return Ok(());
        }
    }
    let pb = ui::spinner(ctx.interactive, "generating the evaluation key");
    let ek = key
        .evaluation_key()
        .context("the model needs an evaluation key but none could be derived")?;
    let bytes = ek.to_bytes();
    let commitment = chain::blake2_256(&bytes);
    // Hash on chain first: the worker accepts only a key whose hash the account registered
    // (it will not store 61 MB for anyone who asks).
    pb.set_message("registering the evaluation key's hash on chain");
    let call = smidl::transactions()
        .secure_inference()
        .register_eval_key(model_id, commitment.into());
    chain::submit(&ctx.client, &call, &ctx.key, Wait::InBlock).await?;
    pb.set_message(format!(
        "uploading the evaluation key ({} MB)",
        bytes.len() >> 20
    ));
    let stored = ctx.worker.put_eval_key(&ctx.key, model_id, bytes).await?;
    if stored.commitment != format!("0x{}", hex::encode(commitment)) {
        bail!("the worker stored a different evaluation key than the one sent");
    }
    std::fs::write(&marker, format!("0x{}\n", hex::encode(commitment)))?;
    pb.finish_and_clear();
    Ok(())
}

/// Writes a secret file readable by its owner only.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// `smidl keys generate`: prepare keys for a model ahead of the first request.
pub async fn generate(ctx: &Context, model_id: u32) -> Result<()> {
    let s = session(ctx, model_id).await?;
    let path = key_path(&ctx.home, &ctx.account().to_string(), model_id, &s.spec);
    println!(
        "keys for model {model_id} (spec {}) at {}{}",
        hex::encode(s.spec.id()),
        path.display(),
        if s.keygen.is_zero() {
            " (already there)".to_string()
        } else {
            format!(", generated in {}", ui::ms(s.keygen))
        }
    );
    if s.spec.needs_evaluation_key() {
        println!("evaluation key uploaded to the worker and its hash registered on chain");
    } else {
        println!("this model needs no evaluation key: the worker gets no key material");
    }
    Ok(())
}

/// `smidl keys account`: a new sr25519 chain account (mnemonic in a 0600 file).
pub fn new_account(path: &Path) -> Result<()> {
    let mut entropy = [0u8; 16];
    getrandom_fill(&mut entropy)?;
    let phrase = subxt_signer::bip39::Mnemonic::from_entropy(&entropy)
        .context("building a mnemonic")?
        .to_string();
    let key = chain::keypair_from_uri(&phrase)?;
    write_secret(path, phrase.as_bytes())?;
    println!(
        "new account {} ; its secret phrase is in {} (mode 0600)",
        chain::account_of(&key),
        path.display()
    );
    Ok(())
}

fn getrandom_fill(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))
}
