//! Randomness: secret distributions (constant time) and public uniform polynomials from seeds.
//!
//! Every function takes the generator from the caller (`rand_core` traits, docs/architecture.md §4).
//! Secret samplers consume a fixed number of random words per coefficient and contain no
//! data-dependent branch or table index. Public uniform polynomials (`a` halves of keys and
//! seeded ciphertexts) are expanded from a 32-byte seed with ChaCha20, one independent stream
//! per (purpose, prime), so any prime's limb can be regenerated alone — in any order, which is
//! what prime-by-prime streaming and the host's seed decompression need.

use crate::arith::Modulus;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// Centred binomial parameter: the sum of 21 bit differences has variance 10.5, standard
/// deviation 3.24, matching the sigma = 3.2 error of the HomomorphicEncryption.org standard.
/// Its support [-21, 21] makes every error fit in an `i8`.
pub const CBD_ETA: u32 = 21;

/// Length of public and secret seeds.
pub const SEED_BYTES: usize = 32;

/// Domain separation of the public seed streams. The stream id is `purpose << 32 | index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum SeedPurpose {
    /// The `a` half of a public key, per ciphertext prime.
    PublicKeyA = 1,
    /// The `a` half of a seeded secret-key ciphertext, per prime.
    CiphertextA = 2,
    /// `a` halves of key-switching keys (relinearization, Galois, sparse-secret), per digit and prime.
    KeySwitchA = 3,
}

/// Uniform ternary coefficients in {-1, 0, 1}, each with probability 1/3 (bias below 2^-64).
///
/// Uses the multiply-high map floor(3 r / 2^64) of a fresh 64-bit word instead of rejection,
/// so the number of words drawn does not depend on the samples.
pub fn sample_ternary<R: RngCore + CryptoRng>(rng: &mut R, out: &mut [i8]) {
    for o in out.iter_mut() {
        let r = rng.next_u64();
        let t = ((r as u128 * 3) >> 64) as i8; // 0, 1, 2
        *o = t - 1;
    }
}

/// A ternary vector with exactly `weight` nonzero coefficients, each +1 or -1 with probability
/// 1/2, at uniformly random distinct positions (the ephemeral sparse secret of bootstrapping's
/// sparse-secret encapsulation, Bossuat et al. 2022, "Bootstrapping for approximate homomorphic
/// encryption with negligible failure-probability by using sparse-secret encapsulation").
///
/// Positions are drawn as `log2(len)`-bit words (`len` must be a power of two, so no rejection
/// on range) and written by a masked scan over the whole vector, so the memory access pattern
/// does not depend on them. A position that is already taken is drawn again; the number of
/// redraws (on average below `weight^2 / 2len`) is the only data-dependent timing and carries
/// no information about which positions were chosen. Returns `false` (and writes zeros) if
/// `len` is not a power of two or `weight > len / 2`.
pub fn sample_fixed_weight_ternary<R: RngCore + CryptoRng>(rng: &mut R, weight: usize, out: &mut [i8]) -> bool {
    out.iter_mut().for_each(|o| *o = 0);
    let len = out.len();
    if !len.is_power_of_two() || weight > len / 2 {
        return false;
    }
    let mask = (len - 1) as u64;
    let mut placed = 0;
    while placed < weight {
        let r = rng.next_u64();
        let pos = (r & mask) as usize;
        let sign = ((r >> 63) as i8) * 2 - 1; // the top bit: independent of the position bits
        let mut taken = 0i8;
        for (j, o) in out.iter_mut().enumerate() {
            // all-ones when j == pos, computed without a branch
            let eq = (((j ^ pos) as u64).wrapping_sub(1) >> 63) as i8;
            let hit = -eq; // 0 or -1 (all bits set)
            taken |= hit & *o;
            *o |= hit & sign & !(-((*o != 0) as i8));
        }
        placed += (taken == 0) as usize;
    }
    true
}

/// Centred binomial samples with parameter [`CBD_ETA`]: popcount(a) - popcount(b) for two
/// independent 21-bit words (popcount is a constant-time instruction or bit-slice sum).
pub fn sample_cbd<R: RngCore + CryptoRng>(rng: &mut R, out: &mut [i8]) {
    const MASK: u64 = (1 << CBD_ETA) - 1;
    for o in out.iter_mut() {
        let r = rng.next_u64();
        let a = popcount_ct(r & MASK);
        let b = popcount_ct((r >> 32) & MASK);
        *o = a as i8 - b as i8;
    }
}

