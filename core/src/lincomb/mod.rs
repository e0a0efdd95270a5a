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
        if y.len() < self.terms * n {
            return false;
        }
        let rows: [&[u64]; MAX_TERMS] = core::array::from_fn(|i| if i < self.terms { &y[i * n..(i + 1) * n] } else { &[] });
        self.apply_rows(&rows[..self.terms], n, add, out)
    }

    /// [`LinearCombination::apply`] with each term's vector in its own slice (`y[i]`, at least
    /// `n` words; one slice per term).
    pub fn apply_rows(&self, y: &[&[u64]], n: usize, add: u64, out: &mut [u64]) -> bool {
        if !n.is_multiple_of(8) || y.len() != self.terms || y.iter().any(|r| r.len() < n) || out.len() < n {
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
            let c = ifma::Constants::new(q);
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

/// Where [`scale_difference`] writes `(x - y) w mod q`.
#[derive(Debug)]
pub enum Destination<'a> {
    /// Into `y` itself.
    Overwrite,
    /// Into this slice (as long as `y`).
    Set(&'a mut [u64]),
    /// Added (modulo q) to this slice's canonical values.
    Add(&'a mut [u64]),
}

/// The division step of rescaling and of ModDown on one limb: `(x[j] - y[j]) w mod q`
/// (w = q_l^-1 or P^-1 mod q) for canonical `x` and `y` (below q) and `w < q`, written where
/// `to` says. The result is canonical, so the words are those of the scalar Shoup product.
/// Eight coefficients per step on AVX-512 IFMA; returns false, writing nothing, where the
/// kernel does not run (module docs), for a length `y.len()` that is not a multiple of 8, or
/// a shorter `x` or destination.
pub fn scale_difference(q: &Modulus, w: u64, x: &[u64], y: &mut [u64], to: Destination<'_>) -> bool {
    let n = y.len();
    let short = match &to {
        Destination::Overwrite => false,
        Destination::Set(o) | Destination::Add(o) => o.len() < n,
    };
    if q.value() >= MAX_TARGET || w >= q.value() || !n.is_multiple_of(8) || x.len() < n || short {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if let Some(width) = crate::ntt_ifma::width(q.value()) {
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                match width {
                    crate::ntt_ifma::Width::Narrow => ifma::scale_difference(q.value(), w, q.shoup(w), x, y, to),
                    crate::ntt_ifma::Width::Wide => ifma::scale_difference_wide(q.value(), w, q.shoup(w), x, y, to),
                }
            }
            return true;
        }
    }
    let _ = (x, y, to);
    false
}

/// `x[j] w mod q` in place for `w < q` and values below 4q (the narrow product reads 52
/// bits), canonical, so the words are those of the scalar Shoup product: the first step of a
/// basis conversion, `x_i (B/b_i)^-1 mod b_i`. Eight coefficients per step on AVX-512 IFMA;
/// returns false, writing nothing, where the kernel does not run (module docs) or for a
/// length that is not a multiple of 8.
pub fn scale(q: &Modulus, w: u64, x: &mut [u64]) -> bool {
    if q.value() >= MAX_TARGET || w >= q.value() || !x.len().is_multiple_of(8) {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if let Some(width) = crate::ntt_ifma::width(q.value()) {
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                match width {
                    crate::ntt_ifma::Width::Narrow => ifma::scale(q.value(), w, q.shoup(w), x),
                    crate::ntt_ifma::Width::Wide => ifma::scale_wide(q.value(), w, q.shoup(w), x),
                }
            }
            return true;
        }
    }
    let _ = (x, w);
    false
}

/// The tensor of two degree-1 ciphertexts on one limb, the first half of a ciphertext product:
/// `d0 = x0 y0`, `d1 = x0 y1 + x1 y0`, `d2 = x1 y1` modulo q, canonical (so the words of the
/// scalar reduction), for canonical inputs. The sums are [`inner_product`]'s (one or two
/// terms, reduced by 2^-104 and multiplied back by 2^104 mod q). Returns false, writing
/// nothing, where the kernel does not run (module docs), for a length `d0.len()` that is not
/// a multiple of 8, or a shorter slice.
pub fn tensor(q: &Modulus, x: [&[u64]; 2], y: [&[u64]; 2], d: [&mut [u64]; 3]) -> bool {
    let n = d[0].len();
    if q.value() >= MAX_TARGET || !n.is_multiple_of(8) || x.iter().chain(&y).any(|v| v.len() < n) || d.iter().any(|o| o.len() < n) {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if let Some(width) = crate::ntt_ifma::width(q.value()) {
            let c = ifma::Constants::new(q);
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                match width {
                    crate::ntt_ifma::Width::Narrow => ifma::tensor(&c, x, y, d),
                    crate::ntt_ifma::Width::Wide => ifma::tensor_wide(&c, x, y, d),
                }
            }
            return true;
        }
    }
    let _ = (x, y, d);
    false
}

