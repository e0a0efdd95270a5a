//! The interior depth channel: how deep inside the object its voxels lie, as one multivector
//! whose blades transform as their grades. Input of the equivariant model beside the shells
//! ([`super::channels`]) and the principal axes ([`super::axes`]).
//!
//! Why: the moments of a mask see its mass and extent, not its thickness. On AdrenalMNIST3D
//! (masks of adrenal glands) a mass thickens the gland, and the mean depth of its voxels
//! separates the classes better than any moment (BENCHMARKS.md, "The equivariant model").
//!
//! **The object** is the set of voxels whose scaled intensity is at least [`OBJECT_THRESHOLD`]
//! (half the intensity scale: the voxels of a binary mask, the body of a phantom). **The depth**
//! `d` of an object voxel is its Euclidean distance, in voxel steps, to the nearest voxel
//! outside the object, where everything beyond the volume's border counts as outside; depths
//! are clamped at [`MAX_DEPTH`] steps. With the global intensity-weighted centroid `c` and the
//! normalised positions `r` of [`super::channels`], the channel is
//!
//! | blade | value | under a rotation R of the scan about its centre |
//! |---|---|---|
//! | 1 | the rms depth `sqrt(sum d^2 / M)` in normalised units (M object voxels) | invariant |
//! | e1, e2, e3 | the depth-weighted centroid `sum d^2 r / sum d^2 - c` | rotates as a vector |
//! | e12, e13, e23, e123 | 0 | (zero stays zero) |
//!
//! An empty object gives the zero channel; an object without a voxel of positive depth
//! cannot occur (every object voxel has depth at least 1), so the centroid is always defined.
//!
//! **Squared depths are exact integers**, by the separable algorithm of Saito and Toriwaki
//! ("New algorithms for Euclidean distance transformation of an n-dimensional digitized
//! picture", Pattern Recognition 27(11), 1994): one pass per axis, each taking
//! `g(i) = min_k f(i + k) + k^2` along the lines of that axis. Restricting `k` to
//! `|k| <= MAX_DEPTH` and clamping every pass at `MAX_DEPTH^2` gives exactly
//! `min(d^2, MAX_DEPTH^2)`: a term with `|k| > MAX_DEPTH` exceeds the clamp, and a clamped
//! value plus `k^2` stays at or above it. The first pass, on the mask itself, needs no window:
//! the distance along a row is the shorter of the running lengths of object voxels forwards and
//! backwards. The passes are branch-free in the mask (minima by masks, addresses from the
//! indices alone), so the device's fixed-point channel
//! ([`super::fixed_channels::depth_channel_fixed`]) runs this same code, and the host's f64
//! channel below gets the same integers.
//!
//! **Isotropic grids only**: a depth in voxel steps is a distance only when the three spacings
//! are equal. Every preprocessing preset that resamples gives such grids; others are refused
//! ([`FeatureError::AnisotropicSpacing`]).
//!
//! Exactness: rotations by multiples of 90 degrees about the centre permute the voxels of a cube
//! and the depths with them, so the rule holds there to rounding (tested). Other angles
//! resample the object's boundary, and the depth moves with it.

use super::features::{FeatureConfig, FeatureError, VolumeView, Voxel};
use super::Multivector;

/// Depths are clamped at this many voxel steps. AdrenalMNIST3D's deepest voxel is 4.5 steps
/// deep; the clamp bounds the work per voxel (`2 (2 MAX_DEPTH - 1)` minima in the windowed
/// passes) and keeps a squared depth in a byte.
pub const MAX_DEPTH: usize = 8;
/// The clamp on squared depths.
pub const MAX_DEPTH_SQUARED: u8 = (MAX_DEPTH * MAX_DEPTH) as u8;
/// Voxels at or above this scaled intensity form the object.
pub const OBJECT_THRESHOLD: f64 = 0.5;

/// Scratch lengths of [`squared_depths`] for a grid: one byte per voxel (the squared depths)
/// and the line buffer (`u16`: the longest axis plus `2 MAX_DEPTH`).
///
/// # Errors
///
/// [`FeatureError::BadDimensions`] for a zero dimension or an overflowing voxel count.
pub fn depth_scratch_len(dims: [usize; 3]) -> Result<(usize, usize), FeatureError> {
    if dims.contains(&0) {
        return Err(FeatureError::BadDimensions);
    }
    let voxels = dims[0]
        .checked_mul(dims[1])
        .and_then(|v| v.checked_mul(dims[2]))
        .ok_or(FeatureError::BadDimensions)?;
    let longest = dims[0].max(dims[1]).max(dims[2]);
    Ok((voxels, longest + 2 * MAX_DEPTH))
}

