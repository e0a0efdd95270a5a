//! Word-sized modular arithmetic for NTT-friendly primes below 2^62.
//!
//! Every reduction here is branch-free (conditional subtraction via an arithmetic mask),
//! because the same routines process secret data (s, u, e and messages); docs/architecture.md §4.
//! Multiplications use Barrett reduction of the 128-bit product (Barrett 1986, in the form
//! SEAL uses) or, when one operand is a fixed constant such as an NTT twiddle, Shoup's
//! precomputed quotient (Shoup, NTL; Harvey 2014 "Faster arithmetic for number-theoretic
//! transforms"), which needs one high and two low multiplications.

/// Largest supported prime size: 4q must fit in a u64 for the lazy NTT butterflies.
pub const MAX_MODULUS_BITS: u32 = 61;

/// A prime modulus with its Barrett constant.
///
/// Construction is `const` so parameter presets and their tables can be evaluated at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    q: u64,
    /// floor(2^128 / q) as (low word, high word).
    ratio: [u64; 2],
    bits: u32,
}

/// `x - q` if `x >= q`, else `x`; valid for `x < 2q`, `q < 2^63`; no branch.
#[inline(always)]
pub const fn csub(x: u64, q: u64) -> u64 {
    let d = x.wrapping_sub(q);
    let mask = ((d as i64) >> 63) as u64;
    d.wrapping_add(q & mask)
}

impl Modulus {
    /// Builds the modulus; `None` when q is even, below 2 or above [`MAX_MODULUS_BITS`] bits.
    /// Primality is checked separately by the parameter validation (`is_prime_u64`).
    pub const fn new(q: u64) -> Option<Self> {
        if q < 3 || q & 1 == 0 || q >> MAX_MODULUS_BITS != 0 {
            return None;
        }
        // floor(2^128 / q) = floor((2^128 - 1) / q) since q is odd and not a power of two.
        let ratio = u128::MAX / q as u128;
        Some(Self {
            q,
            ratio: [ratio as u64, (ratio >> 64) as u64],
            bits: 64 - q.leading_zeros(),
        })
    }

    #[inline(always)]
    pub const fn value(&self) -> u64 {
        self.q
    }

    /// Bit length of q.
    #[inline(always)]
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    #[inline(always)]
    pub const fn add(&self, a: u64, b: u64) -> u64 {
        csub(a + b, self.q)
    }

    #[inline(always)]
    pub const fn sub(&self, a: u64, b: u64) -> u64 {
        csub(a + self.q - b, self.q)
    }

    #[inline(always)]
    pub const fn neg(&self, a: u64) -> u64 {
        // q - a, mapped to 0 when a == 0 without a branch.
        let r = self.q - a;
        let nonzero = ((a | a.wrapping_neg()) >> 63).wrapping_neg();
        r & nonzero
    }

    /// Reduces any 128-bit value modulo q (Barrett with the two-word constant).
    #[inline(always)]
    pub const fn reduce_u128(&self, x: u128) -> u64 {
        let x0 = x as u64;
        let x1 = (x >> 64) as u64;
        let [r0, r1] = self.ratio;
        // Bits 128..191 of x * ratio, assembled from 64x64 products.
        let carry = ((x0 as u128 * r0 as u128) >> 64) as u64;
        let t = x0 as u128 * r1 as u128;
        let (t_lo, c) = (t as u64).overflowing_add(carry);
        let t_hi = (t >> 64) as u64 + c as u64;
        let u = x1 as u128 * r0 as u128;
        let (_, c2) = t_lo.overflowing_add(u as u64);
        let u_hi = (u >> 64) as u64 + c2 as u64;
        let quot = x1.wrapping_mul(r1).wrapping_add(t_hi).wrapping_add(u_hi);
        csub(x0.wrapping_sub(quot.wrapping_mul(self.q)), self.q)
    }

    #[inline(always)]
    pub const fn reduce(&self, x: u64) -> u64 {
        self.reduce_u128(x as u128)
    }

