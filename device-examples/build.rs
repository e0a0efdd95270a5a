//! Puts `memory.x` where the linker finds it (cortex-m-rt's `link.x` includes it) and reruns the
//! build when the memory budget changes.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    // A build script may fail loudly: an unwritable OUT_DIR is a broken build environment.
    #[allow(clippy::expect_used)]
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    // The firmware embeds flash images and known answers generated on the host.
    let stamp = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("target/gen/STAMP");
    println!("cargo:rerun-if-changed={}", stamp.display());
    if !stamp.exists() {
        eprintln!("target/gen/ is missing: run scripts/device-tests.sh, or `cargo run --release --target <host> -- gen ../target/gen` in device-examples/host-tool");
        std::process::exit(1);
    }
}
