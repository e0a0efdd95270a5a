//! The interior depth channel ([`crate::multivector::depth`]) of an integer volume in fixed
//! point and constant time: what the device computes beside the shells and the axes.
//!
//! The squared depths come from the same integer code as the f64 channel
//! ([`squared_depths`]: minima by masks, addresses from the indices alone), with the object
//! mask `v >= lo` taken from sign bits. The sums are exact integers in the doubled offsets `t`
//! (as the shells): the object's voxel count, `sum d^2` (below 2^33 for at most 2^27 voxels)
//! and `sum d^2 t_a` (below 2^45). The rms depth is one [`ct_isqrt`] of `sum d^2 / M` (64
//! fractional bits) times the voxel step; the centroid offset is the shells' finish. Nothing
//! allocates: the caller owns the byte per voxel and the line buffer
//! ([`crate::multivector::depth::depth_scratch_len`]).

use super::{accumulate, checked_volume, div_round, is_zero, mul_round, nonzero_den, FixedShells, FRAC_BITS, MU_BITS};
use crate::multivector::depth::{squared_depths, OBJECT_THRESHOLD};
use crate::multivector::features::FeatureError;
use crate::multivector::fixed_features::{ct_div, ct_isqrt, FixedGeometry, IntVoxel, H_BITS};

/// The object threshold as an integer voxel value, computed once (boot, public data) for one
/// intensity scale: voxel `v` belongs to the object exactly when the f64 channel says so,
/// `v as f64 * (1 / scale) >= OBJECT_THRESHOLD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedDepth {
    scale: u32,
    /// The object is `v >= lo` (never, for `lo` = 2^16).
    lo: i32,
}

impl FixedDepth {
    /// The threshold for voxels divided by `intensity_scale` (the scale of the
    /// [`FixedGeometry`] the channel is computed with).
    ///
    /// # Errors
    ///
    /// [`FeatureError::BadConfig`] for a zero scale.
    pub fn new(intensity_scale: u32) -> Result<Self, FeatureError> {
        if intensity_scale == 0 {
            return Err(FeatureError::BadConfig);
        }
        let inv_scale = 1.0 / f64::from(intensity_scale);
        let lo = super::first_where(|v| f64::from(v) * inv_scale >= OBJECT_THRESHOLD);
        Ok(Self {
            scale: intensity_scale,
            lo,
        })
    }

    /// The smallest voxel value of the object (2^16: no value is).
    #[must_use]
    pub fn threshold(&self) -> u32 {
        self.lo as u32
    }
}

/// The depth channel of an integer volume (`x` fastest, shape from `geom`) into `out`, with 32
/// fractional bits in basis order; `depths` and `line` are the scratch of
/// [`crate::multivector::depth::depth_scratch_len`] (on return `depths` holds the clamped
/// squared depths).
///
/// Constant time in the voxel values: every loop bound, memory access and operation depends on
/// the shape and the threshold alone.
///
/// # Errors
///
/// [`FeatureError::AnisotropicSpacing`] for a grid that is not isotropic, [`FeatureError::BadConfig`]
/// for a threshold made for another intensity scale than `geom`'s,
/// [`FeatureError::BadDimensions`] above [`super::MAX_CHANNEL_VOXELS`] voxels,
/// [`FeatureError::LengthMismatch`] for a volume or scratch of the wrong length.
pub fn depth_channel_fixed<T: IntVoxel>(
    data: &[T],
    geom: &FixedGeometry,
    depth: &FixedDepth,
    depths: &mut [u8],
    line: &mut [u16],
    out: &mut [i64; 8],
) -> Result<(), FeatureError> {
    let h = geom.factors();
    if h[0] != h[1] || h[1] != h[2] {
        return Err(FeatureError::AnisotropicSpacing);
    }
    checked_volume(data.len(), geom, Some(depth.scale))?;
    let dims = geom.dims();
    // The global intensity-weighted centroid, as the shells have it.
    let global_mean = accumulate(data, dims, &FixedShells::NONE, false).mean();
    let lo = depth.lo;
    // v >= lo  <=>  lo - 1 - v < 0: the sign bit (both below 2^17).
    squared_depths(dims, |i| (((lo - 1 - data[i].value() as i32) >> 31) & 1) as u32, depths, line)?;
    // Exact sums over the squared depths (zero outside the object), x fastest.
    let [nx, ny, nz] = dims;
    let start = |n: usize| 1 - n as i64;
    let (mut count, mut sum, mut first) = (0i64, 0i64, [0i64; 3]);
    let mut at = 0usize;
    let mut tz = start(nz);
    for _ in 0..nz {
        let mut ty = start(ny);
        for _ in 0..ny {
            let (mut row, mut row_x) = (0i64, 0i64);
            let mut tx = start(nx);
            for &d in &depths[at..at + nx] {
                let d = i64::from(d);
                // An object voxel has depth at least 1: d > 0 <=> -d < 0.
                count += (-d >> 63) & 1;
                row += d;
                row_x += d * tx;
                tx += 2;
            }
            at += nx;
            sum += row;
            first[0] += row_x;
            first[1] += row * ty;
            first[2] += row * tz;
            ty += 2;
        }
        tz += 2;
    }
    let keep = !is_zero(count);
    let mut c = [0i128; 8];
    // sqrt(sum / count) with 32 fractional bits (sum / count with 64), times the step 2 h.
    let mean_square = ct_div((sum as u128) << (2 * FRAC_BITS), nonzero_den(count));
    let rms_steps = i128::from(ct_isqrt(mean_square));
    c[0] = mul_round(rms_steps, 2 * i128::from(h[0]), H_BITS);
    let weight = nonzero_den(sum);
    for a in 0..3 {
        let mean = div_round(i128::from(first[a]) << MU_BITS, weight);
        c[1 + a] = mul_round(mean - global_mean[a], i128::from(h[a]), MU_BITS + H_BITS - FRAC_BITS);
    }
    // |r| <= 1 and the rms depth is at most 8 steps of at most 2: every value fits i64.
    *out = c.map(|v| (v as i64) & keep);
    Ok(())
}

#[allow(clippy::unwrap_used, clippy::cast_precision_loss)]
#[cfg(test)]
mod tests;
