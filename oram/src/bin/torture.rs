//! Crash-test driver: writes blocks to an ORAM on the local filesystem and prints
//! `ACK <addr> <value>` after each write returns, until it is killed. The crash test SIGKILLs
//! it at random points and checks that every acknowledged write survives.
//!
//! Usage: `smidl-oram-torture <storage-dir> <state-dir> <capacity> <checkpoint-every> <first-value>`

use std::io::Write;

use smidl_oram::{Backend, Config, Oram, Params};

fn arg(args: &[String], i: usize) -> Result<&str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}"))
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let storage = arg(&args, 1)?;
    let state = arg(&args, 2)?;
    let capacity: u64 = arg(&args, 3)?
        .parse()
        .map_err(|e| format!("capacity: {e}"))?;
    let every: u32 = arg(&args, 4)?
        .parse()
        .map_err(|e| format!("checkpoint-every: {e}"))?;
    let mut value: u64 = arg(&args, 5)?
        .parse()
        .map_err(|e| format!("first-value: {e}"))?;
    let mut params = Params::new(capacity, 16, 1 << 20);
    params.checkpoint_every = every;
    // A small tree top, so that most of each path is remote.
    params.treetop_bytes = 4 * smidl_oram::bucket_plain_bytes(16);
    let cfg = Config::new(
        params,
        Backend::Fs {
            root: storage.into(),
        },
        "torture",
        state,
    );
    let mut oram = Oram::open_or_create(cfg).await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    loop {
        let mut r = [0u8; 8];
        getrandom::getrandom(&mut r).map_err(|e| e.to_string())?;
        let addr = u64::from_le_bytes(r) % capacity;
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&value.to_le_bytes());
        block[8..].copy_from_slice(&addr.to_le_bytes());
        writeln!(out, "TRY {addr} {value}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        oram.write(addr, &block).await.map_err(|e| e.to_string())?;
        writeln!(out, "ACK {addr} {value}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        value += 1;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run(std::env::args().collect()).await {
        eprintln!("smidl-oram-torture: {e}");
        std::process::exit(1);
    }
}