    /// Reduces a signed 64-bit value to [0, q).
    #[inline(always)]
    pub const fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        // Negate when x < 0, branch-free.
        let neg_mask = (x >> 63) as u64;
        (self.neg(r) & neg_mask) | (r & !neg_mask)
    }

    /// Reduces any signed 128-bit value to [0, q): the magnitude by the
    /// two-word Barrett reduction, the sign by a mask, without a branch (flood noise and
    /// centred lifts pass through here).
    #[inline(always)]
    pub const fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        let neg_mask = (x >> 127) as u64;
        (self.neg(r) & neg_mask) | (r & !neg_mask)
    }

    /// Reduces a small signed value (a secret or error coefficient) to [0, q) with one masked
    /// addition instead of a Barrett reduction: constant time in `x`, and a loop of it
    /// vectorises. The branch is on q (public): moduli up to 128 take [`Self::reduce_i64`].
    #[inline(always)]
    pub const fn reduce_i8(&self, x: i8) -> u64 {
        if self.q <= 128 {
            return self.reduce_i64(x as i64);
        }
        let v = x as i64;
        (v as u64).wrapping_add(self.q & ((v >> 63) as u64))
    }

    #[inline(always)]
    pub const fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Shoup's precomputed quotient floor(w * 2^64 / q) for a fixed multiplicand w < q.
    #[inline(always)]
    pub const fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.q as u128) as u64
    }

    /// The same quotient as [`Modulus::shoup`], floor(w * 2^64 / q) for w < q, without a
    /// division: from the stored Barrett constant ratio = floor(2^128 / q). The estimate
    /// floor(w * ratio / 2^64) (bits 64..127 of the 192-bit product, which is below 2^128 since
    /// w < q) is the quotient or one below it; the remainder w * 2^64 - est * q is below
    /// 2q < 2^63, so it is exact in wrapping u64 arithmetic, and a branch-free conditional
    /// increment fixes the estimate. For twiddles computed on the fly in code that must not
    /// reach a division routine (`ntt_compact`).
    #[inline(always)]
    pub const fn shoup_no_div(&self, w: u64) -> u64 {
        let [r0, r1] = self.ratio;
        // w * r1 <= (2^64 - 1)^2 leaves room for the carry word below 2^128.
        let est = ((w as u128 * r1 as u128) + ((w as u128 * r0 as u128) >> 64)) as u64;
        // w * 2^64 is 0 mod 2^64.
        let rem = 0u64.wrapping_sub(est.wrapping_mul(self.q));
        // rem - q has its top bit set exactly when rem < q (both below 2^63).
        let too_small = (rem.wrapping_sub(self.q) >> 63) ^ 1;
        est + too_small
    }

    /// a * w mod q in [0, 2q) given w' = shoup(w); any a < 2^64.
    #[inline(always)]
    pub const fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let hi = ((a as u128 * w_shoup as u128) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(hi.wrapping_mul(self.q))
    }

    #[inline(always)]
    pub const fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        csub(self.mul_shoup_lazy(a, w, w_shoup), self.q)
    }

    /// a^e mod q (square and multiply). The exponent is treated as public.
    pub const fn pow(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = 1u64 % self.q;
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// R mod q for the Montgomery radix R = 2^64 ([`Montgomery`]).
    #[inline(always)]
    pub const fn r_mod(&self) -> u64 {
        self.reduce_u128(1u128 << 64)
    }

    /// Inverse by Fermat's little theorem (q prime); 0 maps to 0. Public data only.
    pub const fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.q - 2)
    }

    /// Centred lift of x in [0, q) to (-q/2, q/2].
    #[inline(always)]
    pub const fn center(&self, x: u64) -> i64 {
        let half = self.q >> 1;
        // x > half  ->  x - q (negative), branch-free.
        let over = (half.wrapping_sub(x) >> 63).wrapping_neg();
        (x as i64).wrapping_sub((self.q & over) as i64)
    }

    /// Reduces an integer-valued f64 (as produced by the encoder) modulo q, exactly, for any
    /// magnitude below 2^1023 ([`F64Reducer`], whose table this builds per call: loops over
    /// many coefficients build one reducer per prime instead).
    pub fn reduce_f64_integer(&self, v: f64) -> u64 {
        F64Reducer::new(self).reduce(v)
    }
}