/// Branch-free population count (SWAR); `count_ones` may lower to a loop on targets without
/// a popcount instruction (Cortex-M4 has none).
#[inline(always)]
fn popcount_ct(mut x: u64) -> u32 {
    x -= (x >> 1) & 0x5555_5555_5555_5555;
    x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
    x = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    (x.wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
}

/// A ChaCha20 stream for public expansion: `seed`, stream `purpose << 32 | index`.
pub fn public_stream(seed: &[u8; SEED_BYTES], purpose: SeedPurpose, index: u32) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(((purpose as u64) << 32) | index as u64);
    rng
}

/// The uniform limb of one public stream: the same words as
/// `expand_uniform(&mut public_stream(seed, purpose, index), m, out)`, generated sixteen
/// ChaCha20 blocks at a time with AVX-512 where the CPU has it (`chacha_avx512`; the words
/// after the last accepted one are discarded with the stream).
pub fn expand_public_into(seed: &[u8; SEED_BYTES], purpose: SeedPurpose, index: u32, m: &Modulus, out: &mut [u64]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if expand_public_avx512(seed, ((purpose as u64) << 32) | index as u64, m, out) {
        return;
    }
    expand_uniform(&mut public_stream(seed, purpose, index), m, out);
}

/// [`expand_public_into`] with 16-block AVX-512 ChaCha20 and the vector rejection step
/// (`chacha_avx512::keep_below`: for primes just above a power of two, half of private-n15's
/// scale primes and of bootstrap-n16's 40-bit ones, half the candidates are rejected, and a
/// branch on each mispredicted about every other time); `false` (nothing written) without
/// AVX-512F.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn expand_public_avx512(seed: &[u8; SEED_BYTES], stream: u64, m: &Modulus, out: &mut [u64]) -> bool {
    use crate::chacha_avx512::{blocks16, keep_below, BLOCKS, WORDS};
    let key: [u32; 8] = core::array::from_fn(|i| u32::from_le_bytes([seed[4 * i], seed[4 * i + 1], seed[4 * i + 2], seed[4 * i + 3]]));
    let q = m.value();
    let mask = u64::MAX >> q.leading_zeros();
    let (mut words, mut last) = ([0u64; WORDS], [0u64; WORDS]);
    let (mut filled, mut counter) = (0, 0u64);
    while filled < out.len() {
        if !blocks16(&key, stream, counter, &mut words) {
            return false;
        }
        counter += BLOCKS as u64;
        // Packed straight into `out` while a whole call's words fit, else through `last`.
        let kept = match out[filled..].first_chunk_mut::<WORDS>() {
            Some(window) => keep_below(&words, mask, q, window),
            None => keep_below(&words, mask, q, &mut last).map(|kept| {
                let take = kept.min(out.len() - filled);
                out[filled..filled + take].copy_from_slice(&last[..take]);
                take
            }),
        };
        match kept {
            Some(kept) => filled += kept,
            None => return false,
        }
    }
    true
}

/// Fills `out` with uniform values mod q (by rejection; variable time, **public data only**).
pub fn expand_uniform<R: RngCore>(rng: &mut R, m: &Modulus, out: &mut [u64]) {
    let q = m.value();
    let mask = u64::MAX >> q.leading_zeros();
    for o in out.iter_mut() {
        loop {
            let x = rng.next_u64() & mask;
            if x < q {
                *o = x;
                break;
            }
        }
    }
}

/// A ChaCha20 generator keyed by a **secret** seed (the secret-key stream), overwritten when
/// dropped.
///
/// rand_chacha 0.3 has no `zeroize` support, so the wipe is done from outside: on drop the
/// whole generator value is replaced by one keyed with 32 zero bytes, which overwrites every
/// field it has (the key words, counter and stream, and the buffered block of 64 output words),
/// and [`core::hint::black_box`] keeps that store from being optimised away as dead.
///
/// What this cannot wipe: copies the compiler makes when the generator or its seed is moved
/// (`ChaCha20Rng::from_seed` takes the seed by value, so one stack copy of it exists while the
/// generator is built), and the vector registers and stack spills of the ChaCha block function
/// (ppv-lite86) while a block is generated. Keep the generator short-lived and local, as
/// [`crate::keys::SecretKey::from_seed_into`] does.
pub struct SecretStream(ChaCha20Rng);

impl SecretStream {
    /// The stream keyed by `seed` (stream 0).
    pub fn new(seed: &[u8; SEED_BYTES]) -> Self {
        Self(ChaCha20Rng::from_seed(*seed))
    }
}

