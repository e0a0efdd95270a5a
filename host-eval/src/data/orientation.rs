//! One canonical orientation for every loaded volume: RAS+, reached by axis permutation and
//! flips only (no resampling), the way nibabel's `as_closest_canonical` does it.
//!
//! RAS+ (the NIfTI-1 world convention, nifti1.h "the x,y,z coordinates refer to ... +x =
//! Right +y = Anterior +z = Superior"; nibabel's "coordinate systems" docs): voxel axis 0 points
//! from the subject's left toward the subject's Right, axis 1 from posterior toward Anterior,
//! axis 2 from inferior toward Superior. So in a canonical [`Volume`], `x` grows toward the
//! subject's right, `y` toward the front, `z` toward the head.
//!
//! DICOM's patient coordinate system (PS3.3 C.7.6.2.1.1) is LPS+: +x toward the patient's Left,
//! +y toward Posterior, +z toward the head. A DICOM direction `(x, y, z)` is the RAS direction
//! `(-x, -y, z)`.
//!
//! The closest canonical orientation of an oblique volume follows nibabel's `io_orientation`:
//! the voxel-to-world direction matrix (columns normalised to unit length, so voxel sizes do not
//! matter) is replaced by the nearest orthogonal matrix (its polar factor, what nibabel gets from
//! an SVD), then, for voxel axes 0, 1, 2 in turn, the world axis with the largest absolute
//! component that no earlier voxel axis took is chosen, with the sign of that component. The
//! volume is then transposed and flipped so that voxel axis `i` becomes world axis `ornt[i].0`,
//! increasing in the positive world direction. An oblique volume is thus labelled with the
//! axis-aligned orientation it is closest to, and its voxels are not interpolated.
//!
//! Spacing follows the axes: after reorientation `spacing_mm[k]` is the spacing of whatever
//! voxel axis became world axis `k`.

use super::Volume;

/// For each stored voxel axis `i`: the canonical (RAS) axis it becomes and whether it runs
/// against that axis (so it is flipped).
pub type Ornt = [(usize, bool); 3];

/// The identity orientation: the stored axes are already R, A, S.
pub const IDENTITY: Ornt = [(0, false), (1, false), (2, false)];

fn det(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// Inverse transpose of a 3x3 matrix (None when singular).
fn inv_transpose(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let d = det(m);
    if !d.is_finite() || d.abs() < 1e-12 {
        return None;
    }
    // The cofactor matrix divided by the determinant is the inverse transpose.
    let mut c = [[0.0; 3]; 3];
    for (r, row) in c.iter_mut().enumerate() {
        for (k, v) in row.iter_mut().enumerate() {
            let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
            let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
            *v = (m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]) / d;
        }
    }
    Some(c)
}

/// The closest canonical orientation of a volume whose voxel axis `i` points along the RAS
/// world direction `dirs[i]` (any length). None when the directions are degenerate (a zero,
/// non-finite or coplanar set): the caller then keeps the stored axes, documented as such.
pub fn closest_canonical(dirs: [[f64; 3]; 3]) -> Option<Ornt> {
    // m[row = world axis][column = voxel axis], columns normalised.
    let mut m = [[0.0f64; 3]; 3];
    for (i, d) in dirs.iter().enumerate() {
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if !len.is_finite() || len < 1e-9 {
            return None;
        }
        for w in 0..3 {
            m[w][i] = d[w] / len;
        }
    }
    // Polar factor by Newton's iteration R <- (R + R^-T) / 2, which converges (quadratically)
    // to the orthogonal factor U V^T of the SVD, the matrix nibabel's io_orientation uses.
    for _ in 0..100 {
        let it = inv_transpose(&m)?;
        let mut next = m;
        let mut change = 0.0f64;
        for w in 0..3 {
            for i in 0..3 {
                next[w][i] = 0.5 * (m[w][i] + it[w][i]);
                change = change.max((next[w][i] - m[w][i]).abs());
            }
        }
        m = next;
        if change < 1e-15 {
            break;
        }
    }
    let mut ornt = IDENTITY;
    for (i, o) in ornt.iter_mut().enumerate() {
        let (w, v) = (0..3)
            .map(|w| (w, m[w][i]))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap_or((i, 1.0));
        if v == 0.0 || !v.is_finite() {
            return None;
        }
        *o = (w, v < 0.0);
        // nibabel zeroes the chosen world row so later voxel axes cannot take it.
        m[w] = [0.0; 3];
    }
    Some(ornt)
}

