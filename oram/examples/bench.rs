//! `make bench-oram`: time per access of smidl-oram on memory, the local filesystem and a real
//! S3-speaking server (s3s-fs on loopback), against Meta's `oram` crate (in memory, no
//! encryption, no integrity: the enclave setting) on the same workload. Prints `RESULT` lines.
//!
//! Workload per configuration: a formatted tree (every bucket present), 200 untimed accesses,
//! then 2000 timed ones at uniformly random addresses, alternating write and read.
//!
//! Options: `--sizes 12,16,20` (log2 of the block count), `--backends memory,fs,s3,anchor`,
//! `--big` (adds block_bytes=4096 at 2^16), `--accesses N`, `--vault` (only the worker's vault
//! geometry: 2^16 × 4 KiB, 2 MiB tree top, a checkpoint every 128 accesses, on the filesystem
//! and **unformatted**, as the worker runs it, so first writes of buckets are timed too).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use smidl_oram::{Backend, Config, Oram, Params};

struct Opts {
    sizes: Vec<u32>,
    backends: Vec<String>,
    big: bool,
    accesses: usize,
    vault: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        sizes: vec![12, 14, 16, 18, 20],
        backends: ["anchor", "memory", "fs", "s3"].map(String::from).to_vec(),
        big: true,
        accesses: 2000,
        vault: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--sizes" => {
                o.sizes = val
                    .split(',')
                    .map(|s| s.parse().expect("--sizes"))
                    .collect()
            }
            "--backends" => o.backends = val.split(',').map(String::from).collect(),
            "--no-big" => {
                o.big = false;
                i -= 1;
            }
            "--accesses" => o.accesses = val.parse().expect("--accesses"),
            "--vault" => {
                o.vault = true;
                i -= 1;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn random_below(n: u64) -> u64 {
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).expect("OS random");
    u64::from_le_bytes(r) % n
}

fn percentile(ms: &mut [f64], p: f64) -> f64 {
    ms.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    ms[((ms.len() - 1) as f64 * p).round() as usize]
}

