//! AVX2 butterflies for the wide passes of [`crate::ntt::NttTable`] (x86-64 hosts with `std`).
//!
//! # Why this module uses `unsafe`
//!
//! The workspace denies `unsafe_code`; this module is the one exception, for a measured win on
//! the NTT (see BENCHMARKS.md). x86-64 has no vector 64x64-bit multiplication before AVX-512, and
//! LLVM does not vectorise the scalar Shoup product (a u128 high half), so the products are
//! spelled out with `vpmuludq` (32x32 -> 64 bits) lanes: 4 of them for the high word of
//! a * w', 3 each for the low words of a * w and hi * q. Every vector operation computes exactly
//! the wrapping 64-bit value of the scalar code in `arith.rs` lane by lane, so results are
//! bit-identical to the scalar path, which stays the reference (and the only path on other
//! targets, on the firmware and on CPUs without AVX2); `core/tests/ntt_reference.rs` checks it.
//!
//! Soundness: (1) every `#[target_feature(enable = "avx2")]` function is only reached through
//! [`avx2_available`], a runtime check (`is_x86_feature_detected!`, cached by std), so no AVX2
//! instruction runs on a CPU without it; (2) the only memory accesses are unaligned 32-byte
//! loads and stores (`_mm256_loadu_si256` / `_mm256_storeu_si256`, no alignment requirement)
//! through `&[u64; 4]` / `&mut [u64; 4]` references, so the 32 bytes each touches are four
//! valid (exclusively borrowed, for a store) `u64`s by their type, not by a run-time length
//! check; no pointer outlives its reference. The arrays come from `chunks_exact_mut(4)` (see
//! [`lanes`]) and `split_first_chunk_mut`. The rest (slice splitting, twiddle indexing) is safe
//! Rust with bounds checks.
#![allow(unsafe_code)]

use crate::arith::Modulus;
use crate::ntt::forward_group;
use core::sync::atomic::{AtomicBool, Ordering};

use core::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_cmpgt_epi64, _mm256_loadu_si256, _mm256_mul_epu32,
    _mm256_set1_epi64x, _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_si256, _mm256_sub_epi64,
};

/// Cleared by [`set_enabled`] (tests and benchmarks of the scalar reference path).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Set by [`set_on_avx512`]: run the AVX2 passes on a CPU with AVX-512F too (tests and
/// benchmarks of this path on such hosts).
static ON_AVX512: AtomicBool = AtomicBool::new(false);

/// Enables or disables the AVX2 passes process-wide (`ntt::set_simd_enabled`).
pub(crate) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
    crate::ntt_ifma::set_enabled(enabled);
}

/// False after `ntt::set_simd_enabled(false)`: every vector path off (the block gathers of
/// `slot_blocks` too).
pub(crate) fn simd_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs the AVX2 passes on CPUs with AVX-512F as well (`true`), or leaves those to the scalar
/// passes (`false`, the default; `ntt::set_avx2_on_avx512`).
pub(crate) fn set_on_avx512(enabled: bool) {
    ON_AVX512.store(enabled, Ordering::Relaxed);
}

/// Whether the AVX2 passes may run: the CPU has AVX2, they are not disabled, and the CPU has
/// no AVX-512F (unless [`set_on_avx512`] asked for them there).
///
/// Why not on AVX-512 CPUs: measured on the AVX-512 IFMA Xeon of BENCHMARKS.md, even the scalar
/// passes beat these for the primes of 50 bits and more (2^15, 60-bit prime: forward 227
/// against 246 us, inverse 225 against 307 us), while on Zen 3, without AVX-512, these beat
/// the scalar ones by 20-25%. Primes below 2^62 take the IFMA passes on CPUs that have them in
/// either case; the scalar passes take the rest of an AVX-512 CPU's work.
#[inline]
pub(crate) fn avx2_available() -> bool {
    ENABLED.load(Ordering::Relaxed)
        && std::is_x86_feature_detected!("avx2")
        && (ON_AVX512.load(Ordering::Relaxed) || !std::is_x86_feature_detected!("avx512f"))
}

/// A twiddle w < q and its Shoup quotient w', broadcast, with their high 32-bit halves.
#[derive(Clone, Copy)]
struct Tw {
    w: __m256i,
    w_hi: __m256i,
    ws: __m256i,
    ws_hi: __m256i,
}

