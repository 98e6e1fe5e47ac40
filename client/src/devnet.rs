//! A throw-away development network: `smidl-node --dev` (its database in the network's
//! temporary directory, so the node can be restarted onto the same chain) and a
//! `smidl-worker --dev`, on free local ports, logs in the same directory. Used by `smidl demo`
//! and the end-to-end tests; every process is killed when the value is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use smidl_protocol::api_client::WorkerApi;
use smidl_protocol::chain;

pub struct Devnet {
    pub rpc: String,
    pub worker_url: String,
    /// Logs and the worker's data; removed on drop unless `SMIDL_DEVNET_DIR` chose it.
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    bin_dir: PathBuf,
    node: Child,
    rpc_port: u16,
    p2p_port: u16,
    worker: Option<Child>,
    worker_port: u16,
    /// Further workers (`start_extra_worker`), each with its own key, port and store.
    extra_workers: Vec<ExtraWorker>,
    pub retention_blocks: u32,
}

/// A further worker process and what it takes to start it again.
struct ExtraWorker {
    child: Option<Child>,
    n: usize,
    key_file: PathBuf,
    port: u16,
}

/// Where `smidl-node` and `smidl-worker` are: `$SMIDL_BIN_DIR`, else next to this executable
/// (`target/<profile>/`, also from `target/<profile>/deps/` for tests).
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("SMIDL_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found; build it first (make build, or cargo build -p {})",
            p.display(),
            if name == "smidl-node" {
                "smidl-node"
            } else {
                "smidl-worker"
            }
        );
    }
    Ok(p)
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .with_context(|| format!("creating {name}"))
}

/// `smidl-node --dev` with its database under `dir/chain` (kept across restarts).
fn spawn_node(bin: &Path, dir: &Path, rpc_port: u16, p2p_port: u16) -> Result<Child> {
    Command::new(bin)
        .args(["--dev", "--no-prometheus", "--no-telemetry", "--no-mdns"])
        .arg("--base-path")
        .arg(dir.join("chain"))
        .args(["--rpc-port", &rpc_port.to_string()])
        // One client driving many accounts (the load bench: 200 per block) holds a watch per
        // transaction in flight; the node's default of 1 024 per connection refused it.
        .args(["--rpc-max-subscriptions-per-connection", "16384"])
        .args(["--port", &p2p_port.to_string()])
        .stdout(Stdio::from(log_file(dir, "node.log")?))
        .stderr(Stdio::from(log_file(dir, "node.log")?))
        .spawn()
        .context("starting smidl-node")
}

