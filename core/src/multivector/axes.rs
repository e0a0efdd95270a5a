//! The second moments of a scan as multivectors that rotate with it: the principal axes.
//!
//! A covariance matrix C does not transform like any single grade (C -> R C R^T), but its
//! eigen-decomposition does: for C = sum_k lambda_k u_k u_k^T, the three vectors
//! `a_k = s_k sqrt(lambda_k) u_k` rotate as vectors, and `|a_k|^2 = lambda_k` are invariant. The
//! eigenvector's sign is not defined by C; it is fixed by the third moment along the axis,
//! `s_k = sign(sum I ((r - c) . u_k)^3)`, which flips with u_k and so points the axis at the
//! longer tail of the distribution along it (the direction of positive skewness).
//! This is the "principal axes scaled by the square roots of their eigenvalues, with the sign
//! fixed by the third moment" encoding of issue 13.
//!
//! Degenerate cases, where the channels are not a function of the scan's orientation alone:
//! - **equal eigenvalues** (a sphere, a cube, any shape with a symmetry axis): the eigenvectors
//!   of a repeated eigenvalue are any orthonormal basis of its eigenspace, so the two (or
//!   three) axes there are arbitrary up to a rotation within it. Their lengths stay invariant;
//!   products between them and other vectors do not. Measured scans are never exactly
//!   degenerate, but nearly equal eigenvalues make the axes sensitive to noise.
//! - **zero third moment** along an axis (a shape symmetric about the plane through the
//!   centroid normal to it): the sign is taken positive, and a perturbation can flip it.
//!
//! Channels are ordered by decreasing eigenvalue (ties by the solver's column order).
//!
//! Coordinates and intensities are those of [`super::features`]: the origin at the volume
//! centre, one isotropic factor, intensities divided by the intensity scale.

use super::features::{FeatureConfig, FeatureError, VolumeView, Voxel};
use super::Multivector;

/// Number of principal-axis channels.
pub const AXES: usize = 3;

