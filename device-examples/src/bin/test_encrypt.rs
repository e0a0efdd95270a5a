//! On-target encoding and encryption tests against the host's known answers:
//! - encoding the fixed features (integer encoder) gives bit-identical coefficients to the
//!   host's, and decoding them recovers the features (encoding precision);
//! - public-key and seeded secret-key encryption with fixed ChaCha20 seeds, streamed prime by
//!   prime, are byte-identical to the host's one-shot encryptions (SHA-256 of the wire bytes;
//!   the files also go to target/device-out/ for a byte-wise `cmp` on the host).
#![no_std]
#![no_main]

use clifhe_core::encode::fixed::fixed_scratch_len;
use clifhe_core::encode::{decode, encode_scratch_len, Complex};
use clifhe_core::keys::{SecretKey, SecretSeed};
use clifhe_device::device::{self, DeviceError, PkBuffers, PkInPlaceBuffers, PkStream};
use clifhe_device::harness::Failure;
use clifhe_device::hostfile::HostFile;
use clifhe_device::{check, harness, images, vectors};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const N: usize = 4096;
const SCRATCH: usize = fixed_scratch_len(vectors::SLOTS);

fn fail(what: &'static str) -> Failure {
    Failure { what, got: 0, want: 1 }
}

fn encoding() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    let mut coeffs = [0i64; N];
    let mut scratch = [0i64; SCRATCH];
    let pt = device::encode_features(&keys.params, &vectors::KAT_FEATURES, vectors::SLOTS, &mut coeffs, &mut scratch)
        .map_err(|_| fail("encode"))?;
    let mut h = Sha256::new();
    for c in pt.coeffs() {
        h.update(c.to_le_bytes());
    }
    check!(h.finalize().as_slice() == images::kat_n12::ENCODE, "encoded coefficients == host");
    // The float decoder (test code: the device itself never decodes) recovers the features.
    let mut as_f64 = [0f64; N];
    for (o, c) in as_f64.iter_mut().zip(pt.coeffs()) {
        *o = *c as f64;
    }
    let mut out = [Complex::default(); vectors::SLOTS];
    let mut dscratch = [Complex::default(); encode_scratch_len(vectors::SLOTS)];
    decode(&as_f64, N, pt.scale(), &mut out, &mut dscratch).map_err(|_| fail("decode"))?;
    let mut max_err = 0f64;
    for (k, o) in out.iter().enumerate() {
        max_err = max_err.max(libm_abs(o.re - vectors::kat_feature(k))).max(libm_abs(o.im));
    }
    defmt::info!("encoding precision at scale 2^40: max |decode(encode(x)) - x| = {=f64}", max_err);
    // Rounding to integers at scale 2^40 bounds the error near 2^-40 * sqrt(N); allow 2^-30.
    check!(max_err < 1.0 / (1u64 << 30) as f64, "encoding precision");
    Ok(())
}

fn libm_abs(x: f64) -> f64 {
    if x < 0.0 {
        -x
    } else {
        x
    }
}

/// Hashes and writes each chunk as it is produced (the file is the host-side `cmp` evidence).
fn sink_to<'f>(file: &'f mut HostFile, h: &'f mut Sha256) -> impl FnMut(&[u8]) -> Result<(), DeviceError> + 'f {
    move |b| {
        h.update(b);
        file.write_all(b).map_err(|_| DeviceError::Sink)
    }
}

