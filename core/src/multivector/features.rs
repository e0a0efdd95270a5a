//! Scan features: a 3D volume reduced to one Cl(3,0) multivector (docs/architecture.md §7).
//!
//! With intensities I (divided by `FeatureConfig::intensity_scale`) and voxel centres r in
//! normalised physical coordinates (origin at the volume centre, divided by the half-extent of
//! the *largest* axis, so one isotropic factor for all axes):
//!
//! | blade | feature | under a rotation R of the volume about its centre |
//! |---|---|---|
//! | 1 | mean intensity (for a binary mask: the volume fraction) | invariant |
//! | e1, e2, e3 | intensity-weighted centroid c = sum I r / sum I | rotates: c -> R c |
//! | e12, e13, e23 | central second moments C_xy, C_xz, C_yz of C = sum I (r-c)(r-c)^T / sum I | C -> R C R^T; the three off-diagonal terms alone are *not* closed under rotation (they mix with the diagonal), so they are orientation features, not invariants |
//! | e123 | size: RMS radius sqrt(trace C) of the intensity distribution | invariant |
//!
//! A single isotropic factor keeps the map equivariant (a per-axis factor would not be for
//! non-cubic volumes), and normalised coordinates make features comparable across resolutions
//! and voxel spacings: the same physical object sampled twice gives the same features up to
//! discretisation. Rotations by multiples of 90 degrees on a cubic grid map voxels to voxels, so
//! there the transformation rules hold exactly; other angles need resampling, and content moved
//! outside the grid is lost. An all-zero volume gives zero centroid, moments and size (not NaN).
//!
//! What "rotates as R C R^T, not closed" means in practice: for a rotation about z by an angle
//! phi, C'_xy = cos(2 phi) C_xy + sin(2 phi) (C_xx - C_yy) / 2, so the new e12 depends on the
//! diagonal variances, which are not among the 8 features (only their sum, through e123), while
//! (C_xz, C_yz) turn among themselves as a plane vector by phi. The
//! bivector part is therefore not a Cl(3,0) bivector transforming as R B ~R; the exceptions are
//! quarter turns, which only permute and negate the three components (tested below), and
//! rotations of a body whose C is isotropic, for which the off-diagonal terms stay zero. A
//! model that must be rotation invariant should use the invariant parts (1, e123, |c|) or be
//! trained with rotated copies.
//!
//! Intensities are meant to be non-negative (a mask, or a windowed/offset CT or MR volume).
//! Signed data is accepted and gives signed-mass moments; if the signed mass cancels so closely
//! that the centroid overflows, the result is [`FeatureError::Overflow`], never inf or NaN.
//!
//! Cost: one pass over the voxels, no allocation and no division per voxel: this runs on the
//! device. Per row (an x-run) three f32 sums are kept; the y/z terms are added once per row in
//! f64. Central moments use E[r r^T] - c c^T from that one pass; the cancellation costs about
//! log10(|c|^2 / var) digits of the f32 row sums, i.e. ~1e-4 relative error for a small lesion
//! near a corner, well below the CKKS precision the features are encrypted at.

use super::Multivector;

/// A voxel type the features accept.
///
/// `to_f32` is what the accumulation loop uses (the Cortex-M4F has a single-precision FPU
/// only), so every integer type converts to f32 directly rather than through f64, which would
/// be a soft-float call per voxel on the device.
pub trait Voxel: Copy {
    fn to_f64(self) -> f64;
    fn to_f32(self) -> f32 {
        self.to_f64() as f32
    }
}
impl Voxel for u8 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
}
impl Voxel for u16 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
}
impl Voxel for i16 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
}
impl Voxel for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_f32(self) -> f32 {
        self
    }
}
/// f64 voxels are accumulated in f32 like the rest; a value outside the f32 range is reported
/// as [`FeatureError::NonFiniteVoxel`].
impl Voxel for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

/// Why a volume was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeatureError {
    /// A dimension is zero or their product overflows.
    BadDimensions,
    /// dims product differs from the number of voxels.
    LengthMismatch { expected: usize, found: usize },
    /// Voxel spacing not finite and positive.
    BadSpacing,
    /// Unequal voxel spacings where a feature needs an isotropic grid (the interior depth
    /// channel: a depth in voxel steps is a distance only on such a grid).
    AnisotropicSpacing,
    /// A voxel is NaN or infinite (for f64 voxels: outside the f32 range).
    NonFiniteVoxel { index: usize },
    /// `intensity_scale` not finite and positive, or its reciprocal not a normal f32.
    BadConfig,
    /// The sums overflowed (intensities far above `intensity_scale`); no feature is returned
    /// rather than an infinite or NaN one.
    Overflow,
}

