//! Instruction-count benchmark (DEVICE_N12: N = 4096, q0 60 + q1 41 bits): run with
//! `scripts/device-tests.sh --measure`, which loads the `qemu-insncount` plugin with the
//! addresses of `bench_start`/`bench_stop` and pairs each logged window name with its count.
//!
//! The ciphertext bytes go to a null sink here (packing is counted, the transport is not: it
//! depends on the device's link). Windows do not nest, so the totals run as separate passes.
#![no_std]
#![no_main]

use clifhe_core::encode::fixed::fixed_scratch_len;
use clifhe_core::keys::{SecretKey, SecretSeed};
use clifhe_device::device::{self, DeviceError, PkBuffers, PkInPlaceBuffers, PkStream};
use clifhe_device::{bench, exit, images, scan, stack, vectors};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const N: usize = 4096;

fn null_sink(b: &[u8]) -> Result<(), DeviceError> {
    core::hint::black_box(b);
    Ok(())
}

fn run() -> Result<(), DeviceError> {
    bench::window("overhead (empty window)", || ());
    let keys = images::device_n12().load()?;
    let geom = scan::geometry(scan::DIM)?;
    let feats = bench::window("feature extraction (16^3 phantom, fixed point)", || {
        scan::features(&scan::PHANTOM, &geom)
    })?;
    let mut coeffs = [0i64; N];
    let mut scratch = [0i64; fixed_scratch_len(vectors::SLOTS)];
    let pt = bench::window("encode (8 slots, N=4096, integer)", || {
        device::encode_features(&keys.params, &feats, vectors::SLOTS, &mut coeffs, &mut scratch)
    })?;
    let mut sink = null_sink;

    // One forward NTT on q0 (60-bit) of a full-size polynomial.
    let mut a = [0u64; N];
    for (j, x) in a.iter_mut().enumerate() {
        *x = vectors::ntt_input(j, keys.params.q()[0]);
    }
    let t0 = keys.tables.first().ok_or(DeviceError::FlashImage("table"))?;
    bench::window("one forward NTT (N=4096, q0)", || t0.forward(&mut a)).map_err(|_| DeviceError::FlashImage("ntt"))?;

    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let (mut u_hat, mut limb) = ([0u64; N], [0u64; N]);
    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_PK_ENC_SEED);
    // Pass 1: per prime (after noise sampling + header, which get their own window).
    {
        let bufs = PkBuffers {
            u: &mut u,
            e0: &mut e0,
            e1: &mut e1,
            u_hat: &mut u_hat,
            limb: &mut limb,
        };
        let mut s = bench::window("pk: sample u,e0,e1 + header", || {
            PkStream::begin(&keys, &pt, bufs, &mut rng, &mut sink)
        })?;
        bench::window("pk: prime 0 (60-bit): NTT(u), c0, c1, pack", || s.prime(0, &mut sink))?;
        bench::window("pk: prime 1 (41-bit): NTT(u), c0, c1, pack", || s.prime(1, &mut sink))?;
    }
    // Pass 2: the whole public-key encryption (what one patient costs after encoding).
    {
        let bufs = PkBuffers {
            u: &mut u,
            e0: &mut e0,
            e1: &mut e1,
            u_hat: &mut u_hat,
            limb: &mut limb,
        };
        bench::window("pk: encryption total (both primes)", || {
            PkStream::begin(&keys, &pt, bufs, &mut rng, &mut sink)?.finish(&mut sink)
        })?;
    }
    let pk_peak = stack::peak_stack_bytes();
    defmt::info!(
        "peak stack after feature extraction + encode + pk encryption: {=usize} bytes",
        pk_peak
    );

    // Low-RAM mode (what encrypt_scan runs): compact message, one limb buffer, inverse NTTs.
    let mut compact = [0i64; 2 * vectors::SLOTS];
    let pt_c = device::encode_features(&keys.params, &feats, vectors::SLOTS, &mut compact, &mut scratch)?;
    {
        let bufs = PkInPlaceBuffers {
            u: &mut u,
            e0: &mut e0,
            e1: &mut e1,
            limb: &mut limb,
        };
        bench::window("pk low-RAM: encryption total (both primes, one limb buffer)", || {
            device::pk_stream_in_place(&keys, &pt_c, bufs, &mut rng, &mut sink)
        })?;
    }
    drop(pt_c);
    {
        let msg = device::MessageBuffers {
            coeffs: &mut compact,
            scratch: &mut scratch,
        };
        let bufs = PkInPlaceBuffers {
            u: &mut u,
            e0: &mut e0,
            e1: &mut e1,
            limb: &mut limb,
        };
        bench::window("per patient, low-RAM: features + encode + encryption (encrypt_volume_pk)", || {
            device::encrypt_volume_pk(&keys, &geom, &scan::PHANTOM, vectors::SLOTS, msg, bufs, &mut rng, &mut sink)
        })?;
    }

    // Seeded secret-key mode.
    let mut sk_store = [0i8; N];
    let sk = SecretKey::from_seed_into(&keys.params, &SecretSeed::new(*images::kat_n12::SK_SEED), &mut sk_store[..])?;
    bench::window("sk seeded: encryption total (both primes)", || {
        device::sk_stream(&keys, &sk, &pt, &mut e0, &mut u_hat, &mut limb, &mut rng, &mut sink)
    })?;
    defmt::info!("peak stack overall: {=usize} bytes", stack::peak_stack_bytes());
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    match run() {
        Ok(()) => exit::success(),
        Err(e) => {
            defmt::error!("bench failed: {}", e);
            exit::failure()
        }
    }
}
