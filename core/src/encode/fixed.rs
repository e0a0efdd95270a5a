//! Integer (fixed-point) CKKS encoding of real slot values, for the device.
//!
//! The floating-point encoder ([`super::encode_real`]) runs in `f64`. A Cortex-M4F has no
//! double-precision FPU, so there every add, multiply and `round` is a soft-float library call
//! whose running time depends on the operands' exponents: a timing channel on patient data.
//! This encoder computes the same coefficients with integer arithmetic only: no floating point,
//! no division, no branch and no memory access that depends on a slot value.
//!
//! # What it computes
//!
//! For `s` real slot values `z_j` and `M = 4s`, the dense plaintext of degree `2s` (the subring
//! `Z[X^gap]`, `gap = n / 2s`, see the parent module) that takes the value `z_j` at
//! `omega^(5^j)`, `omega = exp(2 pi i / M)`, has the real coefficients
//!
//! ```text
//! a_k = (1/s) sum_j z_j cos(2 pi k 5^j / M),   k = 0 .. 2s-1
//! ```
//!
//! (the inverse of the evaluation at the `2s` odd powers of `omega`, which are the `s` slot
//! roots and their conjugates; Cheon et al. 2017, section 3.2). The encoder returns
//! `round(2^log_scale * a_k)` at coefficient `k * gap`. This is the direct `O(s^2)` sum rather
//! than the FFT: a device encodes a handful of slots (8 per patient), and the sum has no
//! data-dependent rounding between stages.
//!
//! # Number formats
//!
//! * Slot values: `i64` with [`FRAC_BITS`] = 32 fractional bits (`z = v / 2^32`). A device
//!   computes its features in this format; the host converts with [`to_fixed`].
//! * Twiddles: `cos(2 pi t / M)` with 52 fractional bits, built from the 62-bit table
//!   [`ROOTS_Q62`] by binary powering in 128-bit integer arithmetic (public data).
//! * Accumulator: `i128`. With `|v| < 2^63`, `|cos| <= 2^52` and at most [`MAX_FIXED_VALUES`]
//!   terms, a sum stays below `2^125`: it cannot overflow whatever the input.
//!
//! The result is `floor(acc / 2^sh + 1/2)` by an arithmetic shift, `sh = 84 + log2 s -
//! log_scale`. It agrees with the floating-point encoder's `round` (half away from zero) except
//! where the exact value lies within about `2^(log_scale - 52)` of a half-integer; the tests
//! count those (none in practice at `log_scale = 40`).
//!
//! # Range
//!
//! Coefficients must fit `i64` with room for the encryptor: every input must satisfy
//! `|v| < 2^(94 - log_scale)`, i.e. `|z| < 2^(62 - log_scale)` (`2^22` at scale `2^40`). The
//! check accumulates one flag over all inputs without branching and refuses the call at the end
//! ([`EncodeError::ValueOutOfRange`], output zeroed): the only thing a caller learns about the
//! values is that single bit.

use super::{check_coeffs_len, check_shape, EncodeError};

/// Fractional bits of the fixed-point slot values: `z = v / 2^FRAC_BITS`.
pub const FRAC_BITS: u32 = 32;

/// Fractional bits of the twiddles the accumulation uses.
const TWIDDLE_BITS: u32 = 52;

/// Most slot values one call accepts (bounds the accumulator; see the module docs). The slot
/// count itself may be larger (up to `n / 2`): slots past `values.len()` are zero.
pub const MAX_FIXED_VALUES: usize = 1 << 10;

/// Largest `log_scale` (the shift `84 + log2 s - log_scale` must not be negative for one slot).
pub const MAX_FIXED_LOG_SCALE: u32 = FRAC_BITS + TWIDDLE_BITS;

/// `(cos, sin)` of `2 pi / 2^j` for `j = 0..=17`, rounded to 62 fractional bits (`2^62` is 1).
///
/// Provenance: computed with Python's `decimal` module at 60 significant digits (pi from
/// Machin's formula, cos and sin from their Taylor series to `1e-58`), then rounded to the
/// nearest integer after multiplying by `2^62`. The test `roots_table_matches_libm` checks
/// every entry against `libm::cos`/`sin` to within two `f64` ulps.
pub const ROOTS_Q62: [(i64, i64); 18] = [
    (4611686018427387904, 0),
    (-4611686018427387904, 0),
    (0, 4611686018427387904),
    (3260954456333195553, 3260954456333195553),
    (4260642322793532497, 1764815834521887442),
    (4523073764714963030, 899695310372275547),
    (4589479489746651964, 452024275624069880),
    (4606131040650197959, 226284707652502141),
    (4610297064819661174, 113176440454146016),
    (4611338766951757487, 56592481536850979),
    (4611599204741358747, 28296773447188932),
    (4611664314954810277, 14148453308909941),
    (4611680592556051597, 7074234977634094),
    (4611684661959354334, 3537118529214896),
    (4611685679310367043, 1768559394657194),
    (4611685933648131909, 884279713584815),
    (4611685997232573857, 442139858824435),
    (4611686013128684389, 221069929666221),
];

