//! Trilinear resampling to an isotropic grid, one axis at a time (trilinear interpolation is
//! the product of three linear ones, so three 1D passes give exactly the same values as the 3D
//! formula, at a third of the arithmetic per output voxel).
//!
//! Geometry: source voxel j along an axis of spacing s has its centre at (j + 1/2) s; the new
//! grid of n' = max(1, round(n s / mm)) voxels of size `mm` is centred on the same midpoint
//! n s / 2, so the volume centre (the features' origin) does not move. A new centre that falls
//! outside the first or last source centre takes the edge value (no extrapolation).

use super::PreprocessError;

/// For each output index along one axis: the two source indices and the weight of the second.
fn taps(n: usize, spacing: f64, mm: f64, n_out: usize) -> Vec<(usize, usize, f32)> {
    let mid = n as f64 * spacing / 2.0;
    let start = mid - n_out as f64 * mm / 2.0;
    (0..n_out)
        .map(|i| {
            let p = start + (i as f64 + 0.5) * mm;
            // Continuous source index of physical position p.
            let u = (p / spacing - 0.5).clamp(0.0, (n - 1) as f64);
            let j0 = u.floor() as usize;
            let j1 = (j0 + 1).min(n - 1);
            (j0, j1, (u - j0 as f64) as f32)
        })
        .collect()
}

/// Resamples along `axis` (0 = x): `dims` in, the new length `n_out` along that axis.
fn pass(src: &[f32], dims: [usize; 3], axis: usize, taps: &[(usize, usize, f32)]) -> Vec<f32> {
    let mut out_dims = dims;
    out_dims[axis] = taps.len();
    let stride = match axis {
        0 => 1,
        1 => dims[0],
        _ => dims[0] * dims[1],
    };
    let mut out = Vec::with_capacity(out_dims.iter().product());
    for z in 0..out_dims[2] {
        for y in 0..out_dims[1] {
            for x in 0..out_dims[0] {
                let o = [x, y, z];
                let mut base = [x, y, z];
                base[axis] = 0;
                let b = base[0] + dims[0] * (base[1] + dims[1] * base[2]);
                let (j0, j1, w) = taps[o[axis]];
                let a = src[b + j0 * stride];
                let c = src[b + j1 * stride];
                out.push(a + w * (c - a));
            }
        }
    }
    out
}

/// `data` (dims, spacing) resampled to voxels of `mm` on every axis.
pub(super) fn isotropic(
    data: &[f32],
    dims: [usize; 3],
    spacing: [f64; 3],
    mm: f64,
    max_voxels: usize,
) -> Result<(Vec<f32>, [usize; 3]), PreprocessError> {
    let mut n_out = [0usize; 3];
    let mut total: u128 = 1;
    for a in 0..3 {
        let n = (dims[a] as f64 * spacing[a] / mm).round().max(1.0);
        if !(n.is_finite() && n <= max_voxels as f64) {
            return Err(PreprocessError::TooLarge { voxels: u128::MAX });
        }
        n_out[a] = n as usize;
        total = total.saturating_mul(n_out[a] as u128);
    }
    if total > max_voxels as u128 {
        return Err(PreprocessError::TooLarge { voxels: total });
    }
    let mut cur = data.to_vec();
    let mut cur_dims = dims;
    // Shrinking axes first keeps the intermediate volumes small.
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| (n_out[a] as f64 / dims[a] as f64).total_cmp(&(n_out[b] as f64 / dims[b] as f64)));
    for axis in order {
        if n_out[axis] == dims[axis] && (spacing[axis] - mm).abs() <= f64::EPSILON * mm {
            continue;
        }
        let t = taps(dims[axis], spacing[axis], mm, n_out[axis]);
        cur = pass(&cur, cur_dims, axis, &t);
        cur_dims[axis] = n_out[axis];
    }
    Ok((cur, cur_dims))
}
