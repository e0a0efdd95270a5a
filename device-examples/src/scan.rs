//! A phantom scan volume in flash and its 8 multivector features.
//!
//! The features come from `clifhe_core::multivector::features::scan_features`, as on the host:
//! mean intensity, intensity-weighted centroid, central second moments (xy, xz, yz) and RMS
//! radius, in basis order [1, e1, e2, e3, e12, e13, e23, e123].

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
                v[(z * DIM + y) * DIM + x] = if lesion { 250 } else if organ { 120 } else { 0 };
                x += 1;
            }
            y += 1;
        }
        z += 1;
    }
    v
}

/// The 8 features of the phantom, computed by core's `scan_features` (the one implementation the
/// host uses too). 1 mm isotropic voxels; intensities divided by 255. Returns zeros if the
/// volume were malformed, which cannot happen for the compile-time phantom.
pub fn features(vol: &[u8; VOXELS]) -> [f64; 8] {
    use clifhe_core::multivector::features::{scan_features, FeatureConfig, VolumeView};
    match VolumeView::new(&vol[..], [DIM; 3], [1.0; 3]) {
        Ok(view) => scan_features(&view, &FeatureConfig { intensity_scale: 255.0 }).map(|m| m.coeffs()).unwrap_or([0.0; 8]),
        Err(_) => [0.0; 8],
    }
}