fn pk_encryption_known_answer() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    let mut coeffs = [0i64; N];
    let mut scratch = [0i64; SCRATCH];
    let pt = device::encode_features(&keys.params, &vectors::KAT_FEATURES, vectors::SLOTS, &mut coeffs, &mut scratch)
        .map_err(|_| fail("encode"))?;
    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let (mut u_hat, mut limb) = ([0u64; N], [0u64; N]);
    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_PK_ENC_SEED);
    let mut file = HostFile::create(c"target/device-out/ct_pk_kat.clhe").map_err(|_| fail("open output"))?;
    let mut h = Sha256::new();
    {
        let mut sink = sink_to(&mut file, &mut h);
        let bufs = PkBuffers {
            u: &mut u,
            e0: &mut e0,
            e1: &mut e1,
            u_hat: &mut u_hat,
            limb: &mut limb,
        };
        let stream = PkStream::begin(&keys, &pt, bufs, &mut rng, &mut sink).map_err(|_| fail("begin"))?;
        stream.finish(&mut sink).map_err(|_| fail("stream primes"))?;
    }
    defmt::info!("pk ciphertext: {=usize} bytes", file.written());
    check!(
        h.finalize().as_slice() == images::kat_n12::CT_PK,
        "streamed pk ciphertext == host bytes"
    );
    Ok(())
}

/// The low-RAM stream (compact message, one limb buffer, inverse transforms) gives the same
/// bytes as the host's one-shot encryption: the digest of the known answer above.
fn pk_in_place_encryption_known_answer() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    let mut coeffs = [0i64; 2 * vectors::SLOTS];
    let mut scratch = [0i64; SCRATCH];
    let pt = device::encode_features(&keys.params, &vectors::KAT_FEATURES, vectors::SLOTS, &mut coeffs, &mut scratch)
        .map_err(|_| fail("encode"))?;
    let (mut u, mut e0, mut e1) = ([0i8; N], [0i8; N], [0i8; N]);
    let mut limb = [0u64; N];
    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_PK_ENC_SEED);
    let mut h = Sha256::new();
    let mut sink = |b: &[u8]| {
        h.update(b);
        Ok(())
    };
    let bufs = PkInPlaceBuffers {
        u: &mut u,
        e0: &mut e0,
        e1: &mut e1,
        limb: &mut limb,
    };
    device::pk_stream_in_place(&keys, &pt, bufs, &mut rng, &mut sink).map_err(|_| fail("in-place stream"))?;
    check!(
        h.finalize().as_slice() == images::kat_n12::CT_PK,
        "low-RAM pk ciphertext == host bytes"
    );
    Ok(())
}

fn sk_encryption_known_answer() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    let mut coeffs = [0i64; N];
    let mut scratch = [0i64; SCRATCH];
    let pt = device::encode_features(&keys.params, &vectors::KAT_FEATURES, vectors::SLOTS, &mut coeffs, &mut scratch)
        .map_err(|_| fail("encode"))?;
    let mut sk_store = [0i8; N];
    let sk = SecretKey::from_seed_into(&keys.params, &SecretSeed::new(*images::kat_n12::SK_SEED), &mut sk_store[..])
        .map_err(|_| fail("secret key"))?;
    let mut e = [0i8; N];
    let (mut s_hat, mut limb) = ([0u64; N], [0u64; N]);
    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_SK_ENC_SEED);
    let mut file = HostFile::create(c"target/device-out/ct_sk_kat.clhe").map_err(|_| fail("open output"))?;
    let mut h = Sha256::new();
    {
        let mut sink = sink_to(&mut file, &mut h);
        device::sk_stream(&keys, &sk, &pt, &mut e, &mut s_hat, &mut limb, &mut rng, &mut sink).map_err(|_| fail("seeded sk stream"))?;
    }
    defmt::info!("seeded sk ciphertext: {=usize} bytes", file.written());
    check!(
        h.finalize().as_slice() == images::kat_n12::CT_SK,
        "streamed seeded ciphertext == host bytes"
    );
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    harness::run(
        "encrypt",
        &[
            ("encoding_known_answer_and_precision", encoding),
            ("pk_encryption_byte_identical_to_host", pk_encryption_known_answer),
            ("pk_low_ram_encryption_byte_identical_to_host", pk_in_place_encryption_known_answer),
            ("seeded_sk_encryption_byte_identical_to_host", sk_encryption_known_answer),
        ],
    )
}