/// The modulus q < 2^61 broadcast: q, its high half, 2q and the 32-bit mask.
#[derive(Clone, Copy)]
struct Q {
    q: __m256i,
    q_hi: __m256i,
    two_q: __m256i,
    lo32: __m256i,
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn tw(w: u64, ws: u64) -> Tw {
    Tw {
        w: _mm256_set1_epi64x(w as i64),
        w_hi: _mm256_set1_epi64x((w >> 32) as i64),
        ws: _mm256_set1_epi64x(ws as i64),
        ws_hi: _mm256_set1_epi64x((ws >> 32) as i64),
    }
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn modulus(q: u64) -> Q {
    Q {
        q: _mm256_set1_epi64x(q as i64),
        q_hi: _mm256_set1_epi64x((q >> 32) as i64),
        two_q: _mm256_set1_epi64x((2 * q) as i64),
        lo32: _mm256_set1_epi64x(0xffff_ffff),
    }
}

/// Lane-wise `Modulus::mul_shoup_lazy`: a * w - floor(a * w' / 2^64) * q, wrapping (any a).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mul_shoup_lazy(a: __m256i, t: Tw, m: Q) -> __m256i {
    let a_hi = _mm256_srli_epi64::<32>(a);
    // High 64 bits of a * w' from the four 32x32 partial products.
    let ll = _mm256_mul_epu32(a, t.ws);
    let lh = _mm256_mul_epu32(a, t.ws_hi);
    let hl = _mm256_mul_epu32(a_hi, t.ws);
    let hh = _mm256_mul_epu32(a_hi, t.ws_hi);
    let mid = _mm256_add_epi64(
        _mm256_srli_epi64::<32>(ll),
        _mm256_add_epi64(_mm256_and_si256(lh, m.lo32), _mm256_and_si256(hl, m.lo32)),
    );
    let hi = _mm256_add_epi64(
        _mm256_add_epi64(hh, _mm256_srli_epi64::<32>(lh)),
        _mm256_add_epi64(_mm256_srli_epi64::<32>(hl), _mm256_srli_epi64::<32>(mid)),
    );
    // Low 64 bits of a * w and of hi * q.
    let aw_cross = _mm256_add_epi64(_mm256_mul_epu32(a, t.w_hi), _mm256_mul_epu32(a_hi, t.w));
    let aw = _mm256_add_epi64(_mm256_mul_epu32(a, t.w), _mm256_slli_epi64::<32>(aw_cross));
    let hq_cross = _mm256_add_epi64(_mm256_mul_epu32(hi, m.q_hi), _mm256_mul_epu32(_mm256_srli_epi64::<32>(hi), m.q));
    let hq = _mm256_add_epi64(_mm256_mul_epu32(hi, m.q), _mm256_slli_epi64::<32>(hq_cross));
    _mm256_sub_epi64(aw, hq)
}

/// Lane-wise `csub(x, c)` for x, c < 2^63: x - c if x >= c, else x.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn csub(x: __m256i, c: __m256i) -> __m256i {
    let keep = _mm256_cmpgt_epi64(c, x);
    _mm256_sub_epi64(x, _mm256_andnot_si256(keep, c))
}

/// Loads four lanes; the array type guarantees the 32 bytes read are in bounds.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load(c: &[u64; 4]) -> __m256i {
    _mm256_loadu_si256(c.as_ptr().cast())
}

/// Stores four lanes; the array type guarantees the 32 bytes written are in bounds and ours.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store(c: &mut [u64; 4], v: __m256i) {
    _mm256_storeu_si256(c.as_mut_ptr().cast(), v)
}

/// The four-lane chunks of `s` as arrays. `chunks_exact_mut(4)` yields only slices of length 4,
/// so every conversion succeeds and no element is skipped (callers pass multiples of 4; a
/// remainder would be left alone exactly as `chunks_exact_mut` leaves it).
fn lanes(s: &mut [u64]) -> impl Iterator<Item = &mut [u64; 4]> {
    s.chunks_exact_mut(4).filter_map(|c| c.try_into().ok())
}

