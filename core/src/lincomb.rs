//! Linear combinations of residue vectors with constant coefficients modulo a prime below
//! 2^50, eight coefficients at a time on AVX-512 IFMA: the product kernel of RNS basis
//! conversion (`out[j] = sum_i y_i[j] (B/b_i) mod t`) for the small primes of a chain.
//!
//! Each product y c (y < 2^52, c < t < 2^50) is two IFMA operations, its low and high 52 bits
//! added to two accumulators A_lo and A_hi (sum = A_lo + 2^52 A_hi); a term whose values may
//! reach 2^52 also adds its bits above 52, y_h = y >> 52, times c 2^52 (two more). Two
//! Montgomery steps of radix 2^52 (Montgomery, "Modular multiplication without trial
//! division", 1985; the 52-bit form as in Drucker and Gueron's AVX-512 IFMA arithmetic) then
//! divide by 2^104:
//!
//! ```text
//! u1 = lo52(A_lo (-t^-1)),  V1 = A_hi + (A_lo + lo52(u1 t)) / 2^52 + hi52(u1 t)
//! u2 = lo52(V1 (-t^-1)),    V2 = (V1 + lo52(u2 t)) / 2^52 + hi52(u2 t)
//! ```
//!
//! where each division is exact (the numerator is 0 mod 2^52 by the choice of u), so the
//! coefficients are stored times 2^104 mod t and V2 is congruent to the combination. Bounds,
//! for at most 8 terms: every hi52 of a product with c < t is below t, so A_hi < 16 t and
//! A_lo < 16 2^52; V1 < 17 t + 32 < 2^55; V2 < V1 / 2^52 + t < t + 8. The scalar kernel this
//! replaces takes about M + 2 64-bit products per coefficient for M terms; this one 2M / 8 +
//! 6 / 8 IFMA operations.
//!
//! The caller keeps its scalar kernel: [`NarrowLinearCombination::apply`] returns false
//! (writing nothing) on a host without the instructions, when IFMA is switched off
//! (`ntt::set_ifma_enabled`, the one switch for every IFMA path), or for a length that is not
//! a multiple of 8.

use crate::arith::Modulus;

/// The most terms a combination takes (the digit size bound of hybrid key switching).
pub const MAX_TERMS: usize = 8;

/// The largest target prime (exclusive): the NTT's narrow IFMA bound, so that a lazy value
/// below 4t still fits 52 bits wherever the result goes next.
const MAX_TARGET: u64 = 1 << 50;

/// `sum_i y_i c_i mod t` for up to [`MAX_TERMS`] constants `c_i` and a prime `t < 2^50`.
#[derive(Clone, Debug)]
// Only the IFMA kernel reads the constants; elsewhere `apply` returns false.
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
pub struct NarrowLinearCombination {
    t: u64,
    /// -t^-1 mod 2^52.
    neg_inv: u64,
    terms: usize,
    /// c_i 2^104 mod t.
    lo: [u64; MAX_TERMS],
    /// c_i 2^156 mod t: the coefficient of y_i >> 52.
    hi: [u64; MAX_TERMS],
    /// Whether y_i may reach 2^52 (its bits from 52 up need the second pair of products).
    split: [bool; MAX_TERMS],
}