impl Drop for SecretStream {
    fn drop(&mut self) {
        self.0 = ChaCha20Rng::from_seed([0u8; SEED_BYTES]);
        core::hint::black_box(&mut self.0);
    }
}

impl core::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretStream(..)")
    }
}

impl RngCore for SecretStream {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

/// ChaCha20 is a CSPRNG; the wrapper only adds the wipe.
impl CryptoRng for SecretStream {}

/// Draws a fresh 32-byte seed from `rng`.
pub fn fresh_seed<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; SEED_BYTES] {
    let mut s = [0u8; SEED_BYTES];
    rng.fill_bytes(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn fixed_weight_ternary_has_exact_weight_and_both_signs() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut v = vec![0i8; 1 << 12];
        let mut plus = 0;
        for _ in 0..50 {
            assert!(sample_fixed_weight_ternary(&mut rng, 32, &mut v));
            assert_eq!(v.iter().filter(|&&x| x != 0).count(), 32);
            assert!(v.iter().all(|&x| (-1..=1).contains(&x)));
            plus += v.iter().filter(|&&x| x == 1).count();
        }
        // 1600 signs: +1 count within 5 sigma of 800
        assert!((plus as i64 - 800).abs() < 100, "{plus}");
        assert!(!sample_fixed_weight_ternary(&mut rng, 3, &mut [0i8; 6]));
        assert!(!sample_fixed_weight_ternary(&mut rng, 5, &mut [0i8; 8]));
        assert!(sample_fixed_weight_ternary(&mut rng, 4, &mut [0i8; 8]));
    }

    #[test]
    fn ternary_is_balanced() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut v = vec![0i8; 300_000];
        sample_ternary(&mut rng, &mut v);
        let mut counts = [0usize; 3];
        for &x in &v {
            counts[(x + 1) as usize] += 1;
        }
        for c in counts {
            assert!((c as f64 / 100_000.0 - 1.0).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn cbd_has_the_right_moments() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let mut v = vec![0i8; 200_000];
        sample_cbd(&mut rng, &mut v);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 10.5).abs() < 0.2, "{var}");
        assert!(v.iter().all(|&x| (-21..=21).contains(&x)));
        for x in [0u64, 1, u64::MAX, 0x8000_0000_0000_0001, 0x1234_5678_9abc_def0] {
            assert_eq!(popcount_ct(x), x.count_ones());
        }
    }

    #[test]
    fn whole_limb_expansion_is_the_stream_word_for_word() {
        // The AVX-512 path (where the CPU has it) against rand_chacha, across several 16-block
        // batches, primes with high and low acceptance, limb lengths around one call's 128
        // candidates, and an empty limb.
        let seed: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(11) ^ 0x5a);
        for q in [crate::params::primes::Q40[0], crate::params::primes::P61[0], (1 << 40) + 1, 97] {
            let m = Modulus::new(q).unwrap();
            for (purpose, index, len) in [
                (SeedPurpose::KeySwitchA, 3 << 8 | 7, 4096),
                (SeedPurpose::PublicKeyA, 0, 129),
                // The branch-free window takes a call's 128 candidates only with room for all.
                (SeedPurpose::PublicKeyA, 1, 128),
                (SeedPurpose::PublicKeyA, 2, 127),
                (SeedPurpose::CiphertextA, 5, 0),
            ] {
                let (mut a, mut b) = (vec![0u64; len], vec![0u64; len]);
                expand_public_into(&seed, purpose, index, &m, &mut a);
                expand_uniform(&mut public_stream(&seed, purpose, index), &m, &mut b);
                assert_eq!(a, b, "q {q} stream {index} length {len}");
            }
        }
    }

    #[test]
    fn public_streams_are_independent_and_reproducible() {
        let m = Modulus::new(crate::params::primes::Q40[0]).unwrap();
        let seed = [7u8; 32];
        let (mut a, mut b, mut c) = (vec![0u64; 64], vec![0u64; 64], vec![0u64; 64]);
        expand_uniform(&mut public_stream(&seed, SeedPurpose::PublicKeyA, 1), &m, &mut a);
        expand_uniform(&mut public_stream(&seed, SeedPurpose::PublicKeyA, 1), &m, &mut b);
        expand_uniform(&mut public_stream(&seed, SeedPurpose::PublicKeyA, 2), &m, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|&x| x < m.value()));
    }
}
