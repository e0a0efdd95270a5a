//! Multi-channel scan features whose blades transform as their grades: the input of the
//! equivariant model (`clifhe_std::gnn::equivariant`).
//!
//! The 8 features of [`super::features`] put the off-diagonal second moments in the bivector
//! slots, but a covariance matrix does not rotate like a bivector (C -> R C R^T mixes them with
//! the diagonal), so no rotation of the scan maps those features by R x R~. Here every channel
//! is a multivector that does:
//!
//! The volume's intensities I (divided by the intensity scale) are split into K **intensity
//! shells** by fixed thresholds `0 <= t_0 < t_1 < ... < t_K` (shell k: `t_k <= I < t_(k+1)`, the
//! last one closed above). With normalised voxel coordinates r (as [`super::features`]: origin at
//! the volume centre, one isotropic factor) and the global intensity-weighted centroid c,
//! channel k holds
//!
//! | blade | value | under a rotation R of the scan about its centre |
//! |---|---|---|
//! | 1 | the shell's mass `sum_shell I / voxels` | invariant |
//! | e1, e2, e3 | the shell's centroid relative to the global one, `c_k - c` | rotates as a vector |
//! | e12, e13, e23 | 0 (the network makes bivectors as products of vectors) | (zero stays zero) |
//! | e123 | the shell's spread `sqrt(sum_shell I |r - c_k|^2 / sum_shell I)` | invariant |
//!
//! **Weighting** ([`ShellWeighting`]). With `Hard` shells a voxel belongs wholly to the shell
//! its intensity falls in, so an intensity that moves across a threshold moves the voxel's
//! whole mass to the next shell. Resampling (rotating a scan by an angle that is not a quarter
//! turn) interpolates intensities, and hard shells then change although the anatomy did not:
//! on the phantoms of `host-eval/tests/rotation.rs`, resampling without any net rotation cost
//! the model 8 points of accuracy. With `Tent` shells each voxel's intensity is split
//! linearly between the two shells whose centres `c_k = (t_k + t_(k+1)) / 2` are nearest: the
//! weights `w_k(I)` are the piecewise-linear partition of unity on the centres (all weight on
//! the first shell below `c_0`, on the last above `c_(K-1)`), and the sums above are weighted
//! by `w_k(I) I`. Every channel is then a continuous function of the intensities. Where every
//! intensity is 0 or 1 (binary masks) both weightings give the same channels.
//!
//! The spread is a rotation invariant kept in the pseudoscalar slot, which is invariant under
//! proper rotations too; under a reflection a pseudoscalar would change sign and the spread
//! does not, so the rule is claimed for rotations only. An empty shell is the zero channel.
//!
//! Exactness: rotations by multiples of 90 degrees about the centre permute the voxels of a
//! cube, so there the rule holds to rounding (tested). Other angles need resampling, and the
//! features then move by the resampling error, which the phantom tests measure.

use super::features::{FeatureError, VolumeView, Voxel};
use super::Multivector;

/// Most shells one call computes.
pub const MAX_SHELLS: usize = 8;

/// How a voxel's intensity is assigned to the shells (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShellWeighting {
    /// Wholly to the shell its intensity falls in.
    #[default]
    Hard,
    /// Split linearly between the two shells with the nearest centres.
    Tent,
}

/// Intensity thresholds of the shells (in units of the intensity scale): `K + 1` increasing
/// values, `2 <= K + 1 <= MAX_SHELLS + 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShellConfig {
    /// Intensities are divided by this first (finite, positive).
    pub intensity_scale: f64,
    /// Shell boundaries, strictly increasing and finite.
    pub thresholds: [f64; MAX_SHELLS + 1],
    /// Number of shells K (the first K + 1 thresholds are used).
    pub shells: usize,
    /// How intensities are assigned to the shells.
    pub weighting: ShellWeighting,
}

