//! A phantom scan volume in flash and its 8 multivector features.
//!
//! STAND-IN: `clifhe_core::multivector` (Cl(3,0) algebra and `scan_features`) has not landed in
//! core yet. Until it does, [`features`] computes the encoding DESIGN section 7 specifies, with
//! the same basis order [1, e1, e2, e3, e12, e13, e23, e123]:
//! scalar = mean intensity, vector = intensity-weighted centroid, bivector = intensity-weighted
//! second central moments (xy, xz, yz), trivector = occupied volume fraction. Swap the body for
//! the core function when it exists (the firmware needs only `fn(&[u8], dims) -> [f64; 8]`).

/// Edge of the phantom cube (voxels).
pub const DIM: usize = 16;
/// Voxels of the phantom.
pub const VOXELS: usize = DIM * DIM * DIM;
/// Voxels at or above this intensity count as occupied (trivector part).
pub const OCCUPIED: u8 = 32;

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

/// The 8 features of a `DIM`^3 volume (coordinates normalised to [-1, 1], intensities to [0, 1]).
/// Returns zeros for an empty volume (no intensity to weight by) instead of dividing by zero.
pub fn features(vol: &[u8; VOXELS]) -> [f64; 8] {
    let coord = |i: usize| (2 * i + 1) as f32 / DIM as f32 - 1.0;
    // f32 sums run on the M4F's FPU; the magnitudes (<= 4096 voxels) keep them exact enough.
    let (mut s, mut sx, mut sy, mut sz, mut occupied) = (0f32, 0f32, 0f32, 0f32, 0u32);
    for (i, &v) in vol.iter().enumerate() {
        let w = v as f32 / 255.0;
        let (x, y, z) = (coord(i % DIM), coord(i / DIM % DIM), coord(i / (DIM * DIM)));
        s += w;
        sx += w * x;
        sy += w * y;
        sz += w * z;
        occupied += (v >= OCCUPIED) as u32;
    }
    if s <= 0.0 {
        return [0.0; 8];
    }
    let (cx, cy, cz) = (sx / s, sy / s, sz / s);
    let (mut sxy, mut sxz, mut syz) = (0f32, 0f32, 0f32);
    for (i, &v) in vol.iter().enumerate() {
        let w = v as f32 / 255.0;
        let (x, y, z) = (coord(i % DIM) - cx, coord(i / DIM % DIM) - cy, coord(i / (DIM * DIM)) - cz);
        sxy += w * x * y;
        sxz += w * x * z;
        syz += w * y * z;
    }
    [
        (s / VOXELS as f32) as f64,
        cx as f64,
        cy as f64,
        cz as f64,
        (sxy / s) as f64,
        (sxz / s) as f64,
        (syz / s) as f64,
        occupied as f64 / VOXELS as f64,
    ]
}
