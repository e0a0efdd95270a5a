//! The device example at the host's own preset, LEVELED_N14 (N = 2^14, q0 60 + 7 x 40 bits):
//! scan volume in flash -> 8 multivector features (fixed point, constant time) -> full-slot
//! integer CKKS encoding (the patient in
//! slots 0..7, zeros in the other 8184 slots) -> public-key encryption under the hospital key,
//! streamed prime by prime to a host file. Two patients (a 32^3 CT-like phantom with and without
//! its lesion), one ciphertext each: what `host-eval infer --device-ciphertexts` merges into a batch
//! and evaluates (the model's depth needs all 7 levels, so the device must encrypt at N = 2^14).
//!
//! EMULATOR-ONLY LAYOUT: built with the `qemu-n14` feature, which links with
//! `memory-qemu-n14.x` (4 MiB flash: the 3 MiB of N = 2^14 flash images do not fit the 2 MiB
//! budget part). RAM stays within the 512 KiB budget.
//!
//! Outputs (relative to QEMU's working directory, device-examples/):
//!   target/device-out/n14/patient<i>.clhe   public-key ciphertext of patient i (Kind::Ciphertext)
//!   target/device-out/n14/patient<i>.q32    the plaintext features, 8 little-endian i64 with 32
//!                                           fractional bits (test evidence only: a real device
//!                                           never sends them)
//! (scripts/device-tests.sh creates target/device-out/n14/: semihosting cannot make directories)
//!
//! Instruction counts: every step runs in a `bench::window`, so `scripts/device-tests.sh
//! --measure` counts them (patient 0 prime by prime, patient 1 as one total).
#![no_std]
#![no_main]

use clifhe_core::encode::fixed::fixed_scratch_len;
use clifhe_core::encrypt::Plaintext;
use clifhe_core::params::Params;
use clifhe_device::device::{self, DeviceError, DeviceKeys, FixedGeometry, PkBuffers, PkStream};
use clifhe_device::hostfile::{self, HostFile};
use clifhe_device::{bench, entropy, exit, images, scan, stack, vectors};
use core::ffi::CStr;
use rand_chacha::ChaCha20Rng;

const N: usize = 1 << 14;
/// Full-slot encoding: N/2 slots, so host rotations move the patient between 8-slot blocks.
const SLOTS: usize = N / 2;

struct Patient {
    volume: &'static [u8; scan::CT_VOXELS],
    ciphertext: &'static CStr,
    features: &'static CStr,
}

static PATIENTS: [Patient; 2] = [
    Patient {
        volume: &scan::CT_PHANTOM_LESION,
        ciphertext: c"target/device-out/n14/patient0.clhe",
        features: c"target/device-out/n14/patient0.q32",
    },
    Patient {
        volume: &scan::CT_PHANTOM_HEALTHY,
        ciphertext: c"target/device-out/n14/patient1.clhe",
        features: c"target/device-out/n14/patient1.q32",
    },
];

/// Window names of patient 0's per-prime steps (the chain: q0 60 bit, then the "40-bit" primes,
/// three of which are just above 2^40).
const PRIME_WINDOWS: [&str; 8] = [
    "n14 pk: prime 0 (60-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 1 (41-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 2 (40-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 3 (40-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 4 (41-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 5 (40-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 6 (41-bit): NTT(u), c0, c1, pack",
    "n14 pk: prime 7 (40-bit): NTT(u), c0, c1, pack",
];

fn run() -> Result<(), DeviceError> {
    bench::window("overhead (empty window)", || ());
    let keys = images::leveled_n14().load()?;
    let geom = scan::geometry(scan::CT_DIM)?;
    // One entropy source per boot, a fresh ChaCha20 seed per patient (src/entropy.rs).
    let mut source = entropy::board_entropy()?;
    for (i, p) in PATIENTS.iter().enumerate() {
        encrypt_patient(&keys, &geom, i, p, &mut entropy::patient_rng(&mut source)?)?;
        defmt::info!(
            "peak RAM after patient {=usize} (stack high-water mark): {=usize} bytes",
            i,
            stack::peak_stack_bytes()
        );
    }
    Ok(())
}

