//! The scan preprocessing pipeline: what turns a loaded volume (any scanner, any voxel size,
//! any intensity unit) into the volume whose features the model was trained on.
//!
//! A model file records its [`Pipeline`] (model format 3), the vendor's input profile copies
//! it, and `encrypt`, `predict` and `train` all run it through [`Pipeline::prepare`] before
//! `clifhe_core::multivector::features::scan_features`: the hospital's features then come from
//! the same distribution as the vendor's training features. The steps, in order
//! (docs/preprocessing.md):
//!
//! 1. **Resampling** to an isotropic voxel size ([`Pipeline::resample_mm`]), trilinear, on a
//!    grid centred on the original volume (so the features' origin, the volume centre, stays
//!    put). Scanners differ in slice thickness far more than in in-plane spacing; the moments
//!    are computed in physical coordinates either way, but a 5 mm slice smears what a 1 mm
//!    slice resolves, and resampling puts every source at one resolution.
//! 2. **Intensity** ([`Intensity`]): a fixed divisor (MedMNIST's 8-bit masks), a window in the
//!    scanner's unit mapped to [0, 1] (CT in Hounsfield units, the usual soft-tissue window is
//!    W 400 / L 40), or per-volume percentiles mapped to [0, 1] (MR, whose intensities have no
//!    absolute unit: Nyul and Udupa, IEEE TMI 1999, use the same landmarks).
//! 3. **Cropping** ([`Crop`]) to the bounding box of the voxels above a threshold (after step
//!    2) plus a margin: the features' normalised coordinates then describe the region of
//!    interest, not the field of view the scanner happened to use.
//!
//! The pipeline runs on the host (the `no_std` core keeps only the feature extraction); a
//! device that computes features itself is provisioned for models whose pipeline is a plain
//! [`Intensity::Scale`] with no resampling or cropping ([`Pipeline::is_device_compatible`]).

mod resample;

use clifhe_core::multivector::features::FeatureConfig;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The version of the pipeline's definition this build implements. A model recording another
/// version is refused: the same file must give the same features everywhere.
pub const PIPELINE_VERSION: u32 = 1;

/// Largest volume (voxels) a resampling may produce: 2^28, the loaders' own limit, so a
/// hostile spacing cannot make the pipeline allocate more than the loaders would.
pub const MAX_RESAMPLED_VOXELS: usize = 1 << 28;

/// Smallest isotropic voxel size a pipeline may ask for (mm).
pub const MIN_RESAMPLE_MM: f64 = 0.05;

/// Why a pipeline could not run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PreprocessError {
    /// The pipeline itself is invalid (a model or profile file with a bad value).
    InvalidPipeline(String),
    /// The volume contradicts itself (sizes, spacing, a non-finite voxel).
    InvalidVolume(String),
    /// Resampling would produce more than [`MAX_RESAMPLED_VOXELS`] voxels.
    TooLarge {
        /// Voxels the resampled grid would have.
        voxels: u128,
    },
}

impl std::fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidPipeline(w) => write!(f, "invalid preprocessing pipeline: {w}"),
            Self::InvalidVolume(w) => write!(f, "volume cannot be preprocessed: {w}"),
            Self::TooLarge { voxels } => write!(f, "resampling would produce {voxels} voxels (at most {MAX_RESAMPLED_VOXELS})"),
        }
    }
}

impl std::error::Error for PreprocessError {}

/// How intensities are mapped before the features (step 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Intensity {
    /// I / divisor (MedMNIST volumes: 255; the built-in phantoms: 1). Applied inside the
    /// feature pass, as the device does, so features stay bit-identical to the device's.
    Scale {
        /// Positive, finite.
        divisor: f64,
    },
    /// clamp(I, lower, upper) mapped linearly to [0, 1]: a CT window in Hounsfield units
    /// (lower = level - width / 2, upper = level + width / 2).
    Window {
        /// Intensity mapped to 0 (and everything below it).
        lower: f64,
        /// Intensity mapped to 1 (and everything above it).
        upper: f64,
    },
    /// The volume's own `low` and `high` percentiles (0..100) mapped to 0 and 1, clamped:
    /// MR, where the unit depends on the scanner and the sequence.
    Percentile {
        /// Lower landmark, percent.
        low: f64,
        /// Upper landmark, percent.
        high: f64,
    },
}

/// How the volume is cropped before the features (step 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Crop {
    /// The whole field of view.
    None,
    /// The bounding box of voxels whose mapped intensity exceeds `threshold`, grown by
    /// `margin_mm` on every side (clipped to the volume). A volume with no voxel above the
    /// threshold is kept whole (it has no region of interest to crop to; its features are
    /// those of a near-empty scan, which the model's input box then flags).
    Foreground {
        /// On the [0, 1] scale of step 2 (finite, >= 0).
        threshold: f64,
        /// Margin around the box (finite, >= 0).
        margin_mm: f64,
    },
}