impl ShellConfig {
    /// `shells` equal-width shells over `[0, 1]` of the scaled intensity, hard-weighted.
    pub fn uniform(intensity_scale: f64, shells: usize) -> Result<Self, FeatureError> {
        if shells == 0 || shells > MAX_SHELLS {
            return Err(FeatureError::BadConfig);
        }
        let mut thresholds = [0.0; MAX_SHELLS + 1];
        for (k, t) in thresholds.iter_mut().enumerate().take(shells + 1) {
            *t = k as f64 / shells as f64;
        }
        let cfg = Self {
            intensity_scale,
            thresholds,
            shells,
            weighting: ShellWeighting::Hard,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// The same shells with `weighting`.
    #[must_use]
    pub fn with_weighting(self, weighting: ShellWeighting) -> Self {
        Self { weighting, ..self }
    }

    /// The tent weights of scaled intensity `i` in `[t_0, t_K]` (module docs) into `w[..K]`.
    fn tent_weights(&self, i: f64, w: &mut [f64; MAX_SHELLS]) {
        let k_shells = self.shells;
        let centre = |k: usize| 0.5 * (self.thresholds[k] + self.thresholds[k + 1]);
        *w = [0.0; MAX_SHELLS];
        if i <= centre(0) {
            w[0] = 1.0;
        } else if i >= centre(k_shells - 1) {
            w[k_shells - 1] = 1.0;
        } else if let Some(j) = (0..k_shells - 1).find(|&j| i < centre(j + 1)) {
            let t = (i - centre(j)) / (centre(j + 1) - centre(j));
            w[j] = 1.0 - t;
            w[j + 1] = t;
        }
    }

    fn check(&self) -> Result<(), FeatureError> {
        let used = self.thresholds.get(..self.shells + 1).ok_or(FeatureError::BadConfig)?;
        let increasing = used.windows(2).all(|w| w[0] < w[1]);
        let scale_ok = self.intensity_scale.is_finite() && self.intensity_scale > 0.0;
        let usable = self.shells != 0 && increasing && used.iter().all(|t| t.is_finite()) && scale_ok;
        if !usable {
            return Err(FeatureError::BadConfig);
        }
        Ok(())
    }
}

/// The K shell channels of a volume into `out` (`out.len() >= cfg.shells`; the first K entries
/// are written). Voxels below the first threshold or above the last one belong to no shell.
///
/// # Errors
///
/// [`FeatureError::BadConfig`] for unusable thresholds or too small an `out`,
/// [`FeatureError::NonFiniteVoxel`] for a NaN or infinite voxel.
pub fn shell_channels<T: Voxel>(v: &VolumeView<'_, T>, cfg: &ShellConfig, out: &mut [Multivector]) -> Result<(), FeatureError> {
    cfg.check()?;
    let k_shells = cfg.shells;
    let out = out.get_mut(..k_shells).ok_or(FeatureError::BadConfig)?;
    let inv_scale = 1.0 / cfg.intensity_scale;
    let top = cfg.thresholds[k_shells];
    // Per shell: mass, first moments, second moment |r|^2; and the global mass and moments.
    let mut mass = [0.0f64; MAX_SHELLS];
    let mut first = [[0.0f64; 3]; MAX_SHELLS];
    let mut second = [0.0f64; MAX_SHELLS];
    let (mut total, mut total_first) = (0.0f64, [0.0f64; 3]);
    let mut weights = [0.0f64; MAX_SHELLS];
    // One pass: the global moments and every shell's (the validation is `scaled_voxels`').
    for voxel in v.scaled_voxels(inv_scale) {
        let (intensity, r) = voxel?;
        total += intensity;
        for a in 0..3 {
            total_first[a] += intensity * r[a];
        }
        if intensity < cfg.thresholds[0] || intensity > top {
            continue;
        }
        let r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
        let mut add = |k: usize, m: f64| {
            mass[k] += m;
            for a in 0..3 {
                first[k][a] += m * r[a];
            }
            second[k] += m * r2;
        };
        match cfg.weighting {
            ShellWeighting::Hard => {
                // The last threshold the voxel reaches (the top shell is closed).
                if let Some(k) = cfg.thresholds[..k_shells].iter().rposition(|&t| intensity >= t) {
                    add(k, intensity);
                }
            }
            ShellWeighting::Tent => {
                cfg.tent_weights(intensity, &mut weights);
                for (k, w) in weights[..k_shells].iter().enumerate().filter(|(_, w)| **w != 0.0) {
                    add(k, w * intensity);
                }
            }
        }
    }
    let voxels = v.data().len() as f64;
    let centroid = if total != 0.0 { total_first.map(|s| s / total) } else { [0.0; 3] };
    for (k, o) in out.iter_mut().enumerate() {
        if mass[k] == 0.0 {
            *o = Multivector::zero();
            continue;
        }
        let ck = first[k].map(|s| s / mass[k]);
        // E|r - c_k|^2 = E|r|^2 - |c_k|^2 over the shell.
        let spread = (second[k] / mass[k] - (ck[0] * ck[0] + ck[1] * ck[1] + ck[2] * ck[2])).max(0.0);
        *o = Multivector::new([
            mass[k] / voxels,
            ck[0] - centroid[0],
            ck[1] - centroid[1],
            ck[2] - centroid[2],
            0.0,
            0.0,
            0.0,
            libm::sqrt(spread),
        ]);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::super::test_volumes::{shells_phantom, turn_z};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn channels(v: &[u8], n: usize, shells: usize) -> Vec<Multivector> {
        let view = VolumeView::new(v, [n; 3], [1.0; 3]).unwrap();
        let cfg = ShellConfig::uniform(255.0, shells).unwrap();
        let mut out = vec![Multivector::zero(); shells];
        shell_channels(&view, &cfg, &mut out).unwrap();
        out
    }

    #[test]
    fn a_quarter_turn_rotates_every_channel_by_the_rotor() {
        let n = 20;
        let v = shells_phantom(n);
        let before = channels(&v, n, 4);
        let after = channels(&turn_z(&v, n), n, 4);
        // R = cos(pi/4) - sin(pi/4) e12 rotates e1 -> e2 (a quarter turn in the e1 e2 plane).
        let s = core::f64::consts::FRAC_1_SQRT_2;
        let r = Multivector::new([s, 0.0, 0.0, 0.0, -s, 0.0, 0.0, 0.0]);
        let mut nonzero = 0;
        for (b, a) in before.iter().zip(&after) {
            let want = r.gp(b).gp(&r.reverse()).coeffs();
            for (u, w) in a.coeffs().iter().zip(want) {
                assert!((u - w).abs() < 1e-12, "{:?} vs {want:?}", a.coeffs());
            }
            nonzero += (b.norm() > 0.0) as usize;
        }
        assert!(nonzero >= 3, "the phantom should fill most shells: {before:?}");
        // The vector parts really move (the test would fail for a non-rotating feature).
        assert!(before.iter().zip(&after).any(|(b, a)| (b.coeffs()[1] - a.coeffs()[1]).abs() > 1e-3));
    }

    #[test]
    fn shells_partition_the_mass_and_empty_shells_are_zero() {
        let n = 12;
        let v = shells_phantom(n);
        let ch = channels(&v, n, 8);
        let mass: f64 = ch.iter().map(|c| c.scalar_part()).sum();
        let want: f64 = v.iter().map(|&x| x as f64 / 255.0).sum::<f64>() / v.len() as f64;
        assert!((mass - want).abs() < 1e-12, "{mass} vs {want}");
        // Intensities 60, 120, 230 of 255 fill three of eight shells.
        assert_eq!(ch.iter().filter(|c| c.norm() == 0.0).count(), 5, "{ch:?}");
        // All-zero volume: intensity 0 falls in shell 0 with no mass, so every channel is zero.
        assert!(channels(&[0u8; 27], 3, 2).iter().all(|c| c.norm() == 0.0));
    }

    #[test]
    fn refuses_bad_configurations() {
        assert_eq!(ShellConfig::uniform(255.0, 0), Err(FeatureError::BadConfig));
        assert_eq!(ShellConfig::uniform(255.0, MAX_SHELLS + 1), Err(FeatureError::BadConfig));
        assert_eq!(ShellConfig::uniform(0.0, 2), Err(FeatureError::BadConfig));
        let mut cfg = ShellConfig::uniform(255.0, 3).unwrap();
        cfg.thresholds[2] = cfg.thresholds[1];
        let v = [0u8; 8];
        let view = VolumeView::new(&v[..], [2; 3], [1.0; 3]).unwrap();
        let mut out = [Multivector::zero(); 3];
        assert_eq!(shell_channels(&view, &cfg, &mut out), Err(FeatureError::BadConfig));
        let cfg = ShellConfig::uniform(255.0, 3).unwrap();
        assert_eq!(shell_channels(&view, &cfg, &mut out[..2]), Err(FeatureError::BadConfig));
        let nan = [f32::NAN; 8];
        let view = VolumeView::new(&nan[..], [2; 3], [1.0; 3]).unwrap();
        assert_eq!(
            shell_channels(&view, &cfg, &mut out),
            Err(FeatureError::NonFiniteVoxel { index: 0 })
        );
    }
}
