//! The equivariant model's input channels ([`super::channels::shell_channels`] and
//! [`super::axes::axis_channels`]) for integer voxels, in fixed point and constant time: what
//! the device computes from the patient's volume for the equivariant model.
//!
//! The discipline is that of [`super::fixed_features`]: every voxel is read once, in order, and
//! every operation on voxel data is an integer operation without branch, division instruction,
//! data-dependent address or library call that ends early.
//!
//! * **Shell membership by masks.** The f64 thresholds become, once and from public data,
//!   integer voxel intervals `[lo_k, hi_k)` ([`FixedShells::new`]) that reproduce the f64 rule
//!   of `shell_channels` exactly (shell k: `t_k <= v * (1 / scale) < t_(k+1)` evaluated in f64,
//!   the last shell closed above, voxels outside belong to no shell). Every voxel updates every
//!   shell's sums with its value masked by `(v >= lo_k) & (v < hi_k)`, computed from sign bits.
//! * **Tent weights as exact integers** ([`ShellWeighting::Tent`], equal-width shells only):
//!   with `x = 2 K v` the centres are `C_k = (2k + 1) S` (S the intensity scale) and the weight
//!   of shell k is `W_k = max(2S - |x - C_k|, 0)` over the denominator `2S` (the first shell's
//!   distance is 0 below its centre, the last's above its own), masked to the voxels in
//!   `[t_0, t_K]`: the f64 weights times `2S`, exactly. The sums carry `v W_k`, which is why
//!   tents need `S <= 4095` ([`MAX_TENT_SCALE`]) and at most [`MAX_TENT_VOXELS`] voxels: then
//!   `v W_k < 2^25`, a shell's mass stays below 2^44 and `M Q - F^2` within `i128`, as for hard
//!   shells at their bounds.
//! * **Exact integer sums** in the doubled voxel offsets `t_a = 2 i + 1 - n_a`: per shell the
//!   mass, first moments and the three axial second moments; globally the mass, first, second
//!   and (for the axes) the ten third moments. Per row in `i32`/`i64`, overall in `i64`/`i128`
//!   (bounds in the code).
//! * **Exact central second moments**: `M Q_ab - F_a F_b` is an exact integer; it is divided by
//!   `M^2` in three constant-time steps ([`ct_div`]: 128 restoring steps by masks), so a shell
//!   whose voxels all sit at one point has spread exactly 0 and a symmetric volume has exactly
//!   zero off-diagonal covariance.
//! * **The eigen-decomposition** of the 3x3 covariance (56 fractional bits, `i128`): a fixed
//!   number ([`JACOBI_SWEEPS`]) of cyclic Jacobi sweeps with no early exit, the rotation
//!   `t = sgn(x y) |y| / (|x| + sqrt(x^2 + y^2))` (`x = a_qq - a_pp`, `y = 2 a_pq`: the f64
//!   formula with numerator and denominator multiplied by `|y|`, so it stays bounded) by
//!   [`ct_div`]/[`ct_isqrt`] and sign masks; then a three-element sorting network
//!   (compare-and-swap by masks, stable: ties keep the solver's column order, as the f64 sort);
//!   then the sign of the third moment along each axis, `sum_abc w_a w_b w_c k_abc` over the
//!   central third moments `k` (from the exact sums, 40 fractional bits), applied by a mask
//!   (zero: positive, as the f64 code).
//!
//! Output: one `[i64; 8]` per channel, [`FRAC_BITS`] fractional bits, basis order
//! `[1, e1, e2, e3, e12, e13, e23, e123]`, ready for the fixed-point encoder. Nothing allocates;
//! no floating point runs after [`FixedShells::new`] (boot, public data).
//!
//! **Precision** (the tests; worst case over their phantoms, shell counts 1, 4 and 8, isotropic
//! and anisotropic spacing): every blade within 1e-9 of the f64 functions, except where the f64
//! result is itself ill-defined:
//! - **nearly equal eigenvalues** (see [`super::axes`]): the axes of a repeated eigenvalue are
//!   any orthonormal basis of its eigenspace, and close eigenvalues make them sensitive to the
//!   last bit of either computation; the ordering of equal eigenvalues can differ too. The
//!   lengths `|a_k| = sqrt(lambda_k)` still agree. The tests compare axes on phantoms whose
//!   eigenvalues are well separated;
//! - **a (nearly) zero third moment** along an axis: its sign is positive on exact zero in both
//!   computations, but the f64 value of an exactly symmetric volume is rounding noise of either
//!   sign, so the axis may come out flipped relative to the f64 one;
//! - **a threshold on a voxel value** is reproduced exactly (the intervals come from the f64
//!   rule itself), so shell membership never differs.
//!
//! Empty shells, and for the axes an all-zero volume, give zero channels, selected by masks.

