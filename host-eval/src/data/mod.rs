//! Scan loaders: MedMNIST `.npz` datasets (and single samples as `file.npz#split:index`),
//! with one in-memory volume type and one error type. Readers check every declared size
//! against the actual bytes before allocating and never panic on malformed files.

pub mod npz;
pub mod phantom;

use std::fmt;
use std::path::{Path, PathBuf};

/// A 3D volume: `data[x + dims[0] * (y + dims[1] * z)]`, x fastest, spacing in mm.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
    pub data: Vec<f32>,
}

impl Volume {
    /// Borrowed view for `clifhe_core::multivector::features::scan_features`.
    pub fn view(&self) -> Result<clifhe_core::multivector::features::VolumeView<'_, f32>, clifhe_core::multivector::features::FeatureError> {
        clifhe_core::multivector::features::VolumeView::new(&self.data, self.dims, self.spacing_mm)
    }
}

/// Why a file could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    Io { path: PathBuf, source: std::io::Error },
    UnsupportedFormat { path: PathBuf, what: String },
    Corrupt { path: PathBuf, what: String },
    TooLarge { path: PathBuf, bytes: u64 },
    MissingKey { path: PathBuf, key: String },
    BadSample { path: PathBuf, what: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::UnsupportedFormat { path, what } => write!(f, "{}: unsupported format: {what}", path.display()),
            Self::Corrupt { path, what } => write!(f, "{}: corrupt file: {what}", path.display()),
            Self::TooLarge { path, bytes } => write!(f, "{}: declares {bytes} bytes, more than the reader accepts", path.display()),
            Self::MissingKey { path, key } => write!(f, "{}: no array named {key}", path.display()),
            Self::BadSample { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Largest array the readers accept (4 GiB).
pub const MAX_ARRAY_BYTES: u64 = 4 << 30;

/// Loads one volume: `file.npz#split:index` (MedMNIST sample); other formats by extension.
pub fn load_volume(spec: &str) -> Result<Volume, DataError> {
    if let Some((file, sample)) = spec.split_once('#') {
        let path = Path::new(file);
        let (split, index) = sample.split_once(':').ok_or_else(|| DataError::BadSample {
            path: path.to_path_buf(),
            what: format!("sample '{sample}' is not of the form split:index"),
        })?;
        let index: usize = index.parse().map_err(|_| DataError::BadSample { path: path.to_path_buf(), what: format!("'{index}' is not an index") })?;
        return npz::load_medmnist_sample(path, split, index).map(|(v, _)| v);
    }
    let path = Path::new(spec);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".npz") {
        return Err(DataError::BadSample {
            path: path.to_path_buf(),
            what: "a dataset file: name one sample as file.npz#split:index (e.g. #test:0)".into(),
        });
    }
    Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: format!("'{name}' (supported: MedMNIST .npz samples)") })
}
