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
use clifhe_core::multivector::axes::axis_channels;
use clifhe_core::multivector::channels::{shell_channels, ShellConfig};
use clifhe_core::multivector::depth::{depth_channel, MAX_DEPTH};
use clifhe_core::multivector::features::{FeatureConfig, FeatureError, VolumeView};
use clifhe_core::Multivector;
use clifhe_device::device::{self, DeviceError, FixedDepth, FixedShells, PkBuffers, PkInPlaceBuffers, PkStream};
use clifhe_device::{bench, exit, images, scan, stack, vectors};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const N: usize = 4096;

fn null_sink(b: &[u8]) -> Result<(), DeviceError> {
    core::hint::black_box(b);
    Ok(())
}

// Its own frame (not inlined into `main`): `channels` runs first, below a small `main` frame.
#[inline(never)]
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

/// The largest |difference| between fixed-point channels (`shells` shells, then 3 axes) and
/// core's f64 `shell_channels`/`axis_channels` of the same 32^3 volume.
fn f64_channel_error(fixed: &[[i64; 8]], volume: &[u8], shells: &FixedShells) -> Result<f64, DeviceError> {
    let view = VolumeView::new(volume, [scan::CT_DIM; 3], [1.0; 3])?;
    let mut want = [Multivector::zero(); 11];
    let shells_f64 = ShellConfig::uniform(255.0, shells.shells())?.with_weighting(shells.weighting());
    let (cfg, shells) = (shells_f64, shells.shells());
    shell_channels(&view, &cfg, &mut want[..shells])?;
    axis_channels(&view, &FeatureConfig { intensity_scale: 255.0 }, &mut want[shells..shells + 3])?;
    let mut err = 0.0f64;
    for (f, w) in fixed.iter().zip(&want) {
        for (a, b) in f.iter().zip(w.coeffs()) {
            err = err.max((*a as f64 / 4294967296.0 - b).abs());
        }
    }
    Ok(err)
}

/// The equivariant model's channels of the 32^3 CT-like phantom (4 shells + 3 axes, and 8
/// shells + 3 axes; hard and, as `train --arch equivariant` uses them, tent-weighted shells),
/// in a frame of their own before `run`'s large buffers, so the stack high-water mark read
/// here is the channels' RAM.
#[inline(never)]
fn channels() -> Result<(), DeviceError> {
    let geom = scan::geometry(scan::CT_DIM)?;
    let (shells4, shells8) = (FixedShells::uniform(255, 4)?, FixedShells::uniform(255, 8)?);
    let tents4 = FixedShells::uniform_tent(255, 4)?;
    let (mut out4, mut out) = ([[0i64; 8]; 7], [[0i64; 8]; 11]);
    let mut tent_out = [[0i64; 8]; 7];
    bench::window("equivariant channels (32^3 CT phantom): 4 tent-weighted shells + 3 axes", || {
        device::channels_volume_fixed(&geom, Some(&tents4), true, &scan::CT_PHANTOM_LESION, &mut tent_out)
    })?;
    let n4 = bench::window("equivariant channels (32^3 CT phantom): 4 shells + 3 axes", || {
        device::channels_volume_fixed(&geom, Some(&shells4), true, &scan::CT_PHANTOM_LESION, &mut out4)
    })?;
    let n8 = bench::window("equivariant channels (32^3 CT phantom): 8 shells + 3 axes", || {
        device::channels_volume_fixed(&geom, Some(&shells8), true, &scan::CT_PHANTOM_LESION, &mut out)
    })?;
    bench::window("equivariant channels (32^3 CT phantom): 3 axes only", || {
        device::channels_volume_fixed(&geom, None, true, &scan::CT_PHANTOM_LESION, &mut out)
    })?;
    bench::window("equivariant channels (32^3 CT phantom): 4 shells only", || {
        device::channels_volume_fixed(&geom, Some(&shells4), false, &scan::CT_PHANTOM_LESION, &mut out)
    })?;
    defmt::info!(
        "equivariant channels: {=usize} and {=usize} channels; peak stack {=usize} bytes",
        n4,
        n8,
        stack::peak_stack_bytes()
    );
    for (k, c) in out4.iter().enumerate() {
        defmt::info!("channel {=usize} (2^-32 units): {=[?]}", k, &c[..]);
    }
    // The same channels by the host's f64 definition (soft float, outside any window and after
    // the stack reading): the fixed-point ones must agree to 1e-6 in every blade.
    let err = f64_channel_error(&out4, &scan::CT_PHANTOM_LESION, &shells4)?;
    defmt::info!("equivariant channels: max |fixed - f64| = {=f64} (4 shells + 3 axes)", err);
    let tent_err = f64_channel_error(&tent_out, &scan::CT_PHANTOM_LESION, &tents4)?;
    defmt::info!("equivariant channels: max |fixed - f64| = {=f64} (4 tent-weighted shells + 3 axes)", tent_err);
    if err >= 1e-6 || tent_err >= 1e-6 {
        return Err(DeviceError::Features(FeatureError::Overflow));
    }
    Ok(())
}

/// The interior depth channel of the same phantom, in a frame of its own after `channels`
/// (the stack high-water mark then includes its byte per voxel), checked against core's f64
/// `depth_channel`.
#[inline(never)]
fn depth() -> Result<(), DeviceError> {
    let geom = scan::geometry(scan::CT_DIM)?;
    let threshold = FixedDepth::new(255)?;
    let mut depths = [0u8; scan::CT_VOXELS];
    let mut line = [0u16; scan::CT_DIM + 2 * MAX_DEPTH];
    let mut out = [0i64; 8];
    bench::window("equivariant channels (32^3 CT phantom): interior depth", || {
        device::depth_channel_volume_fixed(&geom, &threshold, &scan::CT_PHANTOM_LESION, &mut depths, &mut line, &mut out)
    })?;
    defmt::info!(
        "depth channel (2^-32 units): {=[?]}; peak stack {=usize} bytes",
        &out[..],
        stack::peak_stack_bytes()
    );
    let view = VolumeView::new(&scan::CT_PHANTOM_LESION[..], [scan::CT_DIM; 3], [1.0; 3])?;
    let mut want = Multivector::zero();
    depth_channel(&view, &FeatureConfig { intensity_scale: 255.0 }, &mut depths, &mut line, &mut want)?;
    let mut err = 0.0f64;
    for (a, b) in out.iter().zip(want.coeffs()) {
        err = err.max((*a as f64 / 4294967296.0 - b).abs());
    }
    defmt::info!("depth channel: max |fixed - f64| = {=f64}", err);
    if err >= 1e-6 {
        return Err(DeviceError::Features(FeatureError::Overflow));
    }
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    match channels().and_then(|()| depth()).and_then(|()| run()) {
        Ok(()) => exit::success(),
        Err(e) => {
            defmt::error!("bench failed: {}", e);
            exit::failure()
        }
    }
}