use super::axes::AXES;
use super::channels::{ShellConfig, ShellWeighting, MAX_SHELLS};
use super::features::FeatureError;
use super::fixed_features::{ct_div, ct_isqrt, FixedGeometry, IntVoxel, FRAC_BITS, H_BITS};

/// Most voxels one call accepts (`512^3`): keeps the exact products `M Q - F^2` within `i128`.
pub const MAX_CHANNEL_VOXELS: usize = 1 << 27;

/// Most voxels with tent-weighted shells (`80^3` and more; the device's volumes are at most
/// `64^3`): with [`MAX_TENT_SCALE`], keeps a shell's weighted mass below 2^44 (module docs).
pub const MAX_TENT_VOXELS: usize = 1 << 19;

/// Largest intensity scale of tent-weighted shells (12-bit CT): the weights `W_k <= 2S` stay
/// below 2^13.
pub const MAX_TENT_SCALE: u32 = 4095;

/// Cyclic Jacobi sweeps of the eigen-decomposition (3 rotations each), run in full every time.
/// Measured (`jacobi_converges_in_the_fixed_sweeps`, 200 random covariances with separated,
/// close (ratio 0.97..0.99) and very close (1 - 1e-4) eigenvalues): the largest off-diagonal
/// entry left, relative to the largest eigenvalue, is 0.2 after 1 sweep, 9e-3 after 2, 1.4e-8
/// after 3 and at the rounding floor (below 1e-15) from 4 on; 6 keeps two sweeps of margin.
pub const JACOBI_SWEEPS: usize = 6;

/// One above the largest voxel value (`u16`): the "never" threshold.
const NEVER: i32 = 1 << 16;
/// Fractional bits of normalised moments in t units (means, raw moments, central thirds).
const MU_BITS: u32 = 40;
/// Fractional bits of the central second moments in t units.
const VAR_BITS: u32 = 48;
/// Fractional bits of the products `h_a h_b`.
const HH_BITS: u32 = 64;
/// Fractional bits of the covariance, the rotations and the eigenvectors.
const J_BITS: u32 = 56;
const J_ONE: i128 = 1 << J_BITS;

/// The shells of a [`ShellConfig`] as integer voxel intervals, computed once (boot, public
/// data) for one intensity scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedShells {
    shells: usize,
    scale: u32,
    weighting: ShellWeighting,
    /// Shell k holds the voxels `lo[k] <= v < hi[k]` (an empty interval when `lo >= hi`).
    lo: [i32; MAX_SHELLS],
    hi: [i32; MAX_SHELLS],
}

impl FixedShells {
    /// No shell: what the axes and the depth channel accumulate with.
    const NONE: Self = Self {
        shells: 0,
        scale: 1,
        weighting: ShellWeighting::Hard,
        lo: [NEVER; MAX_SHELLS],
        hi: [NEVER; MAX_SHELLS],
    };