impl core::fmt::Display for FeatureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadDimensions => f.write_str("volume dimensions are zero or too large"),
            Self::LengthMismatch { expected, found } => write!(f, "volume has {found} voxels, dimensions say {expected}"),
            Self::BadSpacing => f.write_str("voxel spacing must be finite and positive"),
            Self::AnisotropicSpacing => f.write_str(
                "the interior depth channel needs equal voxel spacings on the three axes (resample first, as the ct and mr presets do)",
            ),
            Self::NonFiniteVoxel { index } => write!(f, "voxel {index} is not a finite number"),
            Self::BadConfig => f.write_str("intensity scale must be finite, positive and within the f32 range"),
            Self::Overflow => f.write_str("feature sums overflowed: intensities are far above the intensity scale"),
        }
    }
}

impl core::error::Error for FeatureError {}

/// A borrowed volume: `data[x + dims[0] * (y + dims[1] * z)]`, x fastest; spacing in mm.
#[derive(Clone, Copy, Debug)]
pub struct VolumeView<'a, T> {
    data: &'a [T],
    dims: [usize; 3],
    spacing: [f64; 3],
}

impl<'a, T: Voxel> VolumeView<'a, T> {
    /// Checks that no dimension is zero, that their product neither overflows nor differs from
    /// `data.len()`, and that every spacing is finite and positive.
    pub fn new(data: &'a [T], dims: [usize; 3], spacing: [f64; 3]) -> Result<Self, FeatureError> {
        if dims.contains(&0) {
            return Err(FeatureError::BadDimensions);
        }
        let expected = dims[0]
            .checked_mul(dims[1])
            .and_then(|p| p.checked_mul(dims[2]))
            .ok_or(FeatureError::BadDimensions)?;
        if expected != data.len() {
            return Err(FeatureError::LengthMismatch {
                expected,
                found: data.len(),
            });
        }
        if spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(FeatureError::BadSpacing);
        }
        Ok(Self { data, dims, spacing })
    }
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Every voxel in order as (intensity `I` = voxel times `inv_scale`, normalised position
    /// `r`); a NaN or infinite voxel yields [`FeatureError::NonFiniteVoxel`] at its index. The
    /// one validated pass of the channel code.
    pub(crate) fn scaled_voxels(&self, inv_scale: f64) -> impl Iterator<Item = Result<(f64, [f64; 3]), FeatureError>> + '_ {
        self.data.iter().enumerate().map(move |(index, voxel)| {
            let value = voxel.to_f64();
            if !value.is_finite() {
                return Err(FeatureError::NonFiniteVoxel { index });
            }
            Ok((value * inv_scale, self.normalised_position(index)))
        })
    }

    /// The scaled mass `sum I` and first moments `sum I r` (normalised positions) of the
    /// volume, intensities `I` = voxel times `inv_scale`: the centroid pass of the principal
    /// axes and the depth channel. A NaN or infinite voxel is refused.
    pub(crate) fn mass_and_first_moments(&self, inv_scale: f64) -> Result<(f64, [f64; 3]), FeatureError> {
        let (mut mass, mut first) = (0.0f64, [0.0f64; 3]);
        for voxel in self.scaled_voxels(inv_scale) {
            let (w, r) = voxel?;
            mass += w;
            for a in 0..3 {
                first[a] += w * r[a];
            }
        }
        Ok((mass, first))
    }

    /// The normalised coordinate of voxel `index` (x fastest): origin at the volume centre,
    /// divided by half the largest physical extent, `((i + 1/2) s_a - ext_a / 2) / half`. The
    /// channel encoders' one definition; [`scan_features`] steps the same values incrementally.
    #[must_use]
    pub fn normalised_position(&self, index: usize) -> [f64; 3] {
        let [nx, ny, nz] = self.dims;
        let s = self.spacing;
        let ext = [nx as f64 * s[0], ny as f64 * s[1], nz as f64 * s[2]];
        let half = ext[0].max(ext[1]).max(ext[2]) / 2.0;
        let i = [index % nx, (index / nx) % ny, index / (nx * ny)];
        core::array::from_fn(|a| ((i[a] as f64 + 0.5) * s[a] - ext[a] / 2.0) / half)
    }
}

