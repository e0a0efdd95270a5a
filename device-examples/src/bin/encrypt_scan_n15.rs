//! An enrolled device at the vendor's circuit-private preset, PRIVATE_N15 (N = 2^15, q0 61 +
//! 11 x 55 bits), in the 2 MiB flash / 512 KiB RAM budget part (default layout
//! `memory-budget.x`).
//!
//! The hospital's public key at this preset would not fit (one `b` limb is 256 KiB, the input
//! level needs 9), nor would N-word NTT tables (256 KiB per prime and direction). So the device
//! is *enrolled* (`host-eval device-enroll`): it holds its own secret key seed and an input
//! image (the level, scale and input box of the vendor's profile), and encrypts each patient
//! with seeded secret-key encryption under its own key (core's `device_input`), one prime at a
//! time in one N-word limb whose NTT computes its twiddles per block (`CompactNtt`). The vendor
//! switches the ciphertexts to the hospital's key with the switching key the enrolment
//! registered, and builds the profile's batch from them.
//!
//! Boot: the preset, the input image, each prime's roots (psi, psi^-1: the only divisions, on
//! public data), the device key expanded from its seed into a stack array (wiped when the key
//! is dropped). Then two patients (the 32^3 CT-like phantoms of `encrypt_scan_n14`, with and
//! without the lesion): fixed-point features -> `device::encrypt_volume_enrolled` -> a host
//! file, with a fresh ChaCha20 seed from the entropy source per patient.
//!
//! Built only with `CLIFHE_DEVICE_ENROLLMENT=DIR` (build.rs): there is no test key.
//!
//! Outputs (relative to QEMU's working directory, device-examples/):
//!   target/device-out/n15/patient<i>.clhe   seeded ciphertext of patient i under the device key
//!                                           (Kind::SeededCiphertext, 8 slots, level of the
//!                                           enrolment), what `host-eval infer
//!                                           --device-ciphertexts --device-key` evaluates
//!   target/device-out/n15/patient<i>.q32    the plaintext features, 8 little-endian i64 with 32
//!                                           fractional bits (test evidence only: a real device
//!                                           never sends them)
//! (scripts/device-tests.sh creates target/device-out/n15/: semihosting cannot make directories)
//!
//! Instruction counts: the boot steps, each patient's features and each patient's whole path
//! (`encrypt_volume_enrolled`: features + box + encoding + encryption) run in `bench::window`s,
//! and one window builds a `CompactNtt` and runs one forward transform (the unit of the
//! per-prime cost), so `scripts/device-tests.sh --measure` counts them.
#![no_std]
#![no_main]

use clifhe_core::device_input::{DeviceInput, EnrolledBuffers, EnrolledEncryptor, PrimeRoots, DEVICE_SLOTS, MESSAGE_COEFFS};
use clifhe_core::encode::fixed::fixed_scratch_len;
use clifhe_core::ntt_compact::CompactNtt;
use clifhe_core::params::presets::PRIVATE_N15;
use clifhe_core::{Params, SecretKey, SecretSeed};
use clifhe_device::device::{self, DeviceError, FixedGeometry};
use clifhe_device::hostfile::{self, HostFile};
use clifhe_device::{bench, entropy, exit, images, scan, stack};
use core::ffi::CStr;
use rand_chacha::ChaCha20Rng;

const N: usize = 1 << 15;
/// Primes of PRIVATE_N15 (the enrolment's level uses the first `level + 1`).
const MAX_PRIMES: usize = 12;

type Roots = heapless::Vec<PrimeRoots, MAX_PRIMES>;

struct Patient {
    volume: &'static [u8; scan::CT_VOXELS],
    ciphertext: &'static CStr,
    features: &'static CStr,
}

static PATIENTS: [Patient; 2] = [
    Patient {
        volume: &scan::CT_PHANTOM_LESION,
        ciphertext: c"target/device-out/n15/patient0.clhe",
        features: c"target/device-out/n15/patient0.q32",
    },
    Patient {
        volume: &scan::CT_PHANTOM_HEALTHY,
        ciphertext: c"target/device-out/n15/patient1.clhe",
        features: c"target/device-out/n15/patient1.q32",
    },
];

