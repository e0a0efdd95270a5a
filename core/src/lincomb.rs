//! Linear combinations of residue vectors with constant coefficients modulo a prime below
//! 2^61, eight coefficients at a time on AVX-512 IFMA: the product kernel of RNS basis
//! conversion (`out[j] = sum_i y_i[j] (B/b_i) mod t`).
//!
//! **Narrow targets** (t < 2^50). Each product y c (y < 2^52, c < t) is two IFMA operations,
//! its low and high 52 bits added to two accumulators A_lo and A_hi (sum = A_lo + 2^52 A_hi);
//! a term whose values may reach 2^52 also adds its bits above 52, y_h = y >> 52, times
//! c 2^52 (two more). Two Montgomery steps of radix 2^52 (Montgomery, "Modular multiplication
//! without trial division", 1985; the 52-bit form as in Drucker and Gueron's AVX-512 IFMA
//! arithmetic) then divide by 2^104:
//!
//! ```text
//! u1 = lo52(A_lo (-t^-1)),  V1 = A_hi + (A_lo + lo52(u1 t)) / 2^52 + hi52(u1 t)
//! u2 = lo52(V1 (-t^-1)),    V2 = (V1 + lo52(u2 t)) / 2^52 + hi52(u2 t)
//! ```
//!
//! where each division is exact (the numerator is 0 mod 2^52 by the choice of u), so the
//! coefficients are stored times 2^104 mod t and V2 is congruent to the combination. Bounds,
//! for at most 8 terms: every hi52 of a product with c < t is below t, so A_hi < 16 t and
//! A_lo < 16 2^52; V1 < 17 t + 32 < 2^55; V2 < V1 / 2^52 + t < t + 8.
//!
//! **Wide targets** (2^50 <= t < 2^61). The constant splits as c = c_l + 2^52 c_h (c_h < 2^9)
//! and so does a value, y = y_l + 2^52 y_h (IFMA reads the low 52 bits itself), into three
//! accumulators of weights 1, 2^52 and 2^104: lo(y_l c_l); hi(y_l c_l) + lo(y_l c_h) +
//! lo(y_h c_l); hi(y_l c_h) + hi(y_h c_l) + lo(y_h c_h): four IFMA operations per term, seven
//! for a term that reaches 2^52. The same two Montgomery steps, with u t as four 52-bit
//! products of u by t_l and t_h, move up one word each; the last product's high half keeps
//! its weight 2^52. The result is (V + u1 t + 2^52 u2 t) / 2^104 < V / 2^104 + t + 1, below
//! t + 2^24 + 1 for 8 terms of y < 2^64 and c < 2^61.
//!
//! The scalar kernel this replaces takes a 64 x 64-bit product and a 128-bit addition per term
//! and a Montgomery reduction per coefficient: about 310 us for six terms at N = 2^16 on the
//! Zen 4 machine of BENCHMARKS.md, against 43-75 us here for a 40-bit target and 85-129 us for
//! a 60-bit one (`benches/benches/evaluator.rs`, conversion group).
//!
//! [`inner_product`] is key switching's other sum of products on such a prime: the
//! extended digits times the key's limbs, whose products are not by constants, so its
//! reduction multiplies by 2^104 mod q once more.
//!
//! The caller keeps its scalar kernel: [`LinearCombination::apply`] returns false
//! (writing nothing) on a host without the instructions, when IFMA is switched off
//! (`ntt::set_ifma_enabled`, the one switch for every IFMA path), or for a length that is not
//! a multiple of 8.

use crate::arith::Modulus;

/// The most terms a combination takes (the digit size bound of hybrid key switching).
pub const MAX_TERMS: usize = 8;

/// Targets below this take the two-accumulator form: the NTT's narrow IFMA bound, so that a
/// lazy value below 4t still fits 52 bits wherever the result goes next.
const NARROW_TARGET: u64 = 1 << 50;

/// The largest target prime (exclusive) of the three-accumulator form.
const MAX_TARGET: u64 = 1 << 61;

