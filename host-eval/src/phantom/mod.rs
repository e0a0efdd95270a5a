//! The built-in demo dataset: deterministic 3D phantoms of three classes (healthy, benign,
//! malignant), so `host-eval demo` runs with no download.
//!
//! # Model
//! Each patient is a crop of a small body-like volume (default 32^3 voxels of 1 mm). Tissues
//! are modelled in Hounsfield units (HU) and then shown through a soft-tissue CT window
//! (level 40 HU, width 400 HU), so every voxel is `clamp((HU + 160) / 400, 0, 1)` as f32:
//!
//! | structure | HU | windowed |
//! |---|---|---|
//! | air (outside the body) | -1000 | 0 |
//! | subcutaneous fat layer | about -100 | about 0.15 |
//! | soft tissue (muscle) | about 45 | about 0.51 |
//! | organ (enhancing parenchyma) | about 65 | about 0.56 |
//! | cyst | about 5 | about 0.41 |
//! | enhancing lesion | 85 to 175 | 0.61 to 0.84 |
//!
//! Anatomy, in coordinates normalised to the half-extent of the largest axis (as
//! `scan_features` uses; 1 unit = 16 mm at the default size), so the same patient at a finer
//! grid is the same anatomy sampled more densely:
//! - **body**: an ellipsoid (semi-axes 0.92 x 0.78 x 0.95, +-0.3%; centre +-0.002; tilted up to
//!   2 degrees about z) with a fat layer 0.11 thick. Its largest semi-axis stays below 1, so the
//!   body lies inside the sphere inscribed in the grid and a rotation about any axis through the
//!   centre loses no tissue: the rotation study compares like with like. The body varies so
//!   little on purpose: the scan features are global moments, and the body outside the organ
//!   holds about three quarters of the intensity mass, so a few percent of body-size jitter
//!   moves the mean and size features more than any lesion does (measured: +-3% semi-axes,
//!   +-0.02 centre and a texture of one period per body brought nearest-mean accuracy down to
//!   0.42, chance being 0.33). Think of a standardised acquisition (same
//!   positioning and field of view) where patients differ in the organ and the lesion.
//! - **organ**: an ellipsoid (semi-axes 0.55 x 0.45 x 0.50, +-8% each) with random position
//!   jitter (+-0.05) and orientation (yaw +-35 degrees, tilts +-15 degrees); tissue intensities
//!   jitter a few HU per patient.
//! - smooth texture (three products of cosines, 2 to 5 HU, periods of 11 to 20 mm, so they
//!   average out over the body instead of shifting the mean) and Gaussian noise (default sigma
//!   12 HU, 0.03 windowed) inside the body; edges are partial-volume ramps one voxel wide.
//! - **lesion** inside the organ (clipped to it):
//!   - *healthy*: none, or (30% of patients) a tiny cyst of radius 0.05 to 0.10 (under 2 mm,
//!     below the reporting threshold);
//!   - *benign*: one round, well-circumscribed lesion (sharp edge, axes within +-15% of each
//!     other) of radius 0.18 to 0.38 (3 to 6 mm), within 0.35 of the organ's semi-axes from its
//!     centre; 60% cystic (-55 to -70 HU against the organ), 40% mildly enhancing (+25 to +50);
//!   - *malignant*: an irregular lesion: a core sphere of radius 0.22 to 0.45 (3.5 to 7 mm)
//!     with 2 to 5 overlapping lobes and 0 to 6 spicules, a blurred (infiltrative) edge 1.5 to 3
//!     voxels wide, placed eccentrically (0.3 to 0.6 of the organ's semi-axes from its centre);
//!     80% hyperenhancing (+45 to +110 HU), 20% hypodense/necrotic (-40 to -70 HU).
//!
//! The size, contrast and position ranges overlap between classes (a large benign cyst against
//! a small hypodense cancer; a small enhancing benign lesion against a healthy organ), so a
//! classifier on the 8 scan features does well above chance but not perfectly: nearest class
//! mean on standardised features reaches about 0.68 on the test split (`tests/phantom.rs`).
//!
//! **Tilted patients** ([`PhantomConfig::max_tilt_deg`]): the whole patient (body, organ,
//! lesion, texture) turned about a random axis through the centre, sampled analytically (no
//! resampling of a rendered volume). The body stays inside the inscribed sphere, so no tissue
//! leaves the grid at any orientation.
//!
//! # Determinism
//! Every patient draws from its own ChaCha20 stream keyed by SHA-256 of (seed, class, index):
//! any patient can be regenerated alone, in any order or on any thread, with identical bytes.
//! (Across platforms the volumes depend on the libm's `sin`/`cos`/`cbrt`, which Rust does not
//! pin to the last bit, so no golden bytes are tested.)