/// Eigenvalues and eigenvectors (columns of the returned matrix) of a symmetric 3x3 matrix by
/// cyclic Jacobi rotations (Golub and Van Loan, "Matrix Computations", 4th ed., section 8.5):
/// each rotation zeroes one off-diagonal pair; the sweep stops once the off-diagonal part is
/// below 1e-15 of the Frobenius norm (quadratic convergence: a handful of sweeps).
#[must_use]
#[allow(clippy::needless_range_loop)] // matrix indices read as the algebra does
pub fn symmetric_eigen3(m: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut a = m;
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let frob: f64 = a.iter().flatten().map(|x| x * x).sum();
    for _ in 0..32 {
        let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        if off <= 1e-30 * frob || off == 0.0 {
            break;
        }
        for (p, q) in [(0usize, 1usize), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            // The rotation angle that zeroes a[p][q] (the smaller of the two roots).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = if theta >= 0.0 {
                1.0 / (theta + libm::sqrt(theta * theta + 1.0))
            } else {
                -1.0 / (-theta + libm::sqrt(theta * theta + 1.0))
            };
            let c = 1.0 / libm::sqrt(t * t + 1.0);
            let s = t * c;
            // A <- J^T A J with J the rotation in the (p, q) plane.
            for row in &mut a {
                let (akp, akq) = (row[p], row[q]);
                row[p] = c * akp - s * akq;
                row[q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in &mut v {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

/// The three principal-axis channels of a volume: `out[k] = s_k sqrt(lambda_k) u_k` as a pure
/// vector, by decreasing eigenvalue `lambda_k` of the intensity-weighted covariance about the
/// centroid. An empty volume (zero mass) gives three zero channels.
///
/// # Errors
///
/// [`FeatureError::BadConfig`] for an unusable intensity scale or `out` shorter than
/// [`AXES`], [`FeatureError::NonFiniteVoxel`] for a NaN or infinite voxel.
#[allow(clippy::needless_range_loop)] // matrix indices read as the algebra does
pub fn axis_channels<T: Voxel>(v: &VolumeView<'_, T>, cfg: &FeatureConfig, out: &mut [Multivector]) -> Result<(), FeatureError> {
    let out = out.get_mut(..AXES).ok_or(FeatureError::BadConfig)?;
    if !(cfg.intensity_scale.is_finite() && cfg.intensity_scale > 0.0) {
        return Err(FeatureError::BadConfig);
    }
    let position = |index: usize| v.normalised_position(index);
    let inv_scale = 1.0 / cfg.intensity_scale;
    // Pass 1: mass and centroid.
    let (mass, first) = v.mass_and_first_moments(inv_scale)?;
    if mass == 0.0 {
        out.iter_mut().for_each(|o| *o = Multivector::zero());
        return Ok(());
    }
    let c = first.map(|s| s / mass);
    // Pass 2: the covariance about the centroid (centred sums: no cancellation).
    let mut cov = [[0.0f64; 3]; 3];
    for (index, voxel) in v.data().iter().enumerate() {
        let w = voxel.to_f64() * inv_scale;
        let r = position(index);
        let d = [r[0] - c[0], r[1] - c[1], r[2] - c[2]];
        for a in 0..3 {
            for b in a..3 {
                cov[a][b] += w * d[a] * d[b];
            }
        }
    }
    for a in 0..3 {
        for b in a..3 {
            cov[a][b] /= mass;
            cov[b][a] = cov[a][b];
        }
    }
    let (values, vectors) = symmetric_eigen3(cov);
    let mut order = [0usize, 1, 2];
    order.sort_unstable_by(|&i, &j| values[j].total_cmp(&values[i]).then(i.cmp(&j)));
    let axes = order.map(|k| [vectors[0][k], vectors[1][k], vectors[2][k]]);
    // Pass 3: the third moment along each axis fixes its sign.
    let mut third = [0.0f64; 3];
    for (index, voxel) in v.data().iter().enumerate() {
        let w = voxel.to_f64() * inv_scale;
        let r = position(index);
        let d = [r[0] - c[0], r[1] - c[1], r[2] - c[2]];
        for (t, u) in third.iter_mut().zip(&axes) {
            let p = d[0] * u[0] + d[1] * u[1] + d[2] * u[2];
            *t += w * p * p * p;
        }
    }
    for ((o, &k), (u, t)) in out.iter_mut().zip(&order).zip(axes.iter().zip(third)) {
        let length = libm::sqrt(values[k].max(0.0));
        let signed = if t < 0.0 { -length } else { length };
        *o = Multivector::new([0.0, signed * u[0], signed * u[1], signed * u[2], 0.0, 0.0, 0.0, 0.0]);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::super::test_volumes::{lopsided, turn_x, turn_z};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn axes_of(v: &[u8], n: usize) -> Vec<Multivector> {
        let view = VolumeView::new(v, [n; 3], [1.0; 3]).unwrap();
        let mut out = vec![Multivector::zero(); AXES];
        axis_channels(&view, &FeatureConfig { intensity_scale: 255.0 }, &mut out).unwrap();
        out
    }

    fn sandwich(r: &Multivector, x: &Multivector) -> Multivector {
        r.gp(x).gp(&r.reverse())
    }

    fn assert_close(a: &[Multivector], b: &[Multivector], tol: f64) {
        for (x, y) in a.iter().zip(b) {
            for (u, w) in x.coeffs().iter().zip(y.coeffs()) {
                assert!((u - w).abs() <= tol, "{:?} vs {:?}", x.coeffs(), y.coeffs());
            }
        }
    }

    #[test]
    fn eigen_decomposition_reconstructs_the_matrix() {
        let m = [[2.0, -0.7, 0.3], [-0.7, 1.1, 0.45], [0.3, 0.45, 0.6]];
        let (l, v) = symmetric_eigen3(m);
        for i in 0..3 {
            for j in 0..3 {
                let back: f64 = (0..3).map(|k| v[i][k] * l[k] * v[j][k]).sum();
                assert!((back - m[i][j]).abs() < 1e-13, "{i} {j}: {back} vs {}", m[i][j]);
                let ortho: f64 = (0..3).map(|k| v[k][i] * v[k][j]).sum();
                assert!((ortho - f64::from(u8::from(i == j))).abs() < 1e-13);
            }
        }
        // A diagonal matrix is returned as is.
        assert_eq!(
            symmetric_eigen3([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]).0,
            [3.0, 1.0, 2.0]
        );
    }

    #[test]
    fn quarter_turns_rotate_the_axes_as_vectors() {
        let n = 24;
        let v = lopsided(n);
        let a = axes_of(&v, n);
        // Decreasing lengths, all nonzero.
        let len: Vec<f64> = a.iter().map(Multivector::norm).collect();
        assert!(len[0] > len[1] && len[1] > len[2] && len[2] > 0.01, "{len:?}");
        let s = core::f64::consts::FRAC_1_SQRT_2;
        let rz = Multivector::new([s, 0.0, 0.0, 0.0, -s, 0.0, 0.0, 0.0]);
        let rx = Multivector::new([s, 0.0, 0.0, 0.0, 0.0, 0.0, -s, 0.0]);
        let want_z: Vec<Multivector> = a.iter().map(|x| sandwich(&rz, x)).collect();
        assert_close(&axes_of(&turn_z(&v, n), n), &want_z, 1e-12);
        let want_x: Vec<Multivector> = a.iter().map(|x| sandwich(&rx, x)).collect();
        assert_close(&axes_of(&turn_x(&v, n), n), &want_x, 1e-12);
        // Two turns about different axes: the composite rotor.
        let want_xz: Vec<Multivector> = a.iter().map(|x| sandwich(&rx.gp(&rz), x)).collect();
        assert_close(&axes_of(&turn_x(&turn_z(&v, n), n), n), &want_xz, 1e-12);
    }

    #[test]
    fn the_sign_follows_the_third_moment_and_empty_volumes_are_zero() {
        let n = 24;
        let v = lopsided(n);
        let a = axes_of(&v, n);
        // The bright cap at +x' of the ellipsoid frame (x' = cos 0.5 x + sin 0.5 y) pulls the
        // centroid towards it and leaves the longer tail at -x': the skewness along the long
        // axis is negative there, so the axis points away from the cap.
        let u = a[0].coeffs();
        assert!(u[1] * libm::cos(0.5) + u[2] * libm::sin(0.5) < -0.2, "{u:?}");
        // Mirroring x flips the heavy end, and the long axis flips with it.
        let mut mirrored = vec![0u8; v.len()];
        for (i, &x) in v.iter().enumerate() {
            let (px, rest) = (i % n, i / n);
            mirrored[(n - 1 - px) + n * rest] = x;
        }
        let m = axes_of(&mirrored, n)[0].coeffs();
        assert!((m[1] + u[1]).abs() < 1e-12 && (m[2] - u[2]).abs() < 1e-12, "{m:?} vs {u:?}");
        assert_eq!(axes_of(&vec![0u8; 8 * 8 * 8], 8), vec![Multivector::zero(); 3]);
        let view = VolumeView::new(&v[..], [n; 3], [1.0; 3]).unwrap();
        let mut short = [Multivector::zero(); 2];
        assert!(axis_channels(&view, &FeatureConfig { intensity_scale: 1.0 }, &mut short).is_err());
        let mut out = [Multivector::zero(); 3];
        assert!(axis_channels(&view, &FeatureConfig { intensity_scale: 0.0 }, &mut out).is_err());
        let nan = [f32::NAN; 8];
        let nv = VolumeView::new(&nan[..], [2; 3], [1.0; 3]).unwrap();
        assert!(axis_channels(&nv, &FeatureConfig::default(), &mut out).is_err());
    }
}
