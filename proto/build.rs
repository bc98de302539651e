//! Compiles `samsa/v1/*.proto` into Rust with protox (no system `protoc`) and tonic-prost-build.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let files = [
        "samsa/v1/raft.proto",
        "samsa/v1/controller.proto",
        "samsa/v1/replica.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    let fds = protox::compile(files, [&dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
