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
    resample(v, axis, a.to_radians())
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

/// Trilinear resampling of the rotated volume on the input grid (physical coordinates, so
/// anisotropic spacing rotates correctly).
fn resample(v: &Volume, axis: Axis, theta: f64) -> Volume {
    let dims = v.dims;
    let s = v.spacing_mm;
    let half = [
        dims[0] as f64 * s[0] / 2.0,
        dims[1] as f64 * s[1] / 2.0,
        dims[2] as f64 * s[2] / 2.0,
    ];
    // The two axes of the rotation plane, in right-handed order (a -> b is the positive turn).
    let ax = axis.index();
    let (pa, pb) = ((ax + 1) % 3, (ax + 2) % 3);
    let (sin, cos) = theta.sin_cos();
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
                // Source point R^-1 p: rotate the plane coordinates by -theta.
                let mut q = p;
                q[pa] = cos * p[pa] + sin * p[pb];
                q[pb] = -sin * p[pa] + cos * p[pb];
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
