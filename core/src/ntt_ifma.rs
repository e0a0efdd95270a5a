//! AVX-512 IFMA butterflies for the wide NTT passes over primes below 2^62 (x86-64 hosts with
//! `std` whose CPU has `avx512ifma`; runtime-detected, tried before the AVX2 passes).
//!
//! # Why
//!
//! AVX2 has no 64x64-bit vector multiplication, so each lane of a Shoup product costs ten
//! 32x32-bit multiplications (`ntt_avx2`). IFMA multiplies 52-bit lanes natively
//! (`vpmadd52luq` / `vpmadd52huq`: the low and high 52 bits of a 104-bit product), eight lanes
//! at a time, and a Shoup product with a 52-bit quotient needs three of them (Harvey 2014,
//! "Faster arithmetic for number-theoretic transforms", with beta = 2^52; the layout of Intel
//! HEXL's IFMA butterflies, Boemer et al. 2021). The lazy butterflies keep values below 4q, so
//! every multiplicand fits 52 bits when q < 2^50: the 39- and 40-bit primes of the chains
//! ([`Width::Narrow`]).
//!
//! The 55- to 61-bit primes ([`Width::Wide`]) split each operand at bit 52 instead: six IFMA
//! operations give the scalar product's 64-bit Shoup quotient floor(a w' / 2^64) exactly (the
//! derivation is at `mul_shoup_lazy`), and two 64-bit low products (`vpmullq`, AVX-512DQ) the
//! remainder a w - quotient q, which is below 2q and so equals its value mod 2^64. About twice
//! the narrow product's work, and still 1.5-1.9x faster than the scalar passes on the Xeon of
//! BENCHMARKS.md (N = 2^14 to 2^16), whose 64-bit multiplier takes the three products of a
//! scalar Shoup butterfly one per cycle. (An eight-lane AVX-512F port of the AVX2 product,
//! 32x32-bit pieces, was measured no faster than AVX2 there. Not kept.)
//!
//! Results: narrow, with w' = floor(w 2^52 / q) (the stored 64-bit quotient shifted right by
//! 12, so no new tables) and a < 2^52, a w - floor(a w' / 2^52) q lies in [0, 2q), the same
//! range as the 64-bit Shoup product; the two can differ by q in a lazy intermediate, never in
//! a reduced output. `forward` and `inverse` reduce their outputs, so they are bit-identical to
//! the scalar reference; narrow `forward_lazy` outputs are congruent to it modulo q (and below
//! 4q), wide ones equal. `core/tests/ntt_reference.rs` checks every path the host has against
//! the frozen reference.
//!
//! # Why this module uses `unsafe`
//!
//! As for `ntt_avx2`: intrinsics. Soundness: (1) every `#[target_feature]` function is reached
//! only through [`width`], a runtime check (`is_x86_feature_detected!`, cached by std) of every
//! feature the passes enable (AVX-512F, VL, DQ and IFMA); (2) the only memory accesses are
//! unaligned loads and stores of one vector (`_mm512_loadu_si512` / `_mm256_loadu_si256` and the
//! stores) through `&[u64; L]` / `&mut [u64; L]` references from `chunks_exact_mut(L)` or
//! `as_chunks_mut`, L the lane count (8 or 4), so the bytes each touches are L valid
//! (exclusively borrowed, for a store) `u64`s by their type.
//!
//! The passes exist in two widths from one macro: eight lanes (zmm) for butterfly quarters of
//! at least 8 values, four lanes (ymm, AVX-512VL) for quarters of 4 (the forward pass at
//! distance 8 and the inverse pass at distance 4), which would otherwise fall back to AVX2.
//! The passes over blocks smaller than a vector, scalar on every other path, run after an
//! in-register transpose (`last`): groups of four adjacent values (the forward's last radix-4
//! pass at distance 2 and the inverse's first at distance 1), the forward's radix-4 pass at
//! distance 4 and its last radix-2 stage on adjacent pairs (both when log2 N is odd).

#![allow(unsafe_code)]

use crate::arith::Modulus;
use core::sync::atomic::{AtomicBool, Ordering};

/// The largest prime (exclusive) the narrow IFMA product takes: lazy values below 4q fit 52 bits.
pub(crate) const MAX_IFMA_MODULUS: u64 = 1 << 50;

/// The largest prime (exclusive) the wide IFMA product takes: lazy values below 4q fit 64 bits.
pub(crate) const MAX_WIDE_MODULUS: u64 = 1 << 62;

/// Cleared by [`set_enabled`] (tests and benchmarks of the AVX2 and scalar paths).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Enables or disables the IFMA passes process-wide (`ntt::set_ifma_enabled`).
pub(crate) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Which Shoup product the IFMA passes use for a prime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// q < 2^50: every lazy value fits 52 bits, three IFMA operations per product.
    Narrow,
    /// 2^50 <= q < 2^62: the 64-bit Shoup quotient from six IFMA operations on the values'
    /// 52-bit halves, the remainder from two 64-bit low products (`vpmullq`).
    Wide,
}

