//! The AVX-512 IFMA kernels of [`super`] (module docs there).

use super::{Destination, LinearCombination, MAX_TERMS};
use core::arch::x86_64::{
    __m512d, __m512i, _mm512_add_epi64, _mm512_add_pd, _mm512_and_si512, _mm512_cmp_pd_mask, _mm512_cvtepi64_pd, _mm512_cvttpd_epu64,
    _mm512_loadu_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_mask_add_epi64, _mm512_min_epu64, _mm512_mul_pd,
    _mm512_mullo_epi64, _mm512_roundscale_pd, _mm512_set1_epi64, _mm512_set1_pd, _mm512_setzero_si512, _mm512_slli_epi64,
    _mm512_srai_epi64, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi64, _mm512_sub_pd, _CMP_GE_OQ, _MM_FROUND_NO_EXC,
    _MM_FROUND_TO_ZERO,
};

/// Eight-word chunks of a limb.
type Chunks<'a> = &'a [[u64; 8]];
type ChunksMut<'a> = &'a mut [[u64; 8]];

/// Up to [`super::MAX_DIGITS`] rows of eight-word chunks (the rest empty).
type Rows<'a> = [Chunks<'a>; super::MAX_DIGITS];

/// The first `n` words of each slice of `limbs`.
fn rows_of<'a>(limbs: &[&'a [u64]], n: usize) -> Rows<'a> {
    core::array::from_fn(|d| limbs.get(d).map_or(&[][..], |l| l[..n].as_chunks::<8>().0))
}

/// A prime's constants for [`inner_product`].
pub(super) struct Constants {
    pub(super) q: u64,
    /// -q^-1 mod 2^52.
    pub(super) neg_inv: u64,
    /// 2^104 mod q and its 64-bit Shoup quotient floor(2^104 mod q * 2^64 / q).
    pub(super) r104: u64,
    pub(super) r104_shoup: u64,
}

impl Constants {
    pub(super) fn new(q: &crate::arith::Modulus) -> Self {
        let r52 = q.reduce(1 << 52);
        let r104 = q.mul(r52, r52);
        Self {
            q: q.value(),
            neg_inv: super::neg_inv_52(q),
            r104,
            r104_shoup: q.shoup(r104),
        }
    }
}

/// [`Constants`] broadcast for sums of products below 2^50 (two accumulators): each sum ends
/// as `redc104` and a multiplication by 2^104 mod q, canonical.
struct NarrowSums {
    q: __m512i,
    neg_inv: __m512i,
    r: __m512i,
    r_shoup: __m512i,
    neg_q: __m512i,
    mask: __m512i,
}

impl NarrowSums {
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn new(c: &Constants) -> Self {
        Self {
            q: _mm512_set1_epi64(c.q as i64),
            neg_inv: _mm512_set1_epi64(c.neg_inv as i64),
            r: _mm512_set1_epi64(c.r104 as i64),
            r_shoup: _mm512_set1_epi64((c.r104_shoup >> 12) as i64),
            neg_q: _mm512_set1_epi64(((1u64 << 52) - c.q) as i64),
            mask: _mm512_set1_epi64(((1u64 << 52) - 1) as i64),
        }
    }

    /// (lo + 2^52 hi) mod q, below q.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn reduce(&self, lo: __m512i, hi: __m512i) -> __m512i {
        mul_const(
            redc104(lo, hi, self.q, self.neg_inv),
            self.r,
            self.r_shoup,
            self.neg_q,
            self.mask,
            self.q,
        )
    }
}

/// [`Constants`] broadcast for sums of products of 50 to 61 bits (three accumulators): each
/// sum ends as `redc104_wide` and a multiplication by 2^104 mod q, canonical.
struct WideSums {
    q: __m512i,
    tl: __m512i,
    th: __m512i,
    neg_inv: __m512i,
    r: __m512i,
    rs: __m512i,
    rsh: __m512i,
}