/// Feature extraction settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureConfig {
    /// Intensities are divided by this (255 for 8-bit masks, 1 for [0, 1] data, or the volume
    /// maximum via [`FeatureConfig::from_volume_max`]). Must be finite and positive, with a
    /// reciprocal that is a normal f32 (roughly 1e-38..3e38): the per-row sums run in f32.
    pub intensity_scale: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self { intensity_scale: 1.0 }
    }
}

impl FeatureConfig {
    /// Scale by the largest absolute intensity of `v` (one extra pass over the voxels), so the
    /// strongest voxel maps to 1 whatever the scanner's range. An all-zero volume gets scale 1
    /// (its features are zero anyway). Note the trade-off: features of two scans are then
    /// relative to each scan's own maximum, so a uniformly brighter scan looks the same.
    pub fn from_volume_max<T: Voxel>(v: &VolumeView<'_, T>) -> Result<Self, FeatureError> {
        let m = max_abs_intensity(v)?;
        Ok(Self {
            intensity_scale: if m > 0.0 { m } else { 1.0 },
        })
    }
}

/// The largest |voxel| of `v`, or the index of the first non-finite voxel as an error.
pub fn max_abs_intensity<T: Voxel>(v: &VolumeView<'_, T>) -> Result<f64, FeatureError> {
    let mut m = 0.0f64;
    for (index, voxel) in v.data.iter().enumerate() {
        let x = voxel.to_f64();
        if !x.is_finite() {
            return Err(FeatureError::NonFiniteVoxel { index });
        }
        m = m.max(libm::fabs(x));
    }
    Ok(m)
}