    /// The integer intervals of `cfg` for voxels divided by `intensity_scale`, which must equal
    /// `cfg.intensity_scale` (the scale of the [`FixedGeometry`] the channels are computed
    /// with). Voxel `v` is in shell k exactly when `shell_channels` puts it there: the last
    /// threshold `t_k` with `v as f64 * (1 / scale) >= t_k`, and `<= t_K`.
    ///
    /// # Errors
    ///
    /// [`FeatureError::BadConfig`] for what `shell_channels` refuses (shell count 0 or above
    /// [`MAX_SHELLS`], thresholds not finite and strictly increasing, a scale not finite and
    /// positive) and for a scale other than `intensity_scale`.
    pub fn new(cfg: &ShellConfig, intensity_scale: u32) -> Result<Self, FeatureError> {
        let used = cfg.thresholds.get(..cfg.shells + 1).ok_or(FeatureError::BadConfig)?;
        let increasing = used.windows(2).all(|w| w[0] < w[1]);
        let scale_ok = cfg.intensity_scale.is_finite() && cfg.intensity_scale > 0.0;
        if cfg.shells == 0 || !increasing || !used.iter().all(|t| t.is_finite()) || !scale_ok {
            return Err(FeatureError::BadConfig);
        }
        if intensity_scale == 0 || cfg.intensity_scale != f64::from(intensity_scale) {
            return Err(FeatureError::BadConfig);
        }
        // Tents in integers: equal-width shells over [0, 1] (as `ShellConfig::uniform` makes
        // them, exactly) and a scale that keeps `v W_k` small (module docs).
        let uniform = used.iter().enumerate().all(|(k, &t)| t == k as f64 / cfg.shells as f64);
        if cfg.weighting == ShellWeighting::Tent && (!uniform || intensity_scale > MAX_TENT_SCALE) {
            return Err(FeatureError::BadConfig);
        }
        // The f64 code's intensity: value * (1 / scale), monotone in the value.
        let inv_scale = 1.0 / cfg.intensity_scale;
        let intensity = |v: i32| f64::from(v) * inv_scale;
        let k_shells = cfg.shells;
        let top = used[k_shells];
        let mut lo = [NEVER; MAX_SHELLS];
        let mut hi = [NEVER; MAX_SHELLS];
        for k in 0..k_shells {
            lo[k] = first_where(|v| intensity(v) >= used[k]);
        }
        for k in 0..k_shells {
            hi[k] = if k + 1 < k_shells {
                lo[k + 1]
            } else {
                first_where(|v| intensity(v) > top)
            };
        }
        Ok(Self {
            shells: k_shells,
            scale: intensity_scale,
            weighting: cfg.weighting,
            lo,
            hi,
        })
    }

    /// [`FixedShells::uniform`] with tent weights ([`ShellWeighting::Tent`]).
    ///
    /// # Errors
    ///
    /// As [`FixedShells::uniform`], and [`FeatureError::BadConfig`] for a scale above
    /// [`MAX_TENT_SCALE`].
    pub fn uniform_tent(intensity_scale: u32, shells: usize) -> Result<Self, FeatureError> {
        let cfg = ShellConfig::uniform(f64::from(intensity_scale), shells)?.with_weighting(ShellWeighting::Tent);
        Self::new(&cfg, intensity_scale)
    }

    /// How the shells weight intensities.
    #[must_use]
    pub fn weighting(&self) -> ShellWeighting {
        self.weighting
    }

    /// `shells` equal-width shells over `[0, 1]` of the scaled intensity ([`ShellConfig::uniform`],
    /// what the equivariant model's `ChannelSpec` uses).
    ///
    /// # Errors
    ///
    /// As [`FixedShells::new`].
    pub fn uniform(intensity_scale: u32, shells: usize) -> Result<Self, FeatureError> {
        Self::new(&ShellConfig::uniform(f64::from(intensity_scale), shells)?, intensity_scale)
    }

    /// Number of shells.
    #[must_use]
    pub fn shells(&self) -> usize {
        self.shells
    }

    /// The voxel values of shell `k`: `lo..hi` (empty when `lo >= hi`); `None` past the last
    /// shell.
    #[must_use]
    pub fn interval(&self, k: usize) -> Option<core::ops::Range<u32>> {
        (k < self.shells).then(|| self.lo[k] as u32..self.hi[k] as u32)
    }
}