impl WideSums {
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn new(c: &Constants) -> Self {
        Self {
            q: _mm512_set1_epi64(c.q as i64),
            tl: _mm512_set1_epi64((c.q & ((1 << 52) - 1)) as i64),
            th: _mm512_set1_epi64((c.q >> 52) as i64),
            neg_inv: _mm512_set1_epi64(c.neg_inv as i64),
            r: _mm512_set1_epi64(c.r104 as i64),
            rs: _mm512_set1_epi64(c.r104_shoup as i64),
            rsh: _mm512_set1_epi64((c.r104_shoup >> 52) as i64),
        }
    }

    /// (s0 + 2^52 s1 + 2^104 s2) mod q, below q.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    #[inline]
    fn reduce(&self, s: &[__m512i; 3]) -> __m512i {
        let v = redc104_wide(s[0], s[1], s[2], self.tl, self.th, self.neg_inv);
        mul_const_wide(v, self.r, self.rs, self.rsh, self.q)
    }
}

/// Loads eight words; the array type guarantees the bytes read are in bounds.
#[target_feature(enable = "avx512f")]
#[inline]
fn load(c: &[u64; 8]) -> __m512i {
    // SAFETY: one vector of eight readable words (unaligned load).
    unsafe { _mm512_loadu_si512(c.as_ptr().cast()) }
}

/// Stores eight words; the array type guarantees the bytes written are ours.
#[target_feature(enable = "avx512f")]
#[inline]
fn store(c: &mut [u64; 8], v: __m512i) {
    // SAFETY: one vector of eight exclusively borrowed words (unaligned store).
    unsafe { _mm512_storeu_si512(c.as_mut_ptr().cast(), v) }
}

/// (A_lo + 2^52 A_hi) 2^-104 mod q: two Montgomery steps (module docs), below
/// A_hi / 2^52 + q + 2.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn redc104(acc_lo: __m512i, acc_hi: __m512i, q: __m512i, neg_inv: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    // each w is 0 mod 2^52, so its shift is exact
    let u1 = _mm512_madd52lo_epu64(zero, acc_lo, neg_inv);
    let w1 = _mm512_madd52lo_epu64(acc_lo, u1, q);
    let v1 = _mm512_madd52hi_epu64(_mm512_add_epi64(acc_hi, _mm512_srli_epi64::<52>(w1)), u1, q);
    let u2 = _mm512_madd52lo_epu64(zero, v1, neg_inv);
    let w2 = _mm512_madd52lo_epu64(v1, u2, q);
    _mm512_madd52hi_epu64(_mm512_srli_epi64::<52>(w2), u2, q)
}

/// x r mod q, below q, for x < 2^52 and a constant r < q with `r_shoup` = floor(r 2^52 / q):
/// the narrow Shoup product (below 2q, as in the NTT's IFMA passes) and one conditional
/// subtraction.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn mul_const(x: __m512i, r: __m512i, r_shoup: __m512i, neg_q: __m512i, mask: __m512i, q: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let quotient = _mm512_madd52hi_epu64(zero, x, r_shoup);
    let y = _mm512_and_si512(_mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, x, r), quotient, neg_q), mask);
    _mm512_min_epu64(y, _mm512_sub_epi64(y, q))
}

/// (a0 + 2^52 a1 + 2^104 a2) 2^-104 mod t for t = tl + 2^52 th of 50 to 61 bits: two
/// Montgomery steps (module docs), below (a0 + 2^52 a1 + 2^104 a2) / 2^104 + t + 1.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn redc104_wide(mut a0: __m512i, mut a1: __m512i, mut a2: __m512i, tl: __m512i, th: __m512i, neg_inv: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    // Step 1: add u1 t so that the weight-1 word is 0 mod 2^52, carry it into the
    // weight-2^52 word and drop a factor 2^52.
    let u1 = _mm512_madd52lo_epu64(zero, a0, neg_inv);
    a0 = _mm512_madd52lo_epu64(a0, u1, tl);
    a1 = _mm512_add_epi64(a1, _mm512_srli_epi64::<52>(a0));
    a1 = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(a1, u1, tl), u1, th);
    a2 = _mm512_madd52hi_epu64(a2, u1, th);
    // Step 2, the same one word up; the top product's high half has weight 2^52.
    let u2 = _mm512_madd52lo_epu64(zero, a1, neg_inv);
    a1 = _mm512_madd52lo_epu64(a1, u2, tl);
    a2 = _mm512_add_epi64(a2, _mm512_srli_epi64::<52>(a1));
    a2 = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(a2, u2, tl), u2, th);
    let top = _mm512_madd52hi_epu64(zero, u2, th);
    _mm512_add_epi64(a2, _mm512_slli_epi64::<52>(top))
}