/// The eight-lane chunks of `s` (the interleaved forward pass: four AVX2 lanes, four scalar).
fn eights(s: &mut [u64]) -> core::slice::ChunksExactMut<'_, u64> {
    s.chunks_exact_mut(8)
}

/// One forward butterfly group on four lanes (the vector form of `ntt::forward_group`).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn forward_group4(c: [&mut [u64; 4]; 4], w1: Tw, w2a: Tw, w2b: Tw, m: Q) {
    let [c0, c1, c2, c3] = c;
    let u0 = csub(load(c0), m.two_q);
    let v0 = mul_shoup_lazy(load(c2), w1, m);
    let u1 = csub(load(c1), m.two_q);
    let v1 = mul_shoup_lazy(load(c3), w1, m);
    let y0 = _mm256_add_epi64(u0, v0);
    let y2 = _mm256_sub_epi64(_mm256_add_epi64(u0, m.two_q), v0);
    let y1 = _mm256_add_epi64(u1, v1);
    let y3 = _mm256_sub_epi64(_mm256_add_epi64(u1, m.two_q), v1);
    let a0 = csub(y0, m.two_q);
    let b0 = mul_shoup_lazy(y1, w2a, m);
    let a2 = csub(y2, m.two_q);
    let b2 = mul_shoup_lazy(y3, w2b, m);
    store(c0, _mm256_add_epi64(a0, b0));
    store(c1, _mm256_sub_epi64(_mm256_add_epi64(a0, m.two_q), b0));
    store(c2, _mm256_add_epi64(a2, b2));
    store(c3, _mm256_sub_epi64(_mm256_add_epi64(a2, m.two_q), b2));
}

/// One inverse butterfly group on four lanes (the vector form of `ntt::inverse_group`), or,
/// with `fold`, of the last pass (stage-B sums times N^-1, differences times inv[1] N^-1,
/// fully reduced).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn inverse_group4(c: [&mut [u64; 4]; 4], wa0: Tw, wa1: Tw, wb: Tw, fold: Option<(Tw, Tw)>, m: Q) {
    let [c0, c1, c2, c3] = c;
    let (u0, v0, u1, v1) = (load(c0), load(c1), load(c2), load(c3));
    let y0 = csub(_mm256_add_epi64(u0, v0), m.two_q);
    let y1 = mul_shoup_lazy(_mm256_sub_epi64(_mm256_add_epi64(u0, m.two_q), v0), wa0, m);
    let y2 = csub(_mm256_add_epi64(u1, v1), m.two_q);
    let y3 = mul_shoup_lazy(_mm256_sub_epi64(_mm256_add_epi64(u1, m.two_q), v1), wa1, m);
    let s0 = _mm256_add_epi64(y0, y2);
    let d0 = _mm256_sub_epi64(_mm256_add_epi64(y0, m.two_q), y2);
    let s1 = _mm256_add_epi64(y1, y3);
    let d1 = _mm256_sub_epi64(_mm256_add_epi64(y1, m.two_q), y3);
    if let Some((ni, il)) = fold {
        store(c0, csub(mul_shoup_lazy(s0, ni, m), m.q));
        store(c2, csub(mul_shoup_lazy(d0, il, m), m.q));
        store(c1, csub(mul_shoup_lazy(s1, ni, m), m.q));
        store(c3, csub(mul_shoup_lazy(d1, il, m), m.q));
    } else {
        store(c0, csub(s0, m.two_q));
        store(c2, mul_shoup_lazy(d0, wb, m));
        store(c1, csub(s1, m.two_q));
        store(c3, mul_shoup_lazy(d1, wb, m));
    }
}

/// The four quarters of a block as zipped chunks, each chunk made by `$chunks` (`lanes` for
/// four-lane arrays, or `eights` for the interleaved forward pass).
macro_rules! quarters_by {
    ($block:expr, $len:expr, $chunks:expr) => {{
        let (lo, hi) = $block.split_at_mut(2 * $len);
        let (q0, q1) = lo.split_at_mut($len);
        let (q2, q3) = hi.split_at_mut($len);
        let chunks = $chunks;
        chunks(q0).zip(chunks(q1)).zip(chunks(q2)).zip(chunks(q3))
    }};
}

