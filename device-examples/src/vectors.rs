//! Fixed test inputs shared, source for source, by the firmware and by the host generator
//! (`host-tool`, which includes this file with `#[path]`). The host runs the same routines with
//! the host build of clifhe-core and records SHA-256 digests of the results; the firmware
//! recomputes them on the Cortex-M4 and must match bit for bit.
//!
//! Provenance of every known answer: `host-tool gen` (x86-64, clifhe-core at the same commit),
//! from the inputs below; nothing is copied from another implementation.

use clifhe_core::arith::Modulus;

/// ChaCha20 seed of the public-key known-answer encryption (stands in for the device TRNG).
pub const KAT_PK_ENC_SEED: [u8; 32] = *b"clifhe device KAT: pk encryption";
/// ChaCha20 seed of the seeded secret-key known-answer encryption.
pub const KAT_SK_ENC_SEED: [u8; 32] = *b"clifhe device KAT: sk encryption";
/// ChaCha20 seed of the (test-only, deterministic) hospital key pair the host generates.
pub const TEST_KEY_SEED: [u8; 32] = *b"clifhe device test hospital keys";

/// Slots used by one patient: the 8 Cl(3,0) components [1, e1, e2, e3, e12, e13, e23, e123].
pub const SLOTS: usize = 8;

/// A fixed feature vector (magnitudes typical of normalised scan features) for the known-answer
/// encryptions, so they do not depend on the feature extractor: fixed point with 32 fractional
/// bits (`encode::fixed::FRAC_BITS`), the format the device encodes. The values are 0.4375,
/// -0.125, 0.0625, 0.25, -0.03125, 0.015625, -0.5 and 0.9 (the last one rounded down to
/// `floor(0.9 * 2^32)`).
pub const KAT_FEATURES: [i64; SLOTS] = [
    1879048192,
    -536870912,
    268435456,
    1073741824,
    -134217728,
    67108864,
    -2147483648,
    3865470566,
];

/// `KAT_FEATURES[k]` as a real number (exact: every value is a multiple of 2^-32). Host and
/// test code only.
pub fn kat_feature(k: usize) -> f64 {
    KAT_FEATURES[k] as f64 / (1u64 << 32) as f64
}

/// Maximum |decoded - original| accepted after a fresh encryption at scale 2^40 (fresh noise
/// is about 2^-30 per slot; this leaves two orders of magnitude of margin).
pub const MAX_ROUNDTRIP_ERROR: f64 = 1e-6;

/// SplitMix64: a fixed, dependency-free generator of test operands (not for secrets).
pub const fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Coefficient `j` of the NTT known-answer input modulo `q`.
pub fn ntt_input(j: usize, q: u64) -> u64 {
    splitmix64(j as u64 ^ q.rotate_left(17)) % q
}

/// Operand pairs of the modular-arithmetic known answers.
pub const ARITH_CASES: usize = 256;

/// Runs every `Modulus` operation on `ARITH_CASES` fixed operand pairs (plus edge values) and
/// feeds the little-endian results to `sink`, in a fixed order.
pub fn arith_kat(m: &Modulus, sink: &mut impl FnMut(&[u8])) {
    let q = m.value();
    let edges = [0u64, 1, 2, q / 2, q - 2, q - 1];
    for i in 0..ARITH_CASES + edges.len() {
        let (a, b) = match edges.get(i.wrapping_sub(ARITH_CASES)) {
            Some(&e) if i >= ARITH_CASES => (e, q - 1 - e),
            _ => {
                let r = splitmix64(i as u64 ^ q);
                (r % q, splitmix64(r) % q)
            }
        };
        let wide = (a as u128) * (b as u128) + (splitmix64(a) as u128);
        let signed = splitmix64(b) as i64;
        let results = [
            m.add(a, b),
            m.sub(a, b),
            m.neg(a),
            m.mul(a, b),
            m.mul_shoup(a, b, m.shoup(b)),
            m.mul_shoup_lazy(a, b, m.shoup(b)),
            m.reduce(splitmix64(a)),
            m.reduce_u128(wide),
            m.reduce_i64(signed),
            m.pow(a, b),
            if a == 0 { 0 } else { m.inv(a) },
            m.center(a) as u64,
            m.reduce_f64_integer((signed >> 12) as f64),
        ];
        for r in results {
            sink(&r.to_le_bytes());
        }
    }
}