/// Half-width of the windowed passes: offsets `|k| = MAX_DEPTH` add `k^2 = MAX_DEPTH^2`, the
/// clamp itself, so they can never lower a value below it and are left out.
const WINDOW: usize = MAX_DEPTH - 1;

/// `k^2` for the window's offsets `k = -WINDOW ..= WINDOW`.
const OFFSET_SQUARES: [u32; 2 * WINDOW + 1] = {
    let mut s = [0u32; 2 * WINDOW + 1];
    let mut k = 0;
    while k < s.len() {
        let off = k.abs_diff(WINDOW) as u32;
        s[k] = off * off;
        k += 1;
    }
    s
};

/// `min(a, b)` for `a, b < 2^31` by a mask (no branch on either).
#[inline(always)]
fn ct_min(a: u32, b: u32) -> u32 {
    let a_smaller = (a.wrapping_sub(b) >> 31).wrapping_neg();
    b ^ ((a ^ b) & a_smaller)
}

/// The clamped squared depth of every voxel of a `dims` grid (`x` fastest) into `depths`:
/// `min(d^2, MAX_DEPTH^2)` for object voxels, 0 outside. `inside(i)` says whether voxel `i`
/// belongs to the object, as 0 or 1; it is called once per voxel, in order. `line` is the
/// scratch of [`depth_scratch_len`].
///
/// Constant time in the mask: every loop bound and address depends on `dims` alone, and the
/// mask enters only through multiplications and masked minima.
///
/// # Errors
///
/// [`FeatureError::BadDimensions`] for an unusable shape, [`FeatureError::LengthMismatch`]
/// when `depths` or `line` does not have the length of [`depth_scratch_len`].
pub fn squared_depths(
    dims: [usize; 3],
    mut inside: impl FnMut(usize) -> u32,
    depths: &mut [u8],
    line: &mut [u16],
) -> Result<(), FeatureError> {
    let (voxels, line_len) = depth_scratch_len(dims)?;
    if depths.len() != voxels {
        return Err(FeatureError::LengthMismatch {
            expected: voxels,
            found: depths.len(),
        });
    }
    if line.len() != line_len {
        return Err(FeatureError::LengthMismatch {
            expected: line_len,
            found: line.len(),
        });
    }
    let cap = u32::from(MAX_DEPTH_SQUARED);
    for (i, d) in depths.iter_mut().enumerate() {
        // An object voxel starts "at least the clamp" deep, every other voxel at depth 0.
        *d = ((inside(i) & 1) * cap) as u8;
    }
    let [nx, ny, nz] = dims;
    // Along x, then y, then z: every line by its first voxel (nested loops, no division). The
    // first pass starts from the mask alone, so it needs no window: the distance to the nearest
    // outside voxel along the row is the shorter of two running lengths.
    for z in 0..nz {
        for y in 0..ny {
            row_pass(depths, line, nx * (y + ny * z), nx, cap);
        }
    }
    for z in 0..nz {
        for x in 0..nx {
            depth_pass(depths, line, x + nx * ny * z, nx, ny, cap);
        }
    }
    for y in 0..ny {
        for x in 0..nx {
            depth_pass(depths, line, x + nx * y, nx * ny, nz, cap);
        }
    }
    Ok(())
}

/// The first pass on one row of the mask (`f` is 0 or `cap`): `min(cap, r^2)` with `r` the
/// distance along the row to the nearest outside voxel, from the running lengths of object
/// voxels forwards and backwards (the volume's border counts as outside). Equal to
/// [`depth_pass`] on such rows for a fraction of its work (on the device, 2.4 M of the 11.8 M
/// instructions of the 32^3 phantom saved).
#[inline(always)]
fn row_pass(depths: &mut [u8], line: &mut [u16], base: usize, n: usize, cap: u32) {
    let row = &mut depths[base..base + n];
    let forward = &mut line[..n];
    // Runs saturate just past the clamp, so any row length stays in range.
    let longest = MAX_DEPTH as u32 + 1;
    let mut run = 0u32;
    for (r, &f) in forward.iter_mut().zip(row.iter()) {
        // 1 inside the object (f = cap > 0), 0 outside: the sign bit of -f.
        let inside = 0u32.wrapping_sub(u32::from(f)) >> 31;
        run = ct_min(run + 1, longest) * inside;
        *r = run as u16;
    }
    run = 0;
    for (f, &r) in row.iter_mut().zip(forward.iter()).rev() {
        let inside = 0u32.wrapping_sub(u32::from(*f)) >> 31;
        run = ct_min(run + 1, longest) * inside;
        let d = ct_min(u32::from(r), run);
        *f = ct_min(d * d, cap) as u8;
    }
}