/// The centring step of a basis conversion from a source of m >= 2 primes b_i (`y`: the m
/// scaled limbs `x_i (B/b_i)^-1 mod b_i`, `n` words each, limb-major, below 2^61): with
/// `v = round(sum_i y_i inv_i)` (`inv_i` = 1/b_i in floating point, summed in order, rounded
/// half away from zero, at most m), it adds `a b_0` to limb 0 and `c b_1` to limb 1 for
/// `a = ceil((m - v) / 2)`, `c = m - v - a`: the words of the scalar loop in
/// `clifhe_std`'s `BasisConverter::centre_scaled` (which documents why), eight coefficients
/// per step on AVX-512 (F and DQ: the 64-bit integer/float conversions). Returns false,
/// writing nothing, where the IFMA kernels do not run (the one switch, module docs), for
/// fewer than two primes, a length `n` not a multiple of 8, or a short `y`.
pub fn centre(y: &mut [u64], n: usize, inv: &[f64], b: [u64; 2]) -> bool {
    let m = inv.len();
    if !(2..=MAX_TERMS).contains(&m) || !n.is_multiple_of(8) || y.len() < m * n {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if crate::ntt_ifma::width(b[0].min(b[1])).is_some() {
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                ifma::centre(&mut y[..m * n], n, inv, b);
            }
            return true;
        }
    }
    let _ = (y, b);
    false
}

/// `out[j] = c[j] mod q`, canonical, for signed `c` with `|c| < 2^61` (a centred lift, as in
/// rescaling: the dropped limb's residues moved to [-q_l/2, q_l/2]), so the words of
/// `Modulus::reduce_i64`. A negative value first gains a multiple of q of at least 2^61, then
/// the wide Shoup product by 1 reduces; eight coefficients per step on AVX-512 IFMA. Returns
/// false, writing nothing, where the kernel does not run (module docs), for a length that is
/// not a multiple of 8, or a short output.
pub fn reduce_signed(q: &Modulus, c: &[i64], out: &mut [u64]) -> bool {
    let n = c.len();
    if q.value() >= MAX_TARGET || !n.is_multiple_of(8) || out.len() < n {
        return false;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if crate::ntt_ifma::width(q.value()).is_some() {
            let v = q.value();
            // the least multiple of q at or above 2^61 (below 2^62: q < 2^61)
            let lift = (1u64 << 61).div_ceil(v) * v;
            // SAFETY: `width` returned Some, so the CPU has AVX-512F, VL, DQ and IFMA.
            #[allow(unsafe_code)]
            unsafe {
                ifma::reduce_signed(v, lift, q.shoup(1), c, &mut out[..n]);
            }
            return true;
        }
    }
    let _ = (c, out);
    false
}

/// -q^-1 mod 2^52 for odd q (the low bits of the 64-bit Montgomery constant).
fn neg_inv_52(q: &Modulus) -> u64 {
    crate::arith::Montgomery::new(q).neg_inv() & ((1 << 52) - 1)
}

/// The kernels. Why `unsafe`: intrinsics behind `#[target_feature]`, reached only after the
/// runtime check (`ntt_ifma::width`); the loads and stores go through `&[u64; 8]` /
/// `&mut [u64; 8]` from `as_chunks`, so each touches eight valid words.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod ifma;

#[cfg(test)]
mod tests;
