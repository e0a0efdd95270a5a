//! A phantom scan volume in flash and its 8 multivector features.
//!
//! The features are the host's (`clifhe_core::multivector::features`: mean intensity,
//! intensity-weighted centroid, central second moments (xy, xz, yz) and RMS radius, in basis
//! order [1, e1, e2, e3, e12, e13, e23, e123]), computed by the constant-time fixed-point
//! `fixed_features::scan_features_fixed`: exact integer sums, no floating point, no division
//! instruction, no branch on a voxel. They come out with 32 fractional bits.

use crate::device::{DeviceError, FixedGeometry};
use clifhe_core::multivector::fixed_features::scan_features_fixed;

/// Edge of the phantom cube (voxels).
pub const DIM: usize = 16;
/// Voxels of the phantom.
pub const VOXELS: usize = DIM * DIM * DIM;

/// Deterministic phantom: a tilted ellipsoidal organ (intensity 120) with a bright off-centre
/// lesion (intensity 250), 8-bit voxels, x fastest. Built at compile time into flash.
pub static PHANTOM: [u8; VOXELS] = phantom();

const fn phantom() -> [u8; VOXELS] {
    let mut v = [0u8; VOXELS];
    let c = (DIM as i32 - 1) * 5; // centre at 7.5 voxels, in tenths of a voxel
    let mut z = 0;
    while z < DIM {
        let mut y = 0;
        while y < DIM {
            let mut x = 0;
            while x < DIM {
                // Coordinates in tenths of a voxel relative to the centre; the organ is tilted
                // in the x-y plane (u = x + y/2) so the xy moment is non-zero.
                let (dx, dy, dz) = (x as i32 * 10 - c, y as i32 * 10 - c, z as i32 * 10 - c);
                let u = dx + dy / 2;
                let organ = u * u * 4 + dy * dy * 9 + dz * dz * 16 <= 36 * 60 * 60;
                let (lx, ly, lz) = (dx - 25, dy + 15, dz - 10);
                let lesion = lx * lx + ly * ly + lz * lz <= 20 * 20;
                v[(z * DIM + y) * DIM + x] = if lesion {
                    250
                } else if organ {
                    120
                } else {
                    0
                };
                x += 1;
            }
            y += 1;
        }
        z += 1;
    }
    v
}

/// The public geometry of a cube of `dim`^3 voxels of 1 mm with 8-bit intensities divided by
/// 255. Computed once at boot (floating point on public data only).
pub fn geometry(dim: usize) -> Result<FixedGeometry, DeviceError> {
    Ok(FixedGeometry::new([dim; 3], [1.0; 3], 255)?)
}

/// The 8 fixed-point features of a volume (core's constant-time `scan_features_fixed`, the
/// computation `device::encrypt_volume_pk` runs).
pub fn features(vol: &[u8], geom: &FixedGeometry) -> Result<[i64; 8], DeviceError> {
    Ok(scan_features_fixed(vol, geom)?)
}

/// Edge of the CT-like phantom cube (voxels), the host's built-in phantom size.
pub const CT_DIM: usize = 32;
/// Voxels of the CT-like phantom.
pub const CT_VOXELS: usize = CT_DIM * CT_DIM * CT_DIM;

/// A CT-like phantom in the style of the host's built-in dataset (`host_eval::phantom`, without
/// its noise, texture and partial-volume edges): 32^3 voxels of a soft-tissue CT window
/// (level 40 HU, width 400 HU) stored as round(255 x windowed), so that the features (intensity
/// scale 255) lands in the range the demo model was trained on. Body ellipsoid (semi-axes 0.92 x
/// 0.78 x 0.95 of the half field of view) with a 0.11 fat layer (windowed 0.15), soft tissue
/// (0.51), an organ (semi-axes 0.55 x 0.45 x 0.50, yawed 25 degrees, 0.56) and, with
/// `with_lesion`, an eccentric enhancing lesion of radius 0.35 clipped to the organ (0.78).
/// Built at compile time into flash (32 KiB each).
pub static CT_PHANTOM_LESION: [u8; CT_VOXELS] = ct_phantom(true);
/// The same patient without the lesion.
pub static CT_PHANTOM_HEALTHY: [u8; CT_VOXELS] = ct_phantom(false);

/// Whether `p` (units of 1/64000 of the half field of view) lies in the axis-aligned ellipsoid
/// with semi-axes `semi` (thousandths of the half field of view), in exact integer arithmetic.
const fn in_ellipsoid(p: [i128; 3], semi: [i128; 3]) -> bool {
    let a = [
        semi[0] * 64 * semi[0] * 64,
        semi[1] * 64 * semi[1] * 64,
        semi[2] * 64 * semi[2] * 64,
    ];
    p[0] * p[0] * a[1] * a[2] + p[1] * p[1] * a[0] * a[2] + p[2] * p[2] * a[0] * a[1] <= a[0] * a[1] * a[2]
}

const fn ct_phantom(with_lesion: bool) -> [u8; CT_VOXELS] {
    // Windowed intensities x 255: fat (-100 HU) 0.15, soft tissue (45 HU) 0.51, organ (65 HU)
    // 0.56, enhancing lesion (150 HU) 0.78.
    const FAT: u8 = 38;
    const SOFT: u8 = 131;
    const ORGAN: u8 = 143;
    const LESION: u8 = 198;
    // Organ centre and yaw (cos, sin of 25 degrees, in thousandths); lesion centre and radius.
    const ORGAN_C: [i128; 3] = [30 * 64, -20 * 64, 10 * 64];
    const COS: i128 = 906;
    const SIN: i128 = 423;
    const LESION_C: [i128; 3] = [300 * 64, 80 * 64, 100 * 64];
    const LESION_R: i128 = 350 * 64;
    let mut v = [0u8; CT_VOXELS];
    let mut z = 0;
    while z < CT_DIM {
        let mut y = 0;
        while y < CT_DIM {
            let mut x = 0;
            while x < CT_DIM {
                // Voxel centre in units of 1/64000 of the half field of view: (2i - 31)/32.
                let p = [
                    (2 * x as i128 - 31) * 2000,
                    (2 * y as i128 - 31) * 2000,
                    (2 * z as i128 - 31) * 2000,
                ];
                let mut val = 0u8;
                if in_ellipsoid(p, [920, 780, 950]) {
                    val = FAT;
                    if in_ellipsoid(p, [810, 670, 840]) {
                        val = SOFT;
                        let d = [p[0] - ORGAN_C[0], p[1] - ORGAN_C[1], p[2] - ORGAN_C[2]];
                        let r = [(COS * d[0] + SIN * d[1]) / 1000, (COS * d[1] - SIN * d[0]) / 1000, d[2]];
                        if in_ellipsoid(r, [550, 450, 500]) {
                            val = ORGAN;
                            let l = [p[0] - LESION_C[0], p[1] - LESION_C[1], p[2] - LESION_C[2]];
                            if with_lesion && l[0] * l[0] + l[1] * l[1] + l[2] * l[2] <= LESION_R * LESION_R {
                                val = LESION;
                            }
                        }
                    }
                }
                v[(z * CT_DIM + y) * CT_DIM + x] = val;
                x += 1;
            }
            y += 1;
        }
        z += 1;
    }
    v
}