// Interleaving (forward only): when a quarter holds a multiple of 8 values, each step runs four
// lanes on AVX2 and the next four with the scalar butterflies. The vector code keeps the SIMD
// multipliers busy and leaves the scalar 64-bit multiplier idle; giving it work in the same
// loop lets the out-of-order core overlap the two (measured 8-10% faster than AVX2 alone on
// Zen 3). The same interleaving made the inverse slower (its scalar butterflies are the
// longer dependency chain), so the inverse passes are pure AVX2.

/// One radix-4 pass of the forward transform (the scalar loop of `NttTable::forward_impl`) for
/// a butterfly distance `t` that is a multiple of 8; `tw1`/`tw2` are the stage twiddles.
///
/// # Safety
/// The CPU must support AVX2 ([`avx2_available`]).
#[target_feature(enable = "avx2")]
unsafe fn forward_radix4_avx2(a: &mut [u64], t: usize, sm: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64])) {
    let m = modulus(sm.value());
    let h = t / 2;
    for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
        let (s1, s2a, s2b) = (
            (tw1.0[i], tw1.1[i]),
            (tw2.0[2 * i], tw2.1[2 * i]),
            (tw2.0[2 * i + 1], tw2.1[2 * i + 1]),
        );
        let (w1, w2a, w2b) = (tw(s1.0, s1.1), tw(s2a.0, s2a.1), tw(s2b.0, s2b.1));
        if h.is_multiple_of(8) {
            for (((e0, e1), e2), e3) in quarters_by!(block, h, eights) {
                // Each chunk has exactly 8 lanes, so the first four always split off; the
                // `else` cannot run (it is there only because the split is typed `Option`).
                let (Some((c0, r0)), Some((c1, r1)), Some((c2, r2)), Some((c3, r3))) = (
                    e0.split_first_chunk_mut::<4>(),
                    e1.split_first_chunk_mut::<4>(),
                    e2.split_first_chunk_mut::<4>(),
                    e3.split_first_chunk_mut::<4>(),
                ) else {
                    continue;
                };
                forward_group4([c0, c1, c2, c3], w1, w2a, w2b, m);
                for (((x0, x1), x2), x3) in r0.iter_mut().zip(r1.iter_mut()).zip(r2.iter_mut()).zip(r3.iter_mut()) {
                    forward_group(sm, [x0, x1, x2, x3], s1, s2a, s2b);
                }
            }
        } else {
            for (((c0, c1), c2), c3) in quarters_by!(block, h, lanes) {
                forward_group4([c0, c1, c2, c3], w1, w2a, w2b, m);
            }
        }
    }
}

/// One radix-4 pass of the inverse transform for a distance `t` that is a multiple of 4
/// (stage A twiddles `twa`, stage B `twb`). With `last` (the final pass, one block of N, whose
/// stage B twiddle is inv[1]): the stage-B sums are multiplied by N^-1 and the differences by
/// `last = (inv[1] N^-1, its Shoup quotient)`, fully reduced, as in the scalar code.
///
/// # Safety
/// The CPU must support AVX2 ([`avx2_available`]).
#[target_feature(enable = "avx2")]
unsafe fn inverse_radix4_avx2(
    a: &mut [u64],
    t: usize,
    sm: &Modulus,
    twa: (&[u64], &[u64]),
    twb: (&[u64], &[u64]),
    last: Option<((u64, u64), (u64, u64))>,
) {
    let m = modulus(sm.value());
    let fold = last.map(|((ni, nis), (il, ils))| (tw(ni, nis), tw(il, ils)));
    for (i, block) in a.chunks_exact_mut(4 * t).enumerate() {
        let (wa0, wa1) = (tw(twa.0[2 * i], twa.1[2 * i]), tw(twa.0[2 * i + 1], twa.1[2 * i + 1]));
        let wb = tw(twb.0[i], twb.1[i]);
        for (((c0, c1), c2), c3) in quarters_by!(block, t, lanes) {
            inverse_group4([c0, c1, c2, c3], wa0, wa1, wb, fold, m);
        }
    }
}

