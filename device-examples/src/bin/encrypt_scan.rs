//! The device example: scan volume in flash -> 8 multivector features (fixed point, constant
//! time) -> integer CKKS encoding in slots 0..7 -> encryption under the hospital's public key,
//! streamed prime by prime to a host file.
//! The key is the one the image was provisioned with (`images::provisioned`: a bundle from
//! `host-eval device-bundle`, given at build time as `CLIFHE_DEVICE_BUNDLE`); the seed of the
//! encryption comes fresh from the board's entropy source. Public-key mode only: no secret key
//! is in this image's flash (the seeded secret-key stream is tested by `test_encrypt` with the
//! test keys). Exits 0 on success.
//!
//! Outputs (relative to QEMU's working directory, device-examples/):
//!   target/device-out/scan_pk.clhe        public-key ciphertext (wire format, Kind::Ciphertext)
//!   target/device-out/scan_features.q32   the plaintext features, 8 little-endian i64 with 32
//!                                          fractional bits (test evidence only: a real device
//!                                          never sends them)
#![no_std]
#![no_main]

use clifhe_core::encode::fixed::fixed_scratch_len;
use clifhe_device::device::{self, DeviceError, FixedGeometry, MessageBuffers, PkInPlaceBuffers};
use clifhe_device::hostfile::{self, HostFile};
use clifhe_device::{entropy, exit, images, scan, stack, vectors};
use rand_chacha::ChaCha20Rng;

const N: usize = 4096;

fn run() -> Result<(), DeviceError> {
    let keys = images::provisioned().load()?;
    // Public geometry, once per boot (the only floating point in the image's data path).
    let geom = scan::geometry(scan::DIM)?;
    // Test evidence: the features the encryption below computes again inside its constant-time
    // path. A real device never sends them.
    let feats = scan::features(&scan::PHANTOM, &geom)?;
    defmt::info!("features [1,e1,e2,e3,e12,e13,e23,e123] (fixed point, 2^-32) = {=[?]}", feats);
    let mut fb = [0u8; 8 * vectors::SLOTS];
    for (o, f) in fb.chunks_exact_mut(8).zip(feats) {
        o.copy_from_slice(&f.to_le_bytes());
    }
    hostfile::write(c"target/device-out/scan_features.q32", &fb).map_err(|_| DeviceError::Sink)?;

    // One entropy source per boot, a fresh ChaCha20 seed per encryption (src/entropy.rs).
    let mut source = entropy::board_entropy()?;

    // Public-key mode: what a hospital device sends, in its own (non-inlined) frame so the stack
    // high-water mark after it is the RAM of that mode.
    encrypt_pk_mode(&keys, &geom, &mut entropy::patient_rng(&mut source)?)?;
    defmt::info!(
        "peak RAM of features + encode + pk encryption (stack high-water mark): {=usize} bytes",
        stack::peak_stack_bytes()
    );
    Ok(())
}

/// Public-key mode, low RAM: the compact message (2 x 8 i64), the noise (3N i8, 12 KiB), one
/// N-word limb (32 KiB), the encoder's root tables and a 512-byte packing buffer. The
/// per-patient work is `device::encrypt_volume_pk`, the function the disassembly test
/// (`ct-check`) starts from.
#[inline(never)]
fn encrypt_pk_mode(keys: &device::DeviceKeys, geom: &FixedGeometry, rng: &mut ChaCha20Rng) -> Result<(), DeviceError> {
    let mut file = HostFile::create(c"target/device-out/scan_pk.clhe").map_err(|_| DeviceError::Sink)?;
    let mut sink = |b: &[u8]| file.write_all(b).map_err(|_| DeviceError::Sink);
    let (mut coeffs, mut scratch) = ([0i64; 2 * vectors::SLOTS], [0i64; fixed_scratch_len(vectors::SLOTS)]);
    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let mut limb = [0u64; N];
    let msg = MessageBuffers {
        coeffs: &mut coeffs,
        scratch: &mut scratch,
    };
    let bufs = PkInPlaceBuffers {
        u: &mut u,
        e0: &mut e0,
        e1: &mut e1,
        limb: &mut limb,
    };
    device::encrypt_volume_pk(keys, geom, &scan::PHANTOM, vectors::SLOTS, msg, bufs, rng, &mut sink)?;
    defmt::info!("public-key ciphertext sent: {=usize} bytes", file.written());
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let result = run();
    defmt::info!(
        "peak RAM overall (stack high-water mark): {=usize} bytes",
        stack::peak_stack_bytes()
    );
    match result {
        Ok(()) => exit::success(),
        Err(e) => {
            defmt::error!("encrypt_scan failed: {}", e);
            exit::failure()
        }
    }
}