/// x r mod q, below q, for any x and a constant r < q with `rs` = floor(r 2^64 / q) (`rsh`
/// its bits from 52 up): the wide Shoup product of the NTT's IFMA passes (`ntt_ifma`: the
/// scalar 64-bit quotient exactly from six IFMA operations, the remainder below 2q from two
/// low products) and one conditional subtraction.
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
#[inline]
fn mul_const_wide(x: __m512i, r: __m512i, rs: __m512i, rsh: __m512i, q: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let xh = _mm512_srli_epi64::<52>(x);
    let l = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(_mm512_madd52hi_epu64(zero, x, rs), x, rsh), xh, rs);
    let h = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(_mm512_madd52hi_epu64(zero, x, rsh), xh, rs), xh, rsh);
    let quotient = _mm512_add_epi64(_mm512_srli_epi64::<12>(l), _mm512_slli_epi64::<40>(h));
    let y = _mm512_sub_epi64(_mm512_mullo_epi64(x, r), _mm512_mullo_epi64(quotient, q));
    _mm512_min_epu64(y, _mm512_sub_epi64(y, q))
}

/// Adds x k (both below 2^64) to the three accumulators of weights 1, 2^52, 2^104: seven
/// products of the 52-bit halves (`xh` = x >> 52; module docs, wide form).
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn mac_wide(s: &mut [__m512i; 3], x: __m512i, xh: __m512i, k: __m512i) {
    let kh = _mm512_srli_epi64::<52>(k);
    s[0] = _mm512_madd52lo_epu64(s[0], x, k);
    s[1] = _mm512_madd52hi_epu64(s[1], x, k);
    s[1] = _mm512_madd52lo_epu64(s[1], x, kh);
    s[1] = _mm512_madd52lo_epu64(s[1], xh, k);
    s[2] = _mm512_madd52hi_epu64(s[2], x, kh);
    s[2] = _mm512_madd52hi_epu64(s[2], xh, k);
    s[2] = _mm512_madd52lo_epu64(s[2], xh, kh);
}

/// [`inner_product`] for a prime of 50 to 61 bits: both factors split at bit 52, seven
/// products per term into three accumulators (the conversion's wide form, module docs).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) fn inner_product_wide(
    c: &Constants,
    ext: &[&[u64]],
    n: usize,
    kb: &[&[u64]],
    ka: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
    add_to_out: bool,
) {
    let digits = kb.len();
    let (e, b, a) = (rows_of(ext, n), rows_of(kb, n), rows_of(ka, n));
    let sums = WideSums::new(c);
    let zero = _mm512_setzero_si512();
    let outs = out0.as_chunks_mut::<8>().0.iter_mut().zip(out1.as_chunks_mut::<8>().0.iter_mut());
    for (k, (o0, o1)) in outs.enumerate() {
        let mut acc = [[zero; 3]; 2];
        for d in 0..digits {
            let x = load(&e[d][k]);
            let xh = _mm512_srli_epi64::<52>(x);
            for (s, key) in acc.iter_mut().zip([load(&b[d][k]), load(&a[d][k])]) {
                mac_wide(s, x, xh, key);
            }
        }
        for (s, o) in acc.iter().zip([o0, o1]) {
            let mut y = sums.reduce(s);
            if add_to_out {
                let sum = _mm512_add_epi64(y, load(o));
                y = _mm512_min_epu64(sum, _mm512_sub_epi64(sum, sums.q));
            }
            store(o, y);
        }
    }
}