fn anchor<const B: usize>(log_n: u32, accesses: usize) -> f64 {
    use oram::{Address, BlockValue, DefaultOram, Oram as _};
    use rand08::SeedableRng;
    let mut rng = rand08::rngs::StdRng::from_entropy();
    let n: Address = 1 << log_n;
    let t = Instant::now();
    let mut o = DefaultOram::<BlockValue<B>>::new(n, &mut rng).expect("anchor ORAM");
    let init = t.elapsed().as_secs_f64();
    let mut ms = Vec::with_capacity(accesses);
    for i in 0..accesses + 200 {
        let a = random_below(n);
        let t = Instant::now();
        if i % 2 == 0 {
            o.write(a, BlockValue::new([i as u8; B]), &mut rng)
                .expect("anchor write");
        } else {
            std::hint::black_box(o.read(a, &mut rng).expect("anchor read"));
        }
        if i >= 200 {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let p50 = percentile(&mut ms, 0.5);
    println!(
        "RESULT oram blocks=2^{log_n} block_bytes={B} backend=anchor ms_per_access_p50={p50:.4} \
         ms_per_access_p90={:.4} init_s={init:.1}",
        percentile(&mut ms, 0.9)
    );
    p50
}

async fn ours(
    log_n: u32,
    block_bytes: usize,
    backend: &str,
    accesses: usize,
    s3: Option<&common::S3Server>,
) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = match backend {
        "memory" => Backend::Memory,
        "fs" => Backend::Fs {
            root: dir.path().join("storage"),
        },
        "s3" => Backend::S3(s3.expect("the S3 server").config.clone()),
        other => panic!("unknown backend {other}"),
    };
    let params = Params::new(1 << log_n, block_bytes, 1 << 20);
    let cfg = Config::new(
        params,
        b,
        &format!("bench-{log_n}-{block_bytes}"),
        dir.path().join("state"),
    );
    let mut oram = Oram::create(cfg).await.expect("create");
    let t = Instant::now();
    let objects = oram.format().await.expect("format");
    let format_s = t.elapsed().as_secs_f64();
    let g = oram.geometry().clone();
    let data = vec![7u8; block_bytes];
    let mut ms = Vec::with_capacity(accesses);
    for i in 0..accesses + 200 {
        let a = random_below(g.capacity);
        let t = Instant::now();
        if i % 2 == 0 {
            oram.write(a, &data).await.expect("write");
        } else {
            std::hint::black_box(oram.read(a).await.expect("read"));
        }
        if i >= 200 {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let p50 = percentile(&mut ms, 0.5);
    println!(
        "RESULT oram blocks=2^{log_n} block_bytes={block_bytes} backend={backend} \
         ms_per_access_p50={p50:.4} ms_per_access_p90={:.4} ms_per_access_p99={:.4} \
         treetop_levels={} remote_levels={} stash_bound={} objects={objects} format_s={format_s:.1}",
        percentile(&mut ms, 0.9),
        percentile(&mut ms, 0.99),
        g.cached_levels,
        g.levels() - g.cached_levels,
        g.stash_bound,
    );
    let _ = oram.shred().await;
    p50
}

/// The worker's vault as it runs: unformatted, so early accesses write buckets for the first
/// time (and `offchain-worker/src/store/vault.rs` has the same parameters).
async fn vault(accesses: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut params = Params::new(1 << 16, 4096, 1 << 20);
    params.treetop_bytes = 2 << 20;
    params.checkpoint_every = 128;
    let cfg = Config::new(
        params,
        Backend::Fs {
            root: dir.path().join("storage"),
        },
        "vault",
        dir.path().join("state"),
    );
    let mut oram = Oram::create(cfg).await.expect("create");
    let g = oram.geometry().clone();
    let data = vec![7u8; 4096];
    let mut ms = Vec::with_capacity(accesses);
    let t0 = Instant::now();
    for _ in 0..accesses {
        let a = random_below(g.capacity);
        let t = Instant::now();
        oram.write(a, &data).await.expect("write");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = t0.elapsed().as_secs_f64() * 1e3 / accesses as f64;
    println!(
        "RESULT oram vault blocks=2^16 block_bytes=4096 backend=fs formatted=false \
         accesses={accesses} ms_per_access_mean={mean:.3} ms_per_access_p50={:.3} \
         ms_per_access_p99={:.3} treetop_levels={} remote_levels={}",
        percentile(&mut ms, 0.5),
        percentile(&mut ms, 0.99),
        g.cached_levels,
        g.levels() - g.cached_levels,
    );
    let _ = oram.shred().await;
}

#[tokio::main]
async fn main() {
    let o = parse();
    if o.vault {
        vault(o.accesses).await;
        return;
    }
    let s3 = o
        .backends
        .iter()
        .any(|b| b == "s3")
        .then(common::S3Server::start);
    let mut configs: Vec<(u32, usize)> = o.sizes.iter().map(|&s| (s, 64)).collect();
    if o.big {
        configs.push((16, 4096));
    }
    for (log_n, bb) in configs {
        let mut anchor_p50 = None;
        for backend in &o.backends {
            // S3 on loopback costs a few ms per request: only the sizes the issue names.
            if backend == "s3" && ![12, 16].contains(&log_n) {
                continue;
            }
            let p50 = match (backend.as_str(), bb) {
                ("anchor", 64) => anchor::<64>(log_n, o.accesses),
                ("anchor", 4096) => anchor::<4096>(log_n, o.accesses),
                ("anchor", _) => unreachable!("block sizes are 64 and 4096"),
                (b, _) => ours(log_n, bb, b, o.accesses, s3.as_ref()).await,
            };
            match (backend.as_str(), anchor_p50) {
                ("anchor", _) => anchor_p50 = Some(p50),
                (b, Some(a)) => println!(
                    "RESULT oram ratio blocks=2^{log_n} block_bytes={bb} backend={b} vs_anchor={:.2}",
                    p50 / a
                ),
                _ => {}
            }
        }
    }
}
