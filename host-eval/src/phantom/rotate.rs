//! Rotating a volume about its centre, for the rotation-invariance study (which scan features
//! and which predictions survive a rotated scan).
//!
//! Convention: a positive angle turns the *content* counter-clockwise when looking down the axis
//! towards the origin (right-handed): a quarter turn about z maps the content at +x to +y, about
//! x maps +y to +z, about y maps +z to +x. So `scan_features`' centroid c becomes R c.

use crate::data::Volume;

/// A rotation axis through the volume centre.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    X,
    Y,
    Z,
}

impl Axis {
    fn index(self) -> usize {
        match self {
            Axis::X => 0,
            Axis::Y => 1,
            Axis::Z => 2,
        }
    }
}

/// The volume rotated by `angle_deg` about `axis` through its centre.
///
/// Multiples of 90 degrees are exact: voxels are permuted (the two axes in the rotation plane
/// swap their sizes and spacings for a quarter turn, so a non-cubic volume keeps all content),
/// and four quarter turns give back the original bytes. Other angles resample with trilinear
/// interpolation onto the input's own grid; content rotated outside the grid is lost and what
/// rotates in from outside is 0 (air in the phantoms' window). A non-finite angle returns the
/// volume unchanged, as there is no rotation it could mean.
pub fn rotate_volume(v: &Volume, axis: Axis, angle_deg: f64) -> Volume {
    if !angle_deg.is_finite() {
        return v.clone();
    }
    let a = angle_deg.rem_euclid(360.0);
    if a % 90.0 == 0.0 {
        let mut out = v.clone();
        for _ in 0..(a / 90.0) as u32 {
            out = quarter_turn(&out, axis);
        }
        return out;
    }
    resample(v, &axis_matrix(axis, a.to_radians()))
}

/// One exact +90 degree turn: out(p') = in(R^-1 p') by index arithmetic.
fn quarter_turn(v: &Volume, axis: Axis) -> Volume {
    let [nx, ny, nz] = v.dims;
    // Output index (i, j, k) -> input index, and the output's dims.
    let (dims, spacing) = match axis {
        Axis::X => ([nx, nz, ny], [v.spacing_mm[0], v.spacing_mm[2], v.spacing_mm[1]]),
        Axis::Y => ([nz, ny, nx], [v.spacing_mm[2], v.spacing_mm[1], v.spacing_mm[0]]),
        Axis::Z => ([ny, nx, nz], [v.spacing_mm[1], v.spacing_mm[0], v.spacing_mm[2]]),
    };
    let src = |i: usize, j: usize, k: usize| -> usize {
        let (x, y, z) = match axis {
            // R: (x, y, z) -> (x, -z, y); R^-1 p' = (x', z', -y').
            Axis::X => (i, k, nz - 1 - j),
            // R: (x, y, z) -> (z, y, -x); R^-1 p' = (-z', y', x').
            Axis::Y => (nx - 1 - k, j, i),
            // R: (x, y, z) -> (-y, x, z); R^-1 p' = (y', -x', z').
            Axis::Z => (j, ny - 1 - i, k),
        };
        x + nx * (y + ny * z)
    };
    let mut data = Vec::with_capacity(v.data.len());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                data.push(v.data.get(src(i, j, k)).copied().unwrap_or(0.0));
            }
        }
    }
    Volume {
        dims,
        spacing_mm: spacing,
        data,
    }
}

