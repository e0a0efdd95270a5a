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
//! read-out reorders words into stream order (a 16 x 16 transpose of 32-bit words, 64
//! shuffles per 16 blocks).
//!
//! [`keep_below`] is the expansion's rejection step on the same registers' width: each block
//! is eight 64-bit candidates, masked, compared with q, and the accepted ones packed by
//! `vpcompressq` (register form: Zen 4 microcodes the memory form) and stored at the next free
//! place, with no branch per candidate.
//!
//! The stream is the same as `rand_chacha` 0.3's `ChaCha20Rng` (Bernstein's original ChaCha
//! with a 64-bit block counter in words 12-13 and the 64-bit stream id in words 14-15):
//! `tests::sixteen_blocks_match_rand_chacha` compares them at several counters, a 32-bit
//! counter carry included, and `sample::tests` compares whole expansions. Everything generated
//! here is public (expanded from public seeds), so timing is not a concern.
//!
//! # Why this module uses `unsafe`
//!
//! Intrinsics. Soundness: (1) the `#[target_feature(enable = "avx512f")]` functions are
//! reached only through [`blocks16`] and [`keep_below`], after [`available`], a runtime check
//! of that feature (cached by std); (2) the only memory accesses are unaligned 64-byte loads
//! and stores of eight `u64` inside a `[u64; 128]` or an `&mut [u64; 8]` window, whose types
//! bound them.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_and_si512, _mm512_cmplt_epu64_mask, _mm512_loadu_si512, _mm512_maskz_compress_epi64,
    _mm512_rol_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_unpackhi_epi32,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64, _mm512_xor_si512,
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

/// Words per call: 16 blocks of eight 64-bit words.
pub(crate) const WORDS: usize = 8 * BLOCKS;

/// Blocks `counter .. counter + 16` of the stream keyed by `key` (eight little-endian words)
/// with stream id `stream`, in stream order: `out[8 j + i]` is the i-th 64-bit word of block
/// `counter + j` (its 32-bit words 2i and 2i + 1, low first, as `next_u64` reads them).
///
/// Returns `false` (and writes nothing) when the CPU lacks AVX-512F.
pub(crate) fn blocks16(key: &[u32; 8], stream: u64, counter: u64, out: &mut [u64; WORDS]) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: AVX-512F was detected just above.
    unsafe { blocks16_avx512(key, stream, counter, out) };
    true
}

/// The rejection step of public expansion on one call's words: for each word in order,
/// `w & mask` is kept when below `q`, packed at `out[0..]`. Returns how many were kept
/// (at most [`WORDS`]), or `None` (nothing written) without AVX-512F. `out` holds [`WORDS`]
/// words because each block's eight are stored whole (the places after the kept ones are
/// scratch).
pub(crate) fn keep_below(words: &[u64; WORDS], mask: u64, q: u64, out: &mut [u64; WORDS]) -> Option<usize> {
    if !available() {
        return None;
    }
    // SAFETY: AVX-512F was detected just above.
    Some(unsafe { keep_below_avx512(words, mask, q, out) })
}