/// RAS directions of DICOM voxel axes: columns (x) along the first ImageOrientationPatient
/// triplet, rows (y) along the second, slices (z) along their cross product (PS3.3 C.7.6.2.1.1),
/// each converted from LPS to RAS.
pub fn dicom_directions(iop: [f64; 6]) -> [[f64; 3]; 3] {
    let [r0, r1, r2, c0, c1, c2] = iop;
    let n = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
    let ras = |v: [f64; 3]| [-v[0], -v[1], v[2]];
    [ras([r0, r1, r2]), ras([c0, c1, c2]), ras(n)]
}

/// `v` with voxel axis `i` moved to axis `ornt[i].0` and reversed when `ornt[i].1`; spacing
/// moves with its axis. A permutation that is not one (a repeated target axis) leaves `v` as is.
pub fn reorient(v: Volume, ornt: Ornt) -> Volume {
    let mut seen = [false; 3];
    for &(k, _) in &ornt {
        if k > 2 || seen[k] {
            return v;
        }
        seen[k] = true;
    }
    if ornt == IDENTITY || v.data.len() != v.voxel_count() {
        return v;
    }
    let mut dims = [0usize; 3];
    let mut spacing = [0.0f64; 3];
    for (i, &(k, _)) in ornt.iter().enumerate() {
        dims[k] = v.dims[i];
        spacing[k] = v.spacing_mm[i];
    }
    let stride = [1, dims[0], dims[0] * dims[1]];
    // For stored axis i: where index 0 lands in the new array and the signed step per index.
    let mut start = 0isize;
    let mut step = [0isize; 3];
    for (i, &(k, flip)) in ornt.iter().enumerate() {
        let s = stride[k] as isize;
        if flip {
            start += (v.dims[i] as isize - 1) * s;
            step[i] = -s;
        } else {
            step[i] = s;
        }
    }
    let mut data = vec![0.0f32; v.data.len()];
    let mut src = v.data.iter();
    let mut zpos = start;
    for _ in 0..v.dims[2] {
        let mut ypos = zpos;
        for _ in 0..v.dims[1] {
            let mut xpos = ypos;
            for _ in 0..v.dims[0] {
                if let (Some(&val), Some(dst)) = (src.next(), data.get_mut(xpos as usize)) {
                    *dst = val;
                }
                xpos += step[0];
            }
            ypos += step[1];
        }
        zpos += step[2];
    }
    Volume {
        dims,
        spacing_mm: spacing,
        data,
    }
}

/// [`reorient`] to the closest canonical orientation of `dirs`, or `v` as stored when the
/// directions are unknown or degenerate.
pub fn to_canonical(v: Volume, dirs: Option<[[f64; 3]; 3]>) -> Volume {
    match dirs.and_then(closest_canonical) {
        Some(o) => reorient(v, o),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_and_flips() {
        // LPS identity (a plain axial DICOM): x and y flip, z stays.
        let o = closest_canonical(dicom_directions([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
        assert_eq!(o, Some([(0, true), (1, true), (2, false)]));
        // Voxel axes S, R, A.
        let o = closest_canonical([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        assert_eq!(o, Some([(2, false), (0, false), (1, false)]));
        // Slightly oblique: closest axes.
        let o = closest_canonical([[0.99, 0.1, 0.0], [-0.1, 0.99, 0.0], [0.0, 0.0, -1.0]]);
        assert_eq!(o, Some([(0, false), (1, false), (2, true)]));
        assert_eq!(closest_canonical([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), None);
        let v = Volume {
            dims: [2, 3, 1],
            spacing_mm: [1.0, 2.0, 3.0],
            data: (0..6).map(|x| x as f32).collect(),
        };
        // Swap x and y, flip the new y (old x).
        let r = reorient(v.clone(), [(1, true), (0, false), (2, false)]);
        assert_eq!(r.dims, [3, 2, 1]);
        assert_eq!(r.spacing_mm, [2.0, 1.0, 3.0]);
        for x in 0..2 {
            for y in 0..3 {
                assert_eq!(r.get(y, 1 - x, 0), v.get(x, y, 0));
            }
        }
    }
}