/// Features -> encoding -> streamed public-key encryption of one patient. RAM: the message
/// (N i64, 128 KiB) here, then either the encoder's frame or the encryption's (see below).
#[inline(never)]
fn encrypt_patient(keys: &DeviceKeys, geom: &FixedGeometry, i: usize, p: &Patient, rng: &mut ChaCha20Rng) -> Result<(), DeviceError> {
    let feats = bench::window("n14: feature extraction (32^3 CT-like phantom)", || scan::features(p.volume, geom))?;
    defmt::info!("patient {=usize}: features [1,e1,e2,e3,e12,e13,e23,e123] = {=[?]}", i, feats);
    let mut fb = [0u8; 8 * vectors::SLOTS];
    for (o, f) in fb.chunks_exact_mut(8).zip(feats) {
        o.copy_from_slice(&f.to_le_bytes());
    }
    hostfile::write(p.features, &fb).map_err(|_| DeviceError::Sink)?;

    let mut coeffs = [0i64; N];
    let pt = bench::window("n14: encode (8192 slots, patient in 0..7)", || {
        encode_full_slot(&keys.params, &feats, &mut coeffs)
    })?;
    let sent = encrypt_pk(keys, &pt, i == 0, p.ciphertext, rng)?;
    defmt::info!("patient {=usize}: public-key ciphertext sent: {=usize} bytes", i, sent);
    Ok(())
}

/// Streams the public-key ciphertext of `pt` to `path`; returns the bytes sent. Its own frame
/// (the noise, 3N i8 = 48 KiB, and two N-word limbs, 256 KiB), separate from the encoder's.
/// `per_prime`: each prime in its own instruction-count window (their sum is the total).
#[inline(never)]
fn encrypt_pk(
    keys: &DeviceKeys,
    pt: &Plaintext<&mut [i64], i64>,
    per_prime: bool,
    path: &CStr,
    rng: &mut ChaCha20Rng,
) -> Result<usize, DeviceError> {
    let mut file = HostFile::create(path).map_err(|_| DeviceError::Sink)?;
    let mut sink = |b: &[u8]| file.write_all(b).map_err(|_| DeviceError::Sink);
    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let (mut u_hat, mut limb) = ([0u64; N], [0u64; N]);
    let bufs = PkBuffers {
        u: &mut u,
        e0: &mut e0,
        e1: &mut e1,
        u_hat: &mut u_hat,
        limb: &mut limb,
    };
    if per_prime {
        let mut s = bench::window("n14 pk: sample u,e0,e1 + header", || {
            PkStream::begin(keys, pt, bufs, rng, &mut sink)
        })?;
        for (j, name) in PRIME_WINDOWS.iter().enumerate().take(s.primes()) {
            bench::window(name, || s.prime(j, &mut sink))?;
        }
    } else {
        bench::window("n14 pk: encryption total (8 primes)", || {
            PkStream::begin(keys, pt, bufs, rng, &mut sink)?.finish(&mut sink)
        })?;
    }
    Ok(file.written())
}

/// Full-slot encoding of one patient in slots 0..7 (the integer encoder, 2 x 8192 x 8 products
/// over two root tables of 768 words). Its own frame, freed before the encryption buffers are
/// live.
#[inline(never)]
fn encode_full_slot<'a>(params: &Params, feats: &[i64; 8], coeffs: &'a mut [i64]) -> Result<Plaintext<&'a mut [i64], i64>, DeviceError> {
    let mut scratch = [0i64; fixed_scratch_len(SLOTS)];
    device::encode_features(params, feats, SLOTS, coeffs, &mut scratch)
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
            defmt::error!("encrypt_scan_n14 failed: {}", e);
            exit::failure()
        }
    }
}