/// One versioned preprocessing pipeline (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// [`PIPELINE_VERSION`].
    pub version: u32,
    /// Isotropic voxel size to resample to (mm); `None` keeps the source grid.
    pub resample_mm: Option<f64>,
    /// Step 2.
    pub intensity: Intensity,
    /// Step 3.
    pub crop: Crop,
}

/// A named pipeline the CLI offers (`--pipeline NAME`), beside a JSON file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelinePreset {
    /// MedMNIST 3D `.npz` volumes (8-bit, 28^3 or 64^3, already cropped): I / 255.
    Medmnist,
    /// Intensities taken as they are (the built-in phantoms, features computed elsewhere).
    Raw,
    /// CT: 1.5 mm isotropic, soft-tissue window W 400 / L 40 HU, cropped to the body.
    Ct,
    /// MR: 1.5 mm isotropic, 1st/99th percentiles to [0, 1], cropped to the foreground.
    Mr,
}

impl PipelinePreset {
    /// Every preset, in the order the CLI lists them.
    pub const ALL: [Self; 4] = [Self::Medmnist, Self::Raw, Self::Ct, Self::Mr];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Medmnist => "medmnist",
            Self::Raw => "raw",
            Self::Ct => "ct",
            Self::Mr => "mr",
        }
    }

    /// The preset called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its pipeline.
    pub fn pipeline(self) -> Pipeline {
        match self {
            Self::Medmnist => Pipeline::scale(255.0),
            Self::Raw => Pipeline::scale(1.0),
            Self::Ct => Pipeline {
                version: PIPELINE_VERSION,
                resample_mm: Some(1.5),
                intensity: Intensity::Window {
                    lower: -160.0,
                    upper: 240.0,
                },
                crop: Crop::Foreground {
                    threshold: 0.05,
                    margin_mm: 5.0,
                },
            },
            Self::Mr => Pipeline {
                version: PIPELINE_VERSION,
                resample_mm: Some(1.5),
                intensity: Intensity::Percentile { low: 1.0, high: 99.0 },
                crop: Crop::Foreground {
                    threshold: 0.1,
                    margin_mm: 5.0,
                },
            },
        }
    }
}

/// A volume ready for the features: the data (borrowed when the pipeline left it alone), its
/// grid, and the feature configuration that completes the pipeline.
#[derive(Clone, Debug)]
pub struct PreparedVolume<'a> {
    /// Voxels, x fastest (`data[x + dims[0] * (y + dims[1] * z)]`).
    pub data: Cow<'a, [f32]>,
    /// Voxels per axis.
    pub dims: [usize; 3],
    /// Voxel size per axis (mm).
    pub spacing_mm: [f64; 3],
    /// What `scan_features` needs (the divisor of [`Intensity::Scale`], else 1).
    pub feature_config: FeatureConfig,
}

impl Pipeline {
    /// Divide by `divisor`, nothing else (the pipeline of every model trained before pipelines
    /// were recorded: 255 for MedMNIST, 1 otherwise).
    pub fn scale(divisor: f64) -> Self {
        Self {
            version: PIPELINE_VERSION,
            resample_mm: None,
            intensity: Intensity::Scale { divisor },
            crop: Crop::None,
        }
    }