/// The 8 features of a volume (see the module docs for each component).
///
/// Errors: [`FeatureError::BadConfig`] for an unusable `intensity_scale`,
/// [`FeatureError::NonFiniteVoxel`] for a NaN/infinite voxel, [`FeatureError::Overflow`] when
/// the sums leave the floating-point range. Every returned component is finite.
pub fn scan_features<T: Voxel>(v: &VolumeView<'_, T>, cfg: &FeatureConfig) -> Result<Multivector, FeatureError> {
    if !(cfg.intensity_scale.is_finite() && cfg.intensity_scale > 0.0) {
        return Err(FeatureError::BadConfig);
    }
    let inv_scale = 1.0 / cfg.intensity_scale;
    // The row loop multiplies by the reciprocal in f32: a scale whose reciprocal is infinite,
    // zero or subnormal there would turn every voxel into NaN, zero or noise.
    let inv_scale32 = inv_scale as f32;
    if !inv_scale32.is_normal() {
        return Err(FeatureError::BadConfig);
    }
    let [nx, ny, nz] = v.dims;
    let ext = [nx as f64 * v.spacing[0], ny as f64 * v.spacing[1], nz as f64 * v.spacing[2]];
    let half = ext.iter().fold(0.0f64, |a, &b| a.max(b)) / 2.0;
    let inv_half = 1.0 / half;
    // Normalised coordinate of voxel centre i along axis a: ((i + 1/2) s_a - ext_a / 2) / half.
    let step = [v.spacing[0] * inv_half, v.spacing[1] * inv_half, v.spacing[2] * inv_half];
    let origin = [
        (0.5 * v.spacing[0] - ext[0] / 2.0) * inv_half,
        (0.5 * v.spacing[1] - ext[1] / 2.0) * inv_half,
        (0.5 * v.spacing[2] - ext[2] / 2.0) * inv_half,
    ];
    let step_x = step[0] as f32;
    let (mut s0, mut sx, mut sy, mut sz) = (0.0f64, 0.0, 0.0, 0.0);
    let (mut sxx, mut syy, mut szz, mut sxy, mut sxz, mut syz) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
    // Rows are x-runs of nx voxels (x fastest), `dims[1]` rows per z-slice. The constructor
    // guarantees data.len() == nx * ny * nz, so chunks_exact covers every voxel exactly once.
    let mut rows = v.data.chunks_exact(nx).enumerate();
    let mut z = origin[2];
    for _ in 0..nz {
        let mut y = origin[1];
        for _ in 0..ny {
            let Some((row_index, row)) = rows.next() else {
                break;
            };
            // Per-row sums first (x varies inside the row), then the y/z terms once per row.
            // The row loop runs in f32 (the Cortex-M4F has a single-precision FPU and no
            // double-precision one: f64 here costs ~16x the instructions); a row has at most a
            // few hundred terms of magnitude <= 1, so f32 keeps ~6 significant digits, and the
            // cross-row sums stay in f64. Host and device run this same code.
            let (mut r0, mut rx, mut rxx) = (0.0f32, 0.0f32, 0.0f32);
            let mut x = origin[0] as f32;
            for (k, voxel) in row.iter().enumerate() {
                let i = voxel.to_f32();
                if !i.is_finite() {
                    return Err(FeatureError::NonFiniteVoxel { index: row_index * nx + k });
                }
                let i = i * inv_scale32;
                r0 += i;
                rx += i * x;
                rxx += i * x * x;
                x += step_x;
            }
            let (r0, rx, rxx) = (r0 as f64, rx as f64, rxx as f64);
            s0 += r0;
            sx += rx;
            sxx += rxx;
            sy += r0 * y;
            sz += r0 * z;
            syy += r0 * y * y;
            szz += r0 * z * z;
            syz += r0 * y * z;
            sxy += rx * y;
            sxz += rx * z;
            y += step[1];
        }
        z += step[2];
    }
    let count = v.data.len() as f64;
    let mean = s0 / count;
    if s0 == 0.0 {
        return Ok(Multivector::new([mean, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
    }
    let inv = 1.0 / s0;
    let (cx, cy, cz) = (sx * inv, sy * inv, sz * inv);
    let cxx = sxx * inv - cx * cx;
    let cyy = syy * inv - cy * cy;
    let czz = szz * inv - cz * cz;
    let size = libm::sqrt((cxx + cyy + czz).max(0.0));
    let out = Multivector::new([
        mean,
        cx,
        cy,
        cz,
        sxy * inv - cx * cy,
        sxz * inv - cx * cz,
        syz * inv - cy * cz,
        size,
    ]);
    // An f32 row sum that overflowed shows up here as inf or NaN (inf - inf); so does an s0
    // so close to zero (signed intensities cancelling) that 1/s0 overflows.
    if out.coeffs().iter().all(|c| c.is_finite()) {
        Ok(out)
    } else {
        Err(FeatureError::Overflow)
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Voxelises an ellipsoid (semi-axes in normalised units) centred at `c`, rotated in the
    /// xy plane by `theta`, into a cube of side `n` (spacing 1).
    fn ellipsoid(n: usize, c: [f64; 3], axes: [f64; 3], theta: f64) -> Vec<u8> {
        let mut v = vec![0u8; n * n * n];
        let h = n as f64 / 2.0;
        let (ct, st) = (theta.cos(), theta.sin());
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let p = [
                        (x as f64 + 0.5 - h) / h - c[0],
                        (y as f64 + 0.5 - h) / h - c[1],
                        (z as f64 + 0.5 - h) / h - c[2],
                    ];
                    let (u, w) = (ct * p[0] + st * p[1], -st * p[0] + ct * p[1]);
                    if (u / axes[0]).powi(2) + (w / axes[1]).powi(2) + (p[2] / axes[2]).powi(2) <= 1.0 {
                        v[x + n * (y + n * z)] = 255;
                    }
                }
            }
        }
        v
    }

    /// A tilted ellipsoid plus a ball off every axis, in an n^3 cube: centroid and all three
    /// cross moments non-zero, so rotation tests check every component.
    fn lopsided(n: usize) -> Vec<u8> {
        let a = ellipsoid(n, [0.3, 0.1, -0.2], [0.3, 0.15, 0.2], 0.4);
        let b = ellipsoid(n, [-0.45, -0.4, 0.4], [0.2; 3], 0.0);
        a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect()
    }

    fn features(v: &[u8], n: usize) -> [f64; 8] {
        let view = VolumeView::new(v, [n; 3], [1.0; 3]).unwrap();
        scan_features(&view, &FeatureConfig { intensity_scale: 255.0 }).unwrap().coeffs()
    }

    #[test]
    fn centred_sphere_matches_closed_form() {
        let n = 64;
        let r: f64 = 0.5;
        let f = features(&ellipsoid(n, [0.0; 3], [r; 3], 0.0), n);
        let frac = 4.0 / 3.0 * core::f64::consts::PI * r.powi(3) / 8.0; // box volume 2^3
        assert!((f[0] - frac).abs() < 0.01 * frac, "{} vs {}", f[0], frac);
        for k in 1..7 {
            assert!(f[k].abs() < 1e-9, "component {k} = {}", f[k]);
        }
        // Uniform ball: E|r|^2 = 3/5 r^2.
        let rms = (0.6f64).sqrt() * r;
        assert!((f[7] - rms).abs() < 0.01, "{} vs {}", f[7], rms);
    }

    #[test]
    fn shifted_ellipsoid_has_its_centroid_at_the_shift() {
        let n = 64;
        let f = features(&ellipsoid(n, [0.25, -0.125, 0.1], [0.3, 0.2, 0.25], 0.0), n);
        assert!(
            (f[1] - 0.25).abs() < 0.01 && (f[2] + 0.125).abs() < 0.01 && (f[3] - 0.1).abs() < 0.01,
            "{f:?}"
        );
        // Axis-aligned: no cross moments.
        assert!(f[4].abs() < 1e-4 && f[5].abs() < 1e-4 && f[6].abs() < 1e-4);
        // Diagonal variances a^2/5 etc. enter only through the size: sqrt((a^2+b^2+c^2)/5);
        // the fraction is the ellipsoid volume over the box volume 8.
        let (a, b, c) = (0.3f64, 0.2f64, 0.25f64);
        let rms = ((a * a + b * b + c * c) / 5.0).sqrt();
        assert!((f[7] - rms).abs() < 0.01 * rms, "{} vs {rms}", f[7]);
        let frac = 4.0 / 3.0 * core::f64::consts::PI * a * b * c / 8.0;
        assert!((f[0] - frac).abs() < 0.03 * frac, "{} vs {frac}", f[0]);
    }

    #[test]
    fn tilted_ellipsoid_has_the_analytic_cross_moment() {
        // Uniform solid ellipsoid: variance along a semi-axis a is a^2/5; rotated by theta in
        // the xy plane, C_xy = (a^2 - b^2)/5 * sin(theta) cos(theta).
        let n = 96;
        let (a, b, theta) = (0.6f64, 0.25f64, 0.5f64);
        let f = features(&ellipsoid(n, [0.0; 3], [a, b, 0.3], theta), n);
        let want = (a * a - b * b) / 5.0 * theta.sin() * theta.cos();
        assert!((f[4] - want).abs() < 0.03 * want, "{} vs {}", f[4], want);
        assert!(f[5].abs() < 1e-4 && f[6].abs() < 1e-4);
    }

    #[test]
    fn resolution_independence() {
        let c = [0.2, 0.1, -0.15];
        let axes = [0.4, 0.3, 0.2];
        let lo = features(&ellipsoid(48, c, axes, 0.3), 48);
        let hi = features(&ellipsoid(96, c, axes, 0.3), 96);
        for k in 0..8 {
            assert!((lo[k] - hi[k]).abs() < 0.01, "component {k}: {} vs {}", lo[k], hi[k]);
        }
        // Same physical object with a coarser spacing: 48^3 at 2 mm vs 96^3 at 1 mm.
        let v48 = ellipsoid(48, c, axes, 0.3);
        let view = VolumeView::new(&v48[..], [48; 3], [2.0; 3]).unwrap();
        let f2 = scan_features(&view, &FeatureConfig { intensity_scale: 255.0 }).unwrap().coeffs();
        assert_eq!(f2, lo, "uniform spacing does not change normalised features");
    }

    #[test]
    fn rotation_by_90_degrees_about_z_transforms_as_documented() {
        let n = 40;
        let v = lopsided(n);
        // (x, y) -> (-y, x): new[x', y', z] = old[x, y, z] with x' = n-1-y, y' = x.
        let mut r = vec![0u8; n * n * n];
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    r[(n - 1 - y) + n * (x + n * z)] = v[x + n * (y + n * z)];
                }
            }
        }
        let (f, g) = (features(&v, n), features(&r, n));
        // Equal up to f32 rounding of the per-row sums (rows run along another axis after rotating).
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(g[0], f[0]) && close(g[7], f[7]), "scalar and size are invariant");
        assert!(close(g[1], -f[2]) && close(g[2], f[1]) && close(g[3], f[3]), "centroid rotates");
        // C -> R C R^T with R = [[0,-1,0],[1,0,0],[0,0,1]]: C'xy = -Cxy, C'xz = -Cyz, C'yz = Cxz.
        assert!(close(g[4], -f[4]) && close(g[5], -f[6]) && close(g[6], f[5]), "{f:?} {g:?}");
        assert!(f[1..7].iter().all(|x| x.abs() > 1e-3), "the test has signal: {f:?}");
    }

    #[test]
    fn bad_volumes_are_errors_and_empty_is_zero() {
        let v = [0u8; 8];
        assert_eq!(
            VolumeView::new(&v[..], [2, 2, 3], [1.0; 3]).unwrap_err(),
            FeatureError::LengthMismatch { expected: 12, found: 8 }
        );
        assert_eq!(
            VolumeView::new(&v[..], [0, 2, 2], [1.0; 3]).unwrap_err(),
            FeatureError::BadDimensions
        );
        assert_eq!(
            VolumeView::new(&v[..], [usize::MAX, 2, 2], [1.0; 3]).unwrap_err(),
            FeatureError::BadDimensions
        );
        assert_eq!(
            VolumeView::new(&v[..], [2, 2, 2], [1.0, f64::NAN, 1.0]).unwrap_err(),
            FeatureError::BadSpacing
        );
        let f = scan_features(&VolumeView::new(&v[..], [2, 2, 2], [1.0; 3]).unwrap(), &FeatureConfig::default()).unwrap();
        assert_eq!(f, Multivector::zero());
        let nan = [0.0f32, f32::NAN];
        let view = VolumeView::new(&nan[..], [2, 1, 1], [1.0; 3]).unwrap();
        assert_eq!(
            scan_features(&view, &FeatureConfig::default()).unwrap_err(),
            FeatureError::NonFiniteVoxel { index: 1 }
        );
        let view = VolumeView::new(&v[..], [2, 2, 2], [1.0; 3]).unwrap();
        assert_eq!(
            scan_features(&view, &FeatureConfig { intensity_scale: 0.0 }).unwrap_err(),
            FeatureError::BadConfig
        );
    }

    /// Voxelises an ellipsoid given in millimetres (centre relative to the volume centre,
    /// semi-axes, tilt `theta` in the xy plane) into a volume of `dims` voxels of `spacing` mm.
    fn ellipsoid_mm(dims: [usize; 3], spacing: [f64; 3], c: [f64; 3], axes: [f64; 3], theta: f64) -> Vec<u8> {
        let mut v = vec![0u8; dims[0] * dims[1] * dims[2]];
        let (ct, st) = (theta.cos(), theta.sin());
        for z in 0..dims[2] {
            for y in 0..dims[1] {
                for x in 0..dims[0] {
                    let idx = [x, y, z];
                    let p: [f64; 3] = core::array::from_fn(|a| (idx[a] as f64 + 0.5 - dims[a] as f64 / 2.0) * spacing[a] - c[a]);
                    let (u, w) = (ct * p[0] + st * p[1], -st * p[0] + ct * p[1]);
                    if (u / axes[0]).powi(2) + (w / axes[1]).powi(2) + (p[2] / axes[2]).powi(2) <= 1.0 {
                        v[x + dims[0] * (y + dims[1] * z)] = 255;
                    }
                }
            }
        }
        v
    }

    fn features_of<T: Voxel>(v: &[T], dims: [usize; 3], spacing: [f64; 3], scale: f64) -> [f64; 8] {
        let view = VolumeView::new(v, dims, spacing).unwrap();
        scan_features(&view, &FeatureConfig { intensity_scale: scale }).unwrap().coeffs()
    }

    #[test]
    fn anisotropic_spacing_gives_the_same_features_as_isotropic() {
        // The same 64 mm cube and tilted ellipsoid, sampled three ways.
        let (c, axes, th) = ([6.0, -4.0, 3.0], [14.0, 8.0, 10.0], 0.35);
        let iso = features_of(&ellipsoid_mm([64; 3], [1.0; 3], c, axes, th), [64; 3], [1.0; 3], 255.0);
        for (dims, sp) in [
            ([64, 64, 32], [1.0, 1.0, 2.0]),
            ([32, 64, 64], [2.0, 1.0, 1.0]),
            ([40, 40, 40], [1.6; 3]),
        ] {
            let g = features_of(&ellipsoid_mm(dims, sp, c, axes, th), dims, sp, 255.0);
            for k in 0..8 {
                assert!(
                    (iso[k] - g[k]).abs() < 0.01,
                    "{dims:?} {sp:?} component {k}: {} vs {}",
                    iso[k],
                    g[k]
                );
            }
        }
    }

    #[test]
    fn non_cubic_volume_is_scaled_by_the_largest_half_extent() {
        // 64 x 32 x 16 voxels of 1 mm: one factor 1/32 mm for all axes.
        let dims = [64, 32, 16];
        let f = features_of(
            &ellipsoid_mm(dims, [1.0; 3], [8.0, -4.0, 2.0], [5.0; 3], 0.0),
            dims,
            [1.0; 3],
            255.0,
        );
        let want = [8.0 / 32.0, -4.0 / 32.0, 2.0 / 32.0];
        for a in 0..3 {
            assert!((f[1 + a] - want[a]).abs() < 1e-3, "axis {a}: {} vs {}", f[1 + a], want[a]);
        }
        let rms = 0.6f64.sqrt() * 5.0 / 32.0;
        assert!((f[7] - rms).abs() < 0.02 * rms, "{} vs {rms}", f[7]);
    }

    /// Rotates a volume by +90 degrees about z: (x, y) -> (-y, x); dims [nx, ny, nz] become
    /// [ny, nx, nz].
    fn rot_z<T: Copy + Default>(v: &[T], [nx, ny, nz]: [usize; 3]) -> Vec<T> {
        let mut r = vec![T::default(); v.len()];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    r[(ny - 1 - y) + ny * (x + nx * z)] = v[x + nx * (y + ny * z)];
                }
            }
        }
        r
    }

    #[test]
    fn rotation_of_a_non_cubic_volume_is_equivariant() {
        // The common (largest-axis) scale keeps the map equivariant when the rotation swaps
        // axes of different lengths; a per-axis scale would not. Anisotropic spacing too: the
        // spacings travel with their axes.
        let (dims, sp) = ([48, 32, 24], [1.0, 1.5, 2.0]);
        // A tilted ellipsoid plus a ball off every axis: all three cross moments are non-zero.
        let (a, b) = (
            ellipsoid_mm(dims, sp, [5.0, 3.0, -4.0], [9.0, 5.0, 6.0], 0.6),
            ellipsoid_mm(dims, sp, [-12.0, -8.0, 8.0], [4.0; 3], 0.0),
        );
        let v: Vec<u8> = a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect();
        let f = features_of(&v, dims, sp, 255.0);
        let g = features_of(&rot_z(&v, dims), [dims[1], dims[0], dims[2]], [sp[1], sp[0], sp[2]], 255.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(g[0], f[0]) && close(g[7], f[7]));
        assert!(close(g[1], -f[2]) && close(g[2], f[1]) && close(g[3], f[3]), "{f:?} {g:?}");
        assert!(close(g[4], -f[4]) && close(g[5], -f[6]) && close(g[6], f[5]), "{f:?} {g:?}");
        assert!(
            f[4].abs() > 1e-3 && f[5].abs() > 1e-3 && f[6].abs() > 1e-3,
            "the test has signal: {f:?}"
        );
    }

    #[test]
    fn rotation_by_90_degrees_about_x_transforms_as_documented() {
        // (y, z) -> (-z, y), R = [[1,0,0],[0,0,-1],[0,1,0]]: c' = (cx, -cz, cy),
        // C'xy = -Cxz, C'xz = Cxy, C'yz = -Cyz.
        let n = 40;
        let v = lopsided(n);
        let mut r = vec![0u8; n * n * n];
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    r[x + n * ((n - 1 - z) + n * y)] = v[x + n * (y + n * z)];
                }
            }
        }
        let (f, g) = (features(&v, n), features(&r, n));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(g[0], f[0]) && close(g[7], f[7]));
        assert!(close(g[1], f[1]) && close(g[2], -f[3]) && close(g[3], f[2]), "{f:?} {g:?}");
        assert!(close(g[4], -f[5]) && close(g[5], f[4]) && close(g[6], -f[6]), "{f:?} {g:?}");
        assert!(f[1..7].iter().all(|x| x.abs() > 1e-3), "the test has signal: {f:?}");
    }

    #[test]
    fn voxel_types_agree() {
        let n = 24;
        let m = ellipsoid(n, [0.1, -0.2, 0.05], [0.5, 0.3, 0.4], 0.7);
        let want = features(&m, n);
        let u16s: Vec<u16> = m.iter().map(|&x| if x > 0 { 4000 } else { 0 }).collect();
        let i16s: Vec<i16> = m.iter().map(|&x| if x > 0 { 1000 } else { 0 }).collect();
        let f32s: Vec<f32> = m.iter().map(|&x| x as f32 / 255.0).collect();
        let f64s: Vec<f64> = m.iter().map(|&x| x as f64 / 255.0).collect();
        let all = [
            features_of(&u16s, [n; 3], [1.0; 3], 4000.0),
            features_of(&i16s, [n; 3], [1.0; 3], 1000.0),
            features_of(&f32s, [n; 3], [1.0; 3], 1.0),
            features_of(&f64s, [n; 3], [1.0; 3], 1.0),
        ];
        for g in all {
            for k in 0..8 {
                assert!((g[k] - want[k]).abs() < 1e-6, "component {k}: {} vs {}", g[k], want[k]);
            }
        }
    }

    #[test]
    fn intensity_scale_from_the_volume_max() {
        let n = 16;
        let m = ellipsoid(n, [0.0; 3], [0.5; 3], 0.0);
        let dim: Vec<u8> = m.iter().map(|&x| x / 255 * 200).collect();
        let view = VolumeView::new(&dim[..], [n; 3], [1.0; 3]).unwrap();
        let cfg = FeatureConfig::from_volume_max(&view).unwrap();
        assert_eq!(cfg.intensity_scale, 200.0);
        let g = scan_features(&view, &cfg).unwrap().coeffs();
        let f = features(&m, n);
        for k in 0..8 {
            assert!((g[k] - f[k]).abs() < 1e-6, "component {k}");
        }
        let signed = [3i16, -7, 2];
        let view = VolumeView::new(&signed[..], [3, 1, 1], [1.0; 3]).unwrap();
        assert_eq!(max_abs_intensity(&view), Ok(7.0));
        let zeros = [0u8; 4];
        let view = VolumeView::new(&zeros[..], [2, 2, 1], [1.0; 3]).unwrap();
        assert_eq!(FeatureConfig::from_volume_max(&view).unwrap().intensity_scale, 1.0);
        let nan = [1.0f32, f32::NAN];
        let view = VolumeView::new(&nan[..], [2, 1, 1], [1.0; 3]).unwrap();
        assert_eq!(
            FeatureConfig::from_volume_max(&view),
            Err(FeatureError::NonFiniteVoxel { index: 1 })
        );
    }

    #[test]
    fn more_bad_inputs() {
        let v = [1u8; 8];
        for s in [0.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            assert_eq!(
                VolumeView::new(&v[..], [2, 2, 2], [1.0, 1.0, s]).unwrap_err(),
                FeatureError::BadSpacing,
                "{s}"
            );
        }
        let view = VolumeView::new(&v[..], [2, 2, 2], [1.0; 3]).unwrap();
        for s in [f64::NAN, -1.0, f64::INFINITY, 1e-300, 1e300] {
            let cfg = FeatureConfig { intensity_scale: s };
            assert_eq!(scan_features(&view, &cfg), Err(FeatureError::BadConfig), "{s}");
        }
        // Finite voxels whose sums overflow f32: an error, not inf.
        let big = [3e38f32; 8];
        let view = VolumeView::new(&big[..], [2, 2, 2], [1.0; 3]).unwrap();
        assert_eq!(scan_features(&view, &FeatureConfig::default()), Err(FeatureError::Overflow));
        // An f64 voxel outside the f32 range.
        let huge = [0.0f64, 1e300];
        let view = VolumeView::new(&huge[..], [1, 2, 1], [1.0; 3]).unwrap();
        assert_eq!(
            scan_features(&view, &FeatureConfig::default()),
            Err(FeatureError::NonFiniteVoxel { index: 1 })
        );
        // The reported index is the flat index, also past the first row.
        let mut late = [0.0f32; 12];
        late[10] = f32::INFINITY;
        let view = VolumeView::new(&late[..], [2, 3, 2], [1.0; 3]).unwrap();
        assert_eq!(
            scan_features(&view, &FeatureConfig::default()),
            Err(FeatureError::NonFiniteVoxel { index: 10 })
        );
        // Signed intensities that cancel exactly: zero mass, zero moments, not NaN.
        let signed = [1.0f32, -1.0];
        let view = VolumeView::new(&signed[..], [2, 1, 1], [1.0; 3]).unwrap();
        assert_eq!(scan_features(&view, &FeatureConfig::default()), Ok(Multivector::zero()));
        // A single voxel: mean 1, centroid at the centre, no spread.
        let one = [255u8];
        let f = features_of(&one, [1, 1, 1], [0.7, 0.7, 0.7], 255.0);
        assert_eq!(f, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        for e in [
            FeatureError::BadDimensions,
            FeatureError::LengthMismatch { expected: 1, found: 2 },
            FeatureError::BadSpacing,
            FeatureError::NonFiniteVoxel { index: 3 },
            FeatureError::BadConfig,
            FeatureError::Overflow,
        ] {
            assert!(!std::format!("{e}").is_empty());
        }
    }
}
