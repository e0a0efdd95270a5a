//! Scans and dataset samples to multivector features.
//!
//! Waits for the data loaders (`crate::data`) and the scan-features function of
//! `clifhe_core::multivector`; until they land, scan inputs are refused with a typed error.

use super::error::CliError;
use super::inputs::Patient;
use std::path::Path;

/// The file part of a loader spec (`file.npz#test:3` -> `file.npz`), checked to exist so that a
/// missing file is reported as such, not as a format problem.
fn check_exists(spec: &str) -> Result<(), CliError> {
    let path = if Path::new(spec).exists() { spec } else { spec.rsplit_once('#').map_or(spec, |(p, _)| p) };
    std::fs::metadata(path).map(|_| ()).map_err(|e| CliError::io(path, "read", e))
}

/// Features of one scan.
pub fn features_of(spec: &str) -> Result<[f64; 8], CliError> {
    check_exists(spec)?;
    Err(CliError::bad_input(spec, "scan loading is not available in this build yet; pass a features file (.json or .csv)"))
}

/// Features of samples `start..end` of `split` in a dataset file.
pub fn dataset_range(path: &Path, split: &str, start: usize, end: usize) -> Result<Vec<Patient>, CliError> {
    let _ = (split, start, end);
    check_exists(&path.display().to_string())?;
    Err(CliError::bad_input(path.display(), "dataset loading is not available in this build yet"))
}
