//! Flash images of the device presets (DEVICE_N12; LEVELED_N14 with the `qemu-n14` feature),
//! written by `host-tool gen` into `target/gen/` (the test script runs it before building;
//! `build.rs` stops the build with a hint if they are missing).
use crate::device::FlashImages;

/// DEVICE_N12: N = 4096, q0 60 + 40 bits (the first two primes of the host chain).
pub fn device_n12() -> FlashImages {
    FlashImages {
        literal: clifhe_core::params::presets::DEVICE_N12,
        pk_b: crate::aligned_image!("device-n12", "pk_b.bin"),
        pk_a_seed: include_bytes!(crate::gen_file!("device-n12", "pk_a_seed.bin")),
        ntt: &N12_NTT,
    }
}

static N12_NTT: [&crate::device::Aligned<[u8]>; 2] =
    [crate::aligned_image!("device-n12", "ntt_q0.bin"), crate::aligned_image!("device-n12", "ntt_q1.bin")];

/// DEVICE_N12 under the key set the image was provisioned with: the bundle that
/// `host-eval device-bundle` wrote from the hospital's key set, given at build time as
/// `CLIFHE_DEVICE_BUNDLE=DIR` (build.rs checks it). Without it (emulator builds only) these are
/// the published test keys of `target/gen/device-n12`.
pub fn provisioned() -> FlashImages {
    FlashImages {
        literal: clifhe_core::params::presets::DEVICE_N12,
        pk_b: crate::aligned_bundle_image!("pk_b.bin"),
        pk_a_seed: include_bytes!(crate::bundle_file!("pk_a_seed.bin")),
        ntt: &BUNDLE_NTT,
    }
}

static BUNDLE_NTT: [&crate::device::Aligned<[u8]>; 2] =
    [crate::aligned_bundle_image!("ntt_q0.bin"), crate::aligned_bundle_image!("ntt_q1.bin")];

/// Known answers (SHA-256) recorded by the host for DEVICE_N12; see `vectors` for the inputs.
pub mod kat_n12 {
    pub const ARITH: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "kat_arith.sha256"));
    pub const NTT: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "kat_ntt.sha256"));
    pub const ENCODE: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "kat_encode.sha256"));
    pub const CT_PK: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "kat_ct_pk.sha256"));
    pub const CT_SK: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "kat_ct_sk.sha256"));
    /// The test key's secret seed: only for the seeded secret-key mode tests.
    pub const SK_SEED: &[u8; 32] = include_bytes!(crate::gen_file!("device-n12", "sk_seed.bin"));
}

/// LEVELED_N14: N = 2^14, q0 60 + 7 x 40 bits, the host's own preset (feature `qemu-n14` only:
/// 3 MiB of images, linked with the emulator-only layout `memory-qemu-n14.x`).
#[cfg(feature = "qemu-n14")]
pub fn leveled_n14() -> FlashImages {
    FlashImages {
        literal: clifhe_core::params::presets::LEVELED_N14,
        pk_b: crate::aligned_image!("leveled-n14", "pk_b.bin"),
        pk_a_seed: include_bytes!(crate::gen_file!("leveled-n14", "pk_a_seed.bin")),
        ntt: &N14_NTT,
    }
}

#[cfg(feature = "qemu-n14")]
static N14_NTT: [&crate::device::Aligned<[u8]>; 8] = [
    crate::aligned_image!("leveled-n14", "ntt_q0.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q1.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q2.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q3.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q4.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q5.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q6.bin"),
    crate::aligned_image!("leveled-n14", "ntt_q7.bin"),
];

/// The enrolment `encrypt_scan_n15` was built with (feature `enrolled-n15`): the directory
/// `host-eval device-enroll` wrote, given at build time as `CLIFHE_DEVICE_ENROLLMENT=DIR`
/// (build.rs checks the manifest, the sizes and the SHA-256 of both files; there is no
/// fallback).
#[cfg(feature = "enrolled-n15")]
pub mod enrolled {
    /// The device's secret key seed: the only secret in flash. Expanded into RAM at boot
    /// (`SecretKey::from_seed_into`), never sent.
    pub static DEVICE_KEY_SEED: &[u8; 32] = include_bytes!(concat!(env!("CLIFHE_DEVICE_ENROLLMENT_DIR"), "/device-key.seed"));
    /// The device's input image (`clifhe_core::device_input::DeviceInput::to_image`): preset,
    /// level, scale and the profile's input box. Public.
    pub static INPUT_IMAGE: &[u8; 140] = include_bytes!(concat!(env!("CLIFHE_DEVICE_ENROLLMENT_DIR"), "/input.bin"));
}