/// The two root tables of `M = 4 slots`: `exp(2 pi i lo / M)` for `lo < 2^low_bits` and
/// `exp(2 pi i hi 2^low_bits / M)` for the high part, `low_bits = ceil(log2 M / 2)`.
fn table_split(slots: usize) -> (u32, usize, usize) {
    let log_m = (4 * slots).trailing_zeros();
    let low_bits = log_m.div_ceil(2);
    (low_bits, 1 << low_bits, 1 << (log_m - low_bits))
}

/// Entries of the scratch [`encode_real_fixed`] needs for `slots` slots: two tables of complex
/// roots of unity (public data), about `4 sqrt(4 slots)` `i64` in all: 24 for 8 slots, 768 for
/// 8192. `const` so that firmware can size a static buffer.
#[must_use]
pub const fn fixed_scratch_len(slots: usize) -> usize {
    let log_m = (4 * slots).trailing_zeros();
    let low_bits = log_m.div_ceil(2);
    2 * ((1 << low_bits) + (1 << (log_m - low_bits)))
}

/// `round(x * 2^FRAC_BITS)`, saturating at the `i64` range (NaN gives 0). For the host and for
/// tests: it is floating point, so a device computes its values in fixed point directly.
#[must_use]
pub fn to_fixed(x: f64) -> i64 {
    // `as` saturates and maps NaN to 0.
    libm::round(x * (1u64 << FRAC_BITS) as f64) as i64
}

/// `round(a * b / 2^62)` for 62-bit fixed-point factors.
const fn mul_q62(a: i64, b: i64) -> i64 {
    ((a as i128 * b as i128 + (1i128 << 61)) >> 62) as i64
}

/// `exp(2 pi i t / 2^log_m)` in 62-bit fixed point: the product of the table roots for the set
/// bits of `t` (bit `b` of `t` contributes `exp(2 pi i / 2^(log_m - b))`). Public data only.
fn root_q62(t: usize, log_m: u32) -> (i64, i64) {
    let (mut re, mut im) = ROOTS_Q62[0];
    for b in 0..log_m {
        if (t >> b) & 1 == 1 {
            let (wr, wi) = ROOTS_Q62[(log_m - b) as usize];
            (re, im) = (mul_q62(re, wr) - mul_q62(im, wi), mul_q62(re, wi) + mul_q62(im, wr));
        }
    }
    (re, im)
}

/// Encodes the fixed-point real values `values` into slots `0..values.len()` of a plaintext
/// with `slots` slots (a power of two at most `n / 2`; the slots past `values.len()` hold zero)
/// and scale `2^log_scale`: the `n` integer coefficients `coeffs`, laid out as
/// [`super::encode_real`] lays them out. `scratch` needs [`fixed_scratch_len`]`(slots)`
/// entries and holds only public roots of unity. Cost: `2 slots x values.len()` products.
///
/// Constant time in the values: the loops, the memory accesses and the arithmetic depend on
/// `(n, slots, values.len(), log_scale)` only.
///
/// # Errors
///
/// Shape errors as [`super::encode`] (and [`EncodeError::TooManySlots`] when `values` is longer
/// than `slots` or than [`MAX_FIXED_VALUES`]), [`EncodeError::InvalidScale`] unless
/// `1 <= log_scale <=` [`MAX_FIXED_LOG_SCALE`], and [`EncodeError::ValueOutOfRange`] when any
/// value has `|v| >= 2^(94 - log_scale)`. If the shape is valid but the call fails, `coeffs` is
/// zeroed.
pub fn encode_real_fixed(
    values: &[i64],
    slots: usize,
    n: usize,
    log_scale: u32,
    coeffs: &mut [i64],
    scratch: &mut [i64],
) -> Result<(), EncodeError> {
    // One flag over every input, no branch: nonzero iff some |v| >= 2^(94 - log_scale), the
    // range whose coefficients fit i64 with room for the encryptor.
    let mut out_of_range = 0u64;
    if let Some(limit_bits) = 94u32.checked_sub(log_scale).filter(|&b| b < 64) {
        for &v in values {
            out_of_range |= v.unsigned_abs() >> limit_bits;
        }
    }
    encode_fixed_into(values, slots, n, log_scale, coeffs, scratch, |acc| acc as i64)?;
    if out_of_range != 0 {
        coeffs.fill(0);
        return Err(EncodeError::ValueOutOfRange);
    }
    Ok(())
}