/// Largest binary exponent of an f64 coefficient that [`F64Reducer`] takes from its table:
/// magnitudes below 2^(52 + 74) = 2^126, which covers every scale the presets use.
const F64_TABLE_EXPONENTS: usize = 74;

/// Reduces integer-valued f64 coefficients (the encoder's output) modulo one prime, exactly.
///
/// An f64 integer is `mant 2^e` with a 53-bit mantissa: for e >= 0 its residue is
/// `REDC(mant (2^e R mod q))`, one 53 x 64-bit product and a Montgomery reduction with the
/// power of two from a table of 74 entries built once per prime; below 2^53 (e < 0) the
/// integer is `mant >> -e` and takes the table's first entry. The two cases and the sign are
/// selected by masks, not branches (a branch on the sign mispredicted about every other
/// coefficient); only magnitudes of 2^126 and beyond (and NaN or infinity, which callers
/// refuse beforehand) take a slow path. Not constant time: the table entry read depends on
/// the coefficient's exponent (the table spans 10 cache lines). This is the host's path for
/// the f64 encoder; a device encrypts fixed-point integers (`i64`, `i128`), whose reductions
/// are constant time.
#[derive(Clone, Debug)]
pub struct F64Reducer {
    m: Modulus,
    mont: Montgomery,
    /// `2^e R mod q` for `e < F64_TABLE_EXPONENTS`.
    pow2_r: [u64; F64_TABLE_EXPONENTS],
}

impl F64Reducer {
    /// The table for `m` (74 modular doublings).
    pub fn new(m: &Modulus) -> Self {
        let mut pow2_r = [0u64; F64_TABLE_EXPONENTS];
        let mut p = m.r_mod();
        for t in &mut pow2_r {
            *t = p;
            p = m.add(p, p);
        }
        Self {
            m: *m,
            mont: Montgomery::new(m),
            pow2_r,
        }
    }

    /// `v mod q` in `[0, q)` for an integer-valued `v`.
    #[inline]
    pub fn reduce(&self, v: f64) -> u64 {
        self.reduce_split(F64Split::new(v))
    }

    /// The residue of a split coefficient ([`F64Split`]): `v mod q` in `[0, q)`.
    #[inline]
    pub fn reduce_split(&self, s: F64Split) -> u64 {
        if s.exp as usize >= F64_TABLE_EXPONENTS {
            let r = self.m.mul(self.m.reduce(s.a), self.m.pow(2, s.exp as u64));
            return if s.negative { self.m.neg(r) } else { r };
        }
        let e = (s.exp as usize).min(F64_TABLE_EXPONENTS - 1);
        let magnitude = csub(self.mont.reduce(s.a as u128 * self.pow2_r[e] as u128), self.m.q);
        let negative = (s.negative as u64).wrapping_neg();
        let negated = self.m.neg(magnitude);
        magnitude ^ ((magnitude ^ negated) & negative)
    }
}

/// An integer-valued f64 as `(-1)^negative a 2^exp` with `a < 2^53` and `exp >= 0`: the part of
/// [`F64Reducer::reduce`] that does not depend on the prime, so a coefficient reduced modulo
/// every prime of a chain is split once ([`F64Reducer::reduce_split`] per prime).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F64Split {
    a: u64,
    exp: u16,
    negative: bool,
}

impl zeroize::DefaultIsZeroes for F64Split {}

impl F64Split {
    /// Splits an integer-valued `v` (finite; NaN and infinity are refused by callers before).
    #[inline]
    pub fn new(v: f64) -> Self {
        let bits = v.to_bits();
        let biased = (bits >> 52) & 0x7ff;
        let exp = biased as i64 - 1075;
        // The implicit leading 1 is present unless the value is zero or subnormal (biased 0).
        let normal = (biased | biased.wrapping_neg()) >> 63;
        let mant = (bits & ((1u64 << 52) - 1)) | (normal << 52);
        // e < 0: the integer mant >> -e (exact for an integer value; a shift by 64 or more
        // leaves 0, as for |v| < 1) times 2^0. e >= 0: mant times 2^e. Masks, not branches
        // (a branch on the sign mispredicted about every other coefficient).
        let below = (exp >> 63) as u64; // all ones when e < 0
        let shift = exp.wrapping_neg().clamp(0, 63) as u32;
        let small = (mant >> shift) & (((exp.wrapping_neg() >> 6) == 0) as u64).wrapping_neg();
        Self {
            a: (small & below) | (mant & !below),
            exp: exp.max(0) as u16,
            negative: bits >> 63 == 1,
        }
    }
}

