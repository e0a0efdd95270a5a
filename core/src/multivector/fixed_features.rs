//! The scan features of [`super::features`] for integer voxels, in fixed point and constant
//! time: what the device computes from the patient's volume.
//!
//! [`super::features::scan_features`] accumulates in `f32`/`f64`. On a Cortex-M4F every `f64`
//! operation is a soft-float call whose timing depends on its operands, and the final divisions
//! and square root are data-dependent too. Here:
//!
//! * the moment sums are exact integers: with `t_a(i) = 2 i + 1 - n_a` (twice the voxel
//!   centre's offset from the volume centre, in voxels), the sums of `v`, `v t_a` and
//!   `v t_a t_b` over all voxels `v`, in `i64` per row and `i128` overall;
//! * the divisions by the mass `sum v` (patient data) use [`ct_div`], a restoring division with
//!   a fixed 128 iterations and no branch, and the size uses [`ct_isqrt`] (64 fixed digit
//!   steps); nothing calls a division instruction or a library routine;
//! * the geometry (dimensions and spacing, public) is turned into fixed-point factors once, by
//!   [`FixedGeometry::new`], before any voxel is read: that step may use floating point.
//!
//! The output is the same 8 features, as `i64` with [`FRAC_BITS`] fractional bits, ready for
//! [`crate::encode::fixed::encode_real_fixed`]. They agree with the `f64` definition to about
//! `1e-9` (the tests compare with an exact `f64` reference and with `scan_features`, whose own
//! `f32` row sums are accurate to about `1e-6`).
//!
//! Degenerate input: an all-zero volume gives zero features (mean, centroid, moments and size),
//! as `scan_features` does, selected by a mask rather than a branch.

use super::features::FeatureError;
pub use crate::encode::fixed::FRAC_BITS;

/// Largest dimension along one axis (keeps `v t_a t_b` per row within `i64`).
pub const MAX_FIXED_DIM: usize = 1 << 12;

/// Fractional bits of the geometry factors `h_a`.
pub(crate) const H_BITS: u32 = 48;

/// An integer voxel type: `u8` or `u16` (what a device's sensor or a CT/MR slice stores).
pub trait IntVoxel: Copy {
    /// The voxel as an unsigned integer (at most 16 bits).
    fn value(self) -> u32;
}
impl IntVoxel for u8 {
    #[inline(always)]
    fn value(self) -> u32 {
        u32::from(self)
    }
}
impl IntVoxel for u16 {
    #[inline(always)]
    fn value(self) -> u32 {
        u32::from(self)
    }
}

/// The public part of the computation: grid shape, coordinate factors and intensity scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedGeometry {
    dims: [usize; 3],
    /// `h_a = s_a / (2 half)`, `half` = half the largest physical extent: the normalised
    /// coordinate of a voxel centre is `h_a t_a`. 48 fractional bits.
    h: [i64; 3],
    /// `count * intensity_scale`: the mean is `sum v / this`.
    mean_divisor: u64,
}

impl FixedGeometry {
    /// Checks the shape (no dimension zero or above [`MAX_FIXED_DIM`]), the spacing (finite and
    /// positive) and the intensity scale (`>= 1`), and precomputes the factors. Public data
    /// only: this is the one step allowed to use floating point.
    pub fn new(dims: [usize; 3], spacing: [f64; 3], intensity_scale: u32) -> Result<Self, FeatureError> {
        if dims.iter().any(|&d| d == 0 || d > MAX_FIXED_DIM) {
            return Err(FeatureError::BadDimensions);
        }
        if !spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(FeatureError::BadSpacing);
        }
        if intensity_scale == 0 {
            return Err(FeatureError::BadConfig);
        }
        let ext = [
            dims[0] as f64 * spacing[0],
            dims[1] as f64 * spacing[1],
            dims[2] as f64 * spacing[2],
        ];
        let largest = ext[0].max(ext[1]).max(ext[2]);
        let h = spacing.map(|s| libm::round(s / largest * (1u64 << H_BITS) as f64) as i64);
        if h.contains(&0) {
            return Err(FeatureError::BadSpacing);
        }
        // The voxel count must fit usize (32 bits on the device) and times the scale, u64.
        let count = dims[0]
            .checked_mul(dims[1])
            .and_then(|c| c.checked_mul(dims[2]))
            .ok_or(FeatureError::BadDimensions)? as u64;
        let mean_divisor = count.checked_mul(u64::from(intensity_scale)).ok_or(FeatureError::BadConfig)?;
        Ok(Self { dims, h, mean_divisor })
    }

    /// The grid shape.
    #[must_use]
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// The coordinate factors `h_a` ([`H_BITS`] fractional bits): a voxel centre's normalised
    /// coordinate is `h_a t_a` (for [`super::fixed_channels`]).
    pub(crate) fn factors(&self) -> [i64; 3] {
        self.h
    }

    /// `voxel count * intensity scale` (for [`super::fixed_channels`]).
    pub(crate) fn mean_divisor(&self) -> u64 {
        self.mean_divisor
    }
}