/// [`inner_product`] for a prime below 2^50: two products per term into two accumulators
/// (the conversion's narrow form, module docs).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn inner_product(
    c: &Constants,
    ext: &[&[u64]],
    n: usize,
    kb: &[&[u64]],
    ka: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
    add_to_out: bool,
) {
    let digits = kb.len();
    let (e, b, a) = (rows_of(ext, n), rows_of(kb, n), rows_of(ka, n));
    let sums = NarrowSums::new(c);
    let zero = _mm512_setzero_si512();
    let outs = out0.as_chunks_mut::<8>().0.iter_mut().zip(out1.as_chunks_mut::<8>().0.iter_mut());
    for (k, (o0, o1)) in outs.enumerate() {
        let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
        for d in 0..digits {
            let x = load(&e[d][k]);
            let (kb, ka) = (load(&b[d][k]), load(&a[d][k]));
            lo0 = _mm512_madd52lo_epu64(lo0, x, kb);
            hi0 = _mm512_madd52hi_epu64(hi0, x, kb);
            lo1 = _mm512_madd52lo_epu64(lo1, x, ka);
            hi1 = _mm512_madd52hi_epu64(hi1, x, ka);
        }
        let mut y0 = sums.reduce(lo0, hi0);
        let mut y1 = sums.reduce(lo1, hi1);
        if add_to_out {
            let (s0, s1) = (_mm512_add_epi64(y0, load(o0)), _mm512_add_epi64(y1, load(o1)));
            y0 = _mm512_min_epu64(s0, _mm512_sub_epi64(s0, sums.q));
            y1 = _mm512_min_epu64(s1, _mm512_sub_epi64(s1, sums.q));
        }
        store(o0, y0);
        store(o1, y1);
    }
}

#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn apply(lc: &LinearCombination, y: &[&[u64]], n: usize, add: u64, out: &mut [u64]) {
    macro_rules! dispatch {
        ($f:ident) => {
            match lc.terms {
                1 => $f::<1>(lc, y, n, add, out),
                2 => $f::<2>(lc, y, n, add, out),
                3 => $f::<3>(lc, y, n, add, out),
                4 => $f::<4>(lc, y, n, add, out),
                5 => $f::<5>(lc, y, n, add, out),
                6 => $f::<6>(lc, y, n, add, out),
                7 => $f::<7>(lc, y, n, add, out),
                _ => $f::<MAX_TERMS>(lc, y, n, add, out),
            }
        };
    }
    if lc.wide {
        dispatch!(apply_wide)
    } else {
        dispatch!(apply_m)
    }
}

/// The three-accumulator form for a target of 50 to 61 bits (module docs).
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn apply_wide<const M: usize>(lc: &LinearCombination, y: &[&[u64]], n: usize, add: u64, out: &mut [u64]) {
    let rows: [&[[u64; 8]]; M] = core::array::from_fn(|i| y[i][..n].as_chunks::<8>().0);
    let cl: [__m512i; M] = core::array::from_fn(|i| _mm512_set1_epi64(lc.lo[i] as i64));
    let ch: [__m512i; M] = core::array::from_fn(|i| _mm512_set1_epi64(lc.hi[i] as i64));
    let split: [bool; M] = core::array::from_fn(|i| lc.split[i]);
    let tl = _mm512_set1_epi64((lc.t & ((1 << 52) - 1)) as i64);
    let th = _mm512_set1_epi64((lc.t >> 52) as i64);
    let neg_inv = _mm512_set1_epi64(lc.neg_inv as i64);
    let addv = _mm512_set1_epi64(add as i64);
    let zero = _mm512_setzero_si512();
    for (k, o) in out.as_chunks_mut::<8>().0.iter_mut().enumerate() {
        // weights 1, 2^52 and 2^104
        let (mut a0, mut a1, mut a2) = (zero, zero, zero);
        for i in 0..M {
            let v = load(&rows[i][k]);
            a0 = _mm512_madd52lo_epu64(a0, v, cl[i]);
            a1 = _mm512_madd52hi_epu64(a1, v, cl[i]);
            a1 = _mm512_madd52lo_epu64(a1, v, ch[i]);
            a2 = _mm512_madd52hi_epu64(a2, v, ch[i]);
            if split[i] {
                let vh = _mm512_srli_epi64::<52>(v);
                a1 = _mm512_madd52lo_epu64(a1, vh, cl[i]);
                a2 = _mm512_madd52hi_epu64(a2, vh, cl[i]);
                a2 = _mm512_madd52lo_epu64(a2, vh, ch[i]);
            }
        }
        let v = _mm512_add_epi64(redc104_wide(a0, a1, a2, tl, th, neg_inv), addv);
        store(o, v);
    }
}