/// The IFMA product for modulus `q`, if the passes run for it: the CPU has AVX-512F, VL, DQ and
/// IFMA, they are not disabled, and q < 2^62.
#[inline]
pub(crate) fn width(q: u64) -> Option<Width> {
    if q >= MAX_WIDE_MODULUS
        || !ENABLED.load(Ordering::Relaxed)
        || !std::is_x86_feature_detected!("avx512f")
        || !std::is_x86_feature_detected!("avx512vl")
        || !std::is_x86_feature_detected!("avx512dq")
        || !std::is_x86_feature_detected!("avx512ifma")
    {
        return None;
    }
    Some(if q < MAX_IFMA_MODULUS { Width::Narrow } else { Width::Wide })
}

/// N^-1 and inv[1] N^-1 with their Shoup quotients, for the last inverse pass.
type Fold = Option<((u64, u64), (u64, u64))>;

/// The passes at one vector width: `$v` the vector type, `$lanes` its u64 lanes, then the
/// intrinsics of that width (load, store, broadcast, zero, add, sub, and, unsigned min, IFMA
/// low and high, 64-bit low product, logical shifts right and left). Each pass takes `WIDE`:
/// the product of [`super::Width::Wide`] when true, of [`super::Width::Narrow`] otherwise.
macro_rules! ifma_passes {
    ($width:ident, $v:ident, $lanes:literal, $load:ident, $store:ident, $set1:ident, $zero:ident, $add:ident, $sub:ident, $and:ident, $min:ident, $lo:ident, $hi:ident, $mullo:ident, $srli:ident, $slli:ident) => {
        mod $width {
            use super::Fold;
            use crate::arith::Modulus;
            use core::arch::x86_64::{$add, $and, $hi, $lo, $load, $min, $mullo, $set1, $slli, $srli, $store, $sub, $v, $zero};

            /// A twiddle w < q and its Shoup quotient, broadcast: narrow, the 52-bit quotient
            /// in `ws`; wide, the 64-bit one in `ws` and its top 12 bits in `wsh`.
            #[derive(Clone, Copy)]
            struct Tw {
                w: $v,
                ws: $v,
                wsh: $v,
            }

            /// The modulus broadcast: q, 2q, 2^52 - q, the 52-bit mask and zero.
            #[derive(Clone, Copy)]
            struct Q {
                q: $v,
                two_q: $v,
                neg_q: $v,
                mask: $v,
                zero: $v,
            }

            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn modulus(q: u64) -> Q {
                Q {
                    q: $set1(q as i64),
                    two_q: $set1((2 * q) as i64),
                    neg_q: $set1((1u64 << 52).wrapping_sub(q) as i64),
                    mask: $set1(((1u64 << 52) - 1) as i64),
                    zero: $zero(),
                }
            }

            /// `ws` is the 64-bit Shoup quotient floor(w 2^64 / q); floor(w 2^52 / q) is its
            /// top 52 bits.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn tw<const WIDE: bool>(w: u64, ws: u64) -> Tw {
                Tw {
                    w: $set1(w as i64),
                    ws: $set1(if WIDE { ws } else { ws >> 12 } as i64),
                    wsh: $set1((ws >> 52) as i64),
                }
            }

            /// Lane-wise a * w - floor(a * w' / 2^k) * q in [0, 2q): narrow (k = 52) for
            /// a < 2^52, wide (k = 64, the scalar Shoup product's quotient exactly) for any a.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn mul_shoup_lazy<const WIDE: bool>(a: $v, t: Tw, m: Q) -> $v {
                if WIDE {
                    // a = ah 2^52 + al and w' = wh 2^52 + wl (IFMA reads the low 52 bits of
                    // its operands): a w' = lo52(al wl) + 2^52 L + 2^104 H with
                    // L = hi52(al wl) + lo52(al wh) + lo52(ah wl) < 3 2^52 and
                    // H = hi52(al wh) + hi52(ah wl) + ah wh < 2^25, so, as lo52(al wl) < 2^52,
                    // floor(a w' / 2^64) = floor(L / 2^12) + 2^40 H exactly.
                    let ah = $srli::<52>(a);
                    let l = $lo($lo($hi(m.zero, a, t.ws), a, t.wsh), ah, t.ws);
                    let h = $lo($hi($hi(m.zero, a, t.wsh), ah, t.ws), ah, t.wsh);
                    let quotient = $add($srli::<12>(l), $slli::<40>(h));
                    // The remainder is below 2q < 2^64: the low 64 bits of both products.
                    $sub($mullo(a, t.w), $mullo(quotient, m.q))
                } else {
                    let hi = $hi(m.zero, a, t.ws);
                    // low52(a w) + low52(hi (2^52 - q)) = a w - hi q (mod 2^52); the true value
                    // is below 2q.
                    let r = $lo($lo(m.zero, a, t.w), hi, m.neg_q);
                    $and(r, m.mask)
                }
            }

            /// Lane-wise x - c if x >= c, else x (the wrapped difference is larger than x).
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn csub(x: $v, c: $v) -> $v {
                $min(x, $sub(x, c))
            }

            /// Loads the lanes; the array type guarantees the bytes read are in bounds.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn load(c: &[u64; $lanes]) -> $v {
                // SAFETY: `c` is one vector of readable bytes (unaligned load).
                unsafe { $load(c.as_ptr().cast()) }
            }

            /// Stores the lanes; the array type guarantees the bytes written are ours.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            #[inline]
            fn store(c: &mut [u64; $lanes], v: $v) {
                // SAFETY: `c` is one vector of exclusively borrowed bytes (unaligned store).
                unsafe { $store(c.as_mut_ptr().cast(), v) }
            }

            /// The lane-sized chunks of `s` as arrays (callers pass multiples of the lanes).
            fn lanes(s: &mut [u64]) -> impl Iterator<Item = &mut [u64; $lanes]> {
                s.chunks_exact_mut($lanes).filter_map(|c| c.try_into().ok())
            }

            /// One vector of each quarter of a block, as `zip` nests them.
            type Quad<'a> = (
                ((&'a mut [u64; $lanes], &'a mut [u64; $lanes]), &'a mut [u64; $lanes]),
                &'a mut [u64; $lanes],
            );

            /// The four quarters of a block of `4 len` values as zipped vectors.
            fn quarters(block: &mut [u64], len: usize) -> impl Iterator<Item = Quad<'_>> {
                let (lo, hi) = block.split_at_mut(2 * len);
                let (q0, q1) = lo.split_at_mut(len);
                let (q2, q3) = hi.split_at_mut(len);
                lanes(q0).zip(lanes(q1)).zip(lanes(q2)).zip(lanes(q3))
            }

            /// One forward radix-4 pass (see `ntt::forward_group`; inputs and outputs in
            /// [0, 4q)) for a butterfly distance `t` with t / 2 a multiple of the lanes.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            pub(super) fn forward<const WIDE: bool>(a: &mut [u64], t: usize, sm: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64])) {
                let m = modulus(sm.value());
                let h = t / 2;
                for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                    let w1 = tw::<WIDE>(tw1.0[i], tw1.1[i]);
                    let w2a = tw::<WIDE>(tw2.0[2 * i], tw2.1[2 * i]);
                    let w2b = tw::<WIDE>(tw2.0[2 * i + 1], tw2.1[2 * i + 1]);
                    for (((c0, c1), c2), c3) in quarters(block, h) {
                        let u0 = csub(load(c0), m.two_q);
                        let v0 = mul_shoup_lazy::<WIDE>(load(c2), w1, m);
                        let u1 = csub(load(c1), m.two_q);
                        let v1 = mul_shoup_lazy::<WIDE>(load(c3), w1, m);
                        let y0 = $add(u0, v0);
                        let y2 = $sub($add(u0, m.two_q), v0);
                        let y1 = $add(u1, v1);
                        let y3 = $sub($add(u1, m.two_q), v1);
                        let a0 = csub(y0, m.two_q);
                        let b0 = mul_shoup_lazy::<WIDE>(y1, w2a, m);
                        let a2 = csub(y2, m.two_q);
                        let b2 = mul_shoup_lazy::<WIDE>(y3, w2b, m);
                        store(c0, $add(a0, b0));
                        store(c1, $sub($add(a0, m.two_q), b0));
                        store(c2, $add(a2, b2));
                        store(c3, $sub($add(a2, m.two_q), b2));
                    }
                }
            }

            /// One inverse radix-4 pass (see `ntt::inverse_group`; inputs and outputs in
            /// [0, 2q)) for a distance `t` that is a multiple of the lanes; with `last`, the
            /// final pass with N^-1 folded in and outputs fully reduced.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            pub(super) fn inverse<const WIDE: bool>(
                a: &mut [u64],
                t: usize,
                sm: &Modulus,
                twa: (&[u64], &[u64]),
                twb: (&[u64], &[u64]),
                last: Fold,
            ) {
                let m = modulus(sm.value());
                let fold = last.map(|((ni, nis), (il, ils))| (tw::<WIDE>(ni, nis), tw::<WIDE>(il, ils)));
                for (i, block) in a.chunks_exact_mut(4 * t).enumerate() {
                    let (wa0, wa1) = (
                        tw::<WIDE>(twa.0[2 * i], twa.1[2 * i]),
                        tw::<WIDE>(twa.0[2 * i + 1], twa.1[2 * i + 1]),
                    );
                    let wb = tw::<WIDE>(twb.0[i], twb.1[i]);
                    for (((c0, c1), c2), c3) in quarters(block, t) {
                        let (u0, v0, u1, v1) = (load(c0), load(c1), load(c2), load(c3));
                        let y0 = csub($add(u0, v0), m.two_q);
                        let y1 = mul_shoup_lazy::<WIDE>($sub($add(u0, m.two_q), v0), wa0, m);
                        let y2 = csub($add(u1, v1), m.two_q);
                        let y3 = mul_shoup_lazy::<WIDE>($sub($add(u1, m.two_q), v1), wa1, m);
                        let s0 = $add(y0, y2);
                        let d0 = $sub($add(y0, m.two_q), y2);
                        let s1 = $add(y1, y3);
                        let d1 = $sub($add(y1, m.two_q), y3);
                        if let Some((ni, il)) = fold {
                            store(c0, csub(mul_shoup_lazy::<WIDE>(s0, ni, m), m.q));
                            store(c2, csub(mul_shoup_lazy::<WIDE>(d0, il, m), m.q));
                            store(c1, csub(mul_shoup_lazy::<WIDE>(s1, ni, m), m.q));
                            store(c3, csub(mul_shoup_lazy::<WIDE>(d1, il, m), m.q));
                        } else {
                            store(c0, csub(s0, m.two_q));
                            store(c2, mul_shoup_lazy::<WIDE>(d0, wb, m));
                            store(c1, csub(s1, m.two_q));
                            store(c3, mul_shoup_lazy::<WIDE>(d1, wb, m));
                        }
                    }
                }
            }

            /// The last inverse stage when log2 N is odd: radix 2 at distance N/2 with N^-1
            /// folded in.
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
            pub(super) fn inverse_last<const WIDE: bool>(a: &mut [u64], sm: &Modulus, ni: (u64, u64), il: (u64, u64)) {
                let m = modulus(sm.value());
                let (ni, il) = (tw::<WIDE>(ni.0, ni.1), tw::<WIDE>(il.0, il.1));
                let half = a.len() / 2;
                let (lo, hi) = a.split_at_mut(half);
                for (cx, cy) in lanes(lo).zip(lanes(hi)) {
                    let (u, v) = (load(cx), load(cy));
                    store(cx, csub(mul_shoup_lazy::<WIDE>($add(u, v), ni, m), m.q));
                    store(cy, csub(mul_shoup_lazy::<WIDE>($sub($add(u, m.two_q), v), il, m), m.q));
                }
            }
        }
    };
}