/// `sum_i y_i c_i mod t` for up to [`MAX_TERMS`] constants `c_i` and a prime `t < 2^61`.
#[derive(Clone, Debug)]
// Only the IFMA kernel reads the constants; elsewhere `apply` returns false.
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
pub struct LinearCombination {
    t: u64,
    /// -t^-1 mod 2^52.
    neg_inv: u64,
    /// t >= 2^50: the three-accumulator form (module docs).
    wide: bool,
    terms: usize,
    /// Narrow: c_i 2^104 mod t. Wide: its low 52 bits.
    lo: [u64; MAX_TERMS],
    /// Narrow: c_i 2^156 mod t, the coefficient of y_i >> 52. Wide: the bits of c_i 2^104
    /// mod t from 52 up.
    hi: [u64; MAX_TERMS],
    /// Whether y_i may reach 2^52 (its bits from 52 up need their own products).
    split: [bool; MAX_TERMS],
}

impl LinearCombination {
    /// The combination with coefficients `coeffs` (each below t) of terms whose values stay
    /// below `bounds` (exclusive, one per coefficient). `None` for `t >= 2^61`, more than
    /// [`MAX_TERMS`] terms, no terms, lengths that differ, or a coefficient not below t.
    pub fn new(t: &Modulus, coeffs: &[u64], bounds: &[u64]) -> Option<Self> {
        let q = t.value();
        if q >= MAX_TARGET || coeffs.is_empty() || coeffs.len() > MAX_TERMS || coeffs.len() != bounds.len() {
            return None;
        }
        if coeffs.iter().any(|&c| c >= q) {
            return None;
        }
        let r52 = t.reduce(1 << 52);
        let r104 = t.mul(r52, r52);
        let r156 = t.mul(r104, r52);
        let wide = q >= NARROW_TARGET;
        let mut out = Self {
            t: q,
            neg_inv: neg_inv_52(t),
            wide,
            terms: coeffs.len(),
            lo: [0; MAX_TERMS],
            hi: [0; MAX_TERMS],
            split: [false; MAX_TERMS],
        };
        for (i, (&c, &bound)) in coeffs.iter().zip(bounds).enumerate() {
            let c104 = t.mul(c, r104);
            (out.lo[i], out.hi[i]) = if wide {
                (c104 & ((1 << 52) - 1), c104 >> 52)
            } else {
                (c104, t.mul(c, r156))
            };
            out.split[i] = bound > 1 << 52;
        }
        Some(out)
    }

    /// Number of terms.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// For j < n: `out[j]` congruent to `sum_i y[i n + j] c_i + add` modulo t and below
    /// 2t + 2^25 + add (below 3t for `add < t`). `y` holds the terms' vectors one after
    /// another, `n` words each, every value below its term's bound (a larger one gives a wrong
    /// residue, never an out-of-bounds access). Returns false, writing nothing, where the IFMA
    /// kernel does not run (module docs) or the slices are shorter than `terms n` and `n`.
    pub fn apply(&self, y: &[u64], n: usize, add: u64, out: &mut [u64]) -> bool {
        if !n.is_multiple_of(8) || y.len() < self.terms * n || out.len() < n {
            return false;
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if crate::ntt_ifma::width(self.t).is_some() {
                // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
                #[allow(unsafe_code)]
                unsafe {
                    ifma::apply(self, y, n, add, &mut out[..n]);
                }
                return true;
            }
        }
        let _ = (y, add, out);
        false
    }
}

/// The most digits [`inner_product`] takes.
pub const MAX_DIGITS: usize = 32;

/// Hybrid key switching's inner product on one limb modulo a prime q, on AVX-512 IFMA:
/// `out0[j] = sum_d ext_d[j] kb_d[j]` and `out1[j] = sum_d ext_d[j] ka_d[j]` modulo q, fully
/// reduced, or added (modulo q) to the canonical values already in `out0` and `out1` with
/// `add_to_out`. `ext` holds the digits' extensions (at least `n` words each, each below 4q);
/// `kb` and `ka` the key's limbs per digit (below q). Any two-output sum of products with one
/// shared factor fits this shape (a plaintext times a ciphertext's two halves, summed). The sums are kept as in
/// [`LinearCombination`] (narrow, q < 2^50: two products per term, A_hi < D q for D digits;
/// wide: seven, both factors split at bit 52) and divided by 2^104 the same way, then
/// multiplied by 2^104 mod q (a Shoup product, below 2q: 52-bit narrow, the NTT's exact 64-bit
/// quotient wide) and brought below q. Returns false, writing nothing, where the kernel does
/// not run (module docs), for more than [`MAX_DIGITS`] digits or none, or slices shorter than
/// `n`.
#[allow(clippy::too_many_arguments)]
pub fn inner_product(
    q: &Modulus,
    ext: &[&[u64]],
    n: usize,
    kb: &[&[u64]],
    ka: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
    add_to_out: bool,
) -> bool {
    let digits = kb.len();
    if q.value() >= MAX_TARGET
        || !n.is_multiple_of(8)
        || digits == 0
        || digits > MAX_DIGITS
        || ka.len() != digits
        || ext.len() != digits
        || out0.len() < n
        || out1.len() < n
        || kb.iter().chain(ka).chain(ext).any(|k| k.len() < n)
    {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if let Some(width) = crate::ntt_ifma::width(q.value()) {
            let r52 = q.reduce(1 << 52);
            let r104 = q.mul(r52, r52);
            let c = ifma::Constants {
                q: q.value(),
                neg_inv: neg_inv_52(q),
                r104,
                r104_shoup: q.shoup(r104),
            };
            let (out0, out1) = (&mut out0[..n], &mut out1[..n]);
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                match width {
                    crate::ntt_ifma::Width::Narrow => ifma::inner_product(&c, ext, n, kb, ka, out0, out1, add_to_out),
                    crate::ntt_ifma::Width::Wide => ifma::inner_product_wide(&c, ext, n, kb, ka, out0, out1, add_to_out),
                }
            }
            return true;
        }
    }
    let _ = (ext, out0, out1, add_to_out);
    false
}