#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn apply_m<const M: usize>(lc: &LinearCombination, y: &[&[u64]], n: usize, add: u64, out: &mut [u64]) {
    let rows: [&[[u64; 8]]; M] = core::array::from_fn(|i| y[i][..n].as_chunks::<8>().0);
    let lo: [__m512i; M] = core::array::from_fn(|i| _mm512_set1_epi64(lc.lo[i] as i64));
    let hi: [__m512i; M] = core::array::from_fn(|i| _mm512_set1_epi64(lc.hi[i] as i64));
    let split: [bool; M] = core::array::from_fn(|i| lc.split[i]);
    let t = _mm512_set1_epi64(lc.t as i64);
    let neg_inv = _mm512_set1_epi64(lc.neg_inv as i64);
    let addv = _mm512_set1_epi64(add as i64);
    let zero = _mm512_setzero_si512();
    for (k, o) in out.as_chunks_mut::<8>().0.iter_mut().enumerate() {
        let (mut acc_lo, mut acc_hi) = (zero, zero);
        for i in 0..M {
            let v = load(&rows[i][k]);
            acc_lo = _mm512_madd52lo_epu64(acc_lo, v, lo[i]);
            acc_hi = _mm512_madd52hi_epu64(acc_hi, v, lo[i]);
            if split[i] {
                let vh = _mm512_srli_epi64::<52>(v);
                acc_lo = _mm512_madd52lo_epu64(acc_lo, vh, hi[i]);
                acc_hi = _mm512_madd52hi_epu64(acc_hi, vh, hi[i]);
            }
        }
        store(o, _mm512_add_epi64(redc104(acc_lo, acc_hi, t, neg_inv), addv));
    }
}

/// [`super::scale_difference`] for a prime below 2^50: x - y + q < 2^51 times w by the narrow
/// Shoup product.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn scale_difference(q: u64, w: u64, w_shoup: u64, x: &[u64], y: &mut [u64], to: Destination<'_>) {
    let qv = _mm512_set1_epi64(q as i64);
    let wv = _mm512_set1_epi64(w as i64);
    let ws = _mm512_set1_epi64((w_shoup >> 12) as i64);
    let neg_q = _mm512_set1_epi64(((1u64 << 52) - q) as i64);
    let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    scale_difference_with(x, y, to, qv, |d| mul_const(d, wv, ws, neg_q, mask, qv));
}

/// [`super::scale_difference`] for a prime of 50 to 61 bits: x - y + q < 2^62 times w by the
/// wide Shoup product.
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) fn scale_difference_wide(q: u64, w: u64, w_shoup: u64, x: &[u64], y: &mut [u64], to: Destination<'_>) {
    let qv = _mm512_set1_epi64(q as i64);
    let wv = _mm512_set1_epi64(w as i64);
    let ws = _mm512_set1_epi64(w_shoup as i64);
    let wsh = _mm512_set1_epi64((w_shoup >> 52) as i64);
    scale_difference_with(x, y, to, qv, |d| mul_const_wide(d, wv, ws, wsh, qv));
}

/// The loop of both widths: `times` maps x - y + q to its product with w, below q.
#[target_feature(enable = "avx512f")]
#[inline]
fn scale_difference_with(x: &[u64], y: &mut [u64], to: Destination<'_>, q: __m512i, times: impl Fn(__m512i) -> __m512i) {
    let n = y.len();
    let xs = x[..n].as_chunks::<8>().0;
    let ys = y.as_chunks_mut::<8>().0;
    let (out, add) = match to {
        Destination::Overwrite => (None, false),
        Destination::Set(o) => (Some(o[..n].as_chunks_mut::<8>().0), false),
        Destination::Add(o) => (Some(o[..n].as_chunks_mut::<8>().0), true),
    };
    match out {
        None => {
            for (b, a) in ys.iter_mut().zip(xs) {
                let v = times(_mm512_sub_epi64(_mm512_add_epi64(load(a), q), load(b)));
                store(b, v);
            }
        }
        Some(out) => {
            for ((o, b), a) in out.iter_mut().zip(ys.iter()).zip(xs) {
                let mut v = times(_mm512_sub_epi64(_mm512_add_epi64(load(a), q), load(b)));
                if add {
                    let s = _mm512_add_epi64(v, load(o));
                    v = _mm512_min_epu64(s, _mm512_sub_epi64(s, q));
                }
                store(o, v);
            }
        }
    }
}