ifma_passes!(
    zmm,
    __m512i,
    8,
    _mm512_loadu_si512,
    _mm512_storeu_si512,
    _mm512_set1_epi64,
    _mm512_setzero_si512,
    _mm512_add_epi64,
    _mm512_sub_epi64,
    _mm512_and_si512,
    _mm512_min_epu64,
    _mm512_madd52lo_epu64,
    _mm512_madd52hi_epu64,
    _mm512_mullo_epi64,
    _mm512_srli_epi64,
    _mm512_slli_epi64
);
ifma_passes!(
    ymm,
    __m256i,
    4,
    _mm256_loadu_si256,
    _mm256_storeu_si256,
    _mm256_set1_epi64x,
    _mm256_setzero_si256,
    _mm256_add_epi64,
    _mm256_sub_epi64,
    _mm256_and_si256,
    _mm256_min_epu64,
    _mm256_madd52lo_epu64,
    _mm256_madd52hi_epu64,
    _mm256_mullo_epi64,
    _mm256_srli_epi64,
    _mm256_slli_epi64
);

/// Runs a forward radix-4 pass with IFMA when [`width`] takes q, `t` is 4 (N a multiple of 32)
/// or a multiple of 8 and the CPU has it (eight lanes when t / 2 is a multiple of 8, else four);
/// returns whether it did.
pub(crate) fn forward_radix4(a: &mut [u64], t: usize, m: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64])) -> bool {
    if t == 4 && a.len().is_multiple_of(32) {
        // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
        match width(m.value()) {
            None => return false,
            Some(Width::Narrow) => unsafe { last::forward_distance4::<false>(a, m, tw1, tw2) },
            Some(Width::Wide) => unsafe { last::forward_distance4::<true>(a, m, tw1, tw2) },
        }
        return true;
    }
    if !t.is_multiple_of(8) {
        return false;
    }
    let zmm = t.is_multiple_of(16);
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) if zmm => unsafe { zmm::forward::<false>(a, t, m, tw1, tw2) },
        Some(Width::Narrow) => unsafe { ymm::forward::<false>(a, t, m, tw1, tw2) },
        Some(Width::Wide) if zmm => unsafe { zmm::forward::<true>(a, t, m, tw1, tw2) },
        Some(Width::Wide) => unsafe { ymm::forward::<true>(a, t, m, tw1, tw2) },
    }
    true
}