/// Montgomery reduction modulo an odd q < 2^63 with R = 2^64 (P. L. Montgomery, "Modular
/// multiplication without trial division", Math. Comp. 44, 1985): `reduce(x) = x R^-1 mod q`
/// from two 64-bit products, where a Barrett reduction of a 128-bit value ([`Modulus::reduce_u128`])
/// takes five. Sums of products whose factors carry the R^-1 consistently (or whose result is
/// multiplied back by a power of R once) reduce this way in the host's hot loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Montgomery {
    q: u64,
    /// -q^-1 mod 2^64.
    neg_inv: u64,
}

impl Montgomery {
    /// The constants for `m`.
    pub const fn new(m: &Modulus) -> Self {
        let q = m.q;
        // Newton's iteration: each step doubles the correct low bits of q^-1 mod 2^64 (q odd:
        // q is its own inverse mod 8, three bits).
        let mut inv = q;
        let mut i = 0;
        while i < 5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(inv)));
            i += 1;
        }
        Self {
            q,
            neg_inv: inv.wrapping_neg(),
        }
    }

    /// -q^-1 mod 2^64 (its low bits are -q^-1 modulo any smaller power of two: the 52-bit
    /// Montgomery steps of `lincomb` take them).
    pub const fn neg_inv(&self) -> u64 {
        self.neg_inv
    }

    /// A value congruent to x R^-1 mod q, below x / 2^64 + q: below 2q when x < q 2^64, and
    /// within a u64 for any x below 2^127 when q < 2^62. Not fully reduced.
    #[inline(always)]
    pub const fn reduce(&self, x: u128) -> u64 {
        let (x0, x1) = (x as u64, (x >> 64) as u64);
        let u = x0.wrapping_mul(self.neg_inv);
        // x + u q is 0 mod 2^64: its low word x0 + lo(u q) carries exactly when x0 is not zero
        let hi = ((u as u128 * self.q as u128) >> 64) as u64;
        x1 + hi + (x0 != 0) as u64
    }

    /// a b R^-1 mod q in [0, q) for a, b < q: one full product and a Montgomery reduction
    /// (three 64-bit products, against six for [`Modulus::mul`]). With `a` carrying a factor R
    /// (computed once and shared by several products), the result is the plain product.
    #[inline(always)]
    pub const fn mul(&self, a: u64, b: u64) -> u64 {
        csub(self.reduce(a as u128 * b as u128), self.q)
    }
}

const fn mulmod_slow(a: u64, b: u64, n: u64) -> u64 {
    ((a as u128 * b as u128) % n as u128) as u64
}

