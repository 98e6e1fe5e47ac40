//! Writes the runtime's V16 metadata (SCALE-encoded `RuntimeMetadataPrefixed`) to a file.
//!
//! The worker and the CLI compile their chain interface (subxt) from the checked-in copy in
//! `protocol/metadata/smidl.scale`; `scripts/gen-metadata.sh` runs this to refresh it.
//! Reading it from the native runtime avoids starting a node just to ask for it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: export_metadata <output.scale>");
        return ExitCode::from(2);
    };
    let Some(metadata) = smidl_runtime::Runtime::metadata_at_version(16) else {
        eprintln!("the runtime does not provide metadata V16");
        return ExitCode::FAILURE;
    };
    let bytes: &[u8] = &metadata;
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("cannot write {path}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {} bytes of metadata V16 to {path}", bytes.len());
    ExitCode::SUCCESS
}
