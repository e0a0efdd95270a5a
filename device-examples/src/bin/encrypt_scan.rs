//! The device example: scan volume in flash -> 8 multivector features -> CKKS encoding in slots
//! 0..7 -> encryption under the hospital's public key, streamed prime by prime to a host file.
//! The key is the one the image was provisioned with (`images::provisioned`: a bundle from
//! `host-eval device-bundle`, given at build time as `CLIFHE_DEVICE_BUNDLE`); the seed of the
//! encryption comes fresh from the board's entropy source. Public-key mode only: no secret key
//! is in this image's flash (the seeded secret-key stream is tested by `test_encrypt` with the
//! test keys). Exits 0 on success.
//!
//! Outputs (relative to QEMU's working directory, device-examples/):
//!   target/device-out/scan_pk.clhe        public-key ciphertext (wire format, Kind::Ciphertext)
//!   target/device-out/scan_features.f64   the plaintext features (test evidence only: a real
//!                                          device never sends them)
#![no_std]
#![no_main]

use clifhe_core::encode::{encode_scratch_len, Complex};
use clifhe_core::encrypt::Plaintext;
use clifhe_device::device::{self, DeviceError, PkBuffers, PkStream};
use clifhe_device::hostfile::{self, HostFile};
use clifhe_device::{entropy, exit, images, scan, stack, vectors};
use rand_chacha::ChaCha20Rng;

const N: usize = 4096;


fn run() -> Result<(), DeviceError> {
    let keys = images::provisioned().load()?;
    let feats = scan::features(&scan::PHANTOM);
    defmt::info!("features [1,e1,e2,e3,e12,e13,e23,e123] = {=[?]}", feats);
    let mut fb = [0u8; 8 * vectors::SLOTS];
    for (o, f) in fb.chunks_exact_mut(8).zip(feats) {
        o.copy_from_slice(&f.to_le_bytes());
    }
    hostfile::write(c"target/device-out/scan_features.f64", &fb).map_err(|_| DeviceError::Sink)?;

    let mut coeffs = [0f64; N];
    let mut scratch = [Complex::default(); encode_scratch_len(vectors::SLOTS)];
    let pt = device::encode_features(&keys.params, &feats, &mut coeffs, &mut scratch)?;
    // One entropy source per boot, a fresh ChaCha20 seed per encryption (src/entropy.rs).
    let mut source = entropy::board_entropy()?;

    // Public-key mode: what a hospital device sends, in its own (non-inlined) frame so the stack
    // high-water mark after it is the RAM of that mode.
    encrypt_pk_mode(&keys, &pt, &mut entropy::patient_rng(&mut source)?)?;
    defmt::info!("peak RAM of features + encode + pk encryption (stack high-water mark): {=usize} bytes", stack::peak_stack_bytes());
    Ok(())
}

/// Public-key mode: RAM = noise (3N i8) + two N-word limbs + a 512-byte packing buffer.
#[inline(never)]
fn encrypt_pk_mode(keys: &device::DeviceKeys, pt: &Plaintext<&mut [f64]>, rng: &mut ChaCha20Rng) -> Result<(), DeviceError> {
    let mut file = HostFile::create(c"target/device-out/scan_pk.clhe").map_err(|_| DeviceError::Sink)?;
    let mut sink = |b: &[u8]| file.write_all(b).map_err(|_| DeviceError::Sink);
    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let (mut u_hat, mut limb) = ([0u64; N], [0u64; N]);
    let bufs = PkBuffers { u: &mut u, e0: &mut e0, e1: &mut e1, u_hat: &mut u_hat, limb: &mut limb };
    PkStream::begin(keys, pt, bufs, rng, &mut sink)?.finish(&mut sink)?;
    defmt::info!("public-key ciphertext sent: {=usize} bytes", file.written());
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let result = run();
    defmt::info!("peak RAM overall (stack high-water mark): {=usize} bytes", stack::peak_stack_bytes());
    match result {
        Ok(()) => exit::success(),
        Err(e) => {
            defmt::error!("encrypt_scan failed: {}", e);
            exit::failure()
        }
    }
}