    /// Checks every value (a model or profile file runs this when it is read).
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let bad = |what: &str| Err(PreprocessError::InvalidPipeline(what.to_string()));
        if self.version != PIPELINE_VERSION {
            return bad(&format!(
                "version {} (this build implements version {PIPELINE_VERSION})",
                self.version
            ));
        }
        if let Some(mm) = self.resample_mm {
            if !(mm.is_finite() && mm >= MIN_RESAMPLE_MM) {
                return bad(&format!("resample_mm {mm} (must be finite and >= {MIN_RESAMPLE_MM})"));
            }
        }
        match self.intensity {
            Intensity::Scale { divisor } => {
                // scan_features multiplies by the f32 reciprocal: it must be a normal f32.
                if !(divisor.is_finite() && divisor > 0.0 && ((1.0 / divisor) as f32).is_normal()) {
                    return bad(&format!("scale divisor {divisor}"));
                }
            }
            Intensity::Window { lower, upper } => {
                if !(lower.is_finite() && upper.is_finite() && upper > lower) {
                    return bad(&format!("window [{lower}, {upper}] (needs finite lower < upper)"));
                }
            }
            Intensity::Percentile { low, high } => {
                if !(low.is_finite() && high.is_finite() && (0.0..100.0).contains(&low) && high > low && high <= 100.0) {
                    return bad(&format!("percentiles {low}..{high} (needs 0 <= low < high <= 100)"));
                }
            }
        }
        if let Crop::Foreground { threshold, margin_mm } = self.crop {
            if !(threshold.is_finite() && threshold >= 0.0 && margin_mm.is_finite() && margin_mm >= 0.0) {
                return bad(&format!("crop threshold {threshold}, margin {margin_mm} mm"));
            }
        }
        Ok(())
    }

    /// Whether a device can compute the same features itself (no resampling, no crop, a
    /// fixed divisor): the firmware runs only `scan_features`.
    pub fn is_device_compatible(&self) -> bool {
        self.resample_mm.is_none() && self.crop == Crop::None && matches!(self.intensity, Intensity::Scale { .. })
    }

    /// Runs the pipeline on one volume (`data[x + dims[0] * (y + dims[1] * z)]`, spacing in
    /// mm). Errors: an invalid pipeline, a volume whose sizes disagree, a non-finite voxel or
    /// spacing, or a resampled grid above [`MAX_RESAMPLED_VOXELS`].
    pub fn prepare<'a>(&self, data: &'a [f32], dims: [usize; 3], spacing_mm: [f64; 3]) -> Result<PreparedVolume<'a>, PreprocessError> {
        self.validate()?;
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if dims.contains(&0) || count != Some(data.len()) {
            return Err(PreprocessError::InvalidVolume(format!(
                "volume of {dims:?} voxels holds {} values",
                data.len()
            )));
        }
        if !spacing_mm.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(PreprocessError::InvalidVolume(format!("voxel spacing {spacing_mm:?} mm")));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(PreprocessError::InvalidVolume(format!("voxel {i} is not finite")));
        }
        let mut out = PreparedVolume {
            data: Cow::Borrowed(data),
            dims,
            spacing_mm,
            feature_config: FeatureConfig { intensity_scale: 1.0 },
        };
        if let Some(mm) = self.resample_mm {
            let (d, dims) = resample::isotropic(data, dims, spacing_mm, mm, MAX_RESAMPLED_VOXELS)?;
            out.data = Cow::Owned(d);
            out.dims = dims;
            out.spacing_mm = [mm; 3];
        }
        match self.intensity {
            Intensity::Scale { divisor } => out.feature_config.intensity_scale = divisor,
            Intensity::Window { lower, upper } => map_linear(&mut out.data, lower, upper),
            Intensity::Percentile { low, high } => {
                let (lo, hi) = percentiles(&out.data, low, high);
                map_linear(&mut out.data, lo, hi);
            }
        }
        if let Crop::Foreground { threshold, margin_mm } = self.crop {
            // The threshold is on the mapped [0, 1] scale; with a Scale intensity the mapping
            // happens in the feature pass, so compare against threshold * divisor.
            let raw_threshold = threshold * out.feature_config.intensity_scale;
            crop_foreground(&mut out, raw_threshold, margin_mm);
        }
        Ok(out)
    }
}

/// clamp((v - lo) / (hi - lo), 0, 1) in place; a flat range (hi <= lo) maps everything to 0
/// (the volume carries no contrast to normalise).
fn map_linear(data: &mut Cow<'_, [f32]>, lo: f64, hi: f64) {
    let d = data.to_mut();
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        d.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let inv = 1.0 / (hi - lo);
    for v in d.iter_mut() {
        *v = ((f64::from(*v) - lo) * inv).clamp(0.0, 1.0) as f32;
    }
}

/// The `low` and `high` percentiles of `data` (nearest rank on a sorted copy, as numpy's
/// `percentile(..., method="nearest")`).
fn percentiles(data: &[f32], low: f64, high: f64) -> (f64, f64) {
    let mut sorted: Vec<f32> = data.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let at = |p: f64| {
        let last = sorted.len().saturating_sub(1);
        let rank = ((p / 100.0) * last as f64).round() as usize;
        sorted.get(rank.min(last)).map_or(0.0, |v| f64::from(*v))
    };
    (at(low), at(high))
}

/// Crops `v` to the bounding box of voxels above `threshold`, grown by `margin_mm`.
fn crop_foreground(v: &mut PreparedVolume<'_>, threshold: f64, margin_mm: f64) {
    let [nx, ny, _] = v.dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for (i, &val) in v.data.iter().enumerate() {
        if f64::from(val) > threshold {
            let p = [i % nx, (i / nx) % ny, i / (nx * ny)];
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
    }
    if lo[0] == usize::MAX {
        return;
    }
    for a in 0..3 {
        let grow = (margin_mm / v.spacing_mm[a]).ceil() as usize;
        lo[a] = lo[a].saturating_sub(grow);
        hi[a] = (hi[a] + grow).min(v.dims[a] - 1);
    }
    let dims = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
    if dims == v.dims {
        return;
    }
    let mut out = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
    for z in lo[2]..=hi[2] {
        for y in lo[1]..=hi[1] {
            let row = lo[0] + nx * (y + ny * z);
            out.extend_from_slice(&v.data[row..row + dims[0]]);
        }
    }
    v.data = Cow::Owned(out);
    v.dims = dims;
}

#[cfg(test)]
mod tests;