/// The last inverse stage when log2 N is odd: one radix-2 stage of distance `N/2` (a multiple
/// of 4) with N^-1 folded in (`ni` = N^-1, `il` = inv[1] N^-1, each with its Shoup quotient).
///
/// # Safety
/// The CPU must support AVX2 ([`avx2_available`]).
#[target_feature(enable = "avx2")]
unsafe fn inverse_last_radix2_avx2(a: &mut [u64], sm: &Modulus, ni: (u64, u64), il: (u64, u64)) {
    let m = modulus(sm.value());
    let (ni, il) = (tw(ni.0, ni.1), tw(il.0, il.1));
    let half = a.len() / 2;
    let (lo, hi) = a.split_at_mut(half);
    for (cx, cy) in lanes(lo).zip(lanes(hi)) {
        let (u, v) = (load(cx), load(cy));
        store(cx, csub(mul_shoup_lazy(_mm256_add_epi64(u, v), ni, m), m.q));
        store(
            cy,
            csub(mul_shoup_lazy(_mm256_sub_epi64(_mm256_add_epi64(u, m.two_q), v), il, m), m.q),
        );
    }
}

/// Runs the IFMA pass (`ntt_ifma`) where it applies, else [`forward_radix4_avx2`] when AVX2 is present and `t` is a multiple of 8; returns
/// whether it did (otherwise the caller runs the scalar pass).
pub(crate) fn forward_radix4(a: &mut [u64], t: usize, m: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64])) -> bool {
    if crate::ntt_ifma::forward_radix4(a, t, m, tw1, tw2) {
        return true;
    }
    if !t.is_multiple_of(8) || !avx2_available() {
        return false;
    }
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { forward_radix4_avx2(a, t, m, tw1, tw2) };
    true
}

/// The inverse transform's first radix-4 pass (distance 1) on IFMA where it applies
/// (`ntt_ifma`); AVX2 has no vector form of it (the caller runs the scalar pass).
pub(crate) fn inverse_first_radix4(a: &mut [u64], m: &Modulus, twa: (&[u64], &[u64]), twb: (&[u64], &[u64])) -> bool {
    crate::ntt_ifma::inverse_first_radix4(a, m, twa, twb)
}

/// The forward transform's last radix-4 pass (distance 2) on IFMA where it applies (`ntt_ifma`);
/// AVX2 has no vector form of it (the caller runs the scalar pass).
pub(crate) fn forward_last_radix4(a: &mut [u64], m: &Modulus, tw1: (&[u64], &[u64]), tw2: (&[u64], &[u64]), reduce: bool) -> bool {
    crate::ntt_ifma::forward_last_radix4(a, m, tw1, tw2, reduce)
}

/// The forward transform's last radix-2 stage (log2 N odd) on IFMA where it applies
/// (`ntt_ifma`); AVX2 has no vector form of it (the caller runs the scalar pass).
pub(crate) fn forward_last_radix2(a: &mut [u64], m: &Modulus, tw: (&[u64], &[u64]), reduce: bool) -> bool {
    crate::ntt_ifma::forward_last_radix2(a, m, tw, reduce)
}

/// Runs the IFMA pass where it applies, else [`inverse_radix4_avx2`] when AVX2 is present and `t` is a multiple of 4.
pub(crate) fn inverse_radix4(
    a: &mut [u64],
    t: usize,
    m: &Modulus,
    twa: (&[u64], &[u64]),
    twb: (&[u64], &[u64]),
    last: Option<((u64, u64), (u64, u64))>,
) -> bool {
    if crate::ntt_ifma::inverse_radix4(a, t, m, twa, twb, last) {
        return true;
    }
    if !t.is_multiple_of(4) || !avx2_available() {
        return false;
    }
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { inverse_radix4_avx2(a, t, m, twa, twb, last) };
    true
}

/// Runs the IFMA pass where it applies, else [`inverse_last_radix2_avx2`] when AVX2 is present and N/2 is a multiple of 4.
pub(crate) fn inverse_last_radix2(a: &mut [u64], m: &Modulus, ni: (u64, u64), il: (u64, u64)) -> bool {
    if crate::ntt_ifma::inverse_last_radix2(a, m, ni, il) {
        return true;
    }
    if !a.len().is_multiple_of(8) || !avx2_available() {
        return false;
    }
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { inverse_last_radix2_avx2(a, m, ni, il) };
    true
}