/// Runs an inverse radix-4 pass with IFMA when [`width`] takes q, `t` is a multiple of 4 and
/// the CPU has it (eight lanes when t is a multiple of 8, else four).
pub(crate) fn inverse_radix4(a: &mut [u64], t: usize, m: &Modulus, twa: (&[u64], &[u64]), twb: (&[u64], &[u64]), last: Fold) -> bool {
    if !t.is_multiple_of(4) {
        return false;
    }
    let zmm = t.is_multiple_of(8);
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) if zmm => unsafe { zmm::inverse::<false>(a, t, m, twa, twb, last) },
        Some(Width::Narrow) => unsafe { ymm::inverse::<false>(a, t, m, twa, twb, last) },
        Some(Width::Wide) if zmm => unsafe { zmm::inverse::<true>(a, t, m, twa, twb, last) },
        Some(Width::Wide) => unsafe { ymm::inverse::<true>(a, t, m, twa, twb, last) },
    }
    true
}

/// Runs the last radix-2 inverse stage with IFMA when [`width`] takes q, N/2 is a multiple of 4
/// and the CPU has it.
pub(crate) fn inverse_last_radix2(a: &mut [u64], m: &Modulus, ni: (u64, u64), il: (u64, u64)) -> bool {
    if !a.len().is_multiple_of(8) {
        return false;
    }
    let zmm = a.len().is_multiple_of(16);
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) if zmm => unsafe { zmm::inverse_last::<false>(a, m, ni, il) },
        Some(Width::Narrow) => unsafe { ymm::inverse_last::<false>(a, m, ni, il) },
        Some(Width::Wide) if zmm => unsafe { zmm::inverse_last::<true>(a, m, ni, il) },
        Some(Width::Wide) => unsafe { ymm::inverse_last::<true>(a, m, ni, il) },
    }
    true
}

