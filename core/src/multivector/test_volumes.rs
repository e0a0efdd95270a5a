//! Test volumes shared by the channel tests (the f64 channels, the principal axes and their
//! fixed-point versions): two phantoms and the quarter turns that rotate a cube exactly.

use std::vec;
use std::vec::Vec;

/// A cube of side n with a bright off-centre ellipsoid and a dimmer two-level shell around a
/// second point, intensities in [0, 255].
pub(crate) fn shells_phantom(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n * n * n];
    let h = n as f64 / 2.0;
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let p = [(x as f64 + 0.5 - h) / h, (y as f64 + 0.5 - h) / h, (z as f64 + 0.5 - h) / h];
                let a = (p[0] - 0.2) * (p[0] - 0.2) / 0.16 + (p[1] + 0.1) * (p[1] + 0.1) / 0.04 + p[2] * p[2] / 0.09;
                let b = (p[0] + 0.3) * (p[0] + 0.3) + (p[1] - 0.35) * (p[1] - 0.35) + (p[2] - 0.25) * (p[2] - 0.25);
                v[x + n * (y + n * z)] = if a <= 1.0 {
                    230
                } else if b <= 0.06 {
                    120
                } else if b <= 0.12 {
                    60
                } else {
                    0
                };
            }
        }
    }
    v
}

/// An ellipsoid (semi-axes 0.6, 0.35, 0.2 along a tilted frame) with a bright cap at one end of
/// its long axis, so the eigenvalues are distinct and every third moment is nonzero;
/// intensities in [0, 255].
pub(crate) fn lopsided(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n * n * n];
    let h = n as f64 / 2.0;
    let (ca, sa) = (libm::cos(0.5), libm::sin(0.5));
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let p = [(x as f64 + 0.5 - h) / h, (y as f64 + 0.5 - h) / h, (z as f64 + 0.5 - h) / h];
                // Rotate into the ellipsoid's frame (0.5 rad about z, then offset in z).
                let q = [ca * p[0] + sa * p[1], -sa * p[0] + ca * p[1], p[2] - 0.1];
                let e = q[0] * q[0] / 0.36 + q[1] * q[1] / 0.1225 + q[2] * q[2] / 0.04;
                let cap = (q[0] - 0.4) * (q[0] - 0.4) + q[1] * q[1] + (q[2] + 0.05) * (q[2] + 0.05) < 0.03;
                v[x + n * (y + n * z)] = if e <= 1.0 && cap {
                    250
                } else if e <= 1.0 {
                    110
                } else {
                    0
                };
            }
        }
    }
    v
}

/// The quarter turn about z on voxel indices, (x, y, z) -> (n-1-y, x, z): the normalised
/// coordinate (X, Y, Z) goes to (-Y, X, Z), the rotor exp(-pi/4 e12). With [`turn_x`] it
/// generates the 24 rotations of the cube.
pub(crate) fn turn_z(v: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; v.len()];
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                out[(n - 1 - y) + n * (x + n * z)] = v[x + n * (y + n * z)];
            }
        }
    }
    out
}

/// The quarter turn about x: (X, Y, Z) -> (X, -Z, Y).
pub(crate) fn turn_x(v: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; v.len()];
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                out[x + n * ((n - 1 - z) + n * y)] = v[x + n * (y + n * z)];
            }
        }
    }
    out
}