/// [`super::scale`] for a prime below 2^50 (values below 2^52): the narrow Shoup product.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn scale(q: u64, w: u64, w_shoup: u64, x: &mut [u64]) {
    let qv = _mm512_set1_epi64(q as i64);
    let wv = _mm512_set1_epi64(w as i64);
    let ws = _mm512_set1_epi64((w_shoup >> 12) as i64);
    let neg_q = _mm512_set1_epi64(((1u64 << 52) - q) as i64);
    let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    for c in x.as_chunks_mut::<8>().0 {
        store(c, mul_const(load(c), wv, ws, neg_q, mask, qv));
    }
}

/// [`super::scale`] for a prime of 50 to 61 bits: the wide Shoup product.
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) fn scale_wide(q: u64, w: u64, w_shoup: u64, x: &mut [u64]) {
    let qv = _mm512_set1_epi64(q as i64);
    let wv = _mm512_set1_epi64(w as i64);
    let ws = _mm512_set1_epi64(w_shoup as i64);
    let wsh = _mm512_set1_epi64((w_shoup >> 52) as i64);
    for c in x.as_chunks_mut::<8>().0 {
        store(c, mul_const_wide(load(c), wv, ws, wsh, qv));
    }
}

/// A tensor's factors and products as eight-word chunks, the first `d[0].len()` words of each
/// (the caller checked the lengths).
fn tensor_chunks<'a, 'b>(x: [&'a [u64]; 2], y: [&'a [u64]; 2], d: [&'b mut [u64]; 3]) -> ([Chunks<'a>; 4], [ChunksMut<'b>; 3]) {
    let n = d[0].len();
    let [x0, x1] = x;
    let [y0, y1] = y;
    let factors = [x0, x1, y0, y1].map(|v| v[..n].as_chunks::<8>().0);
    (factors, d.map(|v| v[..n].as_chunks_mut::<8>().0))
}

/// [`super::tensor`] for a prime below 2^50: two products per term (narrow form).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn tensor(c: &Constants, x: [&[u64]; 2], y: [&[u64]; 2], d: [&mut [u64]; 3]) {
    let ([x0, x1, y0, y1], [d0, d1, d2]) = tensor_chunks(x, y, d);
    let sums = NarrowSums::new(c);
    let zero = _mm512_setzero_si512();
    for k in 0..d0.len() {
        let (a0, a1, b0, b1) = (load(&x0[k]), load(&x1[k]), load(&y0[k]), load(&y1[k]));
        let lo0 = _mm512_madd52lo_epu64(zero, a0, b0);
        let hi0 = _mm512_madd52hi_epu64(zero, a0, b0);
        let lo1 = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, a0, b1), a1, b0);
        let hi1 = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(zero, a0, b1), a1, b0);
        let lo2 = _mm512_madd52lo_epu64(zero, a1, b1);
        let hi2 = _mm512_madd52hi_epu64(zero, a1, b1);
        store(&mut d0[k], sums.reduce(lo0, hi0));
        store(&mut d1[k], sums.reduce(lo1, hi1));
        store(&mut d2[k], sums.reduce(lo2, hi2));
    }
}

