//! Puts the memory layout where the linker finds it as `memory.x` (cortex-m-rt's `link.x`
//! includes it) and reruns the build when a layout changes.
//!
//! - default: `memory-budget.x`, the target part's budget (2 MiB flash, 512 KiB RAM);
//! - feature `qemu-n14`: `memory-qemu-n14.x`, an emulator-only layout with 4 MiB of flash (all
//!   of QEMU mps2-an386's window at 0x0) for the N = 2^14 flash images; RAM keeps the budget.
//!
//! No file named `memory.x` may sit in this directory: the linker runs here and searches its
//! working directory before the `-L` paths, so such a file would shadow the selected layout.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let layout: &[u8] = if env::var_os("CARGO_FEATURE_QEMU_N14").is_some() {
        include_bytes!("memory-qemu-n14.x")
    } else {
        include_bytes!("memory-budget.x")
    };
    // A build script may fail loudly: an unwritable OUT_DIR is a broken build environment.
    #[allow(clippy::expect_used)]
    fs::write(out.join("memory.x"), layout).expect("write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-budget.x");
    println!("cargo:rerun-if-changed=memory-qemu-n14.x");
    println!("cargo:rerun-if-changed=build.rs");
    // The firmware embeds flash images and known answers generated on the host.
    let stamp = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("target/gen/STAMP");
    println!("cargo:rerun-if-changed={}", stamp.display());
    if !stamp.exists() {
        eprintln!("target/gen/ is missing: run scripts/device-tests.sh, or `cargo run --release --target <host> -- gen ../target/gen` in device-examples/host-tool");
        std::process::exit(1);
    }
}