/// The passes over groups of four adjacent values, each group with its own twiddles: the
/// forward transform's last radix-4 pass when log2 N is even (butterfly distance 2) and the
/// inverse transform's first (distance 1). Eight groups at a time: a 4 x 4
/// transpose of 64-bit lanes (`vpermt2q`) turns 32 values into the vectors of every group's
/// x0, x1, x2 and x3, the twiddles load as vectors (the per-group pairs split into even and
/// odd), and the scalar passes' butterflies run lane-wise.
mod last {
    use crate::arith::Modulus;
    use core::arch::x86_64::{
        __m256i, __m512i, _mm256_loadu_si256, _mm512_add_epi64, _mm512_and_si512, _mm512_castsi256_si512, _mm512_loadu_si512,
        _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_min_epu64, _mm512_mullo_epi64, _mm512_permutex2var_epi64,
        _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srli_epi64, _mm512_storeu_si512,
        _mm512_sub_epi64,
    };

    /// Loads eight lanes; the array type guarantees the 64 bytes read are in bounds.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn load(c: &[u64; 8]) -> __m512i {
        // SAFETY: `c` is 64 readable bytes (unaligned load).
        unsafe { _mm512_loadu_si512(c.as_ptr().cast()) }
    }

    /// Stores eight lanes; the array type guarantees the 64 bytes written are ours.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn store(c: &mut [u64; 8], v: __m512i) {
        // SAFETY: `c` is 64 exclusively borrowed bytes (unaligned store).
        unsafe { _mm512_storeu_si512(c.as_mut_ptr().cast(), v) }
    }

    /// Eight words at `start` of `s` as an array (the callers' slices hold them).
    fn eight(s: &[u64], start: usize) -> Option<&[u64; 8]> {
        s.get(start..start + 8)?.try_into().ok()
    }

    /// `vpermt2q` with a constant index vector.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn permute(a: __m512i, idx: &[u64; 8], b: __m512i) -> __m512i {
        _mm512_permutex2var_epi64(a, load(idx), b)
    }

    const PAIRS_LO: [u64; 8] = [0, 4, 8, 12, 1, 5, 9, 13];
    const PAIRS_HI: [u64; 8] = [2, 6, 10, 14, 3, 7, 11, 15];
    const HALVES_LO: [u64; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
    const HALVES_HI: [u64; 8] = [4, 5, 6, 7, 12, 13, 14, 15];
    const EVEN: [u64; 8] = [0, 2, 4, 6, 8, 10, 12, 14];
    const ODD: [u64; 8] = [1, 3, 5, 7, 9, 11, 13, 15];

    /// A twiddle per lane and its Shoup quotient as [`mul_shoup_lazy`] takes it (see
    /// `Tw` of the passes above).
    #[derive(Clone, Copy)]
    struct Tw {
        w: __m512i,
        ws: __m512i,
        wsh: __m512i,
    }

    /// The modulus broadcast for [`mul_shoup_lazy`]: q, 2^52 - q and the 52-bit mask.
    #[derive(Clone, Copy)]
    struct Q {
        q: __m512i,
        neg_q: __m512i,
        mask: __m512i,
    }

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn modulus(q: u64) -> Q {
        Q {
            q: _mm512_set1_epi64(q as i64),
            neg_q: _mm512_set1_epi64((1u64 << 52).wrapping_sub(q) as i64),
            mask: _mm512_set1_epi64(((1u64 << 52) - 1) as i64),
        }
    }

    /// Twiddles `w` with their 64-bit Shoup quotients `ws` in the form of `WIDE`'s product.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn tw<const WIDE: bool>(w: __m512i, ws: __m512i) -> Tw {
        Tw {
            w,
            ws: if WIDE { ws } else { _mm512_srli_epi64::<12>(ws) },
            wsh: _mm512_srli_epi64::<52>(ws),
        }
    }

    /// Lane-wise a * w - floor(a * w' / 2^k) * q in [0, 2q), as the passes' product of the
    /// same name (narrow for a < 2^52, wide for any a), with a twiddle per lane.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn mul_shoup_lazy<const WIDE: bool>(a: __m512i, t: Tw, m: Q) -> __m512i {
        let zero = _mm512_setzero_si512();
        if WIDE {
            let ah = _mm512_srli_epi64::<52>(a);
            let l = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(_mm512_madd52hi_epu64(zero, a, t.ws), a, t.wsh), ah, t.ws);
            let h = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(_mm512_madd52hi_epu64(zero, a, t.wsh), ah, t.ws), ah, t.wsh);
            let quotient = _mm512_add_epi64(_mm512_srli_epi64::<12>(l), _mm512_slli_epi64::<40>(h));
            _mm512_sub_epi64(_mm512_mullo_epi64(a, t.w), _mm512_mullo_epi64(quotient, m.q))
        } else {
            let hi = _mm512_madd52hi_epu64(zero, a, t.ws);
            _mm512_and_si512(_mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, a, t.w), hi, m.neg_q), m.mask)
        }
    }

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn csub(x: __m512i, c: __m512i) -> __m512i {
        _mm512_min_epu64(x, _mm512_sub_epi64(x, c))
    }

    /// The radix-4 group of `ntt::forward_group`, lane-wise: inputs and outputs in [0, 4q), `w`
    /// the stage-s twiddle and the two stage-s+1 ones.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn forward_group<const WIDE: bool>([x0, x1, x2, x3]: [__m512i; 4], (w1, w2a, w2b): (Tw, Tw, Tw), two_q: __m512i, m: Q) -> [__m512i; 4] {
        let u0 = csub(x0, two_q);
        let v0 = mul_shoup_lazy::<WIDE>(x2, w1, m);
        let u1 = csub(x1, two_q);
        let v1 = mul_shoup_lazy::<WIDE>(x3, w1, m);
        let y0 = _mm512_add_epi64(u0, v0);
        let y2 = _mm512_sub_epi64(_mm512_add_epi64(u0, two_q), v0);
        let y1 = _mm512_add_epi64(u1, v1);
        let y3 = _mm512_sub_epi64(_mm512_add_epi64(u1, two_q), v1);
        let a0 = csub(y0, two_q);
        let b0 = mul_shoup_lazy::<WIDE>(y1, w2a, m);
        let a2 = csub(y2, two_q);
        let b2 = mul_shoup_lazy::<WIDE>(y3, w2b, m);
        [
            _mm512_add_epi64(a0, b0),
            _mm512_sub_epi64(_mm512_add_epi64(a0, two_q), b0),
            _mm512_add_epi64(a2, b2),
            _mm512_sub_epi64(_mm512_add_epi64(a2, two_q), b2),
        ]
    }

    /// The forward pass; `tw1` holds one twiddle per group and `tw2` two (with their 64-bit
    /// Shoup quotients); with `reduce`, outputs are brought to [0, q) as the scalar pass does.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    pub(super) fn forward<const WIDE: bool>(a: &mut [u64], sm: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64]), reduce: bool) {
        let q = sm.value();
        let (qv, two_q) = (_mm512_set1_epi64(q as i64), _mm512_set1_epi64((2 * q) as i64));
        let m = modulus(q);
        for (g, chunk) in a.chunks_exact_mut(32).enumerate() {
            let (Some(w1), Some(ws1), Some(w2lo), Some(w2hi), Some(ws2lo), Some(ws2hi)) = (
                eight(tw1.0, 8 * g),
                eight(tw1.1, 8 * g),
                eight(tw2.0, 16 * g),
                eight(tw2.0, 16 * g + 8),
                eight(tw2.1, 16 * g),
                eight(tw2.1, 16 * g + 8),
            ) else {
                return;
            };
            let w1 = tw::<WIDE>(load(w1), load(ws1));
            let (w2lo, w2hi, ws2lo, ws2hi) = (load(w2lo), load(w2hi), load(ws2lo), load(ws2hi));
            let w2a = tw::<WIDE>(permute(w2lo, &EVEN, w2hi), permute(ws2lo, &EVEN, ws2hi));
            let w2b = tw::<WIDE>(permute(w2lo, &ODD, w2hi), permute(ws2lo, &ODD, ws2hi));
            let Some([x0, x1, x2, x3]) = transpose_in(chunk) else {
                return;
            };
            let out = |x: __m512i| if reduce { csub(csub(x, two_q), qv) } else { x };
            let z = forward_group::<WIDE>([x0, x1, x2, x3], (w1, w2a, w2b), two_q, m).map(out);
            transpose_out(chunk, z);
        }
    }

    /// Four words at `start` of `s`, each repeated in two adjacent lanes (one radix-4 group's
    /// twiddle for the two groups of a block at distance 4).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn four_doubled(s: &[u64], start: usize) -> Option<__m512i> {
        let c: &[u64; 4] = s.get(start..start + 4)?.try_into().ok()?;
        // SAFETY: `c` is 32 readable bytes (unaligned load).
        let v = unsafe { _mm256_loadu_si256(c.as_ptr().cast::<__m256i>()) };
        Some(_mm512_permutexvar_epi64(load(&DOUBLED), _mm512_castsi256_si512(v)))
    }

    const DOUBLED: [u64; 8] = [0, 0, 1, 1, 2, 2, 3, 3];
    const BLOCK_PAIRS_LO: [u64; 8] = [0, 1, 8, 9, 2, 3, 10, 11];
    const BLOCK_PAIRS_HI: [u64; 8] = [4, 5, 12, 13, 6, 7, 14, 15];
    const EVEN_DOUBLED: [u64; 8] = [0, 0, 2, 2, 4, 4, 6, 6];
    const ODD_DOUBLED: [u64; 8] = [1, 1, 3, 3, 5, 5, 7, 7];
    const INTERLEAVE_LO: [u64; 8] = [0, 8, 1, 9, 2, 10, 3, 11];
    const INTERLEAVE_HI: [u64; 8] = [4, 12, 5, 13, 6, 14, 7, 15];

    /// The forward radix-4 pass at distance 4 (blocks of 8 values, quarters of 2: the pass
    /// before the last radix-2 stage when log2 N is odd), four blocks at a time: each block is
    /// one vector, and a 4 x 4 transpose of lane pairs gives the vectors of x0, x1, x2, x3 of
    /// the 8 radix-4 groups, the twiddles of block k in lanes 2k and 2k + 1. Outputs in [0, 4q).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    pub(super) fn forward_distance4<const WIDE: bool>(a: &mut [u64], sm: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64])) {
        let q = sm.value();
        let two_q = _mm512_set1_epi64((2 * q) as i64);
        let m = modulus(q);
        for (g, chunk) in a.chunks_exact_mut(32).enumerate() {
            let (Some(w1), Some(ws1), Some(w2), Some(ws2)) = (
                four_doubled(tw1.0, 4 * g),
                four_doubled(tw1.1, 4 * g),
                eight(tw2.0, 8 * g),
                eight(tw2.1, 8 * g),
            ) else {
                return;
            };
            let w1 = tw::<WIDE>(w1, ws1);
            let (w2, ws2) = (load(w2), load(ws2));
            let w2a = tw::<WIDE>(permute(w2, &EVEN_DOUBLED, w2), permute(ws2, &EVEN_DOUBLED, ws2));
            let w2b = tw::<WIDE>(permute(w2, &ODD_DOUBLED, w2), permute(ws2, &ODD_DOUBLED, ws2));
            let [c0, c1, c2, c3] = chunk.as_chunks_mut::<8>().0 else {
                return;
            };
            let (v0, v1, v2, v3) = (load(c0), load(c1), load(c2), load(c3));
            let (t0, t1) = (permute(v0, &BLOCK_PAIRS_LO, v1), permute(v0, &BLOCK_PAIRS_HI, v1));
            let (t2, t3) = (permute(v2, &BLOCK_PAIRS_LO, v3), permute(v2, &BLOCK_PAIRS_HI, v3));
            let (x0, x1) = (permute(t0, &HALVES_LO, t2), permute(t0, &HALVES_HI, t2));
            let (x2, x3) = (permute(t1, &HALVES_LO, t3), permute(t1, &HALVES_HI, t3));
            let [z0, z1, z2, z3] = forward_group::<WIDE>([x0, x1, x2, x3], (w1, w2a, w2b), two_q, m);
            // Back: lane pairs of z0 and z1 (z2 and z3) interleaved, then halves.
            let (s0, s1) = (permute(z0, &BLOCK_PAIRS_LO, z1), permute(z0, &BLOCK_PAIRS_HI, z1));
            let (s2, s3) = (permute(z2, &BLOCK_PAIRS_LO, z3), permute(z2, &BLOCK_PAIRS_HI, z3));
            store(c0, permute(s0, &HALVES_LO, s2));
            store(c1, permute(s0, &HALVES_HI, s2));
            store(c2, permute(s1, &HALVES_LO, s3));
            store(c3, permute(s1, &HALVES_HI, s3));
        }
    }

    /// The forward transform's last stage when log2 N is odd: radix 2 on adjacent pairs, each
    /// with its own twiddle, eight pairs at a time (evens and odds split by `vpermt2q`); with
    /// `reduce`, outputs are brought to [0, q) as the scalar pass does.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    pub(super) fn forward_pairs<const WIDE: bool>(a: &mut [u64], sm: &Modulus, twiddles: (&[u64], &[u64]), reduce: bool) {
        let q = sm.value();
        let (qv, two_q) = (_mm512_set1_epi64(q as i64), _mm512_set1_epi64((2 * q) as i64));
        let m = modulus(q);
        for (g, chunk) in a.chunks_exact_mut(16).enumerate() {
            let (Some(w), Some(ws)) = (eight(twiddles.0, 8 * g), eight(twiddles.1, 8 * g)) else {
                return;
            };
            let w = tw::<WIDE>(load(w), load(ws));
            let [c0, c1] = chunk.as_chunks_mut::<8>().0 else {
                return;
            };
            let (v0, v1) = (load(c0), load(c1));
            let u = csub(permute(v0, &EVEN, v1), two_q);
            let v = mul_shoup_lazy::<WIDE>(permute(v0, &ODD, v1), w, m);
            let out = |x: __m512i| if reduce { csub(csub(x, two_q), qv) } else { x };
            let (x, y) = (out(_mm512_add_epi64(u, v)), out(_mm512_sub_epi64(_mm512_add_epi64(u, two_q), v)));
            store(c0, permute(x, &INTERLEAVE_LO, y));
            store(c1, permute(x, &INTERLEAVE_HI, y));
        }
    }

    /// The first inverse pass (distance 1: `NttTable::inverse`'s groups of four adjacent
    /// values), eight groups at a time; `twa` holds two stage-A twiddles per group and `twb`
    /// one stage-B twiddle (with their 64-bit Shoup quotients). Outputs in [0, 2q).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    pub(super) fn inverse_first<const WIDE: bool>(a: &mut [u64], sm: &Modulus, twa: (&[u64], &[u64]), twb: (&[u64], &[u64])) {
        let q = sm.value();
        let two_q = _mm512_set1_epi64((2 * q) as i64);
        let m = modulus(q);
        for (g, chunk) in a.chunks_exact_mut(32).enumerate() {
            let (Some(walo), Some(wahi), Some(wsalo), Some(wsahi), Some(wb), Some(wsb)) = (
                eight(twa.0, 16 * g),
                eight(twa.0, 16 * g + 8),
                eight(twa.1, 16 * g),
                eight(twa.1, 16 * g + 8),
                eight(twb.0, 8 * g),
                eight(twb.1, 8 * g),
            ) else {
                return;
            };
            let (walo, wahi, wsalo, wsahi) = (load(walo), load(wahi), load(wsalo), load(wsahi));
            let wa0 = tw::<WIDE>(permute(walo, &EVEN, wahi), permute(wsalo, &EVEN, wsahi));
            let wa1 = tw::<WIDE>(permute(walo, &ODD, wahi), permute(wsalo, &ODD, wsahi));
            let wb = tw::<WIDE>(load(wb), load(wsb));
            let Some([u0, v0, u1, v1]) = transpose_in(chunk) else {
                return;
            };
            let y0 = csub(_mm512_add_epi64(u0, v0), two_q);
            let y1 = mul_shoup_lazy::<WIDE>(_mm512_sub_epi64(_mm512_add_epi64(u0, two_q), v0), wa0, m);
            let y2 = csub(_mm512_add_epi64(u1, v1), two_q);
            let y3 = mul_shoup_lazy::<WIDE>(_mm512_sub_epi64(_mm512_add_epi64(u1, two_q), v1), wa1, m);
            let z0 = csub(_mm512_add_epi64(y0, y2), two_q);
            let z2 = mul_shoup_lazy::<WIDE>(_mm512_sub_epi64(_mm512_add_epi64(y0, two_q), y2), wb, m);
            let z1 = csub(_mm512_add_epi64(y1, y3), two_q);
            let z3 = mul_shoup_lazy::<WIDE>(_mm512_sub_epi64(_mm512_add_epi64(y1, two_q), y3), wb, m);
            transpose_out(chunk, [z0, z1, z2, z3]);
        }
    }

    /// 32 values (eight groups of four) as the vectors of each group's x0, x1, x2, x3: a 4 x 4
    /// transpose of 64-bit lanes in two rounds of `vpermt2q`.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn transpose_in(chunk: &mut [u64]) -> Option<[__m512i; 4]> {
        let [c0, c1, c2, c3] = chunk.as_chunks_mut::<8>().0 else {
            return None;
        };
        let (v0, v1, v2, v3) = (load(c0), load(c1), load(c2), load(c3));
        let (t0, t1) = (permute(v0, &PAIRS_LO, v1), permute(v0, &PAIRS_HI, v1));
        let (t2, t3) = (permute(v2, &PAIRS_LO, v3), permute(v2, &PAIRS_HI, v3));
        Some([
            permute(t0, &HALVES_LO, t2),
            permute(t0, &HALVES_HI, t2),
            permute(t1, &HALVES_LO, t3),
            permute(t1, &HALVES_HI, t3),
        ])
    }

    /// The inverse of [`transpose_in`]: the group vectors back into 32 values in place.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512ifma")]
    #[inline]
    fn transpose_out(chunk: &mut [u64], [z0, z1, z2, z3]: [__m512i; 4]) {
        let [c0, c1, c2, c3] = chunk.as_chunks_mut::<8>().0 else {
            return;
        };
        let (s0, s2) = (permute(z0, &HALVES_LO, z1), permute(z0, &HALVES_HI, z1));
        let (s1, s3) = (permute(z2, &HALVES_LO, z3), permute(z2, &HALVES_HI, z3));
        store(c0, permute(s0, &PAIRS_LO, s1));
        store(c1, permute(s0, &PAIRS_HI, s1));
        store(c2, permute(s2, &PAIRS_LO, s3));
        store(c3, permute(s2, &PAIRS_HI, s3));
    }
}