mod generate;
mod rotate;

pub use generate::{generate, generate_labelled, Tissue};
pub use rotate::{rotate_volume, rotate_volume_quaternion, Axis};

use crate::data::Volume;
use rayon::prelude::*;

/// Diagnosis classes of the demo, in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhantomClass {
    Healthy = 0,
    Benign = 1,
    Malignant = 2,
}

impl PhantomClass {
    /// All classes in label order.
    pub const ALL: [PhantomClass; 3] = [Self::Healthy, Self::Benign, Self::Malignant];

    /// The class index used as the training label.
    pub fn label(self) -> u32 {
        self as u32
    }

    /// Human-readable name (also the name in predictions files).
    pub fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Benign => "benign",
            Self::Malignant => "malignant",
        }
    }

    /// The class of a label index, `None` past the last class.
    pub fn from_label(label: u32) -> Option<Self> {
        Self::ALL.get(label as usize).copied()
    }
}

/// Generator settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhantomConfig {
    /// Voxels along x, y, z (x fastest in the data).
    pub dims: [usize; 3],
    /// Dataset seed: different seeds give independent datasets.
    pub seed: u64,
    /// Voxel spacing written into the volumes (mm, isotropic). The anatomy is defined relative
    /// to the field of view, so this only labels the physical scale.
    pub spacing_mm: f64,
    /// Standard deviation of the voxel noise, in HU (the window is 400 HU wide).
    pub noise_hu: f64,
    /// Whole-body orientation (tilted patients): each patient is turned about a uniformly random
    /// axis through the centre by an angle uniform in [0, max_tilt_deg] (180: any orientation,
    /// not uniform over SO(3) but covering it). 0 (the default) is the standardised positioning
    /// of the module docs. The tilt comes from its own stream, so a tilted patient is the same
    /// anatomy as the untilted one, turned.
    pub max_tilt_deg: f64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self {
            dims: [32; 3],
            seed: 1,
            spacing_mm: 1.0,
            noise_hu: 12.0,
            max_tilt_deg: 0.0,
        }
    }
}

/// `n_per_class` patients of each class with their labels, ordered by patient index and then
/// class: entry `k` is patient `k / 3` of class `k % 3`, so any prefix is balanced.
/// Generated in parallel (each patient is independent of the others).
pub fn dataset(cfg: &PhantomConfig, n_per_class: usize) -> (Vec<Volume>, Vec<u32>) {
    let items: Vec<(Volume, u32)> = (0..n_per_class * 3)
        .into_par_iter()
        .map(|k| {
            let class = PhantomClass::ALL[k % 3];
            (generate(cfg, class, (k / 3) as u64), class.label())
        })
        .collect();
    items.into_iter().unzip()
}

/// A part of the standard split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Self::Train, Self::Val, Self::Test];

    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

/// The standard split by patient index within each class: the first 60% train, the next 15%
/// validation, the last 25% test (the same fractions as `host-eval demo`). By index rather than
/// at random: deterministic without another stream, and every class splits in the same
/// proportions.
pub fn split_of(index: u64, n_per_class: usize) -> Split {
    let n = n_per_class.max(1) as u64;
    // Integer comparisons, so no float rounding moves a patient across a boundary.
    if index * 100 < n * 60 {
        Split::Train
    } else if index * 100 < n * 75 {
        Split::Val
    } else {
        Split::Test
    }
}

/// The patients of one split, in `dataset` order (by index, then class).
pub fn dataset_split(cfg: &PhantomConfig, n_per_class: usize, split: Split) -> (Vec<Volume>, Vec<u32>) {
    let items: Vec<(Volume, u32)> = (0..n_per_class * 3)
        .into_par_iter()
        .filter(|k| split_of((k / 3) as u64, n_per_class) == split)
        .map(|k| {
            let class = PhantomClass::ALL[k % 3];
            (generate(cfg, class, (k / 3) as u64), class.label())
        })
        .collect();
    items.into_iter().unzip()
}