impl NarrowLinearCombination {
    /// The combination with coefficients `coeffs` (each below t) of terms whose values stay
    /// below `bounds` (exclusive, one per coefficient). `None` for `t >= 2^50`, more than
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
        let mut out = Self {
            t: q,
            neg_inv: neg_inv_52(q),
            terms: coeffs.len(),
            lo: [0; MAX_TERMS],
            hi: [0; MAX_TERMS],
            split: [false; MAX_TERMS],
        };
        for (i, (&c, &bound)) in coeffs.iter().zip(bounds).enumerate() {
            out.lo[i] = t.mul(c, r104);
            out.hi[i] = t.mul(c, r156);
            out.split[i] = bound > 1 << 52;
        }
        Some(out)
    }

    /// Number of terms.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// For j < n: `out[j]` congruent to `sum_i y[i n + j] c_i + add` modulo t and below
    /// 2t + 8 + add (below 3t for `add < t`). `y` holds the terms' vectors one after another,
    /// `n` words each, every value below its term's bound (a larger one gives a wrong residue,
    /// never an out-of-bounds access). Returns false, writing nothing, where the IFMA kernel
    /// does not run (module docs) or the slices are shorter than `terms n` and `n`.
    pub fn apply(&self, y: &[u64], n: usize, add: u64, out: &mut [u64]) -> bool {
        if !n.is_multiple_of(8) || y.len() < self.terms * n || out.len() < n {
            return false;
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if crate::ntt_ifma::width(self.t) == Some(crate::ntt_ifma::Width::Narrow) {
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

/// -q^-1 mod 2^52 for odd q (Newton's iteration: each step doubles the correct low bits).
const fn neg_inv_52(q: u64) -> u64 {
    let mut inv = q;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg() & ((1 << 52) - 1)
}

/// The kernel. Why `unsafe`: intrinsics behind `#[target_feature]`, reached only from
/// [`NarrowLinearCombination::apply`] after the runtime check; the loads and stores go through
/// `&[u64; 8]` / `&mut [u64; 8]` from `as_chunks`, so each touches eight valid words.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod ifma {
    use super::{NarrowLinearCombination, MAX_TERMS};
    use core::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_set1_epi64,
        _mm512_setzero_si512, _mm512_srli_epi64, _mm512_storeu_si512,
    };

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn apply(lc: &NarrowLinearCombination, y: &[u64], n: usize, add: u64, out: &mut [u64]) {
        match lc.terms {
            1 => apply_m::<1>(lc, y, n, add, out),
            2 => apply_m::<2>(lc, y, n, add, out),
            3 => apply_m::<3>(lc, y, n, add, out),
            4 => apply_m::<4>(lc, y, n, add, out),
            5 => apply_m::<5>(lc, y, n, add, out),
            6 => apply_m::<6>(lc, y, n, add, out),
            7 => apply_m::<7>(lc, y, n, add, out),
            _ => apply_m::<MAX_TERMS>(lc, y, n, add, out),
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn apply_m<const M: usize>(lc: &NarrowLinearCombination, y: &[u64], n: usize, add: u64, out: &mut [u64]) {
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
                // SAFETY: one vector of eight readable words (unaligned load).
                let v = unsafe { _mm512_loadu_si512(rows[i][k].as_ptr().cast()) };
                acc_lo = _mm512_madd52lo_epu64(acc_lo, v, lo[i]);
                acc_hi = _mm512_madd52hi_epu64(acc_hi, v, lo[i]);
                if split[i] {
                    let vh = _mm512_srli_epi64::<52>(v);
                    acc_lo = _mm512_madd52lo_epu64(acc_lo, vh, hi[i]);
                    acc_hi = _mm512_madd52hi_epu64(acc_hi, vh, hi[i]);
                }
            }
            // Two Montgomery steps (module docs); each w is 0 mod 2^52, so its shift is exact.
            let u1 = _mm512_madd52lo_epu64(zero, acc_lo, neg_inv);
            let w1 = _mm512_madd52lo_epu64(acc_lo, u1, t);
            let v1 = _mm512_madd52hi_epu64(_mm512_add_epi64(acc_hi, _mm512_srli_epi64::<52>(w1)), u1, t);
            let u2 = _mm512_madd52lo_epu64(zero, v1, neg_inv);
            let w2 = _mm512_madd52lo_epu64(v1, u2, t);
            let v2 = _mm512_madd52hi_epu64(_mm512_srli_epi64::<52>(w2), u2, t);
            // SAFETY: one vector of eight exclusively borrowed words (unaligned store).
            unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), _mm512_add_epi64(v2, addv)) };
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
        let n = 64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for &t in &[primes::Q40[0], primes::Q39[2], (1 << 50) - 27] {
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
                    let lc = NarrowLinearCombination::new(&m, &c, &vec![bound; terms]).unwrap();
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

    #[test]
    fn refuses_what_it_cannot_take() {
        let big = Modulus::new(primes::Q60).unwrap();
        assert!(NarrowLinearCombination::new(&big, &[1], &[2]).is_none());
        let t = Modulus::new(primes::Q40[0]).unwrap();
        assert!(NarrowLinearCombination::new(&t, &[], &[]).is_none());
        assert!(NarrowLinearCombination::new(&t, &[1; 9], &[2; 9]).is_none());
        assert!(NarrowLinearCombination::new(&t, &[1, 2], &[2]).is_none());
        assert!(NarrowLinearCombination::new(&t, &[primes::Q40[0]], &[2]).is_none());
        let lc = NarrowLinearCombination::new(&t, &[3, 5], &[8, 8]).unwrap();
        let mut out = [0u64; 12];
        // n not a multiple of 8, or too short a source: nothing written
        assert!(!lc.apply(&[1; 24], 12, 0, &mut out));
        assert!(!lc.apply(&[1; 8], 8, 0, &mut out));
        assert_eq!(out, [0; 12]);
    }
}