/// -q^-1 mod 2^52 for odd q (the low bits of the 64-bit Montgomery constant).
fn neg_inv_52(q: &Modulus) -> u64 {
    crate::arith::Montgomery::new(q).neg_inv() & ((1 << 52) - 1)
}

/// The kernel. Why `unsafe`: intrinsics behind `#[target_feature]`, reached only from
/// [`LinearCombination::apply`] after the runtime check; the loads and stores go through
/// `&[u64; 8]` / `&mut [u64; 8]` from `as_chunks`, so each touches eight valid words.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod ifma {
    use super::{LinearCombination, MAX_TERMS};
    use core::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_loadu_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_min_epu64,
        _mm512_mullo_epi64, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srli_epi64, _mm512_storeu_si512,
        _mm512_sub_epi64,
    };

    /// Up to [`super::MAX_DIGITS`] rows of eight-word chunks (the rest empty).
    type Rows<'a> = [&'a [[u64; 8]]; super::MAX_DIGITS];

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

    /// x 2^104 mod q, below q, for x < 2^52: the narrow Shoup product (below 2q, as in the
    /// NTT's IFMA passes) and one conditional subtraction.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn times_r104(x: __m512i, r: __m512i, r_shoup: __m512i, neg_q: __m512i, mask: __m512i, q: __m512i) -> __m512i {
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

    /// x 2^104 mod q, below q, for any x: the wide Shoup product of the NTT's IFMA passes
    /// (`ntt_ifma`: the scalar 64-bit quotient exactly from six IFMA operations, the remainder
    /// below 2q from two low products) and one conditional subtraction.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    #[inline]
    fn times_r104_wide(x: __m512i, r: __m512i, rs: __m512i, rsh: __m512i, q: __m512i) -> __m512i {
        let zero = _mm512_setzero_si512();
        let xh = _mm512_srli_epi64::<52>(x);
        let l = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(_mm512_madd52hi_epu64(zero, x, rs), x, rsh), xh, rs);
        let h = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(_mm512_madd52hi_epu64(zero, x, rsh), xh, rs), xh, rsh);
        let quotient = _mm512_add_epi64(_mm512_srli_epi64::<12>(l), _mm512_slli_epi64::<40>(h));
        let y = _mm512_sub_epi64(_mm512_mullo_epi64(x, r), _mm512_mullo_epi64(quotient, q));
        _mm512_min_epu64(y, _mm512_sub_epi64(y, q))
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
        let q = _mm512_set1_epi64(c.q as i64);
        let tl = _mm512_set1_epi64((c.q & ((1 << 52) - 1)) as i64);
        let th = _mm512_set1_epi64((c.q >> 52) as i64);
        let neg_inv = _mm512_set1_epi64(c.neg_inv as i64);
        let r = _mm512_set1_epi64(c.r104 as i64);
        let rs = _mm512_set1_epi64(c.r104_shoup as i64);
        let rsh = _mm512_set1_epi64((c.r104_shoup >> 52) as i64);
        let zero = _mm512_setzero_si512();
        let outs = out0.as_chunks_mut::<8>().0.iter_mut().zip(out1.as_chunks_mut::<8>().0.iter_mut());
        for (k, (o0, o1)) in outs.enumerate() {
            let mut acc = [[zero; 3]; 2];
            for d in 0..digits {
                let x = load(&e[d][k]);
                let xh = _mm512_srli_epi64::<52>(x);
                for (s, key) in acc.iter_mut().zip([load(&b[d][k]), load(&a[d][k])]) {
                    let kh = _mm512_srli_epi64::<52>(key);
                    s[0] = _mm512_madd52lo_epu64(s[0], x, key);
                    s[1] = _mm512_madd52hi_epu64(s[1], x, key);
                    s[1] = _mm512_madd52lo_epu64(s[1], x, kh);
                    s[1] = _mm512_madd52lo_epu64(s[1], xh, key);
                    s[2] = _mm512_madd52hi_epu64(s[2], x, kh);
                    s[2] = _mm512_madd52hi_epu64(s[2], xh, key);
                    s[2] = _mm512_madd52lo_epu64(s[2], xh, kh);
                }
            }
            for (s, o) in acc.iter().zip([o0, o1]) {
                let mut y = times_r104_wide(redc104_wide(s[0], s[1], s[2], tl, th, neg_inv), r, rs, rsh, q);
                if add_to_out {
                    let sum = _mm512_add_epi64(y, load(o));
                    y = _mm512_min_epu64(sum, _mm512_sub_epi64(sum, q));
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
        let q = _mm512_set1_epi64(c.q as i64);
        let neg_inv = _mm512_set1_epi64(c.neg_inv as i64);
        let r = _mm512_set1_epi64(c.r104 as i64);
        let r_shoup = _mm512_set1_epi64((c.r104_shoup >> 12) as i64);
        let neg_q = _mm512_set1_epi64(((1u64 << 52) - c.q) as i64);
        let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
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
            let mut y0 = times_r104(redc104(lo0, hi0, q, neg_inv), r, r_shoup, neg_q, mask, q);
            let mut y1 = times_r104(redc104(lo1, hi1, q, neg_inv), r, r_shoup, neg_q, mask, q);
            if add_to_out {
                let (s0, s1) = (_mm512_add_epi64(y0, load(o0)), _mm512_add_epi64(y1, load(o1)));
                y0 = _mm512_min_epu64(s0, _mm512_sub_epi64(s0, q));
                y1 = _mm512_min_epu64(s1, _mm512_sub_epi64(s1, q));
            }
            store(o0, y0);
            store(o1, y1);
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn apply(lc: &LinearCombination, y: &[u64], n: usize, add: u64, out: &mut [u64]) {
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
    fn apply_wide<const M: usize>(lc: &LinearCombination, y: &[u64], n: usize, add: u64, out: &mut [u64]) {
        let rows: [&[[u64; 8]]; M] = core::array::from_fn(|i| y[i * n..(i + 1) * n].as_chunks::<8>().0);
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
    fn apply_m<const M: usize>(lc: &LinearCombination, y: &[u64], n: usize, add: u64, out: &mut [u64]) {
        let rows: [&[[u64; 8]]; M] = core::array::from_fn(|i| y[i * n..(i + 1) * n].as_chunks::<8>().0);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::primes;
    use std::vec;
    use std::vec::Vec;

    fn reference(t: u64, y: &[u64], n: usize, c: &[u64], add: u64, j: usize) -> u64 {
        let s: u128 = c.iter().enumerate().map(|(i, &ci)| y[i * n + j] as u128 * ci as u128).sum();
        ((s + add as u128) % t as u128) as u64
    }

    /// Against u128 arithmetic: every term count, terms below 2^52 and up to 2^64 (split),
    /// the extreme values of both and the bound on the output.
    #[test]
    fn matches_the_exact_sum_and_stays_below_three_t() {
        // narrow targets (two accumulators) and wide ones up to 2^61 - 1 (three)
        let n = 64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for &t in &[
            primes::Q40[0],
            primes::Q39[2],
            (1 << 50) - 27,
            1 << 50 | 1,
            primes::Q55[0],
            primes::Q60,
            primes::P61[5],
            (1 << 61) - 1,
        ] {
            let m = Modulus::new(t).unwrap();
            for terms in 1..=MAX_TERMS {
                for wide in [false, true] {
                    let bound = if wide { u64::MAX } else { 1 << 52 };
                    let c: Vec<u64> = (0..terms).map(|i| if i == 0 { t - 1 } else { next() % t }).collect();
                    let mut y: Vec<u64> = (0..terms * n).map(|_| next() % bound).collect();
                    for i in 0..terms {
                        y[i * n] = bound - 1; // the largest value of every term
                        y[i * n + 1] = 0;
                    }
                    let add = next() % t;
                    let lc = LinearCombination::new(&m, &c, &vec![bound; terms]).unwrap();
                    let mut out = vec![0u64; n];
                    if !lc.apply(&y, n, add, &mut out) {
                        return; // no IFMA on this host: nothing to compare
                    }
                    for (j, &o) in out.iter().enumerate() {
                        assert!(o < 3 * t, "t {t} terms {terms} wide {wide}: {o} at {j}");
                        assert_eq!(o % t, reference(t, &y, n, &c, add, j), "t {t} terms {terms} wide {wide} at {j}");
                    }
                }
            }
        }
    }

    /// Against u128 arithmetic: extensions up to 4q - 1, keys up to q - 1, 1 to 32 digits,
    /// setting and adding to canonical outputs.
    #[test]
    fn inner_product_matches_the_exact_sum() {
        let n = 32;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for &q in &[
            primes::Q40[3],
            (1 << 50) - 27,
            primes::Q55[3],
            primes::Q60,
            primes::P61[0],
            (1 << 61) - 1,
        ] {
            let m = Modulus::new(q).unwrap();
            for digits in [1, 2, 5, 8, 32] {
                let mut ext: Vec<u64> = (0..digits * n).map(|_| next() % (4 * q)).collect();
                let kb: Vec<Vec<u64>> = (0..digits).map(|_| (0..n).map(|_| next() % q).collect()).collect();
                let mut ka: Vec<Vec<u64>> = (0..digits).map(|_| (0..n).map(|_| next() % q).collect()).collect();
                for d in 0..digits {
                    ext[d * n] = 4 * q - 1;
                    ka[d][0] = q - 1;
                }
                let (kb_s, ka_s): (Vec<&[u64]>, Vec<&[u64]>) = (kb.iter().map(|v| &v[..]).collect(), ka.iter().map(|v| &v[..]).collect());
                let ext_s: Vec<&[u64]> = ext.chunks(n).collect();
                for add in [false, true] {
                    let start: Vec<u64> = (0..n).map(|_| next() % q).collect();
                    let (mut o0, mut o1) = (start.clone(), start.clone());
                    if !inner_product(&m, &ext_s, n, &kb_s, &ka_s, &mut o0, &mut o1, add) {
                        return; // no IFMA on this host: nothing to compare
                    }
                    for j in 0..n {
                        let sum = |k: &[Vec<u64>]| -> u64 {
                            // each product reduced first: 32 of them reach 2^129 at 61 bits
                            let s: u128 = (0..digits).map(|d| ext[d * n + j] as u128 * k[d][j] as u128 % q as u128).sum();
                            ((s + if add { start[j] as u128 } else { 0 }) % q as u128) as u64
                        };
                        assert_eq!(o0[j], sum(&kb), "q {q} digits {digits} add {add} at {j}");
                        assert_eq!(o1[j], sum(&ka), "q {q} digits {digits} add {add} at {j}");
                    }
                }
            }
        }
        let m = Modulus::new(primes::Q60).unwrap();
        let k = [0u64; 8];
        // no digit, or a length that is not a multiple of 8: nothing written
        assert!(!inner_product(&m, &[], 8, &[], &[], &mut [0; 8], &mut [0; 8], false));
        assert!(!inner_product(&m, &[&[0; 12]], 12, &[&k], &[&k], &mut [0; 12], &mut [0; 12], false));
    }

    #[test]
    fn refuses_what_it_cannot_take() {
        let t = Modulus::new(primes::Q40[0]).unwrap();
        assert!(LinearCombination::new(&t, &[], &[]).is_none());
        assert!(LinearCombination::new(&t, &[1; 9], &[2; 9]).is_none());
        assert!(LinearCombination::new(&t, &[1, 2], &[2]).is_none());
        assert!(LinearCombination::new(&t, &[primes::Q40[0]], &[2]).is_none());
        let lc = LinearCombination::new(&t, &[3, 5], &[8, 8]).unwrap();
        let mut out = [0u64; 12];
        // n not a multiple of 8, or too short a source: nothing written
        assert!(!lc.apply(&[1; 24], 12, 0, &mut out));
        assert!(!lc.apply(&[1; 8], 8, 0, &mut out));
        assert_eq!(out, [0; 12]);
    }
}