/// The volume rotated by the unit quaternion `q = [w, x, y, z]` (normalised here) about its
/// centre, resampled once with trilinear interpolation onto its own grid, as
/// [`rotate_volume`] does for angles that are not quarter turns: a general element of SO(3)
/// in one interpolation (two axis rotations in a row would interpolate twice). A quaternion
/// with a non-finite or zero norm returns the volume unchanged.
pub fn rotate_volume_quaternion(v: &Volume, q: [f64; 4]) -> Volume {
    let norm = q.iter().map(|c| c * c).sum::<f64>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return v.clone();
    }
    let [w, x, y, z] = q.map(|c| c / norm);
    // The rotation matrix of q (content at p moves to R p).
    let r = [
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
        [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
        [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
    ];
    resample(v, &r)
}

/// The rotation by `theta` about `axis` as a matrix (content at p moves to R p; the two axes of
/// the rotation plane in right-handed order, a -> b the positive turn).
fn axis_matrix(axis: Axis, theta: f64) -> [[f64; 3]; 3] {
    let ax = axis.index();
    let (pa, pb) = ((ax + 1) % 3, (ax + 2) % 3);
    let (sin, cos) = theta.sin_cos();
    let mut r = [[0.0; 3]; 3];
    r[ax][ax] = 1.0;
    r[pa][pa] = cos;
    r[pa][pb] = -sin;
    r[pb][pa] = sin;
    r[pb][pb] = cos;
    r
}

/// Trilinear resampling of the volume rotated by `r` on the input grid (physical coordinates,
/// so anisotropic spacing rotates correctly): each output voxel reads the input at `R^T p`.
fn resample(v: &Volume, r: &[[f64; 3]; 3]) -> Volume {
    let dims = v.dims;
    let s = v.spacing_mm;
    let half = [
        dims[0] as f64 * s[0] / 2.0,
        dims[1] as f64 * s[1] / 2.0,
        dims[2] as f64 * s[2] / 2.0,
    ];
    let at = |x: isize, y: isize, z: isize| -> f64 {
        if x < 0 || y < 0 || z < 0 {
            return 0.0;
        }
        let (x, y, z) = (x as usize, y as usize, z as usize);
        if x >= dims[0] || y >= dims[1] || z >= dims[2] {
            return 0.0;
        }
        v.data.get(x + dims[0] * (y + dims[1] * z)).map_or(0.0, |&f| f64::from(f))
    };
    let mut data = Vec::with_capacity(v.data.len());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let idx = [i, j, k];
                let p: [f64; 3] = std::array::from_fn(|d| (idx[d] as f64 + 0.5) * s[d] - half[d]);
                // Source point R^-1 p = R^T p.
                let q: [f64; 3] = std::array::from_fn(|d| r[0][d] * p[0] + r[1][d] * p[1] + r[2][d] * p[2]);
                // Continuous source index.
                let f: [f64; 3] = std::array::from_fn(|d| (q[d] + half[d]) / s[d] - 0.5);
                let b: [f64; 3] = std::array::from_fn(|d| f[d].floor());
                let t: [f64; 3] = std::array::from_fn(|d| f[d] - b[d]);
                let (x0, y0, z0) = (b[0] as isize, b[1] as isize, b[2] as isize);
                let mut acc = 0.0;
                for (dz, wz) in [(0, 1.0 - t[2]), (1, t[2])] {
                    for (dy, wy) in [(0, 1.0 - t[1]), (1, t[1])] {
                        for (dx, wx) in [(0, 1.0 - t[0]), (1, t[0])] {
                            let w = wx * wy * wz;
                            if w != 0.0 {
                                acc += w * at(x0 + dx, y0 + dy, z0 + dz);
                            }
                        }
                    }
                }
                data.push(acc as f32);
            }
        }
    }
    Volume { dims, spacing_mm: s, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{generate, PhantomClass, PhantomConfig};

    fn max_diff(a: &Volume, b: &Volume) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The quaternion of a turn about an axis resamples like `rotate_volume` about that axis
    /// (up to the matrices' rounding), the identity keeps the volume, a quarter turn matches the
    /// exact one, and a degenerate quaternion changes nothing.
    #[test]
    fn quaternions_rotate_like_the_axis_turns() {
        let v = generate(&PhantomConfig::default(), PhantomClass::ALL[2], 3);
        let (s, c) = (20f64.to_radians() / 2.0).sin_cos();
        for (axis, q) in [
            (Axis::X, [c, s, 0.0, 0.0]),
            (Axis::Y, [c, 0.0, s, 0.0]),
            (Axis::Z, [c, 0.0, 0.0, s]),
        ] {
            let d = max_diff(&rotate_volume_quaternion(&v, q), &rotate_volume(&v, axis, 20.0));
            assert!(d < 1e-3, "{axis:?}: {d}");
        }
        assert!(max_diff(&rotate_volume_quaternion(&v, [2.0, 0.0, 0.0, 0.0]), &v) < 1e-3);
        // 90 degrees about z as a quaternion against the exact quarter turn
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let d = max_diff(&rotate_volume_quaternion(&v, [h, 0.0, 0.0, h]), &rotate_volume(&v, Axis::Z, 90.0));
        assert!(d < 1e-3, "quarter turn: {d}");
        for bad in [[0.0; 4], [f64::NAN, 0.0, 0.0, 1.0], [f64::INFINITY, 0.0, 0.0, 0.0]] {
            assert_eq!(rotate_volume_quaternion(&v, bad).data, v.data);
        }
    }
}