/// The smallest `v` in `0..=65535` with `pred(v)` for a monotone `pred` (false, then true), or
/// [`NEVER`]. Public data only.
fn first_where(pred: impl Fn(i32) -> bool) -> i32 {
    let (mut lo, mut hi) = (0i32, NEVER);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The K shell channels of an integer volume into `out[..K]` (`x` fastest, shape from `geom`):
/// the fixed-point [`super::channels::shell_channels`].
///
/// # Errors
///
/// As [`channels_fixed`].
pub fn shell_channels_fixed<T: IntVoxel>(
    data: &[T],
    geom: &FixedGeometry,
    shells: &FixedShells,
    out: &mut [[i64; 8]],
) -> Result<(), FeatureError> {
    channels_fixed(data, geom, Some(shells), false, out).map(|_| ())
}

/// The three principal-axis channels of an integer volume into `out[..3]`: the fixed-point
/// [`super::axes::axis_channels`] (`s_k sqrt(lambda_k) u_k` in e1, e2, e3, by decreasing
/// eigenvalue). The scale does not enter (the covariance is normalised by the mass).
///
/// # Errors
///
/// As [`channels_fixed`].
pub fn axis_channels_fixed<T: IntVoxel>(data: &[T], geom: &FixedGeometry, out: &mut [[i64; 8]]) -> Result<(), FeatureError> {
    channels_fixed(data, geom, None, true, out).map(|_| ())
}

/// The equivariant model's channels (its `ChannelSpec`): the shells of `shells` (if any), then
/// the three principal axes if `principal_axes`, into `out`, in one pass over the voxels.
/// Returns the number of channels written.
///
/// Constant time in the voxel values: every loop bound, memory access and operation depends on
/// the shape, the shell intervals and `principal_axes` alone.
///
/// # Errors
///
/// [`FeatureError::BadConfig`] for no channel at all, an `out` shorter than the channel count
/// or shells made for another intensity scale than `geom`'s;
/// [`FeatureError::BadDimensions`] above [`MAX_CHANNEL_VOXELS`] voxels;
/// [`FeatureError::LengthMismatch`] when `data.len()` is not the product of the dimensions.
pub fn channels_fixed<T: IntVoxel>(
    data: &[T],
    geom: &FixedGeometry,
    shells: Option<&FixedShells>,
    principal_axes: bool,
    out: &mut [[i64; 8]],
) -> Result<usize, FeatureError> {
    let k_shells = shells.map_or(0, |s| s.shells);
    let count = k_shells + if principal_axes { AXES } else { 0 };
    if count == 0 {
        return Err(FeatureError::BadConfig);
    }
    let out = out.get_mut(..count).ok_or(FeatureError::BadConfig)?;
    checked_volume(data.len(), geom, shells.map(|s| s.scale))?;
    let shells = shells.unwrap_or(&FixedShells::NONE);
    if shells.weighting == ShellWeighting::Tent && data.len() > MAX_TENT_VOXELS {
        return Err(FeatureError::BadDimensions);
    }
    let sums = accumulate(data, geom.dims(), shells, principal_axes);
    let h = geom.factors().map(i128::from);
    let global_mean = sums.mean();
    // Tent sums carry the weights' denominator 2S; centroids and spreads are ratios of sums.
    let mass_divisor = match shells.weighting {
        ShellWeighting::Hard => geom.mean_divisor(),
        ShellWeighting::Tent => geom.mean_divisor() * 2 * u64::from(shells.scale),
    };
    for (k, o) in out[..k_shells].iter_mut().enumerate() {
        *o = shell_finish(&sums, k, &global_mean, &h, mass_divisor);
    }
    if principal_axes {
        let axes = axes_finish(&sums, &global_mean, &h);
        for (o, a) in out[k_shells..].iter_mut().zip(axes) {
            *o = a;
        }
    }
    Ok(count)
}

/// Checks a volume of `len` voxels against `geom` (at most [`MAX_CHANNEL_VOXELS`], the
/// product of the dimensions) and, if given, the intensity scale the caller's thresholds were
/// made for; returns the voxel count.
fn checked_volume(len: usize, geom: &FixedGeometry, scale: Option<u32>) -> Result<usize, FeatureError> {
    let [nx, ny, nz] = geom.dims();
    let voxels = nx * ny * nz; // fits usize: checked by FixedGeometry::new
    if voxels > MAX_CHANNEL_VOXELS {
        return Err(FeatureError::BadDimensions);
    }
    if len != voxels {
        return Err(FeatureError::LengthMismatch {
            expected: voxels,
            found: len,
        });
    }
    if scale.is_some_and(|s| geom.mean_divisor() != voxels as u64 * u64::from(s)) {
        return Err(FeatureError::BadConfig);
    }
    Ok(voxels)
}

/// Index of the second moment `ab` (`a <= b`) in `Sums::q`: xx, yy, zz, xy, xz, yz.
const fn q_index(a: usize, b: usize) -> usize {
    if a == b {
        a
    } else {
        a + b + 2
    }
}

/// The third moments `abc` (`a <= b <= c`) in the order of `Sums::t`, with their multiplicity
/// among the 27 ordered triples.
const THIRD: [([usize; 3], i128); 10] = [
    ([0, 0, 0], 1),
    ([0, 0, 1], 3),
    ([0, 0, 2], 3),
    ([0, 1, 1], 3),
    ([0, 1, 2], 6),
    ([0, 2, 2], 3),
    ([1, 1, 1], 1),
    ([1, 1, 2], 3),
    ([1, 2, 2], 3),
    ([2, 2, 2], 1),
];

/// Exact integer moment sums in the doubled offsets `t`. Bounds for `v < 2^16`, `|t| < 2^12`
/// and at most 2^27 voxels: masses below 2^43, first moments below 2^55, second below 2^67,
/// third below 2^79.
struct Sums {
    mass: i64,
    first: [i64; 3],
    /// xx, yy, zz, xy, xz, yz (only with the axes).
    second: [i128; 6],
    /// In the order of [`THIRD`] (only with the axes).
    third: [i128; 10],
    shell_mass: [i64; MAX_SHELLS],
    shell_first: [[i64; 3]; MAX_SHELLS],
    /// Per shell: xx, yy, zz.
    shell_second: [[i128; 3]; MAX_SHELLS],
}

impl Sums {
    /// The global mean of `t_a` with [`MU_BITS`] fractional bits (zero for an empty volume).
    fn mean(&self) -> [i128; 3] {
        let den = nonzero_den(self.mass);
        self.first.map(|f| div_round(i128::from(f) << MU_BITS, den))
    }
}

/// One pass over the voxels (x fastest): per row, the global row sums and each shell's masked
/// row sums, then the row's contribution with its `t_y`, `t_z` (public).
fn accumulate<T: IntVoxel>(data: &[T], dims: [usize; 3], shells: &FixedShells, axes: bool) -> Sums {
    let [nx, ny, nz] = dims;
    let mut s = Sums {
        mass: 0,
        first: [0; 3],
        second: [0; 6],
        third: [0; 10],
        shell_mass: [0; MAX_SHELLS],
        shell_first: [[0; 3]; MAX_SHELLS],
        shell_second: [[0; 3]; MAX_SHELLS],
    };
    let k_shells = shells.shells;
    // Doubled offsets stepped by 2 (no division or remainder, not even on public indices).
    let start = |n: usize| 1 - n as i32;
    let tx0 = start(nx);
    let mut row_start = 0usize;
    let mut tz = start(nz);
    for _ in 0..nz {
        let mut ty = start(ny);
        for _ in 0..ny {
            let row = data.get(row_start..row_start + nx).unwrap_or(&[]);
            row_start += nx;
            let (ty64, tz64) = (i64::from(ty), i64::from(tz));
            // |t| < 2^12: the squares fit i32.
            let (ty2, tz2) = (ty * ty, tz * tz);
            if axes {
                let r = row_sums_3(row, tx0);
                s.add_row_axes(&r, ty, tz);
            } else {
                let (r0, rx) = row_sums_1(row, tx0);
                s.mass += i64::from(r0);
                s.first[0] += rx;
                s.first[1] += i64::from(r0) * ty64;
                s.first[2] += i64::from(r0) * tz64;
            }
            for k in 0..k_shells {
                let (r064, rx, rxx) = match shells.weighting {
                    ShellWeighting::Hard => {
                        let (r0, rx, rxx) = shell_row_sums(row, tx0, shells.lo[k], shells.hi[k]);
                        (i64::from(r0), rx, rxx)
                    }
                    ShellWeighting::Tent => tent_row_sums(row, tx0, &TentShell::new(shells, k)),
                };
                s.shell_mass[k] += r064;
                let f = &mut s.shell_first[k];
                f[0] += rx;
                f[1] += r064 * ty64;
                f[2] += r064 * tz64;
                let q = &mut s.shell_second[k];
                q[0] += i128::from(rxx);
                q[1] += i128::from(r064 * i64::from(ty2));
                q[2] += i128::from(r064 * i64::from(tz2));
            }
            ty += 2;
        }
        tz += 2;
    }
    s
}

/// Row sums of `v`, `v t`, `v t^2`, `v t^3` (`|v t| < 2^28`; the row's `sum |t|^k` bounds the
/// rest: below 2^28, 2^39, 2^51 and 2^62).
struct Row3 {
    r0: i32,
    rx: i64,
    rxx: i64,
    rxxx: i64,
}

#[inline(always)]
fn row_sums_1<T: IntVoxel>(row: &[T], tx0: i32) -> (i32, i64) {
    let (mut r0, mut rx) = (0i32, 0i64);
    let mut tx = tx0;
    for v in row {
        let v = v.value() as i32;
        r0 += v;
        rx += i64::from(v * tx);
        tx += 2;
    }
    (r0, rx)
}

#[inline(always)]
fn row_sums_3<T: IntVoxel>(row: &[T], tx0: i32) -> Row3 {
    let (mut r0, mut rx, mut rxx, mut rxxx) = (0i32, 0i64, 0i64, 0i64);
    let mut tx = tx0;
    for v in row {
        let v = v.value() as i32;
        let vt = v * tx;
        r0 += v;
        rx += i64::from(vt);
        rxx += i64::from(vt) * i64::from(tx);
        rxxx += i64::from(vt) * i64::from(tx * tx);
        tx += 2;
    }
    Row3 { r0, rx, rxx, rxxx }
}

/// One shell's row sums of `w`, `w t`, `w t^2` with `w = v` masked by `lo <= v < hi`: the mask
/// is all ones or all zeros from the sign bits of `v - lo` and `v - hi`, no comparison branch.
#[inline(always)]
fn shell_row_sums<T: IntVoxel>(row: &[T], tx0: i32, lo: i32, hi: i32) -> (i32, i64, i64) {
    let (mut r0, mut rx, mut rxx) = (0i32, 0i64, 0i64);
    let mut tx = tx0;
    for v in row {
        let v = v.value() as i32;
        // v, lo, hi in 0..=2^16: the differences cannot overflow.
        let mask = !((v - lo) >> 31) & ((v - hi) >> 31);
        let w = v & mask;
        let wt = w * tx;
        r0 += w;
        rx += i64::from(wt);
        rxx += i64::from(wt) * i64::from(tx);
        tx += 2;
    }
    (r0, rx, rxx)
}

/// Shell k's tent in integers (module docs): `x = 2 K v`, centre `C_k = (2k + 1) S`, weight
/// `max(2S - dist, 0)` with the distance to the centre counted only below it for k > 0 and
/// only above it for k < K - 1; voxels outside `[lo, hi)` (outside `[t_0, t_K]`) weigh 0.
/// Public data only.
struct TentShell {
    two_k: i32,
    centre: i32,
    width: i32,
    /// All ones where the distance below the centre counts (k > 0), else zero.
    below: i32,
    /// All ones where the distance above the centre counts (k < K - 1), else zero.
    above: i32,
    lo: i32,
    hi: i32,
}

impl TentShell {
    fn new(shells: &FixedShells, k: usize) -> Self {
        let s = shells.scale as i32;
        let k_shells = shells.shells;
        Self {
            two_k: 2 * k_shells as i32,
            centre: (2 * k as i32 + 1) * s,
            width: 2 * s,
            below: if k > 0 { -1 } else { 0 },
            above: if k + 1 < k_shells { -1 } else { 0 },
            lo: shells.lo[0],
            hi: shells.hi[k_shells - 1],
        }
    }
}

/// One tent shell's row sums of `w`, `w t`, `w t^2` with `w = v W_k(v)` (`TentShell`): the
/// distance, the clamp at zero and the range mask all come from sign bits, no branch. Bounds:
/// `v <= 4095` in range and `W_k <= 8190`, so `w < 2^25`, `|w t| < 2^37`, and a row's `sum w t^2`
/// stays below 2^58 (`|t| < 2^12`, `sum t^2 < 2^33` over a row).
#[inline(always)]
fn tent_row_sums<T: IntVoxel>(row: &[T], tx0: i32, tent: &TentShell) -> (i64, i64, i64) {
    let (mut r0, mut rx, mut rxx) = (0i64, 0i64, 0i64);
    let mut tx = tx0;
    for v in row {
        let v = v.value() as i32;
        // v < 2^16 and 2K <= 16: x < 2^20, and every difference below fits i32.
        let x = tent.two_k * v;
        let down = (tent.centre - x) & tent.below;
        let up = (x - tent.centre) & tent.above;
        // max(down, up, 0): at most one of them is positive.
        let dist = (down & !(down >> 31)) | (up & !(up >> 31));
        let w_raw = tent.width - dist;
        let in_range = !((v - tent.lo) >> 31) & ((v - tent.hi) >> 31);
        let weight = w_raw & !(w_raw >> 31) & in_range;
        let w = i64::from(v) * i64::from(weight);
        let wt = w * i64::from(tx);
        r0 += w;
        rx += wt;
        rxx += wt * i64::from(tx);
        tx += 2;
    }
    (r0, rx, rxx)
}

impl Sums {
    /// A row's contribution to the global sums, second and third moments included. Products
    /// that can reach 2^63 (at 4096 voxels per axis) are taken in `i128`.
    fn add_row_axes(&mut self, r: &Row3, ty: i32, tz: i32) {
        let (r0, ty64, tz64) = (i64::from(r.r0), i64::from(ty), i64::from(tz));
        let (ty2, tz2, tyz) = (i64::from(ty * ty), i64::from(tz * tz), i64::from(ty * tz));
        self.mass += r0;
        self.first[0] += r.rx;
        self.first[1] += r0 * ty64;
        self.first[2] += r0 * tz64;
        let q = &mut self.second;
        q[0] += i128::from(r.rxx);
        q[1] += i128::from(r0 * ty2);
        q[2] += i128::from(r0 * tz2);
        q[3] += i128::from(r.rx * ty64);
        q[4] += i128::from(r.rx * tz64);
        q[5] += i128::from(r0 * tyz);
        let t = &mut self.third;
        t[0] += i128::from(r.rxxx);
        t[1] += i128::from(r.rxx * ty64);
        t[2] += i128::from(r.rxx * tz64);
        t[3] += i128::from(r.rx * ty2);
        t[4] += i128::from(r.rx * tyz);
        t[5] += i128::from(r.rx * tz2);
        let (r0y2, r0z2) = (i128::from(r0 * ty2), i128::from(r0 * tz2));
        t[6] += r0y2 * i128::from(ty);
        t[7] += r0y2 * i128::from(tz);
        t[8] += r0z2 * i128::from(ty);
        t[9] += r0z2 * i128::from(tz);
    }
}

/// All ones when `m == 0`, else zero (`m >= 0`), from the sign bit.
#[inline(always)]
fn is_zero(m: i64) -> i64 {
    (m - 1) >> 63
}

/// The mass as a divisor: 1 in place of 0 (the result is masked away then).
#[inline(always)]
fn nonzero_den(m: i64) -> u64 {
    (m | (is_zero(m) & 1)) as u64
}

/// `round(num / den)` (half away from zero) for a signed numerator, by sign masks around
/// [`ct_div`].
fn div_round(num: i128, den: u64) -> i128 {
    let neg = num >> 127;
    let mag = ((num ^ neg) - neg) as u128;
    let q = ct_div(mag + u128::from(den >> 1), den) as i128;
    (q ^ neg) - neg
}

/// `trunc(d 2^bits / m^2)` exactly, for `|d| / m < 2^68`, `m < 2^64`, `bits <= 48`: three
/// constant-time divisions (`floor(floor(x / m) / m) = floor(x / m^2)`).
fn div_by_square(d: i128, m: u64, bits: u32) -> i128 {
    let neg = d >> 127;
    let mag = ((d ^ neg) - neg) as u128;
    let q1 = ct_div(mag, m);
    let r1 = mag - q1 * u128::from(m);
    let y = (q1 << bits) + ct_div(r1 << bits, m);
    let z = ct_div(y, m) as i128;
    (z ^ neg) - neg
}

/// `round(a b / 2^shift)`.
#[inline(always)]
fn mul_round(a: i128, b: i128, shift: u32) -> i128 {
    (a * b + (1i128 << (shift - 1))) >> shift
}

/// `max(x, 0)` by a mask.
#[inline(always)]
fn positive_part(x: i128) -> i128 {
    x & !(x >> 127)
}

/// `h_a h_b` with [`HH_BITS`] fractional bits (public).
fn hh(h: &[i128; 3], a: usize, b: usize) -> i128 {
    mul_round(h[a], h[b], 2 * H_BITS - HH_BITS)
}

/// Channel k of the shells: `[mass, c_k - c, 0, 0, 0, spread]`, zero for an empty shell.
fn shell_finish(s: &Sums, k: usize, global_mean: &[i128; 3], h: &[i128; 3], mean_divisor: u64) -> [i64; 8] {
    let m = s.shell_mass[k];
    let keep = !is_zero(m);
    let den = nonzero_den(m);
    // Mass / (voxels * scale) (times 2S for tents), rounded; m < 2^44.
    let mass = ct_div(((m as u128) << FRAC_BITS) + u128::from(mean_divisor >> 1), mean_divisor) as i128;
    let mut out = [0i128; 8];
    out[0] = mass;
    let mut var = 0i128;
    for a in 0..3 {
        let f = i128::from(s.shell_first[k][a]);
        // Centroid offset in t units (MU_BITS), then r = h t.
        let mean = div_round(f << MU_BITS, den);
        out[1 + a] = mul_round(mean - global_mean[a], h[a], MU_BITS + H_BITS - FRAC_BITS);
        // Exact central second moment along a: (M Q - F^2) / M^2 >= 0, VAR_BITS.
        let d = i128::from(m) * s.shell_second[k][a] - f * f;
        // h_a^2 var_a <= 1: the product stays below 2^112.
        var += hh(h, a, a) * div_by_square(d, den, VAR_BITS);
    }
    // The spread's square with 2 FRAC_BITS fractional bits, its root with FRAC_BITS.
    let var = positive_part(var) >> (HH_BITS + VAR_BITS - 2 * FRAC_BITS);
    out[7] = i128::from(ct_isqrt(var as u128));
    // Every value is bounded by the geometry (|r| <= 1, mass <= 2^16): fits i64.
    out.map(|v| (v as i64) & keep)
}

mod axes;
use axes::axes_finish;
mod depth;
pub use depth::{depth_channel_fixed, FixedDepth};

#[allow(clippy::needless_range_loop, clippy::cast_precision_loss)]
#[cfg(test)]
mod tests;