/// `floor(num / den)` for `den > 0`, in constant time: 128 restoring steps whose selections
/// are masks, not branches, so neither the timing nor the instructions depend on the operands
/// (a hardware divider, or a library division, finishes early on small quotients). `den = 0`
/// gives all ones.
#[inline(never)]
#[must_use]
pub fn ct_div(num: u128, den: u64) -> u128 {
    let den = u128::from(den);
    let mut q = 0u128;
    let mut r = 0u128; // < den <= 2^64 - 1 before each shift: no overflow
    for i in (0..128).rev() {
        r = (r << 1) | ((num >> i) & 1);
        let (diff, borrow) = r.overflowing_sub(den);
        let take = u128::from(!borrow);
        let mask = take.wrapping_neg();
        r = (diff & mask) | (r & !mask);
        q |= take << i;
    }
    q
}

/// `round(num / den)` for a signed numerator in constant time (the sign is applied by masks).
fn ct_div_signed_round(num: i128, den: u64) -> i128 {
    let neg = num >> 127; // 0 or -1
    let mag = (num ^ neg).wrapping_sub(neg) as u128; // |num|; num > i128::MIN by the bounds
    let q = ct_div(mag + u128::from(den >> 1), den) as i128;
    (q ^ neg).wrapping_sub(neg)
}

/// `floor(sqrt(x))` in constant time: 64 digit steps of the bitwise method with mask selects.
#[inline(never)]
#[must_use]
pub fn ct_isqrt(x: u128) -> u64 {
    let mut rem = x;
    let mut res = 0u128;
    let mut bit = 1u128 << 126;
    for _ in 0..64 {
        let t = res + bit;
        let (diff, borrow) = rem.overflowing_sub(t);
        let mask = u128::from(!borrow).wrapping_neg();
        rem = (diff & mask) | (rem & !mask);
        res = (res >> 1) + (bit & mask);
        bit >>= 2;
    }
    res as u64
}

/// `(a * b) >> shift`, rounded, for the products of the finish (public factor `b`).
fn mul_shift(a: i128, b: i128, shift: u32) -> i128 {
    (a * b + (1i128 << (shift - 1))) >> shift
}