/// Runs the inverse transform's first radix-4 pass (distance 1) with IFMA when [`width`] takes
/// q, N is a multiple of 32 and the CPU has it.
pub(crate) fn inverse_first_radix4(a: &mut [u64], m: &Modulus, twa: (&[u64], &[u64]), twb: (&[u64], &[u64])) -> bool {
    if !a.len().is_multiple_of(32) {
        return false;
    }
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) => unsafe { last::inverse_first::<false>(a, m, twa, twb) },
        Some(Width::Wide) => unsafe { last::inverse_first::<true>(a, m, twa, twb) },
    }
    true
}

/// Runs the forward transform's last radix-4 pass (distance 2) with IFMA when [`width`] takes
/// q, N is a multiple of 32 and the CPU has it; `reduce` as in `NttTable::forward_impl`.
pub(crate) fn forward_last_radix4(a: &mut [u64], m: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64]), reduce: bool) -> bool {
    if !a.len().is_multiple_of(32) {
        return false;
    }
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) => unsafe { last::forward::<false>(a, m, tw1, tw2, reduce) },
        Some(Width::Wide) => unsafe { last::forward::<true>(a, m, tw1, tw2, reduce) },
    }
    true
}

/// Runs the forward transform's last radix-2 stage (log2 N odd: adjacent pairs) with IFMA when
/// [`width`] takes q, N is a multiple of 16 and the CPU has it; `reduce` as in
/// `NttTable::forward_impl`.
pub(crate) fn forward_last_radix2(a: &mut [u64], m: &Modulus, tw: (&[u64], &[u64]), reduce: bool) -> bool {
    if !a.len().is_multiple_of(16) {
        return false;
    }
    // SAFETY (each arm): AVX-512F, VL, DQ and IFMA were detected at run time by `width`.
    match width(m.value()) {
        None => return false,
        Some(Width::Narrow) => unsafe { last::forward_pairs::<false>(a, m, tw, reduce) },
        Some(Width::Wide) => unsafe { last::forward_pairs::<true>(a, m, tw, reduce) },
    }
    true
}