fn run() -> Result<(), DeviceError> {
    bench::window("overhead (empty window)", || ());
    let params = Params::new(PRIVATE_N15).map_err(|_| DeviceError::FlashImage("preset"))?;
    let input = DeviceInput::from_image(&params, images::enrolled::INPUT_IMAGE)?;
    let level = usize::from(input.level);
    defmt::info!(
        "enrolment: preset private-n15 (N = 2^15), level {=usize} ({=usize} primes), scale 2^{=u32}",
        level,
        level + 1,
        input.log_scale
    );
    let roots = bench::window("n15 boot: PrimeRoots (psi, psi^-1) of the level's primes", || {
        prime_roots(&params, level)
    })?;
    // The device key, expanded from the seed in flash into this frame; `SecretKey` wipes the
    // storage when it is dropped (the end of `run`, on every path).
    let mut key_storage = [0i8; N];
    let key = bench::window("n15 boot: device key from its seed (ChaCha20, N ternary)", || {
        let seed = SecretSeed::from_slice(images::enrolled::DEVICE_KEY_SEED).ok_or(DeviceError::FlashImage("device key seed"))?;
        Ok::<_, DeviceError>(SecretKey::from_seed_into(&params, &seed, &mut key_storage[..])?)
    })?;
    let encryptor = EnrolledEncryptor::new(&params, &input, &roots, &key)?;
    let geom = scan::geometry(scan::CT_DIM)?;
    // One entropy source per boot, a fresh ChaCha20 seed per patient (src/entropy.rs).
    let mut source = entropy::board_entropy()?;
    for (i, p) in PATIENTS.iter().enumerate() {
        encrypt_patient(&encryptor, &geom, i, p, &mut entropy::patient_rng(&mut source)?)?;
        defmt::info!(
            "peak RAM after patient {=usize} (stack high-water mark): {=usize} bytes",
            i,
            stack::peak_stack_bytes()
        );
    }
    if let Some(r) = roots.first() {
        one_transform(r)?;
    }
    Ok(())
}

/// psi and psi^-1 of primes 0..=level (public data; `PrimeRoots::new` divides, at boot only).
fn prime_roots(params: &Params, level: usize) -> Result<Roots, DeviceError> {
    let mut roots = Roots::new();
    for i in 0..=level {
        let r = PrimeRoots::new(params, i).ok_or(DeviceError::FlashImage("prime roots"))?;
        roots.push(r).map_err(|_| DeviceError::FlashImage("more primes than the preset"))?;
    }
    Ok(roots)
}

/// Features (test evidence: written as `.q32`), then the whole per-patient path
/// `encrypt_volume_enrolled` streamed to the patient's file. RAM: the error polynomial (N i8,
/// 32 KiB) and one limb (N words, 256 KiB) in this frame.
#[inline(never)]
fn encrypt_patient<K: AsRef<[i8]> + AsMut<[i8]>>(
    encryptor: &EnrolledEncryptor<'_, K>,
    geom: &FixedGeometry,
    i: usize,
    p: &Patient,
    rng: &mut ChaCha20Rng,
) -> Result<(), DeviceError> {
    let feats = bench::window("n15: feature extraction (32^3 CT-like phantom)", || scan::features(p.volume, geom))?;
    defmt::info!("patient {=usize}: features [1,e1,e2,e3,e12,e13,e23,e123] = {=[?]}", i, feats);
    let mut fb = [0u8; 8 * DEVICE_SLOTS];
    for (o, f) in fb.chunks_exact_mut(8).zip(feats) {
        o.copy_from_slice(&f.to_le_bytes());
    }
    hostfile::write(p.features, &fb).map_err(|_| DeviceError::Sink)?;

    let mut file = HostFile::create(p.ciphertext).map_err(|_| DeviceError::Sink)?;
    let mut sink = |b: &[u8]| file.write_all(b).map_err(|_| DeviceError::Sink);
    let mut e = [0i8; N];
    let mut limb = [0u64; N];
    let mut message = [0i128; MESSAGE_COEFFS];
    let mut scratch = [0i64; fixed_scratch_len(DEVICE_SLOTS)];
    let bufs = EnrolledBuffers {
        e: &mut e,
        limb: &mut limb,
        message: &mut message,
        scratch: &mut scratch,
    };
    let moved = bench::window(
        "n15: per patient, encrypt_volume_enrolled (features + box + encode + sk encryption)",
        || device::encrypt_volume_enrolled(encryptor, geom, p.volume, bufs, rng, &mut sink),
    )?;
    let sent = file.written();
    defmt::info!(
        "patient {=usize}: seeded ciphertext under the device key sent: {=usize} bytes (expected {=usize}); box clamp moved a feature: {=bool}",
        i,
        sent,
        encryptor.ciphertext_bytes(),
        moved
    );
    if sent != encryptor.ciphertext_bytes() {
        return Err(DeviceError::Sink);
    }
    Ok(())
}

/// The unit of the per-prime cost: a `CompactNtt` from prime 0's roots and one forward
/// transform of an N-word limb (each prime runs one such transform and the products, the
/// ChaCha20 expansion of `a` and the packing).
#[inline(never)]
fn one_transform(r: &PrimeRoots) -> Result<(), DeviceError> {
    let mut limb = [0u64; N];
    for (j, w) in limb.iter_mut().enumerate() {
        *w = j as u64;
    }
    bench::window("n15: CompactNtt::from_roots + one forward NTT (N = 2^15, 61-bit q0)", || {
        let ntt = CompactNtt::from_roots(r.modulus, N, r.psi, r.psi_inv).map_err(|e| DeviceError::Core(e.into()))?;
        ntt.forward(&mut limb).map_err(|e| DeviceError::Core(e.into()))
    })
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
            defmt::error!("encrypt_scan_n15 failed: {}", e);
            exit::failure()
        }
    }
}