/// [`super::tensor`] for a prime of 50 to 61 bits: seven products per term (wide form).
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) fn tensor_wide(c: &Constants, x: [&[u64]; 2], y: [&[u64]; 2], d: [&mut [u64]; 3]) {
    let ([x0, x1, y0, y1], [d0, d1, d2]) = tensor_chunks(x, y, d);
    let sums = WideSums::new(c);
    let zero = _mm512_setzero_si512();
    for k in 0..d0.len() {
        let (a0, a1, b0, b1) = (load(&x0[k]), load(&x1[k]), load(&y0[k]), load(&y1[k]));
        let (a0h, a1h) = (_mm512_srli_epi64::<52>(a0), _mm512_srli_epi64::<52>(a1));
        let mut s = [[zero; 3]; 3];
        mac_wide(&mut s[0], a0, a0h, b0);
        mac_wide(&mut s[1], a0, a0h, b1);
        mac_wide(&mut s[1], a1, a1h, b0);
        mac_wide(&mut s[2], a1, a1h, b1);
        for (s, o) in s.iter().zip([&mut d0[k], &mut d1[k], &mut d2[k]]) {
            store(o, sums.reduce(s));
        }
    }
}

/// [`super::centre`]: the sum in the scalar order (a product, then an addition, no fused
/// multiply-add), the rounding as `f64::round` (the sum is not negative: truncate, then add
/// one where the exact fraction `s - trunc(s)` is at least a half).
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) fn centre(y: &mut [u64], n: usize, inv: &[f64], b: [u64; 2]) {
    let m = inv.len();
    let (y01, rest) = y.split_at_mut(2 * n);
    let (y0, y1) = y01.split_at_mut(n);
    let (y0, y1) = (y0.as_chunks_mut::<8>().0, y1.as_chunks_mut::<8>().0);
    let rows: [&[[u64; 8]]; MAX_TERMS] = core::array::from_fn(|i| match i {
        2.. if i < m => rest[(i - 2) * n..(i - 1) * n].as_chunks::<8>().0,
        _ => &[][..],
    });
    let weight = |x: __m512i, w: f64| _mm512_mul_pd(_mm512_cvtepi64_pd(x), _mm512_set1_pd(w));
    let (mv, one, half) = (_mm512_set1_epi64(m as i64), _mm512_set1_epi64(1), _mm512_set1_pd(0.5));
    let (b0, b1) = (_mm512_set1_epi64(b[0] as i64), _mm512_set1_epi64(b[1] as i64));
    for (k, (c0, c1)) in y0.iter_mut().zip(y1.iter_mut()).enumerate() {
        let (x0, x1) = (load(c0), load(c1));
        let mut sum: __m512d = _mm512_add_pd(weight(x0, inv[0]), weight(x1, inv[1]));
        for (row, &w) in rows[2..m].iter().zip(&inv[2..]) {
            sum = _mm512_add_pd(sum, weight(load(&row[k]), w));
        }
        let whole = _mm512_roundscale_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(sum);
        let round_up = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(_mm512_sub_pd(sum, whole), half);
        let v = _mm512_cvttpd_epu64(whole);
        let v = _mm512_min_epu64(_mm512_mask_add_epi64(v, round_up, v, one), mv);
        let up = _mm512_sub_epi64(mv, v);
        let a = _mm512_srli_epi64::<1>(_mm512_add_epi64(up, one));
        store(c0, _mm512_add_epi64(x0, _mm512_mullo_epi64(a, b0)));
        store(c1, _mm512_add_epi64(x1, _mm512_mullo_epi64(_mm512_sub_epi64(up, a), b1)));
    }
}

/// [`super::reduce_signed`]: c + lift [c < 0] (below 2^62), times 1 by the wide Shoup product.
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) fn reduce_signed(q: u64, lift: u64, one_shoup: u64, c: &[i64], out: &mut [u64]) {
    let qv = _mm512_set1_epi64(q as i64);
    let one = _mm512_set1_epi64(1);
    let rs = _mm512_set1_epi64(one_shoup as i64);
    let rsh = _mm512_set1_epi64((one_shoup >> 52) as i64);
    let lift = _mm512_set1_epi64(lift as i64);
    for (o, x) in out.as_chunks_mut::<8>().0.iter_mut().zip(c.as_chunks::<8>().0) {
        // SAFETY: eight readable words (an i64 has the layout of a u64).
        let x = unsafe { _mm512_loadu_si512(x.as_ptr().cast()) };
        let x = _mm512_add_epi64(x, _mm512_and_si512(_mm512_srai_epi64::<63>(x), lift));
        store(o, mul_const_wide(x, one, rs, rsh, qv));
    }
}
