//! Puts the memory layout where the linker finds it as `memory.x` (cortex-m-rt's `link.x`
//! includes it) and reruns the build when a layout changes.
//!
//! - default: `memory-budget.x`, the target part's budget (2 MiB flash, 512 KiB RAM);
//! - feature `qemu-n14`: `memory-qemu-n14.x`, an emulator-only layout with 4 MiB of flash (all
//!   of QEMU mps2-an386's window at 0x0) for the N = 2^14 flash images; RAM keeps the budget.
//!
//! It also picks the key set that `encrypt_scan` embeds (`CLIFHE_DEVICE_BUNDLE`, a directory
//! written by `host-eval device-bundle`): the manifest's format and preset are checked, and
//! every image's size and SHA-256 against it, before the images are compiled in. Without the
//! variable the published test keys of `target/gen/device-n12` are used, with a warning; a
//! build for the real part (feature `stm32h7`) refuses that.
//!
//! With the feature `enrolled-n15` it also requires the enrolment that `encrypt_scan_n15`
//! embeds (`CLIFHE_DEVICE_ENROLLMENT`, a directory written by `host-eval device-enroll`: the
//! device's secret key seed and its input image), checked the same way, and exports its path as
//! `CLIFHE_DEVICE_ENROLLMENT_DIR`. There is no fallback: a device key must come from an enrolment.
//!
//! No file named `memory.x` may sit in this directory: the linker runs here and searches its
//! working directory before the `-L` paths, so such a file would shadow the selected layout.
use std::{
    env, fs,
    path::{Path, PathBuf},
};

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
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=CLIFHE_DEVICE_BUNDLE");
    let bundle = match env::var_os("CLIFHE_DEVICE_BUNDLE") {
        Some(dir) => {
            let dir = manifest_dir.join(PathBuf::from(dir));
            if let Err(e) = check_bundle(&dir) {
                eprintln!("CLIFHE_DEVICE_BUNDLE={}: {e}", dir.display());
                std::process::exit(1);
            }
            dir
        }
        None => {
            if env::var_os("CARGO_FEATURE_STM32H7").is_some() {
                eprintln!("a build for the part (feature stm32h7) needs CLIFHE_DEVICE_BUNDLE=DIR from `host-eval device-bundle`: it never embeds the published test keys");
                std::process::exit(1);
            }
            println!("cargo:warning=CLIFHE_DEVICE_BUNDLE is not set: encrypt_scan embeds the published TEST key set (emulator tests only)");
            manifest_dir.join("target/gen/device-n12")
        }
    };
    println!("cargo:rustc-env=CLIFHE_DEVICE_BUNDLE_DIR={}", bundle.display());

    println!("cargo:rerun-if-env-changed=CLIFHE_DEVICE_ENROLLMENT");
    if env::var_os("CARGO_FEATURE_ENROLLED_N15").is_some() {
        let Some(dir) = env::var_os("CLIFHE_DEVICE_ENROLLMENT") else {
            eprintln!(
                "feature enrolled-n15 needs CLIFHE_DEVICE_ENROLLMENT=DIR, the enrolment bundle of this device \
                 (`host-eval device-enroll --keys KEYS --profile PROFILE.json --out DIR --switch-key FILE`): \
                 the device key must come from an enrolment, there is no test key fallback"
            );
            std::process::exit(1);
        };
        let dir = manifest_dir.join(PathBuf::from(dir));
        if let Err(e) = check_enrollment(&dir) {
            eprintln!("CLIFHE_DEVICE_ENROLLMENT={}: {e}", dir.display());
            std::process::exit(1);
        }
        println!("cargo:rustc-env=CLIFHE_DEVICE_ENROLLMENT_DIR={}", dir.display());
    }
}

/// The preset the provisioned images are for (`images::provisioned`).
const BUNDLE_PRESET: &str = "device-n12";

/// Checks a `host-eval device-bundle` directory: manifest format and preset, then every file's
/// size and SHA-256 (a bundle copied incompletely or edited by hand is refused).
fn check_bundle(dir: &Path) -> Result<(), String> {
    check_manifest(
        dir,
        "clifhe-device-bundle/1",
        BUNDLE_PRESET,
        &[
            ("pk_b.bin", None),
            ("pk_a_seed.bin", None),
            ("ntt_q0.bin", None),
            ("ntt_q1.bin", None),
        ],
    )
}

/// The preset an enrolled device encrypts at (`encrypt_scan_n15`).
const ENROLLMENT_PRESET: &str = "private-n15";

/// Checks a `host-eval device-enroll` directory like [`check_bundle`]: format, preset, every
/// listed file's size and SHA-256, and the two files the firmware embeds at their fixed sizes
/// (the 32-byte device key seed, the 140-byte `DeviceInput` image).
fn check_enrollment(dir: &Path) -> Result<(), String> {
    check_manifest(
        dir,
        "clifhe-device-enrollment/1",
        ENROLLMENT_PRESET,
        &[("device-key.seed", Some(32)), ("input.bin", Some(140))],
    )
}

/// A manifest `device.json` of format `format` for `preset`, whose "files" list every file with
/// its size and SHA-256; `needed` must be listed (with the given size, where one is given).
fn check_manifest(dir: &Path, format: &str, preset: &str, needed: &[(&str, Option<u64>)]) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let path = dir.join("device.json");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("device.json: {e}"))?;
    if m["format"] != format {
        return Err(format!("device.json: format {} (expected {format})", m["format"]));
    }
    if m["preset"] != preset {
        return Err(format!(
            "the bundle is for preset {}, this firmware encrypts at {preset}",
            m["preset"]
        ));
    }
    let files = m["files"].as_array().ok_or("device.json: no file list")?;
    let mut listed = Vec::new();
    for f in files {
        let name = f["name"].as_str().ok_or("device.json: a file without a name")?;
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!("device.json: file name {name:?}"));
        }
        let p = dir.join(name);
        println!("cargo:rerun-if-changed={}", p.display());
        let bytes = fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        if Some(bytes.len() as u64) != f["bytes"].as_u64() || f["sha256"] != digest.as_str() {
            return Err(format!("{name} does not match its size or SHA-256 in device.json"));
        }
        listed.push((name.to_string(), bytes.len() as u64));
    }
    for &(needed, size) in needed {
        match listed.iter().find(|(n, _)| n == needed) {
            None => return Err(format!("device.json does not list {needed}")),
            Some((_, len)) if size.is_some_and(|s| s != *len) => {
                return Err(format!("{needed}: {len} bytes, expected {}", size.unwrap_or_default()))
            }
            Some(_) => {}
        }
    }
    Ok(())
}
