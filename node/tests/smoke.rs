//! Smoke test of the real node: `smidl-node --dev --tmp` produces and finalises blocks, serves
//! JSON-RPC, and its metadata (V16) carries the secure-inference pallet's storage with docs.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Kills the node when the test ends, pass or fail.
struct Node(Child);
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One JSON-RPC call over HTTP/1.1 (the node serves HTTP and WebSocket on the same port).
fn rpc(port: u16, method: &str, params: &str) -> Result<serde_json::Value, String> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
		s,
		"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
		body.len()
	)
	.map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let json = resp.split("\r\n\r\n").nth(1).ok_or("no HTTP body")?;
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))?;
    v.get("result")
        .cloned()
        .ok_or_else(|| format!("RPC error: {v}"))
}

fn block_number(header: &serde_json::Value) -> u64 {
    let hex = header["number"].as_str().expect("header number");
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex number")
}

fn hex_decode(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn dev_node_finalises_blocks_and_exposes_the_pallet() {
    let rpc_port = free_port();
    let p2p_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_smidl-node"))
        .args([
            "--dev",
            "--tmp",
            "--no-telemetry",
            "--no-prometheus",
            "--no-mdns",
        ])
        .args([
            "--rpc-port",
            &rpc_port.to_string(),
            "--port",
            &p2p_port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smidl-node");
    let _node = Node(child);

    // Finality: wait for a finalised block above genesis.
    let start = Instant::now();
    let finalised = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no finalised block within 120 s"
        );
        std::thread::sleep(Duration::from_millis(500));
        let Ok(hash) = rpc(rpc_port, "chain_getFinalizedHead", "[]") else {
            continue;
        };
        let Ok(header) = rpc(rpc_port, "chain_getHeader", &format!("[{hash}]")) else {
            continue;
        };
        let n = block_number(&header);
        if n >= 2 {
            break n;
        }
    };
    eprintln!("finalised block #{finalised} after {:?}", start.elapsed());

    // Metadata V16 through the runtime API.
    let versions = rpc(
        rpc_port,
        "state_call",
        r#"["Metadata_metadata_versions", "0x"]"#,
    )
    .unwrap();
    let versions = hex_decode(versions.as_str().unwrap());
    // SCALE Vec<u32>: compact length then little-endian u32s.
    assert!(
        versions[1..].chunks(4).any(|c| c == [16, 0, 0, 0]),
        "V16 offered: {versions:?}"
    );
    let md = rpc(
        rpc_port,
        "state_call",
        r#"["Metadata_metadata_at_version", "0x10000000"]"#,
    )
    .unwrap();
    let md = hex_decode(md.as_str().unwrap());
    assert_eq!(md[0], 1, "Some(metadata)");
    assert!(contains(&md, "meta"), "metadata magic");
    assert!(contains(&md, "SecureInference"));
    for (item, doc) in [
        ("Models", "Registered models"),
        ("Usage", "Per model and account: n_i"),
        ("EvalKeys", "commitment of the evaluation key"),
        (
            "Requests",
            "Inference requests with their input/output commitments",
        ),
        (
            "RequestDeadlines",
            "Requests by the block at which they time out",
        ),
        ("Bounds", "Chain-wide bounds on model policies"),
    ] {
        assert!(contains(&md, item), "storage item {item}");
        assert!(contains(&md, doc), "docs of {item}: {doc:?}");
    }
    for call in [
        "request_inference",
        "submit_result",
        "reset_model",
        "retrain_model",
    ] {
        assert!(contains(&md, call), "call {call}");
    }
}