#[target_feature(enable = "avx512f")]
unsafe fn keep_below_avx512(words: &[u64; WORDS], mask: u64, q: u64, out: &mut [u64; WORDS]) -> usize {
    let (mask, q) = (_mm512_set1_epi64(mask as i64), _mm512_set1_epi64(q as i64));
    let mut kept = 0usize;
    for block in words.as_chunks::<8>().0 {
        // SAFETY: eight readable words.
        let x = _mm512_and_si512(unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }, mask);
        let below = _mm512_cmplt_epu64_mask(x, q);
        // kept <= 8 * (blocks so far) <= WORDS - 8 here, so the window always exists.
        if let Some(window) = out[kept..].first_chunk_mut::<8>() {
            // SAFETY: eight exclusively borrowed words.
            unsafe { _mm512_storeu_si512(window.as_mut_ptr().cast(), _mm512_maskz_compress_epi64(below, x)) };
            kept += below.count_ones() as usize;
        }
    }
    kept
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
unsafe fn blocks16_avx512(key: &[u32; 8], stream: u64, counter: u64, out: &mut [u64; WORDS]) {
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
    for (xi, ii) in x.iter_mut().zip(init) {
        *xi = _mm512_add_epi32(*xi, ii);
    }
    // Transpose: x[w] holds 32-bit word w of the 16 blocks; block j's 16 words go to
    // out[8j..8j + 8] as eight 64-bit words.
    // (1) 32-bit unpacks pair words 2p, 2p + 1; (2) 64-bit unpacks make, in each 128-bit lane
    // L of v[4p + s], words 4p..4p + 3 of block 4L + s; (3, 4) a 4 x 4 transpose of 128-bit
    // lanes across v[s], v[4 + s], v[8 + s], v[12 + s] gives blocks s, 4 + s, 8 + s, 12 + s.
    let mut u = x;
    for p in 0..8 {
        u[2 * p] = _mm512_unpacklo_epi32(x[2 * p], x[2 * p + 1]);
        u[2 * p + 1] = _mm512_unpackhi_epi32(x[2 * p], x[2 * p + 1]);
    }
    let mut v = u;
    for p in 0..4 {
        v[4 * p] = _mm512_unpacklo_epi64(u[4 * p], u[4 * p + 2]);
        v[4 * p + 1] = _mm512_unpackhi_epi64(u[4 * p], u[4 * p + 2]);
        v[4 * p + 2] = _mm512_unpacklo_epi64(u[4 * p + 1], u[4 * p + 3]);
        v[4 * p + 3] = _mm512_unpackhi_epi64(u[4 * p + 1], u[4 * p + 3]);
    }
    let rows = out.as_chunks_mut::<8>().0;
    for s in 0..4 {
        let w0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(v[s], v[4 + s]);
        let w1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(v[s], v[4 + s]);
        let w2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(v[8 + s], v[12 + s]);
        let w3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(v[8 + s], v[12 + s]);
        let blocks = [
            _mm512_shuffle_i32x4::<0b10_00_10_00>(w0, w2),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(w0, w2),
            _mm512_shuffle_i32x4::<0b10_00_10_00>(w1, w3),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(w1, w3),
        ];
        for (l, b) in blocks.into_iter().enumerate() {
            // SAFETY: one row of eight exclusively borrowed words.
            unsafe { _mm512_storeu_si512(rows[4 * l + s].as_mut_ptr().cast(), b) };
        }
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
            let mut got = [0u64; WORDS];
            assert!(blocks16(&key, stream, counter, &mut got));
            let mut rng = ChaCha20Rng::from_seed(seed);
            rng.set_stream(stream);
            rng.set_word_pos(u128::from(counter) * 16);
            for (k, word) in got.iter().enumerate() {
                assert_eq!(
                    *word,
                    rng.next_u64(),
                    "stream {stream} counter {counter} block {} word {}",
                    k / 8,
                    k % 8
                );
            }
        }
    }

    /// Against the scalar filter: masks that keep all, about half, and none of the words.
    #[test]
    fn keep_below_packs_the_accepted_words_in_order() {
        if !available() {
            return;
        }
        let mut words = [0u64; WORDS];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for w in &mut words {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = x;
        }
        for (mask, q) in [
            (u64::MAX, u64::MAX),
            ((1 << 40) - 1, (1 << 39) + 0x5e_0001),
            ((1 << 40) - 1, 1 << 39),
            ((1 << 8) - 1, 1),
        ] {
            let want: std::vec::Vec<u64> = words.iter().map(|w| w & mask).filter(|&w| w < q).collect();
            let mut out = [0u64; WORDS];
            let kept = keep_below(&words, mask, q, &mut out).unwrap();
            assert_eq!(&out[..kept], &want[..], "mask {mask:#x} q {q:#x}");
        }
    }
}