/// Deterministic Miller-Rabin for 64-bit integers (the first 12 primes as bases suffice below
/// 3.3e24; Sorenson and Webster 2015). `const` so presets are checked at compile time.
pub const fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    let mut i = 0;
    while i < BASES.len() {
        if n.is_multiple_of(BASES[i]) {
            return n == BASES[i];
        }
        i += 1;
    }
    let mut d = n - 1;
    let mut s = 0;
    while d & 1 == 0 {
        d >>= 1;
        s += 1;
    }
    let mut i = 0;
    while i < BASES.len() {
        let a = BASES[i];
        // x = a^d mod n
        let mut x = 1u64;
        let mut b = a;
        let mut e = d;
        while e > 0 {
            if e & 1 == 1 {
                x = mulmod_slow(x, b, n);
            }
            b = mulmod_slow(b, b, n);
            e >>= 1;
        }
        if x != 1 && x != n - 1 {
            let mut r = 1;
            let mut witness = true;
            while r < s {
                x = mulmod_slow(x, x, n);
                if x == n - 1 {
                    witness = false;
                    break;
                }
                r += 1;
            }
            if witness {
                return false;
            }
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    const PRIMES: [u64; 4] = [0xffffffffffc0001, 0x10000140001, 0x1fffffffffe00001, 12289];

    /// The signed reductions and the Montgomery product against `%` on wide integers: every
    /// i8 (a modulus at most 128 takes the general path), random and extreme i128, and
    /// products of canonical residues.
    #[test]
    fn signed_reductions_and_montgomery_products_match_the_reference() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for &q in PRIMES.iter().chain(&[97u64, 127, 131]) {
            let m = Modulus::new(q).unwrap();
            let reference = |x: i128| x.rem_euclid(q as i128) as u64;
            for v in i8::MIN..=i8::MAX {
                assert_eq!(m.reduce_i8(v), reference(v as i128), "q {q} v {v}");
            }
            for x in [i128::MIN, i128::MIN + 1, -1, 0, 1, i128::MAX] {
                assert_eq!(m.reduce_i128(x), reference(x), "q {q} x {x}");
            }
            let mont = Montgomery::new(&m);
            let r = m.r_mod();
            for _ in 0..2000 {
                let x = (((rng.next_u64() as u128) << 64) | rng.next_u64() as u128) as i128;
                assert_eq!(m.reduce_i128(x), reference(x));
                let (a, b) = (rng.next_u64() % q, rng.next_u64() % q);
                // a R * b R^-1 = a b.
                assert_eq!(mont.mul(m.mul(a, r), b), m.mul(a, b));
            }
        }
    }

    #[test]
    fn mul_and_reduce_match_u128_reference() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for &q in &PRIMES {
            let m = Modulus::new(q).unwrap();
            for _ in 0..20000 {
                let a = rng.next_u64() % q;
                let b = rng.next_u64() % q;
                let x = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
                assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
                assert_eq!(m.reduce_u128(x), (x % q as u128) as u64);
                assert_eq!(m.add(a, b), ((a as u128 + b as u128) % q as u128) as u64);
                assert_eq!(m.sub(a, b), ((a as u128 + q as u128 - b as u128) % q as u128) as u64);
                let ws = m.shoup(b);
                assert_eq!(m.mul_shoup(a, b, ws), m.mul(a, b));
                let any = rng.next_u64();
                assert_eq!(m.mul_shoup(any, b, ws), ((any as u128 * b as u128) % q as u128) as u64);
                let s = rng.next_u64() as i64;
                assert_eq!(m.reduce_i64(s), (s as i128).rem_euclid(q as i128) as u64);
                assert_eq!((m.center(a) as i128).rem_euclid(q as i128) as u64, a);
                assert!(m.center(a).unsigned_abs() <= q / 2);
            }
            assert_eq!(m.neg(0), 0);
            assert_eq!(m.mul(m.inv(12345), 12345), 1);
        }
    }

    #[test]
    fn shoup_no_div_matches_shoup() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut primes: std::vec::Vec<u64> = PRIMES.to_vec();
        for lit in crate::params::presets::ALL {
            primes.extend_from_slice(lit.q);
            primes.extend_from_slice(lit.p);
        }
        primes.extend_from_slice(&[3, 5, 7, 97, 7681, (1 << 61) - 1]);
        for &q in &primes {
            let m = Modulus::new(q).unwrap();
            for w in [0, 1, 2, q / 2, q / 2 + 1, q - 2, q - 1] {
                assert_eq!(m.shoup_no_div(w), m.shoup(w), "q={q:#x} w={w}");
            }
            for _ in 0..20000 {
                let w = rng.next_u64() % q;
                assert_eq!(m.shoup_no_div(w), m.shoup(w), "q={q:#x} w={w}");
            }
        }
    }

    #[test]
    fn known_answers() {
        // Values checked with Python: pow(3, 10**6, 0xffffffffffc0001), (2**60-1)*(2**59+7) % q.
        let m = Modulus::new(0xffffffffffc0001).unwrap();
        assert_eq!(m.pow(3, 1_000_000), 147_667_274_430_245_225);
        assert_eq!(
            m.mul((1 << 59) + 7, (1 << 59) - 1),
            (((1u128 << 59) + 7) * ((1u128 << 59) - 1) % 0xffffffffffc0001) as u64
        );
    }

    #[test]
    fn f64_reduction_is_exact_for_huge_integers() {
        let m = Modulus::new(0x10000140001).unwrap();
        for &(v, exact) in &[
            (2f64.powi(80), 1i128 << 80),
            (-(2f64.powi(100)) * 3.0, -(3i128 << 100)),
            (123456789.0, 123456789i128),
            (-5.0, -5),
            (2f64.powi(125) + 2f64.powi(73), (1i128 << 125) + (1i128 << 73)),
            (-(2f64.powi(125) + 2f64.powi(90)), -((1i128 << 125) + (1i128 << 90))),
        ] {
            assert_eq!(m.reduce_f64_integer(v), exact.rem_euclid(0x10000140001) as u64);
        }
        // The i128 path (below 2^126) and the mantissa-exponent path (above) agree with exact
        // arithmetic for a 61-bit prime too, on both sides of the boundary.
        let q = 0x1fffffffffe00001u64;
        let m = Modulus::new(q).unwrap();
        for e in [64, 90, 120, 125] {
            let v = 2f64.powi(e) * 1.75;
            let exact = (7i128 << (e - 2)).rem_euclid(q as i128) as u64;
            assert_eq!(m.reduce_f64_integer(v), exact);
            assert_eq!(m.reduce_f64_integer(-v), m.neg(exact));
        }
        let big = 2f64.powi(127);
        assert_eq!(m.reduce_f64_integer(big), m.mul(m.pow(2, 64), m.pow(2, 63)));
        // Random 53-bit mantissas at every binary exponent from 2^63 to just below 2^126 (the
        // shifted-mantissa path), against the exact integer from the float-to-i128 conversion.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for e in 63..126 {
            for _ in 0..20 {
                let mant = (rng.next_u64() >> 11) | (1 << 52);
                let v = mant as f64 * 2f64.powi(e - 52);
                let exact = v as i128;
                assert_eq!(m.reduce_f64_integer(v), exact.rem_euclid(q as i128) as u64, "2^{e}");
                assert_eq!(m.reduce_f64_integer(-v), (-exact).rem_euclid(q as i128) as u64, "-2^{e}");
            }
        }
        // Below 2^63 (the right-shift side of the branch-free selection): integers of every
        // bit length, both signs, and both zeros, on a 40-bit and a 61-bit prime.
        for q in [0x10000140001u64, q] {
            let m = Modulus::new(q).unwrap();
            assert_eq!((m.reduce_f64_integer(0.0), m.reduce_f64_integer(-0.0)), (0, 0));
            for bits in 1..=63 {
                for _ in 0..20 {
                    let x = rng.next_u64() >> (64 - bits) | 1 << (bits - 1);
                    // Round to an f64 integer first (above 2^53 the low bits do not survive).
                    let v = x as f64;
                    let exact = v as i128;
                    assert_eq!(m.reduce_f64_integer(v), exact.rem_euclid(q as i128) as u64, "{v}");
                    assert_eq!(m.reduce_f64_integer(-v), (-exact).rem_euclid(q as i128) as u64, "-{v}");
                }
            }
        }
    }

    #[test]
    fn primality() {
        for &q in &PRIMES {
            assert!(is_prime_u64(q));
        }
        assert!(!is_prime_u64(0xffffffffffc0001 * 3));
        assert!(!is_prime_u64(3215031751)); // strong pseudoprime to bases 2, 3, 5, 7
        assert!(!is_prime_u64(1));
        assert!(is_prime_u64(2));
    }

    #[test]
    fn modulus_rejects_bad_values() {
        assert!(Modulus::new(0).is_none());
        assert!(Modulus::new(4).is_none());
        assert!(Modulus::new(1 << 62 | 1).is_none());
    }
}