/// One line of one pass: `g(i) = min(cap, min_{|k| <= MAX_DEPTH} f(i + k) + k^2)`, where `f`
/// beyond the volume is 0 (outside the object); the terms `|k| = MAX_DEPTH` are at least
/// `cap` and are skipped ([`WINDOW`]).
#[inline(always)]
fn depth_pass(depths: &mut [u8], line: &mut [u16], base: usize, stride: usize, n: usize, cap: u32) {
    let line = &mut line[..n + 2 * MAX_DEPTH];
    line.fill(0);
    for (j, f) in line[MAX_DEPTH..MAX_DEPTH + n].iter_mut().enumerate() {
        *f = u16::from(depths[base + j * stride]);
    }
    for i in 0..n {
        // Voxel i sits at line[i + MAX_DEPTH]; its window reaches WINDOW either side.
        let window = &line[i + MAX_DEPTH - WINDOW..=i + MAX_DEPTH + WINDOW];
        let mut g = cap;
        for (&f, &k2) in window.iter().zip(&OFFSET_SQUARES) {
            g = ct_min(g, u32::from(f) + k2);
        }
        depths[base + i * stride] = g as u8;
    }
}

/// The depth channel of a volume into `out` (definition in the module documentation).
/// `depths` and `line` are the scratch of [`depth_scratch_len`] for the volume's shape; on
/// return `depths` holds the clamped squared depths.
///
/// # Errors
///
/// [`FeatureError::AnisotropicSpacing`] for unequal spacings, [`FeatureError::BadConfig`] for an
/// unusable intensity scale, [`FeatureError::NonFiniteVoxel`] for a NaN or infinite voxel,
/// [`FeatureError::LengthMismatch`] for scratch of the wrong length.
pub fn depth_channel<T: Voxel>(
    v: &VolumeView<'_, T>,
    cfg: &FeatureConfig,
    depths: &mut [u8],
    line: &mut [u16],
    out: &mut Multivector,
) -> Result<(), FeatureError> {
    let s = v.spacing();
    if s[0] != s[1] || s[1] != s[2] {
        return Err(FeatureError::AnisotropicSpacing);
    }
    if !(cfg.intensity_scale.is_finite() && cfg.intensity_scale > 0.0) {
        return Err(FeatureError::BadConfig);
    }
    let inv_scale = 1.0 / cfg.intensity_scale;
    let data = v.data();
    let (total, total_first) = v.mass_and_first_moments(inv_scale)?;
    squared_depths(
        v.dims(),
        |i| u32::from(data[i].to_f64() * inv_scale >= OBJECT_THRESHOLD),
        depths,
        line,
    )?;
    let (mut count, mut sum, mut first) = (0u64, 0.0f64, [0.0f64; 3]);
    for (index, &d2) in depths.iter().enumerate() {
        count += u64::from(d2 != 0);
        let w = f64::from(d2);
        sum += w;
        let r = v.normalised_position(index);
        for a in 0..3 {
            first[a] += w * r[a];
        }
    }
    *out = Multivector::zero();
    if count == 0 {
        return Ok(());
    }
    let [nx, ny, nz] = v.dims();
    // One voxel step in normalised units: the spacing over half the largest extent.
    let step = 2.0 / nx.max(ny).max(nz) as f64;
    let centroid = if total != 0.0 { total_first.map(|f| f / total) } else { [0.0; 3] };
    let mut c = [0.0; 8];
    c[0] = libm::sqrt(sum / count as f64) * step;
    for a in 0..3 {
        c[1 + a] = first[a] / sum - centroid[a];
    }
    *out = Multivector::new(c);
    Ok(())
}

#[allow(clippy::unwrap_used, clippy::cast_precision_loss)]
#[cfg(test)]
mod tests;