/// The 8 features ([`super::features`] for their definitions) of the integer volume `data`
/// (`x` fastest, shape from `geom`), as fixed-point `i64` with [`FRAC_BITS`] fractional bits in
/// basis order `[1, e1, e2, e3, e12, e13, e23, e123]`.
///
/// Constant time in the voxel values: every loop bound, memory access and operation depends
/// on the shape alone.
///
/// # Errors
///
/// [`FeatureError::LengthMismatch`] when `data.len()` is not the product of the dimensions.
pub fn scan_features_fixed<T: IntVoxel>(data: &[T], geom: &FixedGeometry) -> Result<[i64; 8], FeatureError> {
    let [nx, ny, nz] = geom.dims;
    let expected = nx * ny * nz; // fits usize: checked by FixedGeometry::new
    if data.len() != expected {
        return Err(FeatureError::LengthMismatch {
            expected,
            found: data.len(),
        });
    }
    // Exact moment sums in the doubled voxel offsets t = 2i + 1 - n.
    let (mut s0, mut sx, mut sy, mut sz) = (0i128, 0i128, 0i128, 0i128);
    let (mut sxx, mut syy, mut szz, mut sxy, mut sxz, mut syz) = (0i128, 0i128, 0i128, 0i128, 0i128, 0i128);
    // Doubled offsets stepped by 2 (no division or remainder, not even on public indices: the
    // disassembly test of the firmware refuses every divide instruction on this path).
    let start = |n: usize| 1 - n as i64;
    let mut row_start = 0usize;
    let mut tz = start(nz);
    for _ in 0..nz {
        let mut ty = start(ny);
        for _ in 0..ny {
            let row = data.get(row_start..row_start + nx).unwrap_or(&[]);
            row_start += nx;
            // Per row: |v t^2| < 2^16 * 2^26 and at most 2^12 terms: below 2^54.
            let (mut r0, mut rx, mut rxx) = (0i64, 0i64, 0i64);
            let mut tx = start(nx);
            for v in row {
                let v = i64::from(v.value());
                r0 += v;
                rx += v * tx;
                rxx += v * tx * tx;
                tx += 2;
            }
            let (r0, rx, rxx, ty128, tz128) = (r0 as i128, rx as i128, rxx as i128, ty as i128, tz as i128);
            s0 += r0;
            sx += rx;
            sxx += rxx;
            sy += r0 * ty128;
            sz += r0 * tz128;
            syy += r0 * ty128 * ty128;
            szz += r0 * tz128 * tz128;
            syz += r0 * ty128 * tz128;
            sxy += rx * ty128;
            sxz += rx * tz128;
            ty += 2;
        }
        tz += 2;
    }

    // The finish, in constant time. An all-zero volume divides by 1 instead of 0 and has its
    // non-mean features masked to zero.
    let mass = s0 as u64; // s0 >= 0 and below 2^52
    let zero = u64::from(mass == 0).wrapping_neg();
    let den = mass | (zero & 1);
    let keep = !(zero as i128) as i64; // all ones unless the volume is all zero
    let mean = ct_div(
        ((mass as u128) << FRAC_BITS) + u128::from(geom.mean_divisor >> 1),
        geom.mean_divisor,
    ) as i64;
    // Means of t_a and t_a t_b, FRAC_BITS fractional bits (|m_a| < 2^13, |m_ab| < 2^26).
    let m = [sx, sy, sz].map(|s| ct_div_signed_round(s << FRAC_BITS, den));
    let mm = [sxy, sxz, syz, sxx, syy, szz].map(|s| ct_div_signed_round(s << FRAC_BITS, den));
    // Central moments in t units: m_ab - m_a m_b.
    let central = |ab: i128, a: usize, b: usize| ab - mul_shift(m[a], m[b], FRAC_BITS);
    let [cxy, cxz, cyz] = [central(mm[0], 0, 1), central(mm[1], 0, 2), central(mm[2], 1, 2)];
    let [cxx, cyy, czz] = [central(mm[3], 0, 0), central(mm[4], 1, 1), central(mm[5], 2, 2)];
    let h = geom.h.map(i128::from);
    // Normalised coordinates: r_a = h_a t_a (h with H_BITS fractional bits).
    let centroid = [0, 1, 2].map(|a| mul_shift(m[a], h[a], H_BITS));
    let scaled = |c: i128, a: usize, b: usize| mul_shift(mul_shift(c, h[a], H_BITS), h[b], H_BITS);
    let trace = scaled(cxx, 0, 0) + scaled(cyy, 1, 1) + scaled(czz, 2, 2);
    // max(trace, 0) by a mask (rounding can make an exactly-zero spread slightly negative).
    let trace = trace & !(trace >> 127);
    let size = i128::from(ct_isqrt((trace as u128) << FRAC_BITS));
    let out = [
        mean as i128,
        centroid[0],
        centroid[1],
        centroid[2],
        scaled(cxy, 0, 1),
        scaled(cxz, 0, 2),
        scaled(cyz, 1, 2),
        size,
    ];
    let mut features = [0i64; 8];
    for (i, (f, v)) in features.iter_mut().zip(out).enumerate() {
        // Every feature is bounded by the geometry (|r| <= 1, v/scale <= 2^16): fits i64.
        *f = if i == 0 { v as i64 } else { (v as i64) & keep };
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multivector::features::{scan_features, FeatureConfig, VolumeView};
    use std::vec::Vec;

    fn to_f64(v: i64) -> f64 {
        v as f64 / (1u64 << FRAC_BITS) as f64
    }

    /// The features by their definition, with sums in f64 (exact for these sizes).
    fn reference(data: &[u16], dims: [usize; 3], spacing: [f64; 3], scale: f64) -> [f64; 8] {
        let ext = [0, 1, 2].map(|a| dims[a] as f64 * spacing[a]);
        let half = ext[0].max(ext[1]).max(ext[2]) / 2.0;
        let (mut s0, mut s) = (0.0, [0.0f64; 3]);
        let mut ss = [[0.0f64; 3]; 3];
        for (idx, &v) in data.iter().enumerate() {
            let i = [idx % dims[0], (idx / dims[0]) % dims[1], idx / (dims[0] * dims[1])];
            let r = [0, 1, 2].map(|a| ((i[a] as f64 + 0.5) * spacing[a] - ext[a] / 2.0) / half);
            let w = v as f64 / scale;
            s0 += w;
            for a in 0..3 {
                s[a] += w * r[a];
                for b in 0..3 {
                    ss[a][b] += w * r[a] * r[b];
                }
            }
        }
        let mean = s0 / data.len() as f64;
        if s0 == 0.0 {
            return [mean, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        }
        let c = s.map(|x| x / s0);
        let cov = |a: usize, b: usize| ss[a][b] / s0 - c[a] * c[b];
        [
            mean,
            c[0],
            c[1],
            c[2],
            cov(0, 1),
            cov(0, 2),
            cov(1, 2),
            (cov(0, 0) + cov(1, 1) + cov(2, 2)).max(0.0).sqrt(),
        ]
    }

    fn volume(dims: [usize; 3], seed: u64, max: u16) -> Vec<u16> {
        let mut x = seed;
        (0..dims[0] * dims[1] * dims[2])
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // A blob off centre plus noise, so every moment is non-trivial.
                let (a, b, c) = (i % dims[0], (i / dims[0]) % dims[1], i / (dims[0] * dims[1]));
                let inside = a * 3 < dims[0] * 2 && b * 2 > dims[1] / 2 && c < dims[2] - 1;
                (if inside { max / 2 } else { 0 }) + ((x >> 40) as u16 % (max / 4 + 1))
            })
            .collect()
    }

    #[test]
    fn matches_the_definition() {
        for (dims, spacing, scale, max) in [
            ([16, 16, 16], [1.0, 1.0, 1.0], 255, 255u16),
            ([28, 28, 28], [1.0, 1.0, 1.0], 255, 255),
            ([20, 12, 9], [0.7, 1.1, 2.5], 1000, 4095),
            ([64, 48, 5], [0.5, 0.5, 3.0], 65535, 65535),
        ] {
            for seed in 0..3 {
                let data = volume(dims, seed, max);
                let geom = FixedGeometry::new(dims, spacing, scale).unwrap();
                let got = scan_features_fixed(&data, &geom).unwrap().map(to_f64);
                let want = reference(&data, dims, spacing, scale as f64);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() < 2e-9, "{dims:?} feature {k}: {g} vs {w}");
                }
                // And the host's implementation (f32 row sums: about 1e-6).
                let view = VolumeView::new(&data[..], dims, spacing).unwrap();
                let host = scan_features(
                    &view,
                    &FeatureConfig {
                        intensity_scale: scale as f64,
                    },
                )
                .unwrap()
                .coeffs();
                for (k, (g, w)) in got.iter().zip(&host).enumerate() {
                    assert!((g - w).abs() < 1e-5, "{dims:?} feature {k}: {g} vs host {w}");
                }
            }
        }
    }

    #[test]
    fn all_zero_and_single_voxel_volumes() {
        let geom = FixedGeometry::new([4, 4, 4], [1.0; 3], 255).unwrap();
        assert_eq!(scan_features_fixed(&[0u8; 64], &geom).unwrap(), [0; 8]);
        let mut one = [0u8; 64];
        one[0] = 255;
        let got = scan_features_fixed(&one, &geom).unwrap().map(to_f64);
        let want = reference(&one.map(u16::from), [4, 4, 4], [1.0; 3], 255.0);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
        assert_eq!(got[7], 0.0, "a point has no spread");
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(FixedGeometry::new([0, 4, 4], [1.0; 3], 255), Err(FeatureError::BadDimensions));
        assert_eq!(
            FixedGeometry::new([MAX_FIXED_DIM + 1, 1, 1], [1.0; 3], 255),
            Err(FeatureError::BadDimensions)
        );
        assert_eq!(
            FixedGeometry::new([4, 4, 4], [1.0, f64::NAN, 1.0], 255),
            Err(FeatureError::BadSpacing)
        );
        assert_eq!(FixedGeometry::new([4, 4, 4], [1.0; 3], 0), Err(FeatureError::BadConfig));
        let geom = FixedGeometry::new([4, 4, 4], [1.0; 3], 255).unwrap();
        assert_eq!(
            scan_features_fixed(&[0u8; 63], &geom),
            Err(FeatureError::LengthMismatch { expected: 64, found: 63 })
        );
    }

    #[test]
    fn constant_time_helpers() {
        for (n, d) in [
            (0u128, 1u64),
            (1, 1),
            (u128::MAX, 1),
            (u128::MAX, u64::MAX),
            (12345678901234567890123, 977),
            (5, 7),
        ] {
            assert_eq!(ct_div(n, d), n / u128::from(d), "{n} / {d}");
        }
        assert_eq!(ct_div(5, 0), u128::MAX);
        for x in [0u128, 1, 2, 3, 4, 15, 16, 17, 1 << 64, u128::MAX, 99999999999999999999999999] {
            let r = u128::from(ct_isqrt(x));
            assert!(r * r <= x && (r + 1).checked_mul(r + 1).is_none_or(|s| s > x), "isqrt {x} = {r}");
        }
        assert_eq!(ct_div_signed_round(-7, 2), -4);
        assert_eq!(ct_div_signed_round(7, 2), 4);
        assert_eq!(ct_div_signed_round(-5, 3), -2);
    }
}