impl Devnet {
    /// Starts the node and waits until it finalizes a block.
    pub async fn start_node() -> Result<Self> {
        let bin_dir = bin_dir()?;
        let node_bin = binary(&bin_dir, "smidl-node")?;
        binary(&bin_dir, "smidl-worker")?;
        let (dir, temp) = match std::env::var_os("SMIDL_DEVNET_DIR") {
            Some(d) => {
                let d = PathBuf::from(d);
                std::fs::create_dir_all(&d)?;
                (d, None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("smidl-devnet-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let (rpc_port, p2p_port) = (free_port()?, free_port()?);
        let node = spawn_node(&node_bin, &dir, rpc_port, p2p_port)?;
        let mut net = Self {
            rpc: format!("ws://127.0.0.1:{rpc_port}"),
            worker_url: String::new(),
            dir,
            _temp: temp,
            bin_dir,
            node,
            rpc_port,
            p2p_port,
            worker: None,
            worker_port: free_port()?,
            extra_workers: Vec::new(),
            retention_blocks: 2,
        };
        net.worker_url = format!("http://127.0.0.1:{}", net.worker_port);
        net.wait_finalized(1, Duration::from_secs(180)).await?;
        Ok(net)
    }

    /// Starts the node and the worker.
    pub async fn start() -> Result<Self> {
        let mut net = Self::start_node().await?;
        net.start_worker().await?;
        Ok(net)
    }

    /// Kills the node with SIGKILL and starts it again on the same database and ports: the
    /// chain continues where it stopped. Returns once it finalized a block past the old head.
    pub async fn restart_node(&mut self) -> Result<()> {
        let _ = self.node.kill();
        self.node.wait().context("waiting for the killed node")?;
        let node_bin = binary(&self.bin_dir, "smidl-node")?;
        self.node = spawn_node(&node_bin, &self.dir, self.rpc_port, self.p2p_port)?;
        self.wait_finalized(1, Duration::from_secs(180)).await
    }

    pub fn node_log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn worker_log(&self) -> PathBuf {
        self.dir.join("worker.log")
    }

    pub fn worker_data(&self) -> PathBuf {
        self.dir.join("worker-data")
    }

    async fn wait_finalized(&mut self, n: u64, patience: Duration) -> Result<()> {
        let give_up = Instant::now() + patience;
        loop {
            if let Some(status) = self.node.try_wait()? {
                bail!(
                    "smidl-node exited ({status}); see {}",
                    self.node_log().display()
                );
            }
            if let Ok(client) = chain::connect(&self.rpc).await {
                if let Ok(at) = client.at_current_block().await {
                    if at.block_number() >= n {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > give_up {
                bail!(
                    "the dev node did not finalize block {n} in time; see {}",
                    self.node_log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// (Re)starts the worker on the same port and data directory.
    pub async fn start_worker(&mut self) -> Result<()> {
        let worker_bin = binary(&self.bin_dir, "smidl-worker")?;
        let child = Command::new(worker_bin)
            .args(["--dev", "--rpc", &self.rpc])
            .args(["--listen", &format!("127.0.0.1:{}", self.worker_port)])
            .arg("--data-dir")
            .arg(self.worker_data())
            .args([
                "--result-retention-blocks",
                &self.retention_blocks.to_string(),
            ])
            .env("RUST_LOG", "smidl_worker=info")
            .stdout(Stdio::from(log_file(&self.dir, "worker.log")?))
            .stderr(Stdio::from(log_file(&self.dir, "worker.log")?))
            .spawn()
            .context("starting smidl-worker")?;
        self.worker = Some(child);
        let api = WorkerApi::new(&self.worker_url);
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(w) = self.worker.as_mut() {
                if let Some(status) = w.try_wait()? {
                    bail!(
                        "smidl-worker exited ({status}); see {}",
                        self.worker_log().display()
                    );
                }
            }
            if api.health().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > give_up {
                bail!(
                    "the worker did not answer /health in 60 s; see {}",
                    self.worker_log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts one more worker process signing as `key_uri` (e.g. `//Dave`), with its own
    /// port, data directory and log; returns its URL once it answers `/health`. The n-th extra
    /// worker (from 0) is addressed as `n` by [`Devnet::kill_extra_worker`].
    pub async fn start_extra_worker(&mut self, key_uri: &str) -> Result<String> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let n = self.extra_workers.len() + 2;
        let key_file = self.dir.join(format!("worker-{n}.key"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key_file)
            .context("writing the extra worker's key file")?;
        f.write_all(key_uri.as_bytes())?;
        self.extra_workers.push(ExtraWorker {
            child: None,
            n,
            key_file,
            port: free_port()?,
        });
        self.restart_extra_worker(self.extra_workers.len() - 1)
            .await
    }

    /// (Re)starts extra worker `i` on its port, key and data directory.
    pub async fn restart_extra_worker(&mut self, i: usize) -> Result<String> {
        let e = self
            .extra_workers
            .get(i)
            .with_context(|| format!("no extra worker {i}"))?;
        let log = format!("worker-{}.log", e.n);
        let child = Command::new(binary(&self.bin_dir, "smidl-worker")?)
            .args(["--rpc", &self.rpc])
            .arg("--key-file")
            .arg(&e.key_file)
            .args(["--listen", &format!("127.0.0.1:{}", e.port)])
            .arg("--data-dir")
            .arg(self.dir.join(format!("worker-{}-data", e.n)))
            .args([
                "--result-retention-blocks",
                &self.retention_blocks.to_string(),
            ])
            .env("RUST_LOG", "smidl_worker=info")
            .stdout(Stdio::from(log_file(&self.dir, &log)?))
            .stderr(Stdio::from(log_file(&self.dir, &log)?))
            .spawn()
            .context("starting an extra smidl-worker")?;
        let url = format!("http://127.0.0.1:{}", e.port);
        self.extra_workers[i].child = Some(child);
        let api = WorkerApi::new(&url);
        let give_up = Instant::now() + Duration::from_secs(60);
        while api.health().await.is_err() {
            if Instant::now() > give_up {
                bail!("the extra worker did not answer /health in 60 s; see {log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(url)
    }

    /// Kills extra worker `i` with SIGKILL.
    pub fn kill_extra_worker(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.extra_workers.get_mut(i).and_then(|e| e.child.take()) {
            c.kill().context("killing the extra worker")?;
            c.wait()?;
        }
        Ok(())
    }

    /// Kills the worker with SIGKILL (no chance to clean up), as a crash would.
    pub fn kill_worker(&mut self) -> Result<()> {
        if let Some(mut w) = self.worker.take() {
            w.kill().context("killing the worker")?;
            w.wait()?;
        }
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(w) = self.worker.as_mut() {
            let _ = w.kill();
            let _ = w.wait();
        }
        for c in self
            .extra_workers
            .iter_mut()
            .filter_map(|e| e.child.as_mut())
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}