/// Largest `log_scale` of [`encode_real_fixed_wide`].
pub const MAX_WIDE_LOG_SCALE: u32 = 110;

/// Largest `|v|` bit length [`encode_real_fixed_wide`] accepts: `|z| < 2^4`.
const WIDE_VALUE_BITS: u32 = FRAC_BITS + 4;

/// [`encode_real_fixed`] with `i128` coefficients, for scales whose coefficients exceed `i64`
/// (an enrolled device encrypts at 2^102): `1 <= log_scale <=` [`MAX_WIDE_LOG_SCALE`], values
/// `|v| < 2^36` (`|z| < 2^4`). Above [`MAX_FIXED_LOG_SCALE`] the coefficients are rounded at
/// `2^84` and shifted left (an error below `2^(log_scale - 85)` in scaled units, far below the
/// twiddles' relative `2^-53`: the coefficients carry the relative precision of the
/// floating-point encoder); they stay below `2^36 * 2^52 * 2^10 * 2^26 = 2^124`. Same shape
/// errors; [`EncodeError::ValueOutOfRange`] (output zeroed) for a value out of range.
pub fn encode_real_fixed_wide(
    values: &[i64],
    slots: usize,
    n: usize,
    log_scale: u32,
    coeffs: &mut [i128],
    scratch: &mut [i64],
) -> Result<(), EncodeError> {
    if log_scale == 0 || log_scale > MAX_WIDE_LOG_SCALE {
        check_coeffs_len(n, coeffs.len())?;
        coeffs.fill(0);
        return Err(EncodeError::InvalidScale);
    }
    // One flag over every input, no branch.
    let mut out_of_range = 0u64;
    for &v in values {
        out_of_range |= v.unsigned_abs() >> WIDE_VALUE_BITS;
    }
    encode_fixed_into(values, slots, n, log_scale.min(MAX_FIXED_LOG_SCALE), coeffs, scratch, |acc| acc)?;
    let up = log_scale.saturating_sub(MAX_FIXED_LOG_SCALE);
    for c in coeffs.iter_mut() {
        *c <<= up;
    }
    if out_of_range != 0 {
        coeffs.fill(0);
        return Err(EncodeError::ValueOutOfRange);
    }
    Ok(())
}

