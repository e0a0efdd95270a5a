//! Sixteen ChaCha20 blocks at once with AVX-512F, word for word the blocks of `rand_chacha`'s
//! `ChaCha20Rng` (x86-64 hosts with `std`; runtime-detected): the public expansion of key and
//! ciphertext seeds ([`crate::sample::expand_public_into`]).
//!
//! # Why
//!
//! Bootstrapping keeps its Galois keys compact (seed and `b` only) and regenerates each `a`
//! limb inside every key switch: at N = 2^16 that is several hundred megabytes of ChaCha20
//! output per bootstrap, and `rand_chacha`'s AVX2 backend (four blocks per call, row vectors
//! with lane shuffles between half rounds) was the largest single cost after the NTT. Here each
//! of the 16 state words is one zmm register holding that word of 16 consecutive blocks (the
//! "vertical" layout of Goll and Gueron, 2014), so a quarter round is four additions, four
//! XORs and four `vprold` rotations on whole registers, with no shuffle; only the final
//! read-out reorders words into stream order.
//!
//! The stream is the same as `rand_chacha` 0.3's `ChaCha20Rng` (Bernstein's original ChaCha
//! with a 64-bit block counter in words 12-13 and the 64-bit stream id in words 14-15):
//! `tests::sixteen_blocks_match_rand_chacha` compares them at several counters, a 32-bit
//! counter carry included, and `sample::tests` compares whole expansions. Everything generated
//! here is public (expanded from public seeds), so timing is not a concern.
//!
//! # Why this module uses `unsafe`
//!
//! Intrinsics. Soundness: (1) the only `#[target_feature(enable = "avx512f")]` function is
//! reached only through [`available`], a runtime check of that feature (cached by std); (2) the
//! only memory accesses are unaligned 64-byte stores (`_mm512_storeu_si512`) into the rows of
//! a `[[u32; 16]; 16]` owned by the caller, each row exactly 64 bytes.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_rol_epi32, _mm512_set1_epi32, _mm512_storeu_si512, _mm512_xor_si512,
};

/// Blocks per call.
pub(crate) const BLOCKS: usize = 16;

/// Whether the CPU runs [`blocks16`].
#[inline]
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// The "expand 32-byte k" constants.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Blocks `counter .. counter + 16` of the stream keyed by `key` (eight little-endian words)
/// with stream id `stream`, as `out[w][j]` = word w of block `counter + j`.
///
/// Returns `false` (and writes nothing) when the CPU lacks AVX-512F.
pub(crate) fn blocks16(key: &[u32; 8], stream: u64, counter: u64, out: &mut [[u32; 16]; 16]) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: AVX-512F was detected just above.
    unsafe { blocks16_avx512(key, stream, counter, out) };
    true
}

#[inline(always)]
fn quarter(x: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
    // SAFETY (of the intrinsics): called only from `blocks16_avx512`, which enables avx512f.
    unsafe {
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[b], x[c]));
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[b], x[c]));
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn blocks16_avx512(key: &[u32; 8], stream: u64, counter: u64, out: &mut [[u32; 16]; 16]) {
    // Per-lane 64-bit counters (the carry into word 13 included).
    let (mut lo, mut hi) = ([0u32; 16], [0u32; 16]);
    for (j, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let c = counter.wrapping_add(j as u64);
        (*l, *h) = (c as u32, (c >> 32) as u32);
    }
    let splat = |w: u32| _mm512_set1_epi32(w as i32);
    let init: [__m512i; 16] = [
        splat(SIGMA[0]),
        splat(SIGMA[1]),
        splat(SIGMA[2]),
        splat(SIGMA[3]),
        splat(key[0]),
        splat(key[1]),
        splat(key[2]),
        splat(key[3]),
        splat(key[4]),
        splat(key[5]),
        splat(key[6]),
        splat(key[7]),
        // SAFETY: 16 u32 = 64 bytes, an unaligned load of an owned array.
        unsafe { _mm512_loadu_si512(lo.as_ptr().cast()) },
        unsafe { _mm512_loadu_si512(hi.as_ptr().cast()) },
        splat(stream as u32),
        splat((stream >> 32) as u32),
    ];
    let mut x = init;
    for _ in 0..10 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    for ((row, xi), ii) in out.iter_mut().zip(x).zip(init) {
        // SAFETY: `row` is 16 u32 = 64 bytes, exclusively borrowed.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), _mm512_add_epi32(xi, ii)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn sixteen_blocks_match_rand_chacha() {
        if !available() {
            std::eprintln!("no AVX-512F on this CPU: the portable path is the only one used");
            return;
        }
        let seed: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(5));
        let key: [u32; 8] = core::array::from_fn(|i| u32::from_le_bytes(seed[4 * i..4 * i + 4].try_into().unwrap()));
        for (stream, counter) in [
            (0u64, 0u64),
            (3 << 32 | 17, 0),
            (u64::MAX, 5),
            (1, (1 << 32) - 7),
            (9, u64::MAX - 40),
        ] {
            let mut got = [[0u32; 16]; 16];
            assert!(blocks16(&key, stream, counter, &mut got));
            let mut rng = ChaCha20Rng::from_seed(seed);
            rng.set_stream(stream);
            rng.set_word_pos(u128::from(counter) * 16);
            for j in 0..BLOCKS {
                for (w, row) in got.iter().enumerate() {
                    assert_eq!(row[j], rng.next_u32(), "stream {stream} counter {counter} block {j} word {w}");
                }
            }
        }
    }
}