/// The sum both encoders share; `narrow` stores the rounded coefficient.
fn encode_fixed_into<C: Copy + Default>(
    values: &[i64],
    slots: usize,
    n: usize,
    log_scale: u32,
    coeffs: &mut [C],
    scratch: &mut [i64],
    narrow: impl Fn(i128) -> C,
) -> Result<(), EncodeError> {
    check_shape(n, slots)?;
    let max = slots.min(MAX_FIXED_VALUES);
    if values.len() > max {
        return Err(EncodeError::TooManySlots { slots: values.len(), max });
    }
    check_coeffs_len(n, coeffs.len())?;
    let needed = fixed_scratch_len(slots);
    let got = scratch.len();
    let scratch = scratch.get_mut(..needed).ok_or(EncodeError::BufferTooSmall { needed, got })?;
    coeffs.fill(C::default());
    if log_scale == 0 || log_scale > MAX_FIXED_LOG_SCALE {
        return Err(EncodeError::InvalidScale);
    }

    // Root tables (62 fractional bits): exp(2 pi i t / M) = low[t mod 2^low_bits] *
    // high[t >> low_bits]; entries interleaved (re, im).
    let log_m = (4 * slots).trailing_zeros();
    let (low_bits, low_len, _) = table_split(slots);
    let (low, high) = scratch.split_at_mut(2 * low_len);
    for (t, pair) in low.chunks_exact_mut(2).enumerate() {
        let (re, im) = root_q62(t, log_m);
        pair.copy_from_slice(&[re, im]);
    }
    for (t, pair) in high.chunks_exact_mut(2).enumerate() {
        let (re, im) = root_q62(t << low_bits, log_m);
        pair.copy_from_slice(&[re, im]);
    }
    // cos(2 pi t / M) with TWIDDLE_BITS fractional bits: Re(low * high), rounded.
    let m_mask = (4 * slots) - 1;
    let low_mask = low_len - 1;
    let cos = |t: usize| -> i128 {
        let t = t & m_mask;
        let (l, h) = (2 * (t & low_mask), 2 * (t >> low_bits));
        let re = low[l] as i128 * high[h] as i128 - low[l + 1] as i128 * high[h + 1] as i128;
        (re + (1i128 << (123 - TWIDDLE_BITS))) >> (124 - TWIDDLE_BITS)
    };

    // a_k = (1/s) sum_j z_j cos(2 pi k 5^j / M), scaled by 2^log_scale, rounded by a shift.
    let shift = FRAC_BITS + TWIDDLE_BITS + slots.trailing_zeros() - log_scale;
    let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
    let gap = n / (2 * slots);
    for (k, out) in coeffs.iter_mut().step_by(gap).take(2 * slots).enumerate() {
        let mut acc = 0i128;
        let mut g = 1usize; // 5^j mod M
        for &v in values {
            acc += v as i128 * cos(k * g);
            g = (g * super::ROTATION_GENERATOR) & m_mask;
        }
        *out = narrow((acc + half) >> shift);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{encode_real, encode_scratch_len, Complex};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn roots_table_matches_libm() {
        for (j, &(c, s)) in ROOTS_Q62.iter().enumerate() {
            let a = 2.0 * core::f64::consts::PI / (1u64 << j) as f64;
            let (fc, fs) = (c as f64 / (1u64 << 62) as f64, s as f64 / (1u64 << 62) as f64);
            assert!((fc - libm::cos(a)).abs() <= 4.5e-16, "cos 2pi/2^{j}");
            assert!((fs - libm::sin(a)).abs() <= 4.5e-16, "sin 2pi/2^{j}");
        }
        // The powered roots stay on the unit circle and agree with libm.
        for t in 0..64 {
            let (re, im) = root_q62(t, 6);
            let a = 2.0 * core::f64::consts::PI * t as f64 / 64.0;
            assert!((re as f64 / 2f64.powi(62) - libm::cos(a)).abs() < 1e-15, "t = {t}");
            assert!((im as f64 / 2f64.powi(62) - libm::sin(a)).abs() < 1e-15, "t = {t}");
        }
    }

    fn float_reference(values: &[i64], slots: usize, n: usize, log_scale: u32) -> Vec<f64> {
        let mut z = vec![0.0; slots];
        for (o, &v) in z.iter_mut().zip(values) {
            *o = v as f64 / 2f64.powi(FRAC_BITS as i32);
        }
        let mut coeffs = vec![0.0; n];
        let mut scratch = vec![Complex::default(); encode_scratch_len(slots)];
        encode_real(&z, n, 2f64.powi(log_scale as i32), &mut coeffs, &mut scratch).unwrap();
        coeffs
    }

    /// A deterministic stream of test values in `(-2^bits, 2^bits)` (fixed point).
    fn values(len: usize, bits: u32, seed: u64) -> Vec<i64> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 1) as i64) >> (63 - bits)
            })
            .collect()
    }

    #[test]
    fn equals_the_float_encoder() {
        // Every shape a device or the host uses (values, slots, n, log_scale), values of
        // features' magnitudes (|z| < 8); full-slot plaintexts with 8 values as the N=2^14
        // firmware sends.
        let mut mismatches = 0usize;
        let mut total = 0usize;
        for (len, slots, n, log_scale) in [
            (8, 8, 4096, 40),
            (1, 1, 4096, 40),
            (512, 512, 4096, 40),
            (8, 8, 1 << 14, 40),
            (8, 1 << 13, 1 << 14, 40),
            (5, 16, 64, 40),
            (64, 64, 1 << 15, 55),
            (8, 8, 16, 30),
        ] {
            for seed in 0..4 {
                let v = values(len, 35, seed);
                let mut fixed = vec![0i64; n];
                let mut scratch = vec![0i64; fixed_scratch_len(slots)];
                encode_real_fixed(&v, slots, n, log_scale, &mut fixed, &mut scratch).unwrap();
                let float = float_reference(&v, slots, n, log_scale);
                for (a, b) in fixed.iter().zip(&float) {
                    // Both encoders carry about 2^-52 relative error in the transform
                    // (|z| < 2^3 here): far below one unit at scale 2^40, a few hundred units
                    // at 2^55, where the coefficients are near 2^58.
                    let d = (*a as f64 - b).abs();
                    let tolerance = 1f64.max(2f64.powi(log_scale as i32 - 47));
                    assert!(d <= tolerance, "{len} values, {slots} slots, n {n}: {a} vs {b}");
                    if log_scale <= 40 {
                        mismatches += (d != 0.0) as usize;
                        total += 1;
                    }
                }
            }
        }
        // Ties and last-bit differences are rare; equality is the rule.
        assert!(mismatches * 10_000 < total, "{mismatches} of {total} coefficients differ");
    }

    #[test]
    fn range_and_shape_errors() {
        let n = 64;
        let mut c = vec![7i64; n];
        let mut s = vec![0i64; fixed_scratch_len(8)];
        // |v| = 2^54 is the limit at scale 2^40: refused, output zeroed.
        let mut v = vec![0i64; 8];
        v[3] = 1 << 54;
        assert_eq!(encode_real_fixed(&v, 8, n, 40, &mut c, &mut s), Err(EncodeError::ValueOutOfRange));
        assert!(c.iter().all(|&x| x == 0));
        v[3] = (1 << 54) - 1;
        assert_eq!(encode_real_fixed(&v, 8, n, 40, &mut c, &mut s), Ok(()));
        v[3] = i64::MIN;
        assert_eq!(encode_real_fixed(&v, 8, n, 40, &mut c, &mut s), Err(EncodeError::ValueOutOfRange));
        assert_eq!(encode_real_fixed(&v, 8, n, 0, &mut c, &mut s), Err(EncodeError::InvalidScale));
        assert_eq!(encode_real_fixed(&v, 8, n, 85, &mut c, &mut s), Err(EncodeError::InvalidScale));
        assert_eq!(
            encode_real_fixed(&v, 3, n, 40, &mut c, &mut s),
            Err(EncodeError::SlotsNotPowerOfTwo { slots: 3 })
        );
        assert_eq!(
            encode_real_fixed(&v, 4, n, 40, &mut c, &mut s),
            Err(EncodeError::TooManySlots { slots: 8, max: 4 })
        );
        let short = fixed_scratch_len(8) - 1;
        assert_eq!(
            encode_real_fixed(&v, 8, n, 40, &mut c, &mut s[..short]),
            Err(EncodeError::BufferTooSmall {
                needed: short + 1,
                got: short
            })
        );
        assert_eq!(
            encode_real_fixed(&v, 8, n, 40, &mut c[..63], &mut s),
            Err(EncodeError::CoeffLengthMismatch { expected: 64, got: 63 })
        );
        let big = vec![0i64; 2 * MAX_FIXED_VALUES];
        let mut cb = vec![0i64; 4 * MAX_FIXED_VALUES];
        let mut sb = vec![0i64; fixed_scratch_len(2 * MAX_FIXED_VALUES)];
        assert_eq!(
            encode_real_fixed(&big, 2 * MAX_FIXED_VALUES, 4 * MAX_FIXED_VALUES, 40, &mut cb, &mut sb),
            Err(EncodeError::TooManySlots {
                slots: 2 * MAX_FIXED_VALUES,
                max: MAX_FIXED_VALUES
            })
        );
        // The extremes of the accumulator: every value at the largest accepted magnitude.
        let v = vec![-(1i64 << 53); 8];
        encode_real_fixed(&v, 8, n, 40, &mut c, &mut s).unwrap();
        assert_eq!(c[0], -(1i64 << 61));
        let v = vec![i64::MAX; MAX_FIXED_VALUES];
        let mut cm = vec![0i64; 2 * MAX_FIXED_VALUES];
        let mut sm = vec![0i64; fixed_scratch_len(MAX_FIXED_VALUES)];
        encode_real_fixed(&v, MAX_FIXED_VALUES, 2 * MAX_FIXED_VALUES, 20, &mut cm, &mut sm).unwrap();
    }

    #[test]
    fn scratch_sizes() {
        assert_eq!(fixed_scratch_len(8), 24);
        assert_eq!(fixed_scratch_len(1 << 13), 768);
        for log_s in 0u32..16 {
            let (low_bits, low, high) = table_split(1 << log_s);
            assert_eq!(2 * (low + high), fixed_scratch_len(1 << log_s));
            assert_eq!(low * high, 4 << log_s);
            assert!(low_bits >= (2 + log_s).div_ceil(2));
        }
    }

    #[test]
    fn to_fixed_rounds_and_saturates() {
        assert_eq!(to_fixed(1.0), 1 << 32);
        assert_eq!(to_fixed(-0.5), -(1 << 31));
        assert_eq!(to_fixed(f64::NAN), 0);
        assert_eq!(to_fixed(1e300), i64::MAX);
    }
}
